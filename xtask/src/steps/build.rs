//! An image's build step: what it says of itself (its labelled Dockerfile, its staged
//! context, its `docker build`), its decision (the inputs digest against the image's
//! label and the ID this tool recorded) and its run: stage, build, record the new ID.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::config::BuildOptions;
use crate::docker::argv::{
    self, Builder, ImageInfo, LABEL_INPUTS, LABEL_PLATFORMS, LABEL_REVISION, LABEL_STAGE,
    LocalImages, SOURCE_DATE_EPOCH, VOLATILE_LABELS,
};
use crate::docker::engine;
use crate::facts::revision::{has_uncommitted, last_commit};
use crate::scheduler::Done;
use crate::stage::caches::Caches;
use crate::stage::context_tar;
use crate::stage::dockerfile;
use crate::stage::staging;
use crate::stage::staging::StageOp;
use crate::steps::decision::Decision;
use crate::steps::decision::Reason;
use crate::steps::decision::Status;
use crate::steps::kind::After;
use crate::steps::kind::Preview;
use crate::steps::kind::RunState;
use crate::steps::kind::StepKind;
use crate::steps::records::Recorded;
use fate_bundle::fsx::write_file;
use fate_bundle::process::{self, Command};
use fate_bundle::sbom;
use fate_bundle::ui::StepLine;

/// Stands in for the inputs digest, known once the context is collected.
pub const INPUTS_PLACEHOLDER: &str = "<inputs>";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildStep {
    /// The image set's name of the image.
    pub name: String,
    /// The FATE root, whose repository says whether `sources` hold uncommitted changes.
    pub root: PathBuf,
    /// What the image is made of in the tree (its Dockerfile, the trees it copies, the
    /// Maven modules of its jars): an image built while these held uncommitted changes is
    /// labelled `<commit>-dirty`.
    pub sources: Vec<PathBuf>,
    /// What the image and its ancestors are built from, relative to `root` (see
    /// `ImageSet::input_paths`): its revision label names the last commit that touched
    /// them, so that a build at any later commit gives the same image.
    pub revision_paths: Vec<PathBuf>,
    pub reference: String,
    /// The image set's Dockerfile.
    pub dockerfile: PathBuf,
    /// What is built: that Dockerfile plus one `LABEL` instruction with `labels` (one step;
    /// the legacy builder makes every `--label` flag a step of its own).
    pub staged_dockerfile: PathBuf,
    /// OCI and tool labels; the inputs digest is filled in when known.
    pub labels: Vec<(String, String)>,
    /// The build args passed (those the Dockerfile declares).
    pub build_args: Vec<(String, String)>,
    /// References of this set's images it builds on.
    pub parents: Vec<String>,
    pub context: PathBuf,
    /// The context written as this tar too, for a builder that takes it so (part of
    /// `command`; see `argv::sends_context_as_tar`).
    pub context_tar: Option<PathBuf>,
    pub ops: Vec<StageOp>,
    /// Where the engine writes the new image's ID (part of `command`).
    pub iidfile: PathBuf,
    /// Which builder `command` runs.
    pub builder: Builder,
    /// Builder, cache, pull and platform of this image's build.
    pub options: BuildOptions,
    /// The exact command that runs.
    pub command: Command,
    /// Where its SBOM is written once it is built, and where its parents' are.
    pub sbom: PathBuf,
    pub parent_sboms: Vec<PathBuf>,
    /// What it is built for: `--platform`'s platforms, else the engine's.
    pub platform: String,
    /// The engine's version: its SBOM says what built the image.
    pub engine: String,
}

