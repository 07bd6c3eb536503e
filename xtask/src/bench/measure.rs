//! `cargo xtask` run on a bench copy as a child process, timed, with its run report.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use fate_bundle::process::{self, Command};

use crate::bench::samples::{PAYLOAD_IMAGE, Sample};
use crate::run::report::{self, RunReport};

/// `cargo xtask bundle ...` / `load ...` with the payload as MYSQL_IMAGE.
pub(super) fn xtask_bundle(root: &Path, args: &[&str]) -> Result<Sample> {
    xtask_bundle_with(root, args, PAYLOAD_IMAGE)
}

/// [`xtask_bundle`] with `payload` as MYSQL_IMAGE.
pub(super) fn xtask_bundle_with(root: &Path, args: &[&str], payload: &str) -> Result<Sample> {
    let started = Instant::now();
    let command = xtask_command(root, args)?.env("MYSQL_IMAGE", payload);
    let (_, peak_kib) = process::run_measured(&command, true)?;
    Ok(Sample {
        wall: started.elapsed(),
        peak_kib,
        ..Sample::default()
    })
}

pub(super) fn xtask_command(root: &Path, args: &[&str]) -> Result<Command> {
    let exe = std::env::current_exe()?;
    let mut all = vec![
        "--progress".to_string(),
        "plain".into(),
        "--fate-root".into(),
        root.display().to_string(),
    ];
    all.extend(args.iter().map(ToString::to_string));
    Ok(Command::new(&exe.display().to_string(), all))
}

/// `cargo xtask images` on the copy, as a child process, with its own run report.
pub(super) fn xtask(root: &Path, args: &[&str]) -> Result<Sample> {
    xtask_run(root, &xtask_command(root, args)?)
}

pub(super) fn xtask_run(root: &Path, command: &Command) -> Result<Sample> {
    let started = Instant::now();
    process::run_captured(command)?;
    let wall = started.elapsed();
    let report = RunReport::read(&root.join("target/xtask").join(report::FILE))?;
    let child = Duration::from_secs_f64(report.child_seconds);
    Ok(Sample {
        wall,
        overhead: wall.saturating_sub(child),
        images_built: report.ran("build"),
        bytes: 0,
        processes: report.processes,
        peak_kib: 0,
    })
}
