//! `cargo xtask`: FATE's image build. Parse, resolve the configuration, dispatch.
//!
//! Layers, bottom to top (a module imports only from layers below its own; the bundle
//! and what a host needs to read it are the `fate_bundle` crate, below them all):
//! 1. `imageset`: the declared image set (`docker/images.toml`), as data.
//! 2. `config`: `.env` and flags resolved into one configuration; a FATE root opened.
//! 3. `docker`, `scheduler`: build command lines and engine questions; running a graph of jobs.
//! 4. `maven`: POMs, Maven's command lines and settings.
//! 5. `stage`: build contexts staged, tree walks, file digests, Dockerfile rules.
//! 6. `facts`: what the machine and the tree say, gathered once (preflight).
//! 7. `steps`: each kind of step: what it says, its one decision, what it does.
//! 8. `plan`: the pure planner, config + image set + facts -> steps.
//! 9. `run`: a plan run (or previewed), its report and the FATE root's lock.
//! 10. `bake`, `bundle`, `push`: a bake file; what a bundle carries; pushing images.
//! 11. `bench`: the benchmark beside the old way and `docker buildx bake`.
//! 12. `cli`: every flag, and the small methods that turn flags into decisions.
//! 13. `commands`: one file per command, each starting at its entry point.

mod bake;
mod bench;
mod bundle;
mod cli;
mod commands;
mod config;
mod docker;
mod facts;
mod imageset;
mod maven;
mod plan;
mod push;
mod run;
mod scheduler;
mod stage;
mod steps;

use std::process::ExitCode;

use anyhow::{Context, Result};
use fate_bundle::{process, ui};
use xshell::Shell;

use crate::cli::{BundleAction, Cli, Command};
use crate::config::project::Project;

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
    let root = global.fate_root.as_deref();
    match command {
        Command::Images(args) => {
            let overrides = args.config.overrides(&global);
            args.run(&Project::load(root, &overrides, ui, sh)?)
        }
        Command::Bake(args) => {
            let overrides = args.config.overrides(&global);
            args.run(&Project::load(root, &overrides, ui, sh)?)
        }
        Command::Doctor(args) => {
            let overrides = args.config.overrides(&global);
            args.run(&Project::load(root, &overrides, ui, sh)?)
        }
        Command::Push(args) => args.run(&Project::load(root, &global.overrides(), ui, sh)?),
        Command::Bundle(args) => match args.action {
            Some(BundleAction::Load(load)) => load.run(&ui, &sh),
            None => args.run(&Project::load(root, &global.overrides(), ui, sh)?),
        },
        Command::Load(args) => args.run(&ui, &sh),
        Command::Keygen(args) => args.run(),
        Command::Completions(args) => {
            args.run();
            Ok(())
        }
        Command::Bench(args) => args.run(root, &sh),
    }
}
