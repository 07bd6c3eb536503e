//! `cargo xtask bench`: on a copy of a FATE tree (by default examples/mini-fate), in one
//! run, side by side with the old way:
//! - cold, no-op and one-file rebuilds vs the same Maven and `docker build` commands, all
//!   of them, in sequence;
//! - `bundle` vs `docker save -o`, and `load` vs `docker load -i` of the raw tars (one
//!   after another, as the old way ran them, and at once, as xtask runs them), with a
//!   JDK-sized image among the bundled ones, and the compression levels on those tars.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use xshell::Shell;

mod builds;
mod bundles;
mod fixture;
mod peer;
mod report;

use crate::cli;
use fate_bundle::archive::streams::Compression;

use builds::{build_scenarios, scale_scenario};
use bundles::bundle_scenarios;
use fixture::{clean, copy_source_tree, grow_to_fate_size, set_prefix};

/// The tree is copied here, so edits never touch the source tree.
pub(super) const BENCH_PREFIX: &str = "fate-bench";
pub(super) const OLD_PREFIX: &str = "fate-bench-old";
/// The tree `docker buildx bake` builds, beside ours.
pub(super) const BAKE_PREFIX: &str = "fate-bench-bake";
/// The file the one-file scenario edits, and the text it changes.
pub(super) const EDITED: &str =
    "arch/driver/federation/src/main/java/com/webank/ai/fate/driver/Federation.java";
pub(super) const EDIT_FROM: &str = "Banner.banner(\"federation\"";

/// One measured run of a scenario.
#[derive(Clone, Debug, Default)]
pub(super) struct Sample {
    pub(super) wall: Duration,
    /// xtask's own time: wall minus the time child processes ran.
    pub(super) overhead: Duration,
    pub(super) images_built: usize,
    /// Bytes written (bundle scenarios).
    pub(super) bytes: u64,
    /// Processes xtask started.
    pub(super) processes: u64,
    /// xtask's peak resident memory in KiB (bundle and load), sampled every 5 ms.
    pub(super) peak_kib: u64,
}

/// What the bench measures, each named once: a misspelt scenario is a compile error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Scenario {
    ColdBaseline,
    ColdJobs1,
    ColdJobs2,
    /// The same with `DOCKER_BUILDKIT=0`.
    ColdLegacy,
    NoOp,
    NoOpBaseline,
    OneFile,
    OneFileBaseline,
    /// Beside `docker buildx bake` (`peer`): the builds alone from cold, nothing changed,
    /// a one-file edit.
    ColdBuildsXtask,
    ColdBuildsBake,
    NoOpPeer,
    NoOpBake,
    OneFilePeer,
    OneFileBake,
    /// The no-op on the tree grown by [`fixture::SCALE_FILES`] more files.
    NoOpScaled,
    Bundle(Compression),
    Load(Compression),
    /// A gzip bundle signed (`--sign-key`), and its load checking the signature.
    BundleSigned,
    LoadVerified,
    /// Signing that bundle's manifest and sums, and checking them, in this process.
    SignOnly,
    VerifyOnly,
    RawSave,
    RawSaveAtOnce,
    RawLoad,
    RawLoadAtOnce,
    /// Compressing the raw tars at one level.
    Level(Compression, i32),
}

impl Scenario {
    pub(super) fn label(self) -> String {
        match self {
            Scenario::ColdBaseline => "cold baseline".into(),
            Scenario::ColdJobs1 => "cold xtask --jobs 1".into(),
            Scenario::ColdJobs2 => "cold xtask --jobs 2".into(),
            Scenario::ColdLegacy => "cold xtask --jobs 2 legacy".into(),
            Scenario::NoOp => "no-op xtask".into(),
            Scenario::NoOpBaseline => "no-op baseline".into(),
            Scenario::OneFile => "one-file xtask".into(),
            Scenario::OneFileBaseline => "one-file baseline".into(),
            Scenario::ColdBuildsXtask => "cold builds xtask".into(),
            Scenario::ColdBuildsBake => "cold builds bake".into(),
            Scenario::NoOpPeer => "no-op xtask (peer)".into(),
            Scenario::NoOpBake => "no-op bake".into(),
            Scenario::OneFilePeer => "one-file xtask (peer)".into(),
            Scenario::OneFileBake => "one-file bake".into(),
            Scenario::NoOpScaled => "no-op xtask, grown".into(),
            Scenario::Bundle(c) => format!("bundle {}", c.name()),
            Scenario::Load(c) => format!("load {}", c.name()),
            Scenario::BundleSigned => "bundle gzip, signed".into(),
            Scenario::LoadVerified => "load gzip, verified".into(),
            Scenario::SignOnly => "signing alone".into(),
            Scenario::VerifyOnly => "checking alone".into(),
            Scenario::RawSave => "docker save -o".into(),
            Scenario::RawSaveAtOnce => "docker save -o at once".into(),
            Scenario::RawLoad => "docker load -i".into(),
            Scenario::RawLoadAtOnce => "docker load -i at once".into(),
            Scenario::Level(c, level) => format!("{} level {level}", c.name()),
        }
    }
}

pub(super) type Samples = BTreeMap<Scenario, Vec<Sample>>;

pub(super) fn record(samples: &mut Samples, name: Scenario, s: Sample) {
    eprintln!(
        "bench:   {:<24} {:>7.2}s",
        name.label(),
        s.wall.as_secs_f64()
    );
    samples.entry(name).or_default().push(s);
}

impl cli::Bench {
    pub fn run(self, source_root: &Path, sh: &Shell) -> Result<()> {
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
        let parts = match self.only {
            None => vec![cli::BenchPart::Build, cli::BenchPart::Bundle],
            Some(part) => vec![part],
        };
        let peer = if parts.contains(&cli::BenchPart::Build) {
            Some(peer::Peer::prepare(sh, &peer_root)?)
        } else {
            None
        };
        for i in 0..usize::from(self.runs) {
            eprintln!("bench: run {} of {}", i + 1, self.runs);
            if let Some(peer) = &peer {
                build_scenarios(sh, &mut samples, &ours, &old, i)?;
                peer::peer_scenarios(sh, &mut samples, &ours, peer, i)?;
                scale_scenario(&mut samples, &ours)?;
            }
            if parts.contains(&cli::BenchPart::Bundle) {
                bundle_scenarios(sh, &mut samples, &ours, tmp.path(), i)?;
            }
        }
        clean(sh, &ours, BENCH_PREFIX)?;
        clean(sh, &old, OLD_PREFIX)?;
        clean(sh, &peer_root, BAKE_PREFIX)?;
        let report = report::report(sh, &samples, usize::from(self.runs));
        print!("{report}");
        if let Some(out) = &self.out {
            std::fs::write(out, &report)
                .with_context(|| format!("cannot write {}", out.display()))?;
            eprintln!("bench: wrote {}", out.display());
        }
        Ok(())
    }
}

/// A copy of the tree loaded as the commands load a FATE root.
pub(super) fn project(root: &Path, sh: &Shell) -> Result<crate::Project> {
    let ui = fate_bundle::ui::Ui::new(fate_bundle::ui::Progress::Plain, true, false);
    crate::Project::open(root, &crate::config::Overrides::default(), ui, sh.clone())
}

pub(super) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        f64::midpoint(values[n / 2 - 1], values[n / 2])
    }
}
