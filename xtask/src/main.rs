//! `cargo xtask`: FATE's image build. Parse, resolve the configuration, dispatch.

mod bake;
mod bench;
mod bundle;
mod cli;
mod commands;
mod config;
mod docker;
mod image;
mod imageset;
mod maven;
mod plan;
mod push;
mod run;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use xshell::Shell;

use fate_bundle::{process, ui};

use crate::cli::{BundleAction, Cli, Command};
use crate::imageset::ImageSet;

/// What every command that works on a FATE root gets: its image set and configuration,
/// the output, and the one shell short commands run through.
pub struct Project {
    pub set: ImageSet,
    pub config: config::Config,
    pub ui: ui::Ui,
    pub sh: Shell,
}

fn main() -> ExitCode {
    process::process_started();
    let cli = cli::parse();
    match process::install_signal_handlers().and_then(|()| run(cli)) {
        // A run whose questions a signal cut short may still have printed what it could
        // (a dry run without answers): it did not complete.
        Ok(()) if process::interrupted() => {
            eprintln!("error: stopped by {}", process::signal_name());
            process::signal_exit_code().map_or(ExitCode::FAILURE, ExitCode::from)
        }
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            process::signal_exit_code().map_or(ExitCode::FAILURE, ExitCode::from)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let Cli { global, command } = cli;
    let ui = ui::Ui::new(global.progress, global.quiet, global.verbose);
    let sh = Shell::new().context("cannot start a shell for commands")?;
    match command {
        Command::Images(args) => {
            let overrides = args.config.overrides(&global);
            args.run(&Project::load(&global, &overrides, ui, sh)?)
        }
        Command::Bake(args) => {
            let overrides = args.config.overrides(&global);
            args.run(&Project::load(&global, &overrides, ui, sh)?)
        }
        Command::Doctor(args) => {
            let overrides = args.config.overrides(&global);
            args.run(&Project::load(&global, &overrides, ui, sh)?)
        }
        Command::Push(args) => args.run(&Project::load(&global, &global.overrides(), ui, sh)?),
        Command::Bundle(args) => match args.action {
            Some(BundleAction::Load(load)) => load.run(&ui, &sh),
            None => args.run(&Project::load(&global, &global.overrides(), ui, sh)?),
        },
        Command::Load(args) => args.run(&ui, &sh),
        Command::Keygen(args) => args.run(),
        Command::Completions(args) => {
            use clap::CommandFactory;
            let mut command = Cli::command();
            clap_complete::generate(
                args.shell,
                &mut command,
                "cargo-xtask",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Bench(args) => {
            let root = global
                .fate_root
                .unwrap_or_else(|| workspace_root().join("examples/mini-fate"));
            args.run(&root, &sh)
        }
    }
}

impl Project {
    /// Reads the FATE root's image set and `.env`; shows configuration warnings.
    fn load(
        global: &cli::Global,
        overrides: &config::Overrides,
        ui: ui::Ui,
        sh: Shell,
    ) -> Result<Project> {
        let fate_root = global.fate_root.clone().unwrap_or_else(workspace_root);
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
