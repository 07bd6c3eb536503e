//! The run report `last-run.json`: a machine-readable record of an `images` run (wall
//! time, time covered by child processes, each step's kind, result, the reason it ran
//! and its duration), read back by the benchmark and the tests.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::scheduler::Outcome;
use crate::scheduler::StepReport;
use crate::steps::decision::Reason;

pub const FILE: &str = "last-run.json";

#[derive(Debug, Serialize, Deserialize)]
pub struct RunReport {
    pub wall_seconds: f64,
    pub child_seconds: f64,
    /// Processes the run started (engine questions, Maven, builds).
    #[serde(default)]
    pub processes: u64,
    pub steps: Vec<StepRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StepRecord {
    pub id: String,
    /// The kind of step, as the JSON plan names it (`build`, `maven`, ...).
    pub kind: String,
    pub result: StepResult,
    /// Why it ran, in the words of the dry run's `reason`; for a step not run, why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub seconds: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepResult {
    Ran,
    UpToDate,
    Failed,
    NotRun,
}

impl RunReport {
    #[must_use]
    pub fn new(
        plan: &Plan,
        reports: &[StepReport<Option<Reason>>],
        wall: f64,
        child: f64,
    ) -> RunReport {
        let steps = plan
            .steps
            .iter()
            .zip(reports)
            .map(|(step, report)| StepRecord {
                id: step.id.clone(),
                kind: step.action.kind_name().to_string(),
                result: match report.outcome {
                    Outcome::Ran(_) => StepResult::Ran,
                    Outcome::UpToDate => StepResult::UpToDate,
                    Outcome::Failed(_) => StepResult::Failed,
                    Outcome::NotRun(_) => StepResult::NotRun,
                },
                reason: match &report.outcome {
                    Outcome::Ran(Some(reason)) => Some(reason.to_string()),
                    Outcome::NotRun(why) => Some(why.to_string()),
                    _ => None,
                },
                seconds: report.elapsed.as_secs_f64(),
            })
            .collect();
        RunReport {
            wall_seconds: wall,
            child_seconds: child,
            processes: fate_bundle::process::processes_started(),
            steps,
        }
    }

    /// How many steps of a kind ran.
    #[must_use]
    pub fn ran(&self, kind: &str) -> usize {
        self.steps
            .iter()
            .filter(|s| s.kind == kind && s.result == StepResult::Ran)
            .count()
    }

    /// Written whole: the bench and scripts read it while another run may write it.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("a report serializes");
        fate_bundle::fsx::write_whole(path, text.as_bytes())
    }

    pub fn read(path: &Path) -> Result<RunReport> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a run report", path.display()))
    }
}
