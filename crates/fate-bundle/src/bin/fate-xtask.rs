//! The loader a bundle carries: one static executable that checks a bundle and loads it
//! into this host's Docker engine, or pushes it into a registry with no engine at all.
//! It needs nothing installed: no Rust, no FATE checkout, no Docker for `--registry`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fate_bundle::load::Partial;
use fate_bundle::loader::{self, LoadArgs};
use fate_bundle::manifest::MANIFEST;
use fate_bundle::process;
use fate_bundle::ui::{Progress, Ui};

/// Loads a FATE image bundle (checked first: signature, sizes, sha256) into Docker, or
/// pushes it into a registry.
#[derive(Parser)]
#[command(name = "fate-xtask", version)]
struct Cli {
    /// Only warnings, errors and results.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// How progress is shown.
    #[arg(long, value_enum, default_value_t, global = true)]
    progress: Progress,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check the bundle, then load it into Docker (or push it with --registry).
    Load(LoadArgs),
}

fn main() -> ExitCode {
    process::process_started();
    let cli = Cli::parse();
    let ui = Ui::new(cli.progress, cli.quiet, false);
    let Command::Load(args) = cli.command;
    if args.registry.registry.is_some() {
        match fate_bundle::registry::access::rerun_with_bundled_roots() {
            Ok(Some(code)) => return ExitCode::from(u8::try_from(code).unwrap_or(1)),
            Ok(None) => {}
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    let inputs = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let result = process::install_signal_handlers().and_then(|()| {
        if !inputs[0].join(MANIFEST).is_file() && inputs[0].is_dir() {
            anyhow::bail!(
                "{} holds no {MANIFEST}: run this in the bundle's directory, or name it (./fate-xtask load DIR)",
                inputs[0].display()
            );
        }
        loader::run(&ui, &args, &inputs)
    });
    match result {
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
