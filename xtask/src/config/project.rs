//! A FATE root opened for a command: its image set and configuration, the output, and
//! the one shell short commands run through.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fate_bundle::ui;
use xshell::Shell;

use crate::config;
use crate::imageset::ImageSet;

/// What every command that works on a FATE root gets: its image set and configuration,
/// the output, and the one shell short commands run through.
pub struct Project {
    pub set: ImageSet,
    pub config: config::Config,
    pub ui: ui::Ui,
    pub sh: Shell,
}

impl Project {
    /// Reads the image set and `.env` of `fate_root` (by default this workspace); shows
    /// configuration warnings.
    pub fn load(
        fate_root: Option<&Path>,
        overrides: &config::Overrides,
        ui: ui::Ui,
        sh: Shell,
    ) -> Result<Project> {
        let fate_root = fate_root.map_or_else(workspace_root, Path::to_path_buf);
        let fate_root = std::path::absolute(&fate_root)
            .with_context(|| format!("bad --fate-root {}", fate_root.display()))?;
        Project::open(&fate_root, overrides, ui, sh)
    }

    /// The project at `fate_root` (absolute): what every command and the bench load.
    pub fn open(
        fate_root: &Path,
        overrides: &config::Overrides,
        ui: ui::Ui,
        sh: Shell,
    ) -> Result<Project> {
        let set = ImageSet::load(fate_root)?;
        let config = config::load(fate_root, &set, overrides)?;
        for w in &config.warnings {
            ui.note(&format!("warning: {w}"));
        }
        Ok(Project {
            set,
            config,
            ui,
            sh,
        })
    }
}

/// The cargo workspace root (the parent of this crate), the default FATE root.
#[must_use]
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}
