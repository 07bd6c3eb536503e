//! `cargo xtask load` (also `bundle load`): loads bundles on this host, checked first
//! (see `fate_bundle::load`). Needs no FATE root: only the bundle.

use std::path::PathBuf;

use anyhow::{Result, bail};
use fate_bundle::load;
use fate_bundle::manifest::MANIFEST;
use fate_bundle::ui::Ui;
use xshell::Shell;

use crate::cli;

impl cli::BundleLoad {
    pub fn run(self, ui: &Ui, sh: &Shell) -> Result<()> {
        let inputs = if self.paths.is_empty() {
            vec![default_bundle()?]
        } else {
            self.paths
        };
        let key = load::verify_key(self.verify_key);
        load::load(ui, sh, &inputs, key.as_deref(), self.allow_partial)
    }
}

/// A bundle in the working directory, else the one `cargo xtask bundle` writes here.
fn default_bundle() -> Result<PathBuf> {
    let here = PathBuf::from(".");
    if here.join(MANIFEST).is_file() {
        return Ok(here);
    }
    let built = crate::config::project::workspace_root().join("target/xtask/bundle");
    if built.join(MANIFEST).is_file() {
        return Ok(built);
    }
    bail!(
        "no bundle here: name its directory (the one holding {MANIFEST}), e.g. cargo xtask load /media/fate-bundle"
    )
}
