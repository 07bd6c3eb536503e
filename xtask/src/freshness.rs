//! Incremental decisions: whether a step must run, and the typed reason why. An image's
//! inputs (Dockerfile, build args, content labels, parent IDs, staged context) and a
//! Maven project's inputs (sources, settings, mode) hash to a digest; an unchanged
//! digest with its outputs present means up to date. Which builder runs the build is
//! not an input: it does not decide the image's content.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::build::BuildStep;
use crate::docker::{ImageInfo, VOLATILE_LABELS};
use crate::maven::{self, MavenStep};
use crate::package::{self, Entries, StageOp};
use crate::plan::{Action, Plan};
use crate::pom::Module;

/// Why a step runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Forced,
    NoEarlierRun,
    SourcesChanged,
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

/// What a successful Maven run leaves: the digest of its inputs and of each output.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct MavenStamp {
    pub inputs: String,
    pub outputs: BTreeMap<PathBuf, String>,
}

impl MavenStamp {
    fn read(path: &Path) -> Option<MavenStamp> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }

    /// Records `inputs` and the digests of the jars Maven built for `outputs`.
    pub fn write(path: &Path, inputs: &str, outputs: &[Module]) -> Result<()> {
        let mut stamp = MavenStamp {
            inputs: inputs.to_string(),
            outputs: BTreeMap::new(),
        };
        for jar in outputs.iter().filter_map(|m| m.built_jar().ok()) {
            let digest = file_sha256(&jar)?;
            stamp.outputs.insert(jar, digest);
        }
        let text = serde_json::to_string_pretty(&stamp).expect("a stamp serializes");
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// sha256 of a file's bytes.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut file, &mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// A Maven project: its sources, settings and mode against the stamp of its last run,
/// and its outputs against what that run wrote.
pub fn maven_decision(m: &MavenStep, force: bool) -> Result<Decision> {
    let mut hasher = Sha256::new();
    hasher.update(&m.salt);
    let ops: Vec<StageOp> = m
        .sources
        .iter()
        .map(|rel| StageOp::Copy {
            from: m.root.join(rel),
            to: rel.display().to_string(),
            exclude: Vec::new(),
        })
        .collect();
    package::digest(&package::collect(&ops)?, &mut hasher)?;
    let inputs = hex::encode(hasher.finalize());
    let reason = match MavenStamp::read(&m.stamp) {
        _ if force => Reason::Forced,
        None => Reason::NoEarlierRun,
        Some(last) if last.inputs != inputs => Reason::SourcesChanged,
        Some(last) => match changed_output(&m.outputs, &last)? {
            Some(reason) => reason,
            None => return Ok(Decision::UpToDate),
        },
    };
    Ok(Decision::Run { reason, inputs })
}

/// The first output that is missing or not what Maven wrote.
fn changed_output(outputs: &[Module], last: &MavenStamp) -> Result<Option<Reason>> {
    for module in outputs {
        let Ok(jar) = module.built_jar() else {
            return Ok(Some(Reason::OutputMissing(module.jar())));
        };
        if last.outputs.get(&jar) != Some(&file_sha256(&jar)?) {
            return Ok(Some(Reason::OutputChanged(jar)));
        }
    }
    Ok(None)
}

/// The IDs of the images this tool built on a FATE root, by reference: only an image
/// with the recorded ID is trusted as built from its sources.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Recorded(pub BTreeMap<String, String>);

impl Recorded {
    pub const FILE: &str = "images.json";

    pub fn read(work: &Path) -> Recorded {
        std::fs::read_to_string(work.join(Self::FILE))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    pub fn write(&self, work: &Path) -> Result<()> {
        let path = work.join(Self::FILE);
        let text = serde_json::to_string_pretty(self).expect("records serialize");
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Refuses local images that are not the ones this tool built, naming each and how
    /// to rebuild it.
    pub fn check<'a>(
        &self,
        images: impl IntoIterator<Item = (&'a str, &'a String, &'a ImageInfo)>,
        problems: &mut crate::problems::Problems,
    ) {
        for (name, reference, info) in images {
            if self.0.get(reference) != Some(&info.id) {
                let short: String = info
                    .id
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect();
                problems.push(format!(
                    "{reference} (image {short}) is not the image `cargo xtask images` built on this FATE root (changed outside the tool, or built elsewhere); rebuild it: cargo xtask images {name}"
                ));
            }
        }
    }
}

/// An image: its inputs digest against the label of the local image; also returns the
/// collected context, which the build then stages.
pub fn build_decision(
    b: &BuildStep,
    images: &BTreeMap<String, ImageInfo>,
    recorded: &Recorded,
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
            match recorded.0.get(&b.reference) {
                Some(id) if *id == info.id => return Ok((Decision::UpToDate, entries)),
                Some(_) => Reason::ChangedOutside,
                None => Reason::NotRecorded,
            }
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
pub fn preview(
    plan: &Plan,
    images: &BTreeMap<String, ImageInfo>,
    recorded: &Recorded,
    force: bool,
) -> Vec<Status> {
    let mut out: Vec<Status> = Vec::new();
    for step in &plan.steps {
        let runs_first = step
            .deps
            .iter()
            .find(|d| matches!(out[**d], Status::WillRun(_) | Status::Unknown(_)));
        let status = match (&step.action, runs_first) {
            // Its sources are still collected (jars come later): staging problems show
            // before anything runs.
            (Action::Build(b), Some(d)) => match package::collect(&sources_of(&b.ops)) {
                Ok(_) => Status::WillRun(Reason::DependencyRuns(plan.steps[*d].id.clone())),
                Err(e) => Status::Unknown(format!("{e:#}")),
            },
            (Action::Maven(_), Some(d)) => {
                Status::WillRun(Reason::DependencyRuns(plan.steps[*d].id.clone()))
            }
            (Action::Maven(m), None) => decided(maven_decision(m, force)),
            (Action::Build(b), None) => {
                decided(build_decision(b, images, recorded, force).map(|(d, _)| d))
            }
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

/// The staging operations that read the FATE tree (not Maven's output).
fn sources_of(ops: &[StageOp]) -> Vec<StageOp> {
    ops.iter()
        .filter(|op| !matches!(op, StageOp::Jar { .. }))
        .cloned()
        .collect()
}

fn decided(decision: Result<Decision>) -> Status {
    match decision {
        Ok(Decision::UpToDate) => Status::UpToDate,
        Ok(Decision::Run { reason, .. }) => Status::WillRun(reason),
        Err(e) => Status::Unknown(format!("{e:#}")),
    }
}
