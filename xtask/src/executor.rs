//! Carries out a plan: steps in order, each with a progress line and a log; the first
//! failure stops the run unless keep-going, and dependents of a failure never run.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::plan::{Action, Plan};
use crate::ui::Ui;
use crate::{exec, maven, package};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed(String),
    /// Not run: a step it depends on failed, or the run stopped first.
    Skipped(String),
}

#[derive(Clone, Debug)]
pub struct StepReport {
    pub id: String,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

pub struct Executor {
    pub ui: Ui,
    pub log_dir: PathBuf,
    pub keep_going: bool,
}

impl Executor {
    /// Runs every step; returns one report per step, in plan order.
    pub fn run(&self, plan: &Plan) -> Vec<StepReport> {
        let mut reports: Vec<StepReport> = Vec::with_capacity(plan.steps.len());
        let mut stop = false;
        for step in &plan.steps {
            let blocked = step
                .deps
                .iter()
                .find(|d| reports[**d].outcome != Outcome::Done)
                .map(|d| plan.steps[*d].id.clone());
            let skip_reason = if exec::interrupted() {
                Some("interrupted".to_string())
            } else if stop {
                Some("an earlier step failed".to_string())
            } else {
                blocked.map(|b| format!("{b} did not succeed"))
            };
            if let Some(why) = skip_reason {
                reports.push(StepReport {
                    id: step.id.clone(),
                    outcome: Outcome::Skipped(why),
                    elapsed: Duration::ZERO,
                });
                continue;
            }
            let line = self.ui.start(&step.title);
            let log = self.log_dir.join(format!("{}.log", step.id));
            let result = self.perform(&step.action, &log, &line);
            let elapsed = line.elapsed();
            let outcome = match result {
                Ok(()) => {
                    line.finish("done", "");
                    Outcome::Done
                }
                Err(e) => {
                    line.finish("FAILED", "");
                    let message = if exec::interrupted() {
                        "interrupted".to_string()
                    } else {
                        format!("{e:#}")
                    };
                    self.ui.note(&format!("step {} failed: {message}", step.id));
                    stop = !self.keep_going;
                    Outcome::Failed(message)
                }
            };
            reports.push(StepReport {
                id: step.id.clone(),
                outcome,
                elapsed,
            });
        }
        reports
    }

    fn perform(
        &self,
        action: &Action,
        log: &std::path::Path,
        line: &crate::ui::StepLine,
    ) -> Result<()> {
        match action {
            Action::Run(command) | Action::Build { command, .. } => {
                exec::run_logged(command, log, line)
            }
            Action::WriteFile { path, contents } => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                Ok(std::fs::write(path, contents)?)
            }
            Action::SeedMavenRepo {
                from_repo,
                local_repo,
            } => maven::seed_plexus_utils(from_repo, local_repo),
            Action::Stage { dest, ops } => package::stage(dest, ops),
        }
    }
}
