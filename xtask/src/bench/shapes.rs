//! The bundle and load aims on payloads shaped otherwise than the bench's own: the JDK
//! twice as one image's only layer (one large layer in one archive), and 60 layers of 8.8 MB.
//! Each against the same `docker save -o` and `docker load -i` one archive after another.

use std::path::Path;

use anyhow::Result;
use fate_bundle::process::{self, Command};
use xshell::Shell;

use crate::bench::fixture::{build_payload_image, bundled_refs, remove_images};
use crate::bench::measure::xtask_bundle_with;
use crate::bench::samples::{Sample, Samples, Scenario, Shape, record};
use crate::docker::argv;

pub(super) const SHAPES: [Shape; 2] = [Shape::OneLargeLayer, Shape::ManySmallLayers];

/// `bundle` and `load` (gzip) with each shape as the payload, beside the raw commands:
/// ours first in even runs, the raw commands first in odd ones (what one leaves in the
/// engine's caches favours the other).
pub(super) fn shape_scenarios(
    sh: &Shell,
    samples: &mut Samples,
    ours: &Path,
    scratch: &Path,
    run: usize,
) -> Result<()> {
    for shape in SHAPES {
        build_payload_image(sh, scratch, shape)?;
        let refs = bundled_refs(ours, shape.image())?;
        let all: Vec<String> = refs.iter().flat_map(|(_, r)| r.clone()).collect();
        let dir = scratch.join("bundle-shape");
        let raw = scratch.join("raw-shape");
        std::fs::create_dir_all(&raw)?;
        let out = dir.display().to_string();
        let saves: Vec<Command> = refs
            .iter()
            .map(|(name, images)| argv::save_to(&raw.join(format!("{name}.tar")), images))
            .collect();
        let loads: Vec<Command> = refs
            .iter()
            .map(|(name, _)| argv::load_from(&raw.join(format!("{name}.tar"))))
            .collect();
        let bundle = || xtask_bundle_with(ours, &["bundle", "--out", &out], shape.image());
        let load = || {
            remove_images(&all)?;
            xtask_bundle_with(ours, &["load", &out], shape.image())
        };
        let raw_load = || {
            remove_images(&all)?;
            in_turn(&loads)
        };
        let (bundled, saved, loaded, raw_loaded) = if run.is_multiple_of(2) {
            let (bundled, saved) = (bundle()?, in_turn(&saves)?);
            (bundled, saved, load()?, raw_load()?)
        } else {
            let (saved, bundled) = (in_turn(&saves)?, bundle()?);
            let raw_loaded = raw_load()?;
            (bundled, saved, load()?, raw_loaded)
        };
        record(samples, Scenario::ShapeBundle(shape), bundled);
        record(samples, Scenario::ShapeRawSave(shape), saved);
        record(samples, Scenario::ShapeLoad(shape), loaded);
        record(samples, Scenario::ShapeRawLoad(shape), raw_loaded);
        std::fs::remove_dir_all(&dir)?;
        std::fs::remove_dir_all(&raw)?;
    }
    Ok(())
}

fn in_turn(commands: &[Command]) -> Result<Sample> {
    let started = std::time::Instant::now();
    for command in commands {
        process::run_captured(command)?;
    }
    Ok(Sample {
        wall: started.elapsed(),
        ..Sample::default()
    })
}
