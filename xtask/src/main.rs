//! `cargo xtask`: parse, resolve the configuration, dispatch.

use std::process::ExitCode;

use anyhow::{Context, Result};
use fate_bundle::load::Partial;
use fate_bundle::{process, ui};
use xshell::Shell;

use xtask::cli::{self, BundleAction, Cli, Command};
use xtask::config::project::Project;

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
        Err(e) if e.is::<Partial>() => {
            eprintln!("error: {e:#}");
            ExitCode::from(Partial::EXIT_CODE)
        }
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
            Some(BundleAction::Load(load)) => load.run(&ui, &global),
            None => args.run(&Project::load(root, &global.overrides(), ui, sh)?),
        },
        Command::Load(args) => args.run(&ui, &global),
        Command::Verify(args) => args.run(&Project::load(root, &global.overrides(), ui, sh)?),
        Command::Keygen(args) => args.run(),
        Command::Completions(args) => {
            args.run();
            Ok(())
        }
        Command::Bench(args) => args.run(root, &sh),
    }
}
