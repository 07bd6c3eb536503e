//! A Maven project's step: what it says of itself, its decision (the inputs digest of its
//! reactor's modules, the outputs as Maven wrote them) and its run, whole or for the
//! changed modules only.

use std::path::Path;
use std::sync::atomic::Ordering;

use anyhow::Result;

use crate::maven::{self, MavenStep};
use crate::plan::freshness::{self, MavenDecision, MavenStamp, Reason, Status};
use crate::plan::kind::{After, Preview, StepKind};
use crate::run::scheduler::Done;
use crate::run::steps::RunState;
use fate_bundle::process::{self, Command};
use fate_bundle::ui::StepLine;

impl StepKind for MavenStep {
    fn kind(&self) -> &'static str {
        "maven"
    }

    fn command(&self) -> Option<&Command> {
        Some(&self.command)
    }

    fn uses_engine(&self) -> bool {
        self.command.program == "docker"
    }

    fn preview(&self, preview: &Preview, after: After) -> Status {
        let decided = freshness::maven_decision(self, preview.force, preview.caches);
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
        } = freshness::maven_decision(self, run.force, run.caches)?
        else {
            return Ok(Done::UpToDate);
        };
        let command = if only.is_empty() {
            self.command.clone()
        } else {
            for target in maven::clean_first(self, &only) {
                fate_bundle::fsx::remove_if_present(&target)?;
            }
            maven::only_modules(&self.modules_command, &only)
        };
        // A failed or interrupted run must not look up to date.
        let _ = std::fs::remove_file(&self.stamp);
        if self.uses_engine() {
            run.containers_started.store(true, Ordering::SeqCst);
        }
        process::run_logged(&command, log, line)?;
        MavenStamp::write(&self.stamp, &inputs, &self.outputs, &run.caches.digests)?;
        Ok(Done::Ran(Some(reason)))
    }
}