/// An image: its inputs digest against the label of the local image; also returns the
/// collected context, which the build then stages.
pub fn build_decision(
    b: &BuildStep,
    local_images: &LocalImages,
    recorded: &Recorded,
    force: bool,
    caches: &Caches,
) -> Result<Decision> {
    let mut hasher = Sha256::new();
    hasher.update(
        std::fs::read(&b.dockerfile)
            .with_context(|| format!("cannot read {}", b.dockerfile.display()))?,
    );
    // PREFIX only names where this set's images are tagged: its parents enter below by
    // ID, and another PREFIX is another reference, built anyway. Left out, an image
    // rebuilt under another prefix (`verify` builds under its own) is the same image.
    for (name, value) in b.build_args.iter().filter(|(name, _)| name != "PREFIX") {
        hasher.update(format!("--build-arg {name}={value}\0"));
    }
    // The platform decides the content (the builder, cache and pull do not).
    if !b.options.platforms.is_empty() {
        hasher.update(format!("--platform {}\0", b.options.platforms.join(",")));
    }
    for (k, v) in b
        .labels
        .iter()
        .filter(|(k, _)| !VOLATILE_LABELS.contains(&k.as_str()))
    {
        hasher.update(format!("{k}={v}\0"));
    }
    for parent in &b.parents {
        let id = local_images
            .get(parent)
            .map(|i| i.id.as_str())
            .with_context(|| format!("parent image {parent} is not present"))?;
        hasher.update(id);
    }
    staging::ops_digest(&b.ops, caches.walks.as_ref(), &mut hasher, &caches.digests)?;
    let inputs = hex::encode(hasher.finalize());
    if let Some(reason) = reason_before_inputs(b, local_images, force) {
        return Ok(Decision::Run { reason, inputs });
    }
    let reason = match local_images.get(&b.reference) {
        None => Reason::NotBuilt,
        Some(info) if info.inputs.as_deref() == Some(inputs.as_str()) => {
            match recorded.0.get(&b.reference) {
                // Built from files not committed then, committed since: built again, to
                // carry the commit that holds them.
                Some(id) if *id == info.id && was_dirty(info) && !dirty(b) => Reason::Committed,
                Some(id) if *id == info.id => return Ok(Decision::UpToDate),
                Some(_) => Reason::ChangedOutside,
                None => Reason::NotRecorded,
            }
        }
        Some(info) if info.inputs.is_none() => Reason::NoInputsLabel,
        Some(info) => match (&info.built_for, label_of(b, LABEL_PLATFORMS)) {
            (Some(was), Some(now)) if was != now => Reason::PlatformsChanged {
                was: was.clone(),
                now: now.to_string(),
            },
            _ => Reason::InputsChanged,
        },
    };
    Ok(Decision::Run { reason, inputs })
}

/// Whether the image says it was built from files not committed.
fn was_dirty(info: &ImageInfo) -> bool {
    info.revision.as_deref().is_some_and(|r| r.ends_with(DIRTY))
}

/// Whether the image's files in the tree hold changes not committed (asked of git only
/// for a tree the revision label names a commit of).
fn dirty(b: &BuildStep) -> bool {
    label_of(b, LABEL_REVISION).is_some_and(|r| !r.is_empty())
        && has_uncommitted(&b.root, &b.sources)
}

/// What the revision label of an image built from uncommitted files ends with.
pub const DIRTY: &str = "-dirty";

/// The value of a label the build gives its image.
fn label_of<'a>(b: &'a BuildStep, key: &str) -> Option<&'a str> {
    b.labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Why a build runs whatever its inputs are, in the order [`build_decision`] asks: the
/// one decision a dry run can make before a dependency has run (its jars or parents
/// may come out byte for byte the same, and only then are the inputs known).
fn reason_before_inputs(b: &BuildStep, local_images: &LocalImages, force: bool) -> Option<Reason> {
    if force {
        Some(Reason::Forced)
    } else if b.options.pull {
        // Only a build can tell whether the base it starts from is newer.
        Some(Reason::PullAsked)
    } else if !local_images.contains_key(&b.reference) {
        Some(Reason::NotBuilt)
    } else {
        None
    }
}

