//! The scheduler: runs steps whose dependencies are done, up to `jobs` at once, each with
//! its progress line and its own log. What a step does is the caller's: it passes the
//! step bodies and gets each step's typed result back. After a failure no new step
//! starts unless keep-going, and the dependents of a failure never run.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::process;
use crate::ui::{StepLine, Ui};

/// What the scheduler needs to know of a step.
pub trait Scheduled: Sync {
    /// Unique and file-name safe: also the log's name.
    fn id(&self) -> &str;
    fn title(&self) -> &str;
    /// Indices of the steps that must succeed first.
    fn deps(&self) -> &[usize];
}

/// What a step body reports when it did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Done<T> {
    Ran(T),
    /// Skipped because its inputs are unchanged.
    UpToDate,
}

/// Why a step was not started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotRun {
    Interrupted,
    EarlierFailure,
    DependencyFailed(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<T> {
    Ran(T),
    UpToDate,
    Failed(String),
    NotRun(NotRun),
}

impl<T> Outcome<T> {
    pub fn succeeded(&self) -> bool {
        matches!(self, Outcome::Ran(_) | Outcome::UpToDate)
    }
}

#[derive(Clone, Debug)]
pub struct StepReport<T> {
    pub outcome: Outcome<T>,
    pub elapsed: Duration,
}

pub struct Executor {
    pub ui: Ui,
    pub log_dir: PathBuf,
    pub keep_going: bool,
    pub jobs: usize,
}

impl Executor {
    /// Runs every step through `body`; returns one report per step, in step order.
    pub fn run<S, T, F>(&self, steps: &[S], body: F) -> Vec<StepReport<T>>
    where
        S: Scheduled,
        T: Send,
        F: Fn(&S, &Path, &StepLine) -> Result<Done<T>> + Sync,
    {
        let n = steps.len();
        let mut reports: Vec<Option<StepReport<T>>> = (0..n).map(|_| None).collect();
        let mut started = vec![false; n];
        let (tx, rx) = mpsc::channel::<(usize, StepReport<T>)>();
        std::thread::scope(|scope| {
            let mut running = 0;
            let mut stop = false;
            loop {
                for i in 0..n {
                    if started[i] || reports[i].is_some() {
                        continue;
                    }
                    let step = &steps[i];
                    if let Some(why) = reason_not_to_run(steps, step, &reports, stop) {
                        reports[i] = Some(StepReport {
                            outcome: Outcome::NotRun(why),
                            elapsed: Duration::ZERO,
                        });
                        continue;
                    }
                    let ready = step.deps().iter().all(|d| reports[*d].is_some());
                    if ready && running < self.jobs.max(1) {
                        started[i] = true;
                        running += 1;
                        let tx = tx.clone();
                        let body = &body;
                        scope.spawn(move || {
                            let _ = tx.send((i, self.perform(step, body)));
                        });
                    }
                }
                if running == 0 {
                    break;
                }
                let (i, report) = rx.recv().expect("a worker always reports");
                running -= 1;
                stop |= matches!(report.outcome, Outcome::Failed(_)) && !self.keep_going;
                reports[i] = Some(report);
            }
        });
        reports
            .into_iter()
            .map(|r| r.expect("every step is reported"))
            .collect()
    }

    fn perform<S, T, F>(&self, step: &S, body: &F) -> StepReport<T>
    where
        S: Scheduled,
        F: Fn(&S, &Path, &StepLine) -> Result<Done<T>>,
    {
        let started = Instant::now();
        let line = self.ui.start(step.title());
        let log = self.log_dir.join(format!("{}.log", step.id()));
        let outcome = match body(step, &log, &line) {
            Ok(Done::UpToDate) => {
                line.finish("fresh", " up to date: inputs unchanged");
                Outcome::UpToDate
            }
            Ok(Done::Ran(value)) => {
                line.finish("done", "");
                Outcome::Ran(value)
            }
            Err(e) => {
                line.finish("FAILED", "");
                let message = if process::interrupted() {
                    "interrupted".to_string()
                } else {
                    format!("{e:#}")
                };
                self.ui
                    .note(&format!("step {} failed: {message}", step.id()));
                Outcome::Failed(message)
            }
        };
        StepReport {
            outcome,
            elapsed: started.elapsed(),
        }
    }
}

/// Why a step that has not started must not start, if it must not.
fn reason_not_to_run<S: Scheduled, T>(
    steps: &[S],
    step: &S,
    reports: &[Option<StepReport<T>>],
    stop: bool,
) -> Option<NotRun> {
    if process::interrupted() {
        return Some(NotRun::Interrupted);
    }
    if stop {
        return Some(NotRun::EarlierFailure);
    }
    step.deps()
        .iter()
        .find(|d| {
            reports[**d]
                .as_ref()
                .is_some_and(|r| !r.outcome.succeeded())
        })
        .map(|d| NotRun::DependencyFailed(steps[*d].id().to_string()))
}

impl std::fmt::Display for NotRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotRun::Interrupted => write!(f, "interrupted"),
            NotRun::EarlierFailure => write!(f, "an earlier step failed"),
            NotRun::DependencyFailed(id) => write!(f, "{id} did not succeed"),
        }
    }
}
