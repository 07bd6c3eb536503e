//! What `images` and `bake` share, once: preflight, the remembered file digests and the
//! shared walks of source trees, the plan of the selection, then its steps run by the
//! scheduler with the run's state, the digests saved, the run's containers swept, and an
//! interrupted run's staged contexts removed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Result, bail};

use crate::config::project::Project;
use crate::docker::argv::LABEL_TOOL;
use crate::docker::engine::{self, ContainerSweep};
use crate::facts::preflight;
use crate::facts::preflight::Facts;
use crate::facts::preflight::Purpose;
use crate::plan::{self, Options, Plan};
use crate::scheduler::Done;
use crate::scheduler::Executor;
use crate::scheduler::Jobs;
use crate::scheduler::Outcome;
use crate::scheduler::StepReport;
use crate::stage::caches::Caches;
use crate::steps::decision::Reason;
use crate::steps::kind::{RunState, StepKind};
use crate::steps::records::Recorded;
use fate_bundle::process;
use fate_bundle::ui::StepLine;

/// A FATE root's plan for a selection, ready to run.
pub struct Pipeline<'a> {
    pub project: &'a Project,
    pub work: PathBuf,
    pub facts: Facts,
    pub plan: Plan,
    /// The file digests and shared walks of this run.
    pub caches: Caches,
}

/// How the steps run.
pub struct RunOptions {
    pub force: bool,
    pub keep_going: bool,
    pub jobs: Jobs,
    /// Stage contexts and Dockerfiles, build nothing (for a bake file).
    pub stage_only: bool,
}

/// What a run of the steps gives back.
pub struct Ran<'a> {
    pub reports: Vec<StepReport<Option<Reason>>>,
    pub state: RunState<'a>,
}

impl<'a> Pipeline<'a> {
    /// Preflight, then the plan; `adjust` sees the facts first (e.g. `bake` builds every
    /// parent: its builders start with nothing).
    pub fn prepare(
        project: &'a Project,
        options: &Options,
        purpose: Purpose,
        adjust: impl FnOnce(&mut Facts) -> Result<()>,
    ) -> Result<Pipeline<'a>> {
        let Project {
            set, config, sh, ..
        } = project;
        let work = config.work_dir();
        // While the engine answers: the remembered digests are read, and the trees the
        // last run walked are walked again.
        let (caches, facts) = std::thread::scope(|scope| {
            let caches = scope.spawn(|| {
                let caches = Caches::for_run(&work);
                caches.prefetch();
                caches
            });
            let facts = preflight::check(sh, config, set, options, purpose);
            (caches.join().expect("no walk panics"), facts)
        });
        let mut facts = facts?;
        adjust(&mut facts)?;
        let plan = plan::images(config, set, &facts, options)?;
        Ok(Pipeline {
            project,
            work,
            facts,
            plan,
            caches,
        })
    }

    /// Runs every step (after removing what an engine crash left), then saves the file
    /// digests; the run's containers are swept when it ends.
    pub fn run(&self, recorded: Recorded, how: &RunOptions) -> Result<Ran<'_>> {
        let executor = Executor {
            ui: self.project.ui.clone(),
            log_dir: self.work.join("logs"),
            keep_going: how.keep_going,
            jobs: how.jobs,
        };
        let engine_lost = self.work.join("engine-lost");
        if !how.stage_only {
            engine::sweep_after_crash(&engine_lost)?;
        }
        let sweep = ContainerSweep::new(format!("{LABEL_TOOL}.run={}", self.facts.run_id));
        let state = RunState {
            force: how.force,
            caches: &self.caches,
            local_images: Mutex::new(self.facts.local_images.clone()),
            recorded: Mutex::new(recorded),
            engine_lost,
            containers_started: sweep.trigger(),
            stage_only: how.stage_only,
        };
        let reports = executor.run(&self.plan.steps, |step, log, line| {
            perform(&state, step.action.step_kind(), log, line)
        });
        self.caches.save()?;
        Ok(Ran { reports, state })
    }

    /// An interrupted run's staged contexts are not to be trusted: removed, and said.
    pub fn refuse_if_interrupted(&self, what_else: &str) -> Result<()> {
        if process::interrupted() {
            let _ = std::fs::remove_dir_all(self.work.join("contexts"));
            bail!(
                "interrupted ({}); staged contexts removed{what_else}",
                process::signal_name()
            );
        }
        Ok(())
    }

    /// The steps that failed, with their messages.
    pub fn failures<'r>(
        &self,
        reports: &'r [StepReport<Option<Reason>>],
    ) -> Vec<(&str, &'r String)> {
        self.plan
            .steps
            .iter()
            .zip(reports)
            .filter_map(|(s, r)| match &r.outcome {
                Outcome::Failed(message) => Some((s.id.as_str(), message)),
                _ => None,
            })
            .collect()
    }
}

/// Performs one step by its kind; a failure of a step that uses the engine is named
/// as the engine's when the engine no longer answers.
fn perform(
    state: &RunState,
    kind: &dyn StepKind,
    log: &Path,
    line: &StepLine,
) -> Result<Done<Option<Reason>>> {
    match kind.perform(state, log, line) {
        Err(e) if kind.talks_to_engine() && !process::interrupted() && !engine::answers() => {
            let endpoint = engine::endpoint();
            let _ = std::fs::write(&state.engine_lost, &endpoint);
            Err(e.context(format!(
                "the Docker engine stopped answering during this step ({endpoint}): start it again (systemctl start docker, or dockerd) and rerun"
            )))
        }
        result => result,
    }
}
