//! A child process as data: program, arguments, working directory, extra environment;
//! how it prints, and the one duct expression every runner starts from.

use std::fmt;
use std::path::PathBuf;

use crate::process::children::count_start;

/// A child process: program, arguments, working directory, extra environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    /// Output lines (trimmed) left out of logs and progress: known noise.
    pub quiet_lines: Vec<String>,
    /// The command this one's stdout is piped into (`a | b`); the pipe fails if either
    /// does.
    pub piped_into: Option<Box<Command>>,
    /// A file read as its stdin (`< file`); else stdin is empty.
    pub stdin_file: Option<PathBuf>,
}

impl Command {
    pub fn new(program: &str, args: impl IntoIterator<Item = impl Into<String>>) -> Command {
        Command {
            program: program.to_string(),
            args: args.into_iter().map(Into::into).collect(),
            cwd: None,
            env: Vec::new(),
            quiet_lines: Vec::new(),
            piped_into: None,
            stdin_file: None,
        }
    }

    /// This command with its stdout piped into `next`.
    #[must_use]
    pub fn pipe(mut self, next: Command) -> Command {
        self.quiet_lines.extend(next.quiet_lines.iter().cloned());
        self.piped_into = Some(Box::new(next));
        self
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

    /// This command reading `file` as its stdin.
    #[must_use]
    pub fn stdin_file(mut self, file: PathBuf) -> Command {
        self.stdin_file = Some(file);
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
        if let Some(file) = &self.stdin_file {
            write!(f, " < {}", quote(&file.to_string_lossy()))?;
        }
        if self.cwd.is_some() {
            write!(f, ")")?;
        }
        if let Some(next) = &self.piped_into {
            write!(f, " | {next}")?;
        }
        Ok(())
    }
}

/// The command as a duct expression with its working directory and environment: the
/// one place every runner starts from.
pub(super) fn duct_expression(command: &Command) -> duct::Expression {
    let mut expr = duct::cmd(&command.program, &command.args);
    if let Some(cwd) = &command.cwd {
        expr = expr.dir(cwd);
    }
    for (k, v) in &command.env {
        expr = expr.env(k, v);
    }
    // Inner redirections win over the runners' outer `stdin_null`.
    if let Some(file) = &command.stdin_file {
        expr = expr.stdin_path(file);
    }
    match &command.piped_into {
        Some(next) => expr.pipe(duct_expression(next)),
        None => expr,
    }
}

/// A command as a duct expression: stdin empty, stderr into stdout, exit status not
/// turned into an error (callers report it with the output).
pub(super) fn expression(command: &Command) -> duct::Expression {
    count_start();
    duct_expression(command)
        .stderr_to_stdout()
        .stdin_null()
        .unchecked()
}
