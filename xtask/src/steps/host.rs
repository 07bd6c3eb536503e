//! The small kinds of step a run may need before Maven and the builds: host packages, the
//! generated Maven settings, the Maven cache's seed, and pulling the Maven image.

use std::path::{Path, PathBuf};

use anyhow::Result;
use fate_bundle::process::{self, Command};
use fate_bundle::ui::StepLine;

use crate::maven;
use crate::scheduler::Done;
use crate::steps::decision::{Reason, Status};
use crate::steps::kind::RunState;
use crate::steps::kind::{After, Preview, StepKind};

/// Install the host packages Maven needs (apt).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallPackages(pub Command);

impl StepKind for InstallPackages {
    fn name(&self) -> &'static str {
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
    fn name(&self) -> &'static str {
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
    fn name(&self) -> &'static str {
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
            Done::Ran(Some(Reason::OutputMissing(self.local_repo.clone())))
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
    fn name(&self) -> &'static str {
        "pull"
    }

    fn command(&self) -> Option<&Command> {
        Some(&self.command)
    }

    fn talks_to_engine(&self) -> bool {
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
