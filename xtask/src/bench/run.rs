//! The bench, start to end: three copies of the tree (ours, the old way's, bake's), the
//! scenarios run by turns, the report.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::ValueEnum;
use xshell::Shell;

use crate::bench::builds::{build_scenarios, scale_scenario};
use crate::bench::bundles::bundle_scenarios;
use crate::bench::fixture::{clean, copy_source_tree, grow_to_fate_size, set_prefix};
use crate::bench::samples::{BAKE_PREFIX, BENCH_PREFIX, OLD_PREFIX, Samples};
use crate::bench::{peer, report};

/// A part of the bench (`--only`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Part {
    Build,
    Bundle,
}

/// How the bench runs: how many times, which part, where the report goes.
pub struct Options {
    pub runs: u16,
    pub only: Option<Part>,
    pub out: Option<PathBuf>,
}

/// Runs the bench on copies of `source_root` and prints (and writes) its report.
pub fn bench(source_root: &Path, sh: &Shell, options: &Options) -> Result<()> {
    let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
    // Two copies with their own image prefixes, so neither way reuses the other's
    // images (the old way would strip the labels incremental builds rely on).
    let ours = tmp.path().join("xtask");
    let old = tmp.path().join("old-way");
    let peer_root = tmp.path().join("bake");
    for (root, prefix) in [
        (&ours, BENCH_PREFIX),
        (&old, OLD_PREFIX),
        (&peer_root, BAKE_PREFIX),
    ] {
        copy_source_tree(source_root, root)?;
        grow_to_fate_size(root)?;
        set_prefix(root, prefix)?;
    }

    eprintln!(
        "bench: between scenarios it removes its images and prunes this engine's build cache (docker builder prune -af)"
    );
    let mut samples = Samples::new();
    let parts = match options.only {
        None => vec![Part::Build, Part::Bundle],
        Some(part) => vec![part],
    };
    if parts.contains(&Part::Bundle) {
        // The push scenarios' peers, asked for before hours of measuring.
        for (program, package) in [("docker-registry", "docker-registry"), ("skopeo", "skopeo")] {
            which::which(program).with_context(|| {
                format!("the bundle part of the bench needs {program}: apt-get install {package} (or run --only build)")
            })?;
        }
    }
    let peer = if parts.contains(&Part::Build) {
        Some(peer::Peer::prepare(sh, &peer_root)?)
    } else {
        None
    };
    for i in 0..usize::from(options.runs) {
        eprintln!("bench: run {} of {}", i + 1, options.runs);
        if let Some(peer) = &peer {
            build_scenarios(sh, &mut samples, &ours, &old, i)?;
            peer::peer_scenarios(sh, &mut samples, &ours, peer, i)?;
            scale_scenario(&mut samples, &ours)?;
        }
        if parts.contains(&Part::Bundle) {
            bundle_scenarios(sh, &mut samples, &ours, tmp.path(), i)?;
        }
    }
    clean(sh, &ours, BENCH_PREFIX)?;
    clean(sh, &old, OLD_PREFIX)?;
    clean(sh, &peer_root, BAKE_PREFIX)?;
    let report = report::report(sh, &samples, usize::from(options.runs));
    print!("{report}");
    if let Some(out) = &options.out {
        std::fs::write(out, &report).with_context(|| format!("cannot write {}", out.display()))?;
        eprintln!("bench: wrote {}", out.display());
    }
    Ok(())
}
