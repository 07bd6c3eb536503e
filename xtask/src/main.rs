//! `cargo xtask`: FATE's image build. Parse, resolve the configuration, dispatch.

mod bench;
mod bundle;
mod cli;
mod config;
mod docker;
mod dockerfile;
mod doctor;
mod exec;
mod executor;
mod images;
mod imageset;
mod maven;
mod package;
mod plan;
mod pom;
mod preflight;
mod problems;
mod push;
mod reference;
mod ui;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use crate::cli::{Cli, Command};
use crate::imageset::ImageSet;

/// What every command works on: the FATE root, its image set and resolved configuration.
pub struct Project {
    pub set: ImageSet,
    pub config: config::Config,
    pub ui: ui::Ui,
}

static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// When this process started (for the run report's wall time).
pub fn started() -> std::time::Instant {
    *STARTED.get_or_init(std::time::Instant::now)
}

fn main() -> ExitCode {
    started();
    let cli = Cli::parse();
    exec::install_interrupt_handler();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if exec::interrupted() {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let overrides = cli.overrides();
    match cli.command {
        Command::Images(args) => args.run(&Project::load(&cli.global, &overrides)?),
        Command::Doctor(args) => args.run(&Project::load(&cli.global, &overrides)?),
        Command::Push(args) => args.run(&Project::load(&cli.global, &overrides)?),
        Command::Bundle(args) => args.run(&Project::load(&cli.global, &overrides)?),
        Command::Load(args) => args.run(&Project::load(&cli.global, &overrides)?),
        Command::Bench(args) => {
            let root = cli
                .global
                .fate_root
                .unwrap_or_else(|| workspace_root().join("examples/mini-fate"));
            args.run(&root)
        }
    }
}

impl Project {
    /// Reads the FATE root's image set and `.env`; shows configuration warnings.
    fn load(global: &cli::Global, overrides: &config::Overrides) -> Result<Project> {
        let fate_root = global.fate_root.clone().unwrap_or_else(workspace_root);
        let fate_root = std::path::absolute(&fate_root)
            .with_context(|| format!("bad --fate-root {}", fate_root.display()))?;
        let set = ImageSet::load(&fate_root)?;
        let config = config::load(&fate_root, &set, overrides)?;
        let ui = ui::Ui::detect();
        for w in &config.warnings {
            ui.note(&format!("warning: {w}"));
        }
        Ok(Project { set, config, ui })
    }
}

/// The cargo workspace root (the parent of this crate), the default FATE root.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}
