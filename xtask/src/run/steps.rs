//! What each step of an `images` plan does when it runs: install packages, write the
//! Maven settings, seed the Maven cache, pull, run Maven, stage and build an image.
//! Maven projects and images whose inputs are unchanged are left as they are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use crate::image::step::{BuildStep, INPUTS_PLACEHOLDER};
use crate::maven::{self, MavenStep};
use crate::plan::freshness::{self, Decision, MavenDecision, MavenStamp, Reason, Recorded};
use crate::plan::{Action, Step};
use crate::process::docker_argv::{Builder, ImageInfo, LABEL_INPUTS, LABEL_STAGE};
use crate::run::scheduler::Done;
use crate::ui::StepLine;
use crate::{image::dockerfile, image::staging, process, process::engine};

/// The step bodies of one run, with what it learns of images as it builds them.
pub struct ImageSteps {
    pub force: bool,
    /// Local images by reference: what preflight found, then what this run built.
    pub images: Mutex<BTreeMap<String, ImageInfo>>,
    /// The IDs this tool built, updated as it builds.
    pub recorded: Mutex<Recorded>,
    /// Written when the engine stops answering: the next run removes what the crash left.
    pub engine_lost: PathBuf,
    /// Set before a step starts a container, so the run's containers are swept.
    pub containers_started: Arc<AtomicBool>,
    /// Stage contexts and Dockerfiles but build nothing (for a bake file).
    pub stage_only: bool,
}

impl ImageSteps {
    pub fn perform(
        &self,
        step: &Step,
        log: &Path,
        line: &StepLine,
    ) -> Result<Done<Option<Reason>>> {
        let result = self.run_action(step, log, line);
        let uses_engine = matches!(
            step.action,
            Action::Build(_) | Action::Pull { .. } | Action::Maven(_)
        );
        match result {
            Err(e) if uses_engine && !process::interrupted() && !engine::answers() => {
                let endpoint = engine::endpoint();
                let _ = std::fs::write(&self.engine_lost, &endpoint);
                Err(e.context(format!(
                    "the Docker engine stopped answering during this step ({endpoint}): start it again (systemctl start docker, or dockerd) and rerun"
                )))
            }
            result => result,
        }
    }

    fn run_action(&self, step: &Step, log: &Path, line: &StepLine) -> Result<Done<Option<Reason>>> {
        match &step.action {
            Action::InstallPackages(command) => {
                process::run_logged(command, log, line)?;
                Ok(Done::Ran(Some(Reason::PackagesMissing)))
            }
            Action::WriteFile { path, contents } => {
                if freshness::file_is_current(path, contents) {
                    return Ok(Done::UpToDate);
                }
                write_file(path, contents)?;
                Ok(Done::Ran(Some(Reason::FileChanged)))
            }
            Action::SeedMavenRepo {
                from_repo,
                local_repo,
            } => {
                if maven::is_seeded(local_repo) {
                    return Ok(Done::UpToDate);
                }
                maven::seed_plexus_utils(from_repo, local_repo)?;
                Ok(Done::Ran(None))
            }
            Action::Maven(m) => self.maven(m, log, line),
            Action::Build(b) => self.build(b, log, line),
            Action::Pull { command, hint } => {
                process::run_logged(command, log, line).map_err(|e| e.context(hint.clone()))?;
                Ok(Done::Ran(Some(Reason::ImageMissing)))
            }
        }
    }

    fn maven(&self, m: &MavenStep, log: &Path, line: &StepLine) -> Result<Done<Option<Reason>>> {
        let MavenDecision::Run {
            reason,
            inputs,
            only,
        } = freshness::maven_decision(m, self.force)?
        else {
            return Ok(Done::UpToDate);
        };
        let command = if only.is_empty() {
            m.command.clone()
        } else {
            for target in maven::clean_first(m, &only) {
                staging::remove_if_present(&target)?;
            }
            maven::only_modules(&m.modules_command, &only)
        };
        // A failed or interrupted run must not look up to date.
        let _ = std::fs::remove_file(&m.stamp);
        if m.command.program == "docker" {
            self.containers_started.store(true, Ordering::SeqCst);
        }
        process::run_logged(&command, log, line)?;
        MavenStamp::write(&m.stamp, &inputs, &m.outputs)?;
        Ok(Done::Ran(Some(reason)))
    }

    fn build(&self, b: &BuildStep, log: &Path, line: &StepLine) -> Result<Done<Option<Reason>>> {
        if self.stage_only {
            // Whoever builds these records no inputs digest: `images` rebuilds its own.
            let labels: Vec<(String, String)> = b
                .labels
                .iter()
                .filter(|(k, _)| k != LABEL_INPUTS)
                .cloned()
                .collect();
            stage(b, &staging::collect(&b.ops)?, &labels)?;
            return Ok(Done::Ran(None));
        }
        let snapshot = self.images.lock().expect("no worker panics").clone();
        let recorded = self.recorded.lock().expect("no worker panics").clone();
        let (decision, entries) = freshness::build_decision(b, &snapshot, &recorded, self.force)?;
        let Decision::Run { reason, inputs } = decision else {
            return Ok(Done::UpToDate);
        };
        let labels: Vec<(String, String)> = b
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.replace(INPUTS_PLACEHOLDER, &inputs)))
            .collect();
        stage(b, &entries, &labels)?;
        let _ = std::fs::remove_file(&b.iidfile);
        process::run_logged(&b.command, log, line)?;
        let id = std::fs::read_to_string(&b.iidfile).with_context(|| {
            format!("docker build wrote no image ID to {}", b.iidfile.display())
        })?;
        let id = id.trim().to_string();
        let mut recorded = self.recorded.lock().expect("no worker panics");
        recorded.0.insert(b.reference.clone(), id.clone());
        self.images.lock().expect("no worker panics").insert(
            b.reference.clone(),
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

/// Writes a build's context and its Dockerfile with `labels`.
fn stage(b: &BuildStep, entries: &staging::Entries, labels: &[(String, String)]) -> Result<()> {
    staging::materialize(&b.context, entries)?;
    let text = std::fs::read_to_string(&b.dockerfile)
        .with_context(|| format!("cannot read {}", b.dockerfile.display()))?;
    // Only the legacy builder leaves containers, and only for RUN steps: other builds
    // get no extra (legacy: costly) LABEL step.
    let stage = (b.builder == Builder::Legacy && dockerfile::runs_commands(&text))
        .then_some((LABEL_STAGE, "1"));
    write_file(
        &b.staged_dockerfile,
        &dockerfile::staged(&text, stage, labels),
    )
}

pub fn write_file(path: &Path, contents: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}
