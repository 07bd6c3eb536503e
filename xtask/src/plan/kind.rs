//! One type per kind of step, with its three sides together: what it says of itself
//! (kind, command, operations), what it decides (the dry run and the run call the same
//! decision) and what it does. Adding a kind is one type and one `impl StepKind`; the
//! plan's [`super::Action`] only picks the type.
//!
//! The small kinds live here; Maven's in `maven/step_kind.rs`, an image build's in
//! `image/step_kind.rs`.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::docker::argv::LocalImages;
use crate::maven;
use crate::plan::Plan;
use crate::plan::freshness::{Reason, Recorded, Status};
use crate::run::caches::Caches;
use crate::run::scheduler::Done;
use crate::run::steps::RunState;
use fate_bundle::process::{self, Command};
use fate_bundle::ui::StepLine;

/// What the dry run knows when it decides.
pub struct Preview<'a> {
    pub local_images: &'a LocalImages,
    pub caches: &'a Caches,
    pub recorded: &'a Recorded,
    pub force: bool,
    /// No engine answered: whether an image is up to date is unknown.
    pub engine_down: bool,
}

/// The first dependency of a step that is not up to date, as the dry run decided it.
pub type After<'a> = Option<(&'a str, &'a Status)>;

/// For `--dry-run`: what each step would do, without doing it, each kind deciding as its
/// run would (see [`StepKind::preview`]).
pub fn preview(plan: &Plan, preview: &Preview) -> Vec<Status> {
    let mut out: Vec<Status> = Vec::new();
    for step in &plan.steps {
        let status = {
            let after = step
                .deps
                .iter()
                .find(|d| !matches!(out[**d], Status::UpToDate))
                .map(|d| (plan.steps[*d].id.as_str(), &out[*d]));
            step.action.step_kind().preview(preview, after)
        };
        out.push(status);
    }
    out
}

/// A kind of step.
pub trait StepKind {
    /// Its name in the JSON plan and the run report.
    fn kind(&self) -> &'static str;

    /// The process it runs (a Maven step: when all of it runs).
    fn command(&self) -> Option<&Command> {
        None
    }

    /// What it writes or stages, in order.
    fn operations(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether it talks to the engine: its failure may be the engine's.
    fn uses_engine(&self) -> bool {
        false
    }

    /// What the dry run says of it, `after` its first dependency that is not up to date.
    fn preview(&self, preview: &Preview, after: After) -> Status;

    /// Runs it, deciding as [`StepKind::preview`] does (the same decision functions).
    fn perform(&self, run: &RunState, log: &Path, line: &StepLine) -> Result<Done<Option<Reason>>>;
}

/// Install the host packages Maven needs (apt).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallPackages(pub Command);

impl StepKind for InstallPackages {
    fn kind(&self) -> &'static str {
        "install-packages"
    }

    fn command(&self) -> Option<&Command> {
        Some(&self.0)
    }

    fn preview(&self, _: &Preview, _: After) -> Status {
        Status::WillRun(Reason::PackagesMissing)
    }

    fn perform(&self, _: &RunState, log: &Path, line: &StepLine) -> Result<Done<Option<Reason>>> {
        process::run_logged(&self.0, log, line)?;
        Ok(Done::Ran(Some(Reason::PackagesMissing)))
    }
}

/// Write a generated file (the Maven settings), unless it already holds its contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteFile {
    pub path: PathBuf,
    pub contents: String,
}

impl WriteFile {
    /// The one decision: up to date when the file already holds the contents.
    fn is_current(&self) -> bool {
        std::fs::read_to_string(&self.path).is_ok_and(|c| c == self.contents)
    }
}

impl StepKind for WriteFile {
    fn kind(&self) -> &'static str {
        "write-file"
    }

    fn operations(&self) -> Vec<String> {
        vec![format!("write {}", self.path.display())]
    }

    fn preview(&self, _: &Preview, _: After) -> Status {
        if self.is_current() {
            Status::UpToDate
        } else {
            Status::WillRun(Reason::FileChanged)
        }
    }

    fn perform(&self, _: &RunState, _: &Path, _: &StepLine) -> Result<Done<Option<Reason>>> {
        if self.is_current() {
            return Ok(Done::UpToDate);
        }
        fate_bundle::fsx::write_file(&self.path, &self.contents)?;
        Ok(Done::Ran(Some(Reason::FileChanged)))
    }
}

/// Give a local Maven repository the `plexus-utils:1.1` that Debian's repository lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedMavenRepo {
    pub from_repo: PathBuf,
    pub local_repo: PathBuf,
}

impl StepKind for SeedMavenRepo {
    fn kind(&self) -> &'static str {
        "seed-maven-repo"
    }

    fn operations(&self) -> Vec<String> {
        vec![format!(
            "link plexus-utils 1.1 in {} to the 3.x jar of {}",
            self.local_repo.display(),
            self.from_repo.display()
        )]
    }

    fn preview(&self, _: &Preview, _: After) -> Status {
        if maven::is_seeded(&self.local_repo) {
            Status::UpToDate
        } else {
            Status::WillRun(Reason::OutputMissing(self.local_repo.clone()))
        }
    }

    fn perform(&self, _: &RunState, _: &Path, _: &StepLine) -> Result<Done<Option<Reason>>> {
        Ok(if self.ensure()? {
            Done::Ran(None)
        } else {
            Done::UpToDate
        })
    }
}

impl SeedMavenRepo {
    /// Seeds the local repository unless it is seeded already; whether it did.
    pub fn ensure(&self) -> Result<bool> {
        if maven::is_seeded(&self.local_repo) {
            return Ok(false);
        }
        maven::seed_plexus_utils(&self.from_repo, &self.local_repo)?;
        Ok(true)
    }
}

/// Pull an image the run needs but does not build (the Maven image).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pull {
    pub command: Command,
    /// What to do when it cannot be pulled.
    pub hint: String,
}

impl StepKind for Pull {
    fn kind(&self) -> &'static str {
        "pull"
    }

    fn command(&self) -> Option<&Command> {
        Some(&self.command)
    }

    fn uses_engine(&self) -> bool {
        true
    }

    fn preview(&self, _: &Preview, _: After) -> Status {
        Status::WillRun(Reason::ImageMissing)
    }

    fn perform(&self, _: &RunState, log: &Path, line: &StepLine) -> Result<Done<Option<Reason>>> {
        process::run_logged(&self.command, log, line).map_err(|e| e.context(self.hint.clone()))?;
        Ok(Done::Ran(Some(Reason::ImageMissing)))
    }
}
