//! The only module that spawns processes: short queries (captured), long steps
//! (streamed into a log file, latest line shown), and cleanup of what they start.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use xshell::Shell;

use crate::plan::Command;
use crate::ui::StepLine;

/// How many lines of a failed step's log are shown.
pub const TAIL_LINES: usize = 30;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// When each long child ran: the time not covered by these is the tool's own overhead.
static CHILD_SPANS: Mutex<Vec<(Instant, Instant)>> = Mutex::new(Vec::new());

/// Wall time during which at least one step's child process was running.
pub fn child_time() -> std::time::Duration {
    let mut spans = CHILD_SPANS.lock().map(|s| s.clone()).unwrap_or_default();
    spans.sort();
    let mut total = std::time::Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    for (start, end) in spans {
        match current {
            Some((s, e)) if start <= e => current = Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                current = Some((start, end));
            }
            None => current = Some((start, end)),
        }
    }
    if let Some((s, e)) = current {
        total += e - s;
    }
    total
}

/// Ctrl-C reaches the children too (same process group); we only note it, let the
/// children stop, clean up, and exit with 130.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Runs a short command and returns its trimmed stdout; failure carries its stderr.
pub fn query(program: &str, args: &[&str]) -> Result<String> {
    let sh = Shell::new()?;
    let output = sh
        .cmd(program)
        .args(args)
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !output.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Runs a short command and returns its trimmed stdout whatever its exit status.
pub fn query_stdout(program: &str, args: &[&str]) -> String {
    let Ok(sh) = Shell::new() else {
        return String::new();
    };
    sh.cmd(program)
        .args(args)
        .quiet()
        .ignore_status()
        .ignore_stderr()
        .read()
        .unwrap_or_default()
}

/// A command as a duct expression: stdin empty, stderr into stdout, exit status not
/// turned into an error (callers report it with the output).
fn expression(command: &Command) -> duct::Expression {
    let mut expr = duct::cmd(&command.program, &command.args)
        .stderr_to_stdout()
        .stdin_null()
        .unchecked();
    if let Some(cwd) = &command.cwd {
        expr = expr.dir(cwd);
    }
    for (k, v) in &command.env {
        expr = expr.env(k, v);
    }
    expr
}

/// Runs a command to completion with its output captured; failure carries the output's end.
pub fn run_captured(command: &Command) -> Result<String> {
    let out = expression(command)
        .stdout_capture()
        .run()
        .with_context(|| format!("cannot run `{command}`"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let lines: Vec<&str> = text.lines().collect();
        bail!(
            "`{command}` failed:\n{}",
            lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
        );
    }
    Ok(text)
}

/// Whether a short command succeeds (its output discarded).
pub fn succeeds(program: &str, args: &[&str]) -> bool {
    query(program, args).is_ok()
}

/// Runs a step's command with stdout+stderr into `log`, the latest line shown on `line`.
/// On failure the error holds the log's last lines and its path.
pub fn run_logged(command: &Command, log: &Path, line: &StepLine) -> Result<()> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the log directory {}", dir.display()))?;
    }
    let mut file =
        File::create(log).with_context(|| format!("cannot create the log {}", log.display()))?;
    writeln!(file, "$ {command}")?;
    let child_started = Instant::now();
    let reader = expression(command).reader().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!(
                "`{}` was not found on PATH: install it or add it to PATH",
                command.program
            )
        } else {
            anyhow::Error::new(e).context(format!("cannot start {}", command.program))
        }
    })?;
    let mut lines = BufReader::new(&reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if lines.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        file.write_all(&buf)?;
        line.progress(&String::from_utf8_lossy(&buf));
    }
    let status = reader
        .try_wait()?
        .map(|o| o.status)
        .context("the child's exit status was lost")?;
    file.flush()?;
    if let Ok(mut spans) = CHILD_SPANS.lock() {
        spans.push((child_started, Instant::now()));
    }
    if status.success() {
        return Ok(());
    }
    let code = status
        .code()
        .map(|c| format!("exit code {c}"))
        .unwrap_or_else(|| "a signal".into());
    bail!(
        "`{command}` failed with {code}\n--- last lines of {} ---\n{}",
        log.display(),
        tail(log, TAIL_LINES)
    )
}

/// Starts a child whose stdout is read as a stream (its stderr goes to `log`). Reading
/// fails if the child exits non-zero.
pub fn stream_stdout(program: &str, args: &[&str], log: &Path) -> Result<duct::ReaderHandle> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    duct::cmd(program, args)
        .stdin_null()
        .stderr_path(log)
        .reader()
        .with_context(|| format!("cannot start {program}"))
}

/// Runs a child with `input` streamed into its stdin, its output into `log`.
pub fn pipe_into(command: &Command, mut input: impl std::io::Read, log: &Path) -> Result<()> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let (reader, mut writer) = os_pipe::pipe()?;
    let handle = duct::cmd(&command.program, &command.args)
        .stdin_file(reader)
        .stderr_to_stdout()
        .stdout_path(log)
        .unchecked()
        .start()
        .with_context(|| format!("cannot start {}", command.program))?;
    let copied = std::io::copy(&mut input, &mut writer);
    drop(writer);
    let status = handle.wait()?.status;
    if !status.success() {
        bail!(
            "`{command}` failed\n--- last lines of {} ---\n{}",
            log.display(),
            tail(log, TAIL_LINES)
        );
    }
    copied.with_context(|| format!("streaming into `{command}` failed"))?;
    Ok(())
}

/// `docker login --password-stdin`: the password goes to the child's stdin only, never
/// into argv, logs or messages.
pub fn docker_login(registry: &str, user: &str, password: &str) -> Result<()> {
    let mut args = vec!["login", "--username", user, "--password-stdin"];
    if !registry.is_empty() {
        args.push(registry);
    }
    let out = duct::cmd("docker", &args)
        .stdin_bytes(format!("{password}\n"))
        .stderr_to_stdout()
        .stdout_capture()
        .unchecked()
        .run()
        .context("cannot run docker login")?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stdout).replace(password, "***");
    let host = if registry.is_empty() {
        "Docker Hub"
    } else {
        registry
    };
    bail!(
        "docker login to {host} as {user} failed: {}; check the user and password (the password is read from stdin or --password-env VAR)",
        said.trim()
    )
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Removes containers carrying a label when dropped, so a failed or interrupted step
/// leaves none behind (killing the docker client does not stop its container).
pub struct ContainerSweep {
    label: String,
}

impl ContainerSweep {
    pub fn new(label: String) -> ContainerSweep {
        ContainerSweep { label }
    }
}

impl Drop for ContainerSweep {
    fn drop(&mut self) {
        let filter = format!("label={}", self.label);
        if let Ok(ids) = query("docker", &["ps", "-aq", "--filter", &filter]) {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = query("docker", &args);
            }
        }
    }
}
