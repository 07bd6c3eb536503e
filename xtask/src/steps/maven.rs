//! A Maven project's step: what it says of itself, its decision (the inputs digest of its
//! reactor's modules, the outputs as Maven wrote them) and its run, whole or for the
//! changed modules only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::maven;
use crate::maven::pom::{Module, ReactorModule};
use crate::stage::caches::Caches;
use crate::stage::digest_cache::DigestCache;
use crate::stage::staging::{self, StageOp};

use crate::scheduler::Done;
use crate::steps::decision::Reason;
use crate::steps::decision::Status;
use crate::steps::kind::After;
use crate::steps::kind::Preview;
use crate::steps::kind::RunState;
use crate::steps::kind::StepKind;
use fate_bundle::process::{self, Command};
use fate_bundle::ui::StepLine;

/// `mvn clean package` of one project, skipped while its inputs are unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MavenStep {
    pub command: Command,
    /// The same run for some modules only ([`Scope::Modules`]; [`only_modules`] names them).
    pub modules_command: Command,
    /// The FATE root the modules' inputs are relative to.
    pub root: PathBuf,
    /// The reactor's directory.
    pub project: PathBuf,
    /// What decides whether to run, module by module: the poms and `src/` trees of the
    /// project's reactor, and the files its poms use by path (other projects' jars).
    pub modules: Vec<ReactorModule>,
    /// Everything else the result depends on (Maven mode and image, settings).
    pub salt: String,
    /// Where the inputs digest of the last successful run is kept.
    pub stamp: PathBuf,
    /// Modules whose jars the plan needs: all must be as Maven built them to skip the run.
    pub outputs: Vec<Module>,
}

/// The `target/` directories to remove before [`only_modules`] runs: the changed modules'
/// and those of every module that depends on them (what `clean` would have removed).
#[must_use]
pub fn clean_first(step: &MavenStep, changed: &[String]) -> Vec<PathBuf> {
    crate::maven::pom::with_dependents(&step.modules, changed)
        .iter()
        .map(|path| step.project.join(path).join("target"))
        .collect()
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
        // Whole or not at all: a stamp half written must not say what ran.
        fate_bundle::fsx::write_whole(path, text.as_bytes())
    }
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

impl StepKind for MavenStep {
    fn name(&self) -> &'static str {
        "maven"
    }

    fn command(&self) -> Option<&Command> {
        Some(&self.command)
    }

    fn talks_to_engine(&self) -> bool {
        self.command.program == "docker"
    }

    fn preview(&self, preview: &Preview, after: After) -> Status {
        let decided = maven_decision(self, preview.force, preview.caches);
        match (after, decided) {
            (Some((id, Status::Unknown(_))), _) => {
                Status::Unknown(format!("it depends on {id}, whose decision is unknown"))
            }
            (_, Err(e)) => Status::Unknown(format!("{e:#}")),
            (_, Ok(MavenDecision::Run { reason, .. })) => Status::WillRun(reason),
            // A dependency that runs may leave this one's inputs as they were.
            (Some((id, _)), Ok(MavenDecision::UpToDate)) => {
                Status::Unknown(format!("decided once {id} has run"))
            }
            (None, Ok(MavenDecision::UpToDate)) => Status::UpToDate,
        }
    }

    fn perform(&self, run: &RunState, log: &Path, line: &StepLine) -> Result<Done<Option<Reason>>> {
        let MavenDecision::Run {
            reason,
            inputs,
            only,
        } = maven_decision(self, run.force, run.caches)?
        else {
            return Ok(Done::UpToDate);
        };
        let command = if only.is_empty() {
            self.command.clone()
        } else {
            for target in clean_first(self, &only) {
                fate_bundle::fsx::remove_if_present(&target)?;
            }
            maven::only_modules(&self.modules_command, &only)
        };
        // A failed or interrupted run must not look up to date.
        let _ = std::fs::remove_file(&self.stamp);
        if self.talks_to_engine() {
            run.containers_started.store(true, Ordering::SeqCst);
        }
        process::run_logged(&command, log, line)?;
        maven::jar::settle_reactor(&self.project, &self.modules)?;
        MavenStamp::write(&self.stamp, &inputs, &self.outputs, &run.caches.digests)?;
        Ok(Done::Ran(Some(reason)))
    }
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
