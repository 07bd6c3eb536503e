//! What every kind of step has: what it says of itself (name, command, operations), its
//! one decision (the dry run and the run call the same) and what it does.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::Result;

use crate::docker::argv::LocalImages;
use crate::scheduler::Done;
use crate::stage::caches::Caches;
use crate::steps::decision::Reason;
use crate::steps::decision::Status;
use crate::steps::records::Recorded;
use fate_bundle::process::Command;
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

/// What the steps of one run share, with what it learns of images as it builds them.
pub struct RunState<'a> {
    pub force: bool,
    pub caches: &'a Caches,
    /// Local images by reference: what preflight found, then what this run built.
    pub local_images: Mutex<LocalImages>,
    /// The IDs this tool built, updated as it builds.
    pub recorded: Mutex<Recorded>,
    /// Written when the engine stops answering: the next run removes what the crash left.
    pub engine_lost: PathBuf,
    /// Set before a step starts a container, so the run's containers are swept.
    pub containers_started: Arc<AtomicBool>,
    /// Stage contexts and Dockerfiles but build nothing (for a bake file).
    pub stage_only: bool,
}

/// A kind of step.
pub trait StepKind {
    /// The kind's name in the JSON plan and the run report.
    fn name(&self) -> &'static str;

    /// The process it runs (a Maven step: when all of it runs).
    fn command(&self) -> Option<&Command> {
        None
    }

    /// What it writes or stages, in order.
    fn operations(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether it talks to the engine: its failure may be the engine's (when the engine
    /// no longer answers, the run says so).
    fn talks_to_engine(&self) -> bool {
        false
    }

    /// What the dry run says of it, `after` its first dependency that is not up to date.
    fn preview(&self, preview: &Preview, after: After) -> Status;

    /// Runs it, deciding as [`StepKind::preview`] does (the same decision functions).
    fn perform(&self, run: &RunState, log: &Path, line: &StepLine) -> Result<Done<Option<Reason>>>;
}
