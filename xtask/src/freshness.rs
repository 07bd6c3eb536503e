//! Incremental decisions: whether a step must run, and the typed reason why. An image's
//! inputs (Dockerfile, build args, content labels, parent IDs, staged context) and a
//! Maven project's inputs (sources, settings, mode) hash to a digest; an unchanged
//! digest with its outputs present means up to date. Which builder runs the build is
//! not an input: it does not decide the image's content.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::build::BuildStep;
use crate::docker::{ImageInfo, VOLATILE_LABELS};
use crate::maven::{self, MavenStep};
use crate::package::{self, Entries, StageOp};
use crate::plan::{Action, Plan};

/// Why a step runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Forced,
    NoEarlierRun,
    SourcesChanged,
    OutputMissing(PathBuf),
    NotBuilt,
    NoInputsLabel,
    InputsChanged,
    FileChanged,
    ImageMissing,
    PackagesMissing,
    /// A step it depends on runs first (dry-run only).
    DependencyRuns(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Forced => write!(f, "--force"),
            Reason::NoEarlierRun => write!(f, "no earlier run"),
            Reason::SourcesChanged => write!(f, "sources changed"),
            Reason::OutputMissing(p) => write!(f, "{} is missing", p.display()),
            Reason::NotBuilt => write!(f, "not built yet"),
            Reason::NoInputsLabel => write!(f, "built without an inputs label"),
            Reason::InputsChanged => write!(f, "inputs changed"),
            Reason::FileChanged => write!(f, "contents changed"),
            Reason::ImageMissing => write!(f, "image not present"),
            Reason::PackagesMissing => write!(f, "packages missing"),
            Reason::DependencyRuns(id) => write!(f, "{id} runs first"),
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
            Status::Unknown(why) => write!(f, "will run: {why}"),
        }
    }
}

/// A Maven project: its sources, settings and mode against the stamp of its last run.
pub fn maven_decision(m: &MavenStep, force: bool) -> Result<Decision> {
    let mut hasher = Sha256::new();
    hasher.update(&m.salt);
    for source in &m.sources {
        let op = StageOp::Copy {
            from: source.clone(),
            to: ".".into(),
            exclude: Vec::new(),
        };
        package::digest(&package::collect(&[op])?, &mut hasher)?;
    }
    let inputs = hex::encode(hasher.finalize());
    let last = std::fs::read_to_string(&m.stamp).unwrap_or_default();
    let reason = if force {
        Reason::Forced
    } else if last.is_empty() {
        Reason::NoEarlierRun
    } else if last.trim() != inputs {
        Reason::SourcesChanged
    } else if let Some(missing) = m.outputs.iter().find(|o| !o.is_file()) {
        Reason::OutputMissing(missing.clone())
    } else {
        return Ok(Decision::UpToDate);
    };
    Ok(Decision::Run { reason, inputs })
}

/// An image: its inputs digest against the label of the local image; also returns the
/// collected context, which the build then stages.
pub fn build_decision(
    b: &BuildStep,
    images: &BTreeMap<String, ImageInfo>,
    force: bool,
) -> Result<(Decision, Entries)> {
    let entries = package::collect(&b.ops)?;
    let mut hasher = Sha256::new();
    hasher.update(
        std::fs::read(&b.dockerfile)
            .with_context(|| format!("cannot read {}", b.dockerfile.display()))?,
    );
    for (name, value) in &b.build_args {
        hasher.update(format!("--build-arg {name}={value}\0"));
    }
    for (k, v) in b
        .labels
        .iter()
        .filter(|(k, _)| !VOLATILE_LABELS.contains(&k.as_str()))
    {
        hasher.update(format!("{k}={v}\0"));
    }
    for parent in &b.parents {
        let id = images
            .get(parent)
            .map(|i| i.id.as_str())
            .with_context(|| format!("parent image {parent} is not present"))?;
        hasher.update(id);
    }
    package::digest(&entries, &mut hasher)?;
    let inputs = hex::encode(hasher.finalize());
    let reason = match images.get(&b.reference) {
        _ if force => Reason::Forced,
        None => Reason::NotBuilt,
        Some(info) if info.inputs.as_deref() == Some(inputs.as_str()) => {
            return Ok((Decision::UpToDate, entries));
        }
        Some(info) if info.inputs.is_none() => Reason::NoInputsLabel,
        Some(_) => Reason::InputsChanged,
    };
    Ok((Decision::Run { reason, inputs }, entries))
}

/// A generated file is up to date when it already holds `contents`.
pub fn file_is_current(path: &Path, contents: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|c| c == contents)
}

/// For `--dry-run`: what each step would do, without doing it. A step whose dependency
/// runs runs too; everything else is decided as the real run would.
pub fn preview(plan: &Plan, images: &BTreeMap<String, ImageInfo>, force: bool) -> Vec<Status> {
    let mut out: Vec<Status> = Vec::new();
    for step in &plan.steps {
        let runs_first = step
            .deps
            .iter()
            .find(|d| matches!(out[**d], Status::WillRun(_) | Status::Unknown(_)));
        let status = match (&step.action, runs_first) {
            (Action::Maven(_) | Action::Build(_), Some(d)) => {
                Status::WillRun(Reason::DependencyRuns(plan.steps[*d].id.clone()))
            }
            (Action::Maven(m), None) => decided(maven_decision(m, force)),
            (Action::Build(b), None) => decided(build_decision(b, images, force).map(|(d, _)| d)),
            (Action::WriteFile { path, contents }, _) => {
                if file_is_current(path, contents) {
                    Status::UpToDate
                } else {
                    Status::WillRun(Reason::FileChanged)
                }
            }
            (Action::SeedMavenRepo { local_repo, .. }, _) => {
                if maven::is_seeded(local_repo) {
                    Status::UpToDate
                } else {
                    Status::WillRun(Reason::OutputMissing(local_repo.clone()))
                }
            }
            (Action::InstallPackages(_), _) => Status::WillRun(Reason::PackagesMissing),
            (Action::Pull { .. }, _) => Status::WillRun(Reason::ImageMissing),
        };
        out.push(status);
    }
    out
}

fn decided(decision: Result<Decision>) -> Status {
    match decision {
        Ok(Decision::UpToDate) => Status::UpToDate,
        Ok(Decision::Run { reason, .. }) => Status::WillRun(reason),
        Err(e) => Status::Unknown(format!("{e:#}")),
    }
}