impl StepKind for BuildStep {
    fn name(&self) -> &'static str {
        "build"
    }

    fn command(&self) -> Option<&Command> {
        Some(&self.command)
    }

    /// The labelled Dockerfile, the context, then the context's staging operations.
    fn operations(&self) -> Vec<String> {
        // The revision is the last commit of its inputs, asked of git when it builds.
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| match k.as_str() {
                LABEL_REVISION => format!("{k}=<the last commit of its inputs>"),
                _ => format!("{k}={v}"),
            })
            .collect();
        let mut ops = vec![
            format!(
                "{} = {} + LABEL {}",
                self.staged_dockerfile.display(),
                self.dockerfile.display(),
                labels.join(" ")
            ),
            format!("stage {}", self.context.display()),
        ];
        ops.extend(self.ops.iter().map(ToString::to_string));
        if let Some(tar) = &self.context_tar {
            ops.push(format!(
                "tar {} = {} + {} as {}",
                tar.display(),
                self.context.display(),
                self.staged_dockerfile.display(),
                argv::DOCKERFILE_IN_TAR
            ));
        }
        ops
    }

    fn talks_to_engine(&self) -> bool {
        true
    }

    fn preview(&self, preview: &Preview, after: After) -> Status {
        if preview.engine_down {
            return Status::Unknown("the Docker engine is unreachable".into());
        }
        match after {
            // Its sources are still collected (jars come later): staging problems show
            // before anything runs, when the dependency's decision is known. Whether it
            // changes is known once the dependency ran (a rebuilt jar or parent may come
            // out byte for byte the same); why it runs whatever its inputs, is known now.
            Some((id, status)) => {
                let unknown = matches!(status, Status::Unknown(_));
                if !unknown
                    && let Err(e) =
                        staging::collect(&sources_of(&self.ops), preview.caches.walks.as_ref())
                {
                    return Status::Unknown(format!("{e:#}"));
                }
                match reason_before_inputs(self, preview.local_images, preview.force) {
                    Some(reason) => Status::WillRun(reason),
                    None if unknown => {
                        Status::Unknown(format!("it depends on {id}, whose decision is unknown"))
                    }
                    None => Status::Unknown(format!("decided once {id} has run")),
                }
            }
            None => match build_decision(
                self,
                preview.local_images,
                preview.recorded,
                preview.force,
                preview.caches,
            ) {
                Ok(Decision::UpToDate) => Status::UpToDate,
                // What a run would stage is checked as the run would check it.
                Ok(Decision::Run { reason, .. }) => {
                    match staging::collect(&self.ops, preview.caches.walks.as_ref()) {
                        Ok(_) => Status::WillRun(reason),
                        Err(e) => Status::Unknown(format!("{e:#}")),
                    }
                }
                Err(e) => Status::Unknown(format!("{e:#}")),
            },
        }
    }

    fn perform(&self, run: &RunState, log: &Path, line: &StepLine) -> Result<Done<Option<Reason>>> {
        if run.stage_only {
            // Whoever builds these records no inputs digest: `images` rebuilds its own.
            let labels: Vec<(String, String)> = self
                .labels
                .iter()
                .filter(|(k, _)| k != LABEL_INPUTS)
                .cloned()
                .collect();
            // Whoever builds these is sent the directory.
            stage(
                self,
                &staging::collect(&self.ops, run.caches.walks.as_ref())?,
                &labels,
                None,
            )?;
            return Ok(Done::Ran(None));
        }
        let local_images = run.local_images.lock().expect("no worker panics").clone();
        let recorded = run.recorded.lock().expect("no worker panics").clone();
        let decision = build_decision(self, &local_images, &recorded, run.force, run.caches)?;
        // Listed only when needed: a run that builds nothing lists no context.
        let entries = || staging::collect(&self.ops, run.caches.walks.as_ref());
        let Decision::Run { reason, inputs } = decision else {
            // An image whose SBOM is missing, or describes another image (one this root
            // built on another engine), gets its SBOM now: what it was built from is
            // what is staged (its inputs digest says so).
            if let Some(id) = recorded.0.get(&self.reference)
                && !sbom_describes(&self.sbom, id)
            {
                write_sbom(self, &self.labels, &entries()?, id)?;
            }
            return Ok(Done::UpToDate);
        };
        let entries = entries()?;
        let dirty = dirty(self);
        let labels: Vec<(String, String)> = self
            .labels
            .iter()
            .map(|(k, v)| match k.as_str() {
                LABEL_REVISION if dirty => (k.clone(), format!("{v}{DIRTY}")),
                LABEL_REVISION if !v.is_empty() && v != "unknown" => (
                    k.clone(),
                    last_commit(&self.root, &self.revision_paths).unwrap_or_else(|| v.clone()),
                ),
                _ => (k.clone(), v.replace(INPUTS_PLACEHOLDER, &inputs)),
            })
            .collect();
        stage(self, &entries, &labels, self.context_tar.as_deref())?;
        let _ = std::fs::remove_file(&self.iidfile);
        let built = process::run_logged(&self.command, log, line);
        // Sent: the staged context stays for the next staging, its tar is not kept.
        if let Some(tar) = &self.context_tar {
            let _ = std::fs::remove_file(tar);
        }
        built?;
        let id = std::fs::read_to_string(&self.iidfile).with_context(|| {
            format!(
                "docker build wrote no image ID to {}",
                self.iidfile.display()
            )
        })?;
        // The ID the engine lists the image by, which children and later runs compare:
        // on the containerd store that of its manifest, where the iidfile of a build
        // without attestations names its config.
        let id = engine::image_id(&self.reference).unwrap_or_else(|_| id.trim().to_string());
        write_sbom(self, &labels, &entries, &id)?;
        let mut recorded = run.recorded.lock().expect("no worker panics");
        recorded.0.insert(self.reference.clone(), id.clone());
        run.local_images.lock().expect("no worker panics").insert(
            self.reference.clone(),
            ImageInfo {
                id,
                inputs: Some(inputs),
                // Children need only the ID; the summary asks the engine for sizes.
                ..ImageInfo::default()
            },
        );
        Ok(Done::Ran(Some(reason)))
    }
}

