//! The run report `last-run.json`: a machine-readable record of an `images` run (wall
//! time, time covered by child processes, each step's kind, result and duration), read
//! back by the benchmark.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::steps::action::Action;

use crate::plan::Plan;
use crate::scheduler::Outcome;
use crate::scheduler::StepReport;

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
    pub kind: StepKind,
    pub result: StepResult,
    pub seconds: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    Build,
    Maven,
    Other,
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
    pub fn new<T>(plan: &Plan, reports: &[StepReport<T>], wall: f64, child: f64) -> RunReport {
        let steps = plan
            .steps
            .iter()
            .zip(reports)
            .map(|(step, report)| StepRecord {
                id: step.id.clone(),
                kind: match step.action {
                    Action::Build(_) => StepKind::Build,
                    Action::Maven(_) => StepKind::Maven,
                    _ => StepKind::Other,
                },
                result: match report.outcome {
                    Outcome::Ran(_) => StepResult::Ran,
                    Outcome::UpToDate => StepResult::UpToDate,
                    Outcome::Failed(_) => StepResult::Failed,
                    Outcome::NotRun(_) => StepResult::NotRun,
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
    pub fn ran(&self, kind: StepKind) -> usize {
        self.steps
            .iter()
            .filter(|s| s.kind == kind && s.result == StepResult::Ran)
            .count()
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("a report serializes");
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn read(path: &Path) -> Result<RunReport> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a run report", path.display()))
    }
}
