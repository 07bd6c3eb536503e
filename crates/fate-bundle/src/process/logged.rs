//! Long children: a step's command with its output in a log (the last line shown as it
//! runs), a child's stdout read as a stream, a child fed through a pipe.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::process::children::{CHILD_SPANS, Registered, count_start, register};
use crate::process::command::{Command, duct_expression, expression};
use crate::process::private;
use crate::ui::StepLine;

/// How many lines of a failed step's log are shown.
pub const TAIL_LINES: usize = 30;

fn create_log(log: &Path) -> Result<File> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the log directory {}", dir.display()))?;
    }
    private::create_file(log).with_context(|| format!("cannot create the log {}", log.display()))
}

/// Runs a step's command with stdout+stderr into `log`, the latest line shown on `line`.
/// On failure the error holds the log's last lines and its path.
pub fn run_logged(command: &Command, log: &Path, line: &StepLine) -> Result<()> {
    run_logged_within(command, log, line, None)
}

/// The error of a child that ran out of its time bound.
#[derive(Debug)]
pub struct TimedOut(pub Duration);

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gave no result within {} s and was stopped",
            self.0.as_secs()
        )
    }
}

impl std::error::Error for TimedOut {}

/// [`run_logged`], with the child killed when it runs longer than `limit`.
pub fn run_logged_within(
    command: &Command,
    log: &Path,
    line: &StepLine,
    limit: Option<Duration>,
) -> Result<()> {
    let mut file = create_log(log)?;
    let log_error = |e: std::io::Error| {
        anyhow::Error::new(e).context(format!(
            "cannot write the log {} (is the disk full?)",
            log.display()
        ))
    };
    writeln!(file, "$ {command}").map_err(log_error)?;
    line.command(&command.to_string());
    let child_started = Instant::now();
    let reader = Arc::new(expression(command).reader().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!(
                "`{}` was not found on PATH: install it or add it to PATH",
                command.program
            )
        } else {
            anyhow::Error::new(e).context(format!("cannot start {}", command.program))
        }
    })?);
    let _registered = register(reader.clone());
    let (finished, timed_out) = kill_after(&reader, limit);
    let mut lines = BufReader::new(&*reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if lines.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buf);
        if command.quiet_lines.iter().any(|q| q == text.trim()) {
            continue;
        }
        file.write_all(&buf).map_err(log_error)?;
        line.progress(&String::from_utf8_lossy(&buf));
    }
    finished.store(true, Ordering::SeqCst);
    let status = reader
        .try_wait()?
        .map(|o| o.status)
        .context("the child's exit status was lost")?;
    file.flush().map_err(log_error)?;
    if timed_out.load(Ordering::SeqCst) {
        let limit = limit.unwrap_or_default();
        return Err(anyhow::Error::new(TimedOut(limit)).context(format!("`{command}`")));
    }
    if let Ok(mut spans) = CHILD_SPANS.lock() {
        spans.push((child_started, Instant::now()));
    }
    if status.success() {
        return Ok(());
    }
    let code = status
        .code()
        .map_or_else(|| "a signal".into(), |c| format!("exit code {c}"));
    bail!(
        "`{command}` failed with {code}\n--- last lines of {} ---\n{}",
        log.display(),
        tail(log, TAIL_LINES)
    )
}

/// Kills the child once `limit` has passed, unless the first flag returned is set first
/// (it finished); the second says whether it was killed.
fn kill_after(
    reader: &Arc<duct::ReaderHandle>,
    limit: Option<Duration>,
) -> (Arc<AtomicBool>, Arc<AtomicBool>) {
    let finished = Arc::new(AtomicBool::new(false));
    let timed_out = Arc::new(AtomicBool::new(false));
    if let Some(limit) = limit {
        let (reader, finished, timed_out) = (reader.clone(), finished.clone(), timed_out.clone());
        std::thread::spawn(move || {
            let until = Instant::now() + limit;
            while !finished.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            if !finished.load(Ordering::SeqCst) {
                timed_out.store(true, Ordering::SeqCst);
                let _ = reader.kill();
            }
        });
    }
    (finished, timed_out)
}

/// A child's stdout, read as a stream; reading fails if the child exits non-zero.
pub struct Stream {
    reader: Arc<duct::ReaderHandle>,
    _registered: Registered,
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&*self.reader).read(buf)
    }
}

/// Starts a child whose stdout is read as a stream (its stderr goes to `log`).
pub fn stream_stdout(command: &Command, log: &Path) -> Result<Stream> {
    create_log(log)?;
    count_start();
    let reader = duct_expression(command)
        .stdin_null()
        .stderr_path(log)
        .reader()
        .with_context(|| format!("cannot start {}", command.program))?;
    let reader = Arc::new(reader);
    Ok(Stream {
        _registered: register(reader.clone()),
        reader,
    })
}

/// A child reading its stdin from a pipe this process writes, its output going to a log.
pub struct PipedChild {
    handle: Arc<duct::Handle>,
    _registered: Registered,
    pub stdin: os_pipe::PipeWriter,
    command: Command,
    log: PathBuf,
}

/// Starts `command` with a pipe on its stdin; the caller writes, then [`PipedChild::wait`]s
/// (or [`PipedChild::abort`]s, so the child sees no clean end of input).
pub fn spawn_piped(command: &Command, log: &Path) -> Result<PipedChild> {
    create_log(log)?;
    count_start();
    let (reader, writer) = os_pipe::pipe()?;
    let handle = Arc::new(
        duct_expression(command)
            .stdin_file(reader)
            .stderr_to_stdout()
            .stdout_path(log)
            .unchecked()
            .start()
            .with_context(|| format!("cannot start {}", command.program))?,
    );
    Ok(PipedChild {
        _registered: register(handle.clone()),
        handle,
        stdin: writer,
        command: command.clone(),
        log: log.to_path_buf(),
    })
}

impl PipedChild {
    /// Closes the child's input and waits for it to succeed.
    pub fn wait(self) -> Result<()> {
        drop(self.stdin);
        let status = self.handle.wait()?.status;
        if !status.success() {
            bail!(
                "`{}` failed\n--- last lines of {} ---\n{}",
                self.command,
                self.log.display(),
                tail(&self.log, TAIL_LINES)
            );
        }
        Ok(())
    }

    /// Kills the child before its input ends, so it completes nothing.
    pub fn abort(self) {
        let _ = self.handle.kill();
        drop(self.stdin);
        let _ = self.handle.wait();
    }
}

/// The last `n` lines of a file.
#[must_use]
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
