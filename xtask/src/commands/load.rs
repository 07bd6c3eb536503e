//! `cargo xtask load` (also `bundle load`): loads bundles on this host, checked first
//! (see `fate_bundle::load`), or pushes them into a registry with `--registry`: here when
//! this build holds the registry client (the tests' does), else through the loader
//! bundles carry (built here as `bundle` builds it). Needs no FATE root: only the bundle.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Result, bail};
use fate_bundle::loader;
use fate_bundle::manifest::MANIFEST;
use fate_bundle::process::{self, Command};
use fate_bundle::ui::Ui;

use crate::bundle;
use crate::cli;
use crate::config::project::workspace_root;

impl cli::BundleLoad {
    pub fn run(self, ui: &Ui, global: &cli::Global) -> Result<()> {
        if self.load.registry.registry.is_some() && !loader::HAS_REGISTRY {
            return push_with_loader(ui, global);
        }
        let inputs = if self.load.paths.is_empty() {
            vec![default_bundle()?]
        } else {
            self.load.paths.clone()
        };
        loader::run(ui, &self.load, &inputs)
    }
}

/// Runs the loader with this command's own arguments (those after `load`); exits with
/// its code.
fn push_with_loader(ui: &Ui, global: &cli::Global) -> Result<()> {
    let workspace = workspace_root();
    let log = workspace.join("target/loader/build.log");
    let loader = bundle::loader::build(ui, &workspace, &log)?;
    let progress =
        clap::ValueEnum::to_possible_value(&global.progress).expect("every --progress has a name");
    let mut args: Vec<String> = vec![
        "load".into(),
        "--progress".into(),
        progress.get_name().into(),
    ];
    if global.quiet {
        args.push("--quiet".into());
    }
    for arg in arguments_after_load(std::env::args_os()) {
        args.push(arg.into_string().map_err(|arg| {
            anyhow::anyhow!(
                "the argument {} is not UTF-8: rename the file it names",
                arg.display()
            )
        })?);
    }
    let code = process::run_in_foreground(&Command::new(&loader.display().to_string(), args))?;
    std::process::exit(code);
}

/// The arguments after the `load` subcommand (`xtask [OPTIONS] [bundle] load ARGS`).
fn arguments_after_load(argv: impl Iterator<Item = OsString>) -> Vec<OsString> {
    argv.skip(1).skip_while(|a| a != "load").skip(1).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loader_gets_the_arguments_after_load() {
        let argv = |words: &[&str]| words.iter().map(OsString::from).collect::<Vec<_>>();
        for line in [
            &["xtask", "load", "--registry", "r:5000", "b"][..],
            &[
                "xtask",
                "--progress",
                "plain",
                "bundle",
                "load",
                "--registry",
                "r:5000",
                "b",
            ],
        ] {
            assert_eq!(
                arguments_after_load(argv(line).into_iter()),
                argv(&["--registry", "r:5000", "b"])
            );
        }
    }
}
