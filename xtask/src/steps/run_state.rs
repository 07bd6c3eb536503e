//! The state of one run that its steps share (what it learns of images as it builds
//! them, the IDs it records) and the one place a step is performed: each kind's own
//! [`StepKind::perform`], with a failure of a step that uses the engine named as the
//! engine's when the engine no longer answers.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::Result;

use crate::docker::argv::LocalImages;
use crate::docker::engine;
use crate::plan::Step;
use crate::scheduler::Done;
use crate::stage::caches::Caches;
use crate::steps::decision::Reason;
use crate::steps::records::Recorded;
use fate_bundle::process;
use fate_bundle::ui::StepLine;

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

impl RunState<'_> {
    pub fn perform(
        &self,
        step: &Step,
        log: &Path,
        line: &StepLine,
    ) -> Result<Done<Option<Reason>>> {
        let kind = step.action.step_kind();
        match kind.perform(self, log, line) {
            Err(e) if kind.uses_engine() && !process::interrupted() && !engine::answers() => {
                let endpoint = engine::endpoint();
                let _ = std::fs::write(&self.engine_lost, &endpoint);
                Err(e.context(format!(
                    "the Docker engine stopped answering during this step ({endpoint}): start it again (systemctl start docker, or dockerd) and rerun"
                )))
            }
            result => result,
        }
    }
}