/// The SBOM of the image `id` built from `entries` (with its parents' SBOMs, written
/// when they were built).
fn write_sbom(
    b: &BuildStep,
    labels: &[(String, String)],
    entries: &staging::Entries,
    id: &str,
) -> Result<()> {
    let label = |key: &str| {
        labels
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    };
    let maven_jars = b
        .ops
        .iter()
        .filter_map(|op| match op {
            staging::StageOp::Jar { module, .. } => Some(module),
            _ => None,
        })
        .map(|module| {
            let coordinates = sbom::contents::Coordinates {
                group_id: module.group_id.clone(),
                artifact_id: module.artifact_id.clone(),
                version: module.version.clone(),
            };
            module.built_jar().map(|jar| (jar, coordinates))
        })
        .collect::<Result<Vec<_>>>()?;
    let dockerfile = std::fs::read_to_string(&b.dockerfile)
        .with_context(|| format!("cannot read {}", b.dockerfile.display()))?;
    let in_image = dockerfile::context_dirs_in_image(&dockerfile);
    let files = crate::steps::sbom::staged_files(entries, &in_image, &maven_jars)?;
    let parents = b
        .parent_sboms
        .iter()
        .map(|path| sbom::read(path))
        .collect::<Result<Vec<_>>>()
        .context("the SBOM of a parent image is missing: run cargo xtask images")?;
    let subject = sbom::Subject {
        name: &b.name,
        reference: &b.reference,
        id,
        platform: &b.platform,
        revision: label("org.opencontainers.image.revision"),
        source_url: label("org.opencontainers.image.source"),
        created: &humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        built_with: &format!(
            "SOURCE_DATE_EPOCH={SOURCE_DATE_EPOCH}, Docker Engine {}, {}",
            b.engine,
            b.builder.describe()
        ),
    };
    sbom::write(&b.sbom, &sbom::document(&subject, &files, &parents))?;
    fate_bundle::fsx::write_whole(&sbom_id_file(&b.sbom), id.as_bytes())
}

/// Beside each SBOM, the ID of the image it describes: read on every run (a few bytes,
/// not the SBOM) to tell whether the SBOM is that of the image there now.
fn sbom_id_file(sbom: &Path) -> PathBuf {
    sbom.with_extension("id")
}

/// Whether the SBOM at `sbom` is there and describes the image `id`.
fn sbom_describes(sbom: &Path, id: &str) -> bool {
    sbom.is_file() && std::fs::read_to_string(sbom_id_file(sbom)).is_ok_and(|s| s == id)
}

/// The staging operations that read the FATE tree (not Maven's output).
fn sources_of(ops: &[staging::StageOp]) -> Vec<staging::StageOp> {
    ops.iter()
        .filter(|op| !matches!(op, staging::StageOp::Jar { .. }))
        .cloned()
        .collect()
}

/// Writes a build's context and its Dockerfile with `labels`, and both as the tar `tar`.
fn stage(
    b: &BuildStep,
    entries: &staging::Entries,
    labels: &[(String, String)],
    tar: Option<&Path>,
) -> Result<()> {
    staging::materialize(&b.context, entries)?;
    let text = std::fs::read_to_string(&b.dockerfile)
        .with_context(|| format!("cannot read {}", b.dockerfile.display()))?;
    // Only the legacy builder leaves containers, and only for RUN steps: other builds
    // get no extra (legacy: costly) LABEL step.
    let stage = (b.builder == Builder::Legacy && dockerfile::runs_commands(&text))
        .then_some((LABEL_STAGE, "1"));
    let staged = dockerfile::staged(&text, stage, labels);
    write_file(&b.staged_dockerfile, &staged)?;
    match tar {
        Some(tar) => context_tar::write(tar, &b.context, entries, &staged),
        None => Ok(()),
    }
}
