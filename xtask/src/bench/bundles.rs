//! The bundle scenarios: `bundle` against `docker save -o` and `load` against `docker
//! load -i` of the raw tars, one after another and at once, and the compression levels.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use xshell::Shell;

use crate::docker::argv;
use fate_bundle::archive::streams;
use fate_bundle::archive::streams::Compression;
use fate_bundle::process::{self, Command};
use fate_bundle::ui::problems::Problems;
use fate_bundle::{manifest as bundle_json, signing};

use crate::bench::fixture::{build_payload_image, bundled_refs, dir_bytes, remove_images};
use crate::bench::measure::{xtask, xtask_bundle};
use crate::bench::samples::{
    COMPRESSION_LEVELS, PAYLOAD_IMAGE, Sample, Samples, Scenario, Shape, record,
};

/// `bundle` vs `docker save -o`, then `load` vs `docker load -i` of the raw tars, then
/// (in the first run) the compression levels on the raw tars.
pub(super) fn bundle_scenarios(
    sh: &Shell,
    samples: &mut Samples,
    ours: &Path,
    scratch: &Path,
    run: usize,
) -> Result<()> {
    xtask(ours, &["images"])?;
    xtask(ours, &["images", "redis"])?;
    build_payload_image(sh, scratch, Shape::TwoJdkLayers)?;
    // The loader every bundle carries, built before the clock runs: its first build is a
    // one-off of minutes, later bundles only ask cargo whether it is current.
    let log = scratch.join("loader-build.log");
    let quiet = fate_bundle::ui::Ui::new(fate_bundle::ui::Progress::Plain, true, false);
    crate::bundle::loader::build(&quiet, &crate::config::project::workspace_root(), &log)?;
    let refs = bundled_refs(ours, PAYLOAD_IMAGE)?;
    let raw_dir = scratch.join("raw");
    std::fs::create_dir_all(&raw_dir)?;
    let mut bundles = Vec::new();
    for compression in [Compression::Gzip, Compression::Zstd] {
        let dir = scratch.join(format!("bundle-{}", compression.name()));
        let out = dir.display().to_string();
        let args = ["bundle", "--compress", compression.name(), "--out", &out];
        let run = xtask_bundle(ours, &args)?;
        let bytes = dir_bytes(&dir, compression.extension())?;
        record(
            samples,
            Scenario::Bundle(compression),
            Sample { bytes, ..run },
        );
        bundles.push((compression, dir));
    }
    let signed = signed_bundle(samples, ours, scratch)?;
    raw_saves(samples, &refs, &raw_dir)?;
    let gzip = &bundles[0].1;
    crate::bench::pushes::push_scenarios(samples, ours, gzip, &raw_dir, &refs, scratch)?;
    let all: Vec<String> = refs.iter().flat_map(|(_, r)| r.clone()).collect();
    for (compression, dir) in &bundles {
        remove_images(&all)?;
        let run = xtask_bundle(ours, &["load", &dir.display().to_string()])?;
        record(samples, Scenario::Load(*compression), run);
    }
    remove_images(&all)?;
    let verified = [
        "load",
        &signed.dir.display().to_string(),
        "--verify-key",
        &signed.public.display().to_string(),
    ]
    .map(String::from);
    let verified: Vec<&str> = verified.iter().map(String::as_str).collect();
    record(
        samples,
        Scenario::LoadVerified,
        xtask_bundle(ours, &verified)?,
    );
    raw_loads(samples, &refs, &raw_dir)?;
    crate::bench::shapes::shape_scenarios(sh, samples, ours, scratch, run)?;
    // How the levels were chosen, not what the tool does: measured in the first run only.
    if run == 0 {
        compression_levels(samples, &raw_dir)?;
    }
    for (_, dir) in &bundles {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::remove_dir_all(&signed.dir)?;
    std::fs::remove_dir_all(&raw_dir)?;
    Ok(())
}

/// `docker save -o` of each archive's images: the old way, one after another; then the
/// same commands at once, as xtask runs them.
fn raw_saves(samples: &mut Samples, refs: &[(&str, Vec<String>)], raw_dir: &Path) -> Result<()> {
    let saves: Vec<Command> = refs
        .iter()
        .map(|(name, images)| argv::save_to(&raw_dir.join(format!("{name}.tar")), images))
        .collect();
    let raw = Sample {
        wall: timed(&saves, false)?,
        bytes: dir_bytes(raw_dir, ".tar")?,
        ..Sample::default()
    };
    record(samples, Scenario::RawSave, raw);
    let at_once = Sample {
        wall: timed(&saves, true)?,
        ..Sample::default()
    };
    record(samples, Scenario::RawSaveAtOnce, at_once);
    Ok(())
}

/// `docker load -i` of the raw tars, one after another and at once, each from an engine
/// without the images.
fn raw_loads(samples: &mut Samples, refs: &[(&str, Vec<String>)], raw_dir: &Path) -> Result<()> {
    let all: Vec<String> = refs.iter().flat_map(|(_, r)| r.clone()).collect();
    let loads: Vec<Command> = refs
        .iter()
        .map(|(name, _)| argv::load_from(&raw_dir.join(format!("{name}.tar"))))
        .collect();
    for (name, at_once) in [(Scenario::RawLoad, false), (Scenario::RawLoadAtOnce, true)] {
        remove_images(&all)?;
        let load = Sample {
            wall: timed(&loads, at_once)?,
            ..Sample::default()
        };
        record(samples, name, load);
    }
    Ok(())
}

/// A signed gzip bundle, and where its public key is.
struct Signed {
    dir: std::path::PathBuf,
    public: std::path::PathBuf,
}

/// Writes a gzip bundle signed with a new key, and times signing and checking its
/// manifest and sums alone, in this process.
fn signed_bundle(samples: &mut Samples, ours: &Path, scratch: &Path) -> Result<Signed> {
    let keys = scratch.join("keys");
    if !keys.join("fate-bundle.key").is_file() {
        signing::keygen(&keys, None)?;
    }
    let (secret, public) = (keys.join("fate-bundle.key"), keys.join("fate-bundle.pub"));
    let dir = scratch.join("bundle-signed");
    let args = [
        "bundle",
        "--out",
        &dir.display().to_string(),
        "--sign-key",
        &secret.display().to_string(),
    ]
    .map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    record(samples, Scenario::BundleSigned, xtask_bundle(ours, &args)?);
    let key = signing::secret_key(&secret, None)?;
    let files = [bundle_json::MANIFEST, bundle_json::SUMS].map(|f| dir.join(f));
    let texts = files
        .iter()
        .map(std::fs::read)
        .collect::<std::io::Result<Vec<_>>>()?;
    let started = Instant::now();
    for text in &texts {
        signing::sign(&key, text, "bench")?;
    }
    let sign = started.elapsed();
    let started = Instant::now();
    for file in &files {
        signing::verify(&public, file)?;
    }
    let verify = started.elapsed();
    for (name, wall) in [(Scenario::SignOnly, sign), (Scenario::VerifyOnly, verify)] {
        let sample = Sample {
            wall,
            ..Sample::default()
        };
        record(samples, name, sample);
    }
    Ok(Signed { dir, public })
}

/// Runs `commands` one after another, or all at once; returns the wall time.
fn timed(commands: &[Command], at_once: bool) -> Result<Duration> {
    let started = Instant::now();
    if at_once {
        Problems::each_at_once("a raw command failed", commands, process::run_captured)?;
    } else {
        for command in commands {
            process::run_captured(command)?;
        }
    }
    Ok(started.elapsed())
}

fn compression_levels(samples: &mut Samples, raw_dir: &Path) -> Result<()> {
    for (compression, level) in COMPRESSION_LEVELS {
        let started = Instant::now();
        let mut bytes = 0;
        for entry in std::fs::read_dir(raw_dir)? {
            let path = entry?.path();
            let mut input = std::io::BufReader::new(std::fs::File::open(&path)?);
            let tally = streams::Tally::default();
            let sink = streams::TallyWriter {
                inner: std::io::sink(),
                tally: tally.clone(),
            };
            let mut z = streams::compressor_at(compression, level, sink)?;
            std::io::copy(&mut input, &mut z)?;
            streams::Finish::finish_stream(z)?;
            bytes += tally.result().0;
        }
        let sample = Sample {
            wall: started.elapsed(),
            bytes,
            ..Sample::default()
        };
        record(samples, Scenario::Level(compression, level), sample);
    }
    Ok(())
}
