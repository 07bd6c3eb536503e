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

use crate::docker::argv::{ImageInfo, LocalImages, VOLATILE_LABELS};
use crate::image::staging::{self, StageOp};
use crate::image::step::BuildStep;
use crate::maven::MavenStep;
use crate::maven::pom::Module;
use crate::run::caches::Caches;
use crate::run::digest_cache::DigestCache;

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

/// What a successful Maven run leaves: the digests of its inputs, overall and per module,
/// and of each output.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct MavenStamp {
    pub inputs: String,
    /// What concerns every module: Maven mode and image, settings, files used by path.
    #[serde(default)]
    pub context: String,
    /// Module path (relative to the reactor) -> digest of its pom and `src/`.
    #[serde(default)]
    pub modules: BTreeMap<String, String>,
    pub outputs: BTreeMap<PathBuf, String>,
}

/// The digests of a Maven project's inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MavenInputs {
    pub overall: String,
    pub context: String,
    pub modules: BTreeMap<String, String>,
}

/// Whether a Maven project must run, and for which modules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MavenDecision {
    UpToDate,
    Run {
        reason: Reason,
        inputs: MavenInputs,
        /// Modules to build (with what they need and what needs them); empty: all.
        only: Vec<String>,
    },
}

impl MavenStamp {
    fn read(path: &Path) -> Option<MavenStamp> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }

    /// Records `inputs` and the digests of the jars Maven built for `outputs`.
    pub fn write(
        path: &Path,
        inputs: &MavenInputs,
        outputs: &[Module],
        digests: &DigestCache,
    ) -> Result<()> {
        let mut stamp = MavenStamp {
            inputs: inputs.overall.clone(),
            context: inputs.context.clone(),
            modules: inputs.modules.clone(),
            outputs: BTreeMap::new(),
        };
        for jar in outputs.iter().filter_map(|m| m.built_jar().ok()) {
            let digest = digests.file_sha256(&jar)?;
            stamp.outputs.insert(jar, digest);
        }
        let text = serde_json::to_string_pretty(&stamp).expect("a stamp serializes");
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// The digests of a Maven project's inputs: each module's pom and `src/`, and a context
/// of settings, mode and the files its poms use by path (by content: another project's
/// jar that Maven rebuilt byte for byte changes nothing here).
fn maven_inputs(m: &MavenStep, caches: &Caches) -> Result<MavenInputs> {
    let mut modules = BTreeMap::new();
    for module in &m.modules {
        let ops: Vec<StageOp> = module
            .inputs
            .iter()
            .map(|rel| StageOp::Copy {
                from: m.root.join(rel),
                to: rel.display().to_string(),
                exclude: Vec::new(),
            })
            .collect();
        let mut hasher = Sha256::new();
        let entries = staging::collect(&ops, caches.walks.as_ref())?;
        staging::digest(&entries, &mut hasher, &caches.digests)?;
        modules.insert(module.path.clone(), hex::encode(hasher.finalize()));
    }
    let mut hasher = Sha256::new();
    hasher.update(&m.salt);
    for used in m.modules.iter().flat_map(|module| &module.uses) {
        hasher.update(used.as_os_str().as_encoded_bytes());
        hasher.update(
            caches
                .digests
                .file_sha256(used)
                .unwrap_or_else(|_| "missing".into()),
        );
    }
    let context = hex::encode(hasher.finalize());
    let mut hasher = Sha256::new();
    hasher.update(&context);
    for (path, digest) in &modules {
        hasher.update(format!("{path}\0{digest}\0"));
    }
    Ok(MavenInputs {
        overall: hex::encode(hasher.finalize()),
        context,
        modules,
    })
}

/// A Maven project against the stamp of its last run: its inputs module by module, then
/// its outputs against what that run wrote. A change confined to leaf modules builds
/// only those (and what they need and what needs them).
pub fn maven_decision(m: &MavenStep, force: bool, caches: &Caches) -> Result<MavenDecision> {
    let inputs = maven_inputs(m, caches)?;
    let (reason, only) = match MavenStamp::read(&m.stamp) {
        _ if force => (Reason::Forced, Vec::new()),
        None => (Reason::NoEarlierRun, Vec::new()),
        Some(last) if last.inputs == inputs.overall => {
            match changed_output(&m.outputs, &last, &caches.digests)? {
                None => return Ok(MavenDecision::UpToDate),
                Some((reason, module)) => {
                    let path = module
                        .dir
                        .strip_prefix(&m.project)
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    let only = if path.is_empty() {
                        Vec::new()
                    } else {
                        vec![path]
                    };
                    (reason, only)
                }
            }
        }
        Some(last) => match changed_modules(m, &inputs, &last) {
            Some(paths) => (Reason::ModulesChanged(paths.clone()), paths),
            None => (Reason::SourcesChanged, Vec::new()),
        },
    };
    Ok(MavenDecision::Run {
        reason,
        inputs,
        only,
    })
}

/// The leaf modules whose inputs changed, when nothing else did.
fn changed_modules(m: &MavenStep, now: &MavenInputs, last: &MavenStamp) -> Option<Vec<String>> {
    let same_modules = last.modules.len() == now.modules.len()
        && last.modules.keys().all(|k| now.modules.contains_key(k));
    if last.context != now.context || !same_modules {
        return None;
    }
    let changed: Vec<String> = now
        .modules
        .iter()
        .filter(|(path, digest)| last.modules.get(*path) != Some(*digest))
        .map(|(path, _)| path.clone())
        .collect();
    let aggregator = m
        .modules
        .iter()
        .any(|module| module.aggregates && changed.contains(&module.path));
    (!changed.is_empty() && !aggregator).then_some(changed)
}

/// The first output that is missing or not what Maven wrote, with its module.
fn changed_output<'a>(
    outputs: &'a [Module],
    last: &MavenStamp,
    digests: &DigestCache,
) -> Result<Option<(Reason, &'a Module)>> {
    for module in outputs {
        let Ok(jar) = module.built_jar() else {
            return Ok(Some((Reason::OutputMissing(module.jar()), module)));
        };
        if last.outputs.get(&jar) != Some(&digests.file_sha256(&jar)?) {
            return Ok(Some((Reason::OutputChanged(jar), module)));
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
        problems: &mut fate_bundle::ui::problems::Problems,
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
    for (name, value) in &b.build_args {
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
    let reason = match local_images.get(&b.reference) {
        _ if force => Reason::Forced,
        // Only a build can tell whether the base it starts from is newer.
        _ if b.options.pull => Reason::PullAsked,
        None => Reason::NotBuilt,
        Some(info) if info.inputs.as_deref() == Some(inputs.as_str()) => {
            match recorded.0.get(&b.reference) {
                Some(id) if *id == info.id => return Ok(Decision::UpToDate),
                Some(_) => Reason::ChangedOutside,
                None => Reason::NotRecorded,
            }
        }
        Some(info) if info.inputs.is_none() => Reason::NoInputsLabel,
        Some(_) => Reason::InputsChanged,
    };
    Ok(Decision::Run { reason, inputs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fate_bundle::process::Command;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A reactor `arch` with modules `a` and `b` (jars built), and its Maven step.
    fn reactor(root: &Path) -> MavenStep {
        let arch = root.join("arch");
        write(
            &arch.join("pom.xml"),
            "<project><artifactId>arch</artifactId><version>1</version><modules><module>a</module><module>b</module></modules></project>",
        );
        for m in ["a", "b"] {
            write(
                &arch.join(m).join("pom.xml"),
                &format!(
                    "<project><parent><version>1</version></parent><artifactId>{m}</artifactId></project>"
                ),
            );
            write(&arch.join(m).join("src/main/java/X.java"), "class X {}");
            write(&arch.join(m).join(format!("target/{m}-1.jar")), m);
        }
        MavenStep {
            command: Command::new("mvn", ["clean", "package"]),
            modules_command: Command::new("mvn", ["package"]),
            root: root.to_path_buf(),
            project: arch.clone(),
            modules: crate::maven::pom::reactor_modules(&arch, root).unwrap(),
            salt: "host".into(),
            stamp: root.join("arch.inputs"),
            outputs: crate::maven::pom::reactor(&arch).unwrap()[1..].to_vec(),
        }
    }

    fn run_of(m: &MavenStep) -> (Reason, Vec<String>) {
        match maven_decision(m, false, &Caches::none()).unwrap() {
            MavenDecision::Run { reason, only, .. } => (reason, only),
            MavenDecision::UpToDate => panic!("up to date"),
        }
    }

    fn record(m: &MavenStep) {
        let MavenDecision::Run { inputs, .. } = maven_decision(m, true, &Caches::none()).unwrap()
        else {
            panic!()
        };
        MavenStamp::write(&m.stamp, &inputs, &m.outputs, &DigestCache::none()).unwrap();
        assert_eq!(
            maven_decision(m, false, &Caches::none()).unwrap(),
            MavenDecision::UpToDate
        );
    }

    #[test]
    fn a_leaf_module_change_builds_that_module_and_a_root_change_all() {
        let tmp = tempfile::tempdir().unwrap();
        let m = reactor(tmp.path());
        assert_eq!(run_of(&m), (Reason::NoEarlierRun, vec![]));
        record(&m);

        write(
            &m.project.join("b/src/main/java/X.java"),
            "class X { int y; }",
        );
        assert_eq!(
            run_of(&m),
            (Reason::ModulesChanged(vec!["b".into()]), vec!["b".into()])
        );
        record(&m);

        // A jar overwritten by hand: its module alone is built again.
        write(&m.project.join("a/target/a-1.jar"), "NOT A JAR");
        let (reason, only) = run_of(&m);
        assert!(matches!(reason, Reason::OutputChanged(_)), "{reason}");
        assert_eq!(only, ["a"]);
        write(&m.project.join("a/target/a-1.jar"), "a");

        // The aggregator's pom concerns every module.
        write(
            &m.project.join("pom.xml"),
            "<project><artifactId>arch</artifactId><version>1</version><modules><module>a</module><module>b</module></modules><!-- x --></project>",
        );
        assert_eq!(run_of(&m), (Reason::SourcesChanged, vec![]));
    }

    #[test]
    fn only_modules_limits_the_reactor() {
        let c = crate::maven::only_modules(
            &Command::new("mvn", ["package"]),
            &["a".into(), "b/c".into()],
        );
        assert_eq!(c.to_string(), "mvn package -pl a,b/c -am -amd");
    }
}
