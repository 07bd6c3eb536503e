//! Which kind a step is: the plan's steps each hold one [`Action`], whose type says,
//! decides and does the rest.

use fate_bundle::process::Command;

use crate::steps::build::BuildStep;
use crate::steps::host::{InstallPackages, Pull, SeedMavenRepo, WriteFile};
use crate::steps::kind::StepKind;
use crate::steps::maven::MavenStep;

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a plan holds a few dozen steps: boxing the large ones would save nothing"
)]
pub enum Action {
    InstallPackages(InstallPackages),
    WriteFile(WriteFile),
    SeedMavenRepo(SeedMavenRepo),
    /// `mvn clean package` of one project, skipped while its inputs are unchanged.
    Maven(MavenStep),
    /// Stage one image's context and `docker build` it, skipped while its inputs are unchanged.
    Build(BuildStep),
    Pull(Pull),
}

impl Action {
    /// The type of this kind of step, which says, decides and does the rest.
    #[must_use]
    pub fn step_kind(&self) -> &dyn StepKind {
        match self {
            Action::InstallPackages(k) => k,
            Action::WriteFile(k) => k,
            Action::SeedMavenRepo(k) => k,
            Action::Maven(k) => k,
            Action::Build(k) => k,
            Action::Pull(k) => k,
        }
    }

    /// The kind's name, as the JSON plan and the run report give it.
    #[must_use]
    pub fn kind_name(&self) -> &'static str {
        self.step_kind().name()
    }

    /// The process the step runs (a Maven step: when all of it runs).
    #[must_use]
    pub fn command(&self) -> Option<&Command> {
        self.step_kind().command()
    }

    /// What the step writes or stages, in order; a build's staging operations come after
    /// its Dockerfile and context lines.
    #[must_use]
    pub fn operations(&self) -> Vec<String> {
        self.step_kind().operations()
    }
}
