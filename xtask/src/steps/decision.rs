//! Incremental decisions: whether a step must run, and the typed reason why. An image's
//! inputs (Dockerfile, build args, content labels, parent IDs, staged context) and a
//! Maven project's inputs (sources, settings, mode) hash to a digest; an unchanged
//! digest with its outputs present means up to date. Which builder runs the build is
//! not an input: it does not decide the image's content.

use std::fmt;
use std::path::PathBuf;

/// Why a step runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Forced,
    NoEarlierRun,
    SourcesChanged,
    /// Only these modules' sources changed (paths relative to the reactor).
    ModulesChanged(Vec<String>),
    OutputMissing(PathBuf),
    /// A Maven output differs from what Maven wrote.
    OutputChanged(PathBuf),
    /// The local image is not the one this tool built (committed or retagged by hand).
    ChangedOutside,
    /// Nothing records that this tool built the local image.
    NotRecorded,
    NotBuilt,
    NoInputsLabel,
    InputsChanged,
    FileChanged,
    ImageMissing,
    PackagesMissing,
    /// `--pull`: the external base may be newer.
    PullAsked,
    /// Built from files not committed then, committed since.
    Committed,
    /// Built for other platforms than asked (their lists, comma-separated).
    PlatformsChanged {
        was: String,
        now: String,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Forced => write!(f, "--force"),
            Reason::NoEarlierRun => write!(f, "no earlier run"),
            Reason::SourcesChanged => write!(f, "sources changed"),
            Reason::ModulesChanged(paths) => write!(
                f,
                "sources changed in {}: those modules, what they need and what needs them",
                paths.join(", ")
            ),
            Reason::OutputMissing(p) => write!(f, "{} is missing", p.display()),
            Reason::OutputChanged(p) => write!(f, "{} changed since Maven built it", p.display()),
            Reason::NotRecorded => write!(f, "no record that this tool built the local image"),
            Reason::ChangedOutside => write!(
                f,
                "the local image is not the one this tool built (changed outside it)"
            ),
            Reason::NotBuilt => write!(f, "not built yet"),
            Reason::NoInputsLabel => write!(f, "built without an inputs label"),
            Reason::InputsChanged => write!(f, "inputs changed"),
            Reason::FileChanged => write!(f, "contents changed"),
            Reason::ImageMissing => write!(f, "image not present"),
            Reason::PackagesMissing => write!(f, "packages missing"),
            Reason::PullAsked => write!(f, "--pull: the base may be newer"),
            Reason::Committed => write!(
                f,
                "built from uncommitted files, committed since: built again with that commit"
            ),
            Reason::PlatformsChanged { was, now } => {
                write!(f, "platforms changed: {was} -> {now}")
            }
        }
    }
}

/// Whether a step has to run, with the inputs digest to record when it succeeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    UpToDate,
    Run { reason: Reason, inputs: String },
}

/// What `--dry-run` says of a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    UpToDate,
    WillRun(Reason),
    /// The decision could not be made (e.g. a parent is not built yet).
    Unknown(String),
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::UpToDate => write!(f, "up to date (inputs unchanged)"),
            Status::WillRun(reason) => write!(f, "will run: {reason}"),
            Status::Unknown(why) => write!(f, "unknown: {why}"),
        }
    }
}
