//! What the bench measures and keeps: its scenarios, each run's sample, and the names
//! and images the scenarios share.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use fate_bundle::archive::streams::Compression;
use xshell::Shell;

use crate::config::project::Project;

/// The image prefixes of the bench's copies of the tree (edits never touch the source
/// tree): ours, and the old way's.
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
    /// The gzip bundle into a fresh registry (`load --registry`), and again; `sha256sum
    /// -c` of its sums; `skopeo copy` of each image of the raw tars; `docker load` + `tag`
    /// + `push` of each.
    Push,
    PushAgain,
    SumsCheck,
    PushSkopeo,
    PushDocker,
    /// `bundle` and `load` (gzip) with another payload shape, and the raw commands.
    ShapeBundle(Shape),
    ShapeLoad(Shape),
    ShapeRawSave(Shape),
    ShapeRawLoad(Shape),
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
            Scenario::Push => "push, load --registry".into(),
            Scenario::PushAgain => "push again".into(),
            Scenario::SumsCheck => "sha256sum -c".into(),
            Scenario::PushSkopeo => "skopeo copy, each".into(),
            Scenario::PushDocker => "docker load+tag+push".into(),
            Scenario::ShapeBundle(s) => format!("bundle gzip, {}", s.label()),
            Scenario::ShapeLoad(s) => format!("load gzip, {}", s.label()),
            Scenario::ShapeRawSave(s) => format!("docker save -o, {}", s.label()),
            Scenario::ShapeRawLoad(s) => format!("docker load -i, {}", s.label()),
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

/// A copy of the tree loaded as the commands load a FATE root.
pub(super) fn project(root: &Path, sh: &Shell) -> Result<Project> {
    let ui = fate_bundle::ui::Ui::new(fate_bundle::ui::Progress::Plain, true, false);
    Project::open(root, &crate::config::Overrides::default(), ui, sh.clone())
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

/// The JDK-sized stand-in for mysql that the bundle scenarios carry.
pub(super) const PAYLOAD_IMAGE: &str = "fate-bench/jdk-payload:2";

/// The levels the bundle's levels were chosen from: each compresses the raw tars on
/// every core, as `bundle` does.
pub(super) const COMPRESSION_LEVELS: [(Compression, i32); 7] = [
    (Compression::Gzip, 1),
    (Compression::Gzip, 3),
    (Compression::Gzip, 6),
    (Compression::Gzip, 9),
    (Compression::Zstd, 1),
    (Compression::Zstd, 3),
    (Compression::Zstd, 6),
];

/// The shapes of payload the bundle scenarios carry as `mysql`: the bench's own (this
/// host's JDK twice, in two layers: over 500 MB, as large as FATE's images get), the JDK
/// twice as one image's only layer, and many smaller layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Shape {
    TwoJdkLayers,
    OneLargeLayer,
    ManySmallLayers,
}

/// How many layers, and files of each, the many-layers payload has, and each file's size:
/// 60 layers of 8.8 MB, 528 MB in all (the aims are for payloads of 500 MB and more).
pub(super) const SMALL_LAYERS: usize = 60;
pub(super) const SMALL_FILES: usize = 40;
pub(super) const SMALL_FILE_BYTES: usize = 220 << 10;

impl Shape {
    pub(super) fn image(self) -> &'static str {
        match self {
            Shape::TwoJdkLayers => PAYLOAD_IMAGE,
            Shape::OneLargeLayer => "fate-bench/jdk-one-layer:2",
            Shape::ManySmallLayers => "fate-bench/many-layers:2",
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Shape::TwoJdkLayers => "the JDK twice, two layers",
            Shape::OneLargeLayer => "the JDK twice as one layer",
            Shape::ManySmallLayers => "60 layers of 8.8 MB",
        }
    }
}
