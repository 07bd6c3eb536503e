//! Short questions to other programs (the engine, git, dpkg): their output captured,
//! bounded in time, interrupted with the run.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use xshell::Shell;

use crate::process::children::{count_start, interrupted, register_until, signal_name};
use crate::process::command::{Command, duct_expression};
use crate::process::logged::TAIL_LINES;

/// How long a short question (to the engine, git, dpkg) may take before it is given up:
/// `FATE_XTASK_QUERY_TIMEOUT` seconds (for slow remote engines), else 10 s. A daemon that
/// accepts connections and never answers would otherwise hang the run for ever.
pub fn query_limit() -> Duration {
    std::env::var("FATE_XTASK_QUERY_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::from_secs(10), Duration::from_secs_f64)
}

/// A question that ended: its exit status, stdout and stderr.
pub struct Answer {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    /// The child's peak resident memory in KiB, when it was watched.
    pub peak_kib: u64,
}

/// Samples a process's peak resident memory (`VmHWM` of `/proc/PID/status`, a high-water
/// mark) every 5 ms until stopped: what it reached up to its last 5 ms.
struct PeakWatch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl PeakWatch {
    fn start(pid: u32) -> PeakWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let status = format!("/proc/{pid}/status");
            let mut peak = 0;
            while !stopped.load(Ordering::Relaxed) {
                if let Some(kib) = std::fs::read_to_string(&status)
                    .ok()
                    .as_deref()
                    .and_then(high_water_kib)
                {
                    peak = peak.max(kib);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        });
        PeakWatch { stop, thread }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

/// `VmHWM` of a `/proc/PID/status` text, in KiB.
pub(super) fn high_water_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs a command with its env and cwd (else the shell's directory), its output captured,
/// killed at `limit` (by the watchdog) or on a signal (it is registered as running).
/// Started after a signal (the cleanup of an interrupted run), it runs to its end or its
/// limit. Its stdout is read here and its stderr goes to an unnamed temporary file: no
/// thread is started for a question.
pub(super) fn ask(
    sh: Option<&Shell>,
    command: &Command,
    limit: Option<Duration>,
) -> Result<Answer> {
    ask_watched(sh, command, limit, false)
}

fn ask_watched(
    sh: Option<&Shell>,
    command: &Command,
    limit: Option<Duration>,
    watch_memory: bool,
) -> Result<Answer> {
    use std::io::Seek;
    count_start();
    let mut stderr = tempfile::tempfile().context("cannot create a temporary file")?;
    let mut cmd = std::process::Command::new(&command.program);
    cmd.args(&command.args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr.try_clone()?);
    match (&command.cwd, sh) {
        (Some(cwd), _) => {
            cmd.current_dir(cwd);
        }
        (None, Some(sh)) => {
            cmd.current_dir(sh.current_dir());
        }
        (None, None) => {}
    }
    for (k, v) in &command.env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run {}", command.program))?;
    let mut stdout_pipe = child.stdout.take().expect("stdout is piped");
    let watch = watch_memory.then(|| PeakWatch::start(child.id()));
    let child = Arc::new(shared_child::SharedChild::new(child)?);
    let cleanup = interrupted();
    let deadline = limit.map(|l| Instant::now() + l);
    let registered = register_until(child.clone(), deadline, cleanup);
    let mut stdout = Vec::new();
    let read = stdout_pipe.read_to_end(&mut stdout);
    let status = child
        .wait()
        .with_context(|| format!("cannot run `{command}`"))?;
    let peak_kib = watch.map_or(0, PeakWatch::finish);
    if registered.expired() {
        bail!(
            "`{command}` did not answer within {} s (FATE_XTASK_QUERY_TIMEOUT sets the limit)",
            limit.unwrap_or_default().as_secs_f64()
        );
    }
    read.with_context(|| format!("cannot read the output of `{command}`"))?;
    if !status.success() && !cleanup && interrupted() {
        bail!("`{command}` was stopped by {}", signal_name());
    }
    let mut err = String::new();
    stderr.rewind()?;
    stderr.read_to_string(&mut err)?;
    Ok(Answer {
        success: status.success(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: err,
        peak_kib,
    })
}

/// Runs a short command and returns its trimmed stdout; failure carries its stderr.
pub fn query(sh: &Shell, command: &Command) -> Result<String> {
    let answer = ask(Some(sh), command, Some(query_limit()))?;
    if !answer.success {
        bail!("`{command}` failed: {}", answer.stderr.trim());
    }
    Ok(answer.stdout.trim().to_string())
}

/// Runs a short command and returns its trimmed stdout whatever its exit status (empty
/// when it could not run or did not answer in time).
pub fn query_stdout(sh: &Shell, command: &Command) -> String {
    ask(Some(sh), command, Some(query_limit()))
        .map(|a| a.stdout.trim().to_string())
        .unwrap_or_default()
}

/// A short question, bounded as [`query`]: whether it succeeded, its stdout and stderr.
pub fn query_status(sh: &Shell, command: &Command) -> Result<(bool, String, String)> {
    let answer = ask(Some(sh), command, Some(query_limit()))?;
    Ok((answer.success, answer.stdout, answer.stderr))
}

/// A short question from any thread (no shell), bounded as [`query`]: its stdout.
pub fn query_anywhere(command: &Command) -> Result<String> {
    let answer = ask(None, command, Some(query_limit()))?;
    if !answer.success {
        bail!("`{command}` failed: {}", answer.stderr.trim());
    }
    Ok(answer.stdout)
}

/// Runs a command to completion (from any thread), however long it takes, stopped by a
/// signal; failure carries the end of its output.
pub fn run_captured(command: &Command) -> Result<String> {
    run_measured(command, false).map(|(out, _)| out)
}

/// The command run to its end whatever its exit status, with its peak resident memory
/// in KiB (sampled every 5 ms): how a test or the bench sees what a run costs.
pub fn measure(command: &Command) -> Result<Answer> {
    ask_watched(None, command, None, true)
}

/// [`run_captured`], and with `watch_memory` the child's peak resident memory in KiB
/// (sampled every 5 ms; 0 unwatched).
pub fn run_measured(command: &Command, watch_memory: bool) -> Result<(String, u64)> {
    let answer = ask_watched(None, command, None, watch_memory)?;
    if !answer.success {
        let text = answer.stdout + &answer.stderr;
        let lines: Vec<&str> = text.lines().collect();
        bail!(
            "`{command}` failed:\n{}",
            lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
        );
    }
    Ok((answer.stdout, answer.peak_kib))
}

/// Runs a command with `input` on its stdin (a secret never put in argv); returns its
/// combined output and whether it succeeded.
pub fn run_with_stdin(command: &Command, input: &str) -> Result<(bool, String)> {
    count_start();
    let out = duct_expression(command)
        .stdin_bytes(input.as_bytes())
        .stderr_to_stdout()
        .stdout_capture()
        .unchecked()
        .run()
        .with_context(|| format!("cannot run {}", command.program))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

/// Runs a command on this process's own stdin, stdout and stderr (another program
/// taking over the command line), stopped by a signal as every child is; its exit code,
/// 128 + the signal's number when a signal ended it.
pub fn run_in_foreground(command: &Command) -> Result<i32> {
    use std::os::unix::process::ExitStatusExt;
    count_start();
    let handle = Arc::new(
        duct_expression(command)
            .unchecked()
            .start()
            .with_context(|| format!("cannot run {}", command.program))?,
    );
    let _registered = register_until(handle.clone(), None, false);
    let status = handle
        .wait()
        .with_context(|| format!("waiting for {}", command.program))?
        .status;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
