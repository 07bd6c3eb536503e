//! `cargo xtask load` (also `bundle load`): loads bundles on this host, checked first
//! (see `fate_bundle::load`), or pushes them into a registry with `--registry` (see
//! `fate_bundle::registry`). Needs no FATE root: only the bundle.

use std::path::PathBuf;

use anyhow::{Result, bail};
use fate_bundle::loader;
use fate_bundle::manifest::MANIFEST;
use fate_bundle::ui::Ui;

use crate::cli;

impl cli::BundleLoad {
    pub fn run(self, ui: &Ui) -> Result<()> {
        let inputs = if self.load.paths.is_empty() {
            vec![default_bundle()?]
        } else {
            self.load.paths.clone()
        };
        loader::run(ui, &self.load, &inputs)
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
