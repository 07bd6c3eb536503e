//! The only module that spawns processes. Short captured questions go through xshell
//! (one `Shell`, passed down); long, streamed or piped children through duct. It knows
//! nothing of docker or Maven: callers build the [`Command`]s.

mod children;
pub mod private;

use children::{CHILD_SPANS, Registered, count_start, register, register_until};
pub use children::{
    child_time, install_signal_handlers, interrupted, process_started, processes_started,
    signal_exit_code, signal_name, sleep_unless_interrupted,
};

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use xshell::Shell;

use crate::ui::StepLine;

/// How many lines of a failed step's log are shown.
pub const TAIL_LINES: usize = 30;

/// A child process: program, arguments, working directory, extra environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    /// Output lines (trimmed) left out of logs and progress: known noise.
    pub quiet_lines: Vec<String>,
}

impl Command {
    pub fn new(program: &str, args: impl IntoIterator<Item = impl Into<String>>) -> Command {
        Command {
            program: program.to_string(),
            args: args.into_iter().map(Into::into).collect(),
            cwd: None,
            env: Vec::new(),
            quiet_lines: Vec::new(),
        }
    }

    #[must_use]
    pub fn quiet_lines(mut self, lines: &[&str]) -> Command {
        self.quiet_lines = lines.iter().map(|l| (*l).to_string()).collect();
        self
    }

    #[must_use]
    pub fn env(mut self, key: &str, value: &str) -> Command {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    #[must_use]
    pub fn current_dir(mut self, dir: PathBuf) -> Command {
        self.cwd = Some(dir);
        self
    }
}

/// Shell-like quoting, only where needed, for plans and error messages.
#[must_use]
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(cwd) = &self.cwd {
            write!(f, "(cd {} && ", quote(&cwd.to_string_lossy()))?;
        }
        for (k, v) in &self.env {
            write!(f, "{k}={} ", quote(v))?;
        }
        write!(f, "{}", quote(&self.program))?;
        for a in &self.args {
            write!(f, " {}", quote(a))?;
        }
        if self.cwd.is_some() {
            write!(f, ")")?;
        }
        Ok(())
    }
}

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
struct Answer {
    success: bool,
    stdout: String,
    stderr: String,
    /// The child's peak resident memory in KiB, when it was watched.
    peak_kib: u64,
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
fn high_water_kib(status: &str) -> Option<u64> {
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
fn ask(sh: Option<&Shell>, command: &Command, limit: Option<Duration>) -> Result<Answer> {
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

/// The command as a duct expression with its working directory and environment: the
/// one place every runner starts from.
fn duct_expression(command: &Command) -> duct::Expression {
    let mut expr = duct::cmd(&command.program, &command.args);
    if let Some(cwd) = &command.cwd {
        expr = expr.dir(cwd);
    }
    for (k, v) in &command.env {
        expr = expr.env(k, v);
    }
    expr
}

/// A command as a duct expression: stdin empty, stderr into stdout, exit status not
/// turned into an error (callers report it with the output).
fn expression(command: &Command) -> duct::Expression {
    count_start();
    duct_expression(command)
        .stderr_to_stdout()
        .stdin_null()
        .unchecked()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watched_child_reports_its_peak_memory() {
        assert_eq!(
            high_water_kib("Name:\tx\nVmPeak:\t 9 kB\nVmHWM:\t   2048 kB\n"),
            Some(2048)
        );
        assert_eq!(high_water_kib("Name:\tzombie\n"), None);
        // 64 MiB held for half a second: the peak is at least that, and under twice it.
        let hold = Command::new(
            "python3",
            [
                "-c",
                "import time; b = bytearray(64 << 20); time.sleep(0.5)",
            ],
        );
        let (_, peak) = run_measured(&hold, true).unwrap();
        assert!((64 * 1024..128 * 1024).contains(&peak), "peak {peak} KiB");
        assert_eq!(run_measured(&hold, false).unwrap().1, 0);
    }

    #[test]
    fn every_runner_honours_env_and_cwd() {
        let dir = tempfile::tempdir().unwrap();
        let here = dir.path().canonicalize().unwrap();
        let command = Command::new("sh", ["-c", "echo \"$FATE_TEST_VALUE\"; pwd"])
            .env("FATE_TEST_VALUE", "from the command")
            .current_dir(here.clone());
        let expected = format!("from the command\n{}", here.display());
        let sh = Shell::new().unwrap();
        assert_eq!(query(&sh, &command).unwrap(), expected);
        assert_eq!(query_stdout(&sh, &command), expected);
        assert_eq!(query_anywhere(&command).unwrap().trim(), expected);
        assert_eq!(run_captured(&command).unwrap().trim(), expected);
        let (ok, said) = run_with_stdin(&command, "").unwrap();
        assert!(ok);
        assert_eq!(said.trim(), expected);
        let mut streamed = String::new();
        let stream = stream_stdout(&command, &dir.path().join("stream.log")).unwrap();
        (&stream).read_to_string(&mut streamed).unwrap();
        assert_eq!(streamed.trim(), expected);
    }

    #[test]
    fn a_question_that_does_not_answer_is_given_up() {
        let sh = Shell::new().unwrap();
        let started = Instant::now();
        let sleepy = Command::new("sleep", ["30"]);
        let e = ask(Some(&sh), &sleepy, Some(Duration::from_millis(200)))
            .err()
            .unwrap();
        assert!(
            format!("{e:#}").contains("did not answer within 0.2 s"),
            "{e:#}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn commands_render_shell_quoted() {
        let c = Command::new("docker", ["build", "--label", "a=b c", "it's"]);
        assert_eq!(c.to_string(), r"docker build --label 'a=b c' 'it'\''s'");
        let c = Command::new("mvn", ["package"])
            .env("A", "x y")
            .current_dir("/p q".into());
        assert_eq!(c.to_string(), "(cd '/p q' && A='x y' mvn package)");
    }

    #[test]
    fn child_time_merges_overlapping_spans() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        CHILD_SPANS.lock().unwrap().extend([
            (t0, t0 + s(2)),
            (t0 + s(1), t0 + s(3)),
            (t0 + s(5), t0 + s(6)),
        ]);
        assert!(child_time() >= s(4));
    }
}
