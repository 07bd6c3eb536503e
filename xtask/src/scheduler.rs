//! The scheduler: runs steps whose dependencies are done, up to [`Jobs`] at once, each with
//! its progress line and its own log. What a step does is the caller's: it passes the
//! step bodies and gets each step's typed result back. After a failure no new step
//! starts unless keep-going, and the dependents of a failure never run.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Result;

use fate_bundle::process;
use fate_bundle::ui::{StepLine, Ui};

/// What the scheduler needs to know of a step.
pub trait Scheduled: Sync {
    /// Unique and file-name safe: also the log's name.
    fn id(&self) -> &str;
    fn title(&self) -> &str;
    /// Indices of the steps that must succeed first.
    fn deps(&self) -> &[usize];
    /// Whether the step's work is the engine's (an image build): its own process mostly
    /// waits, so more of them run at once than the host has cores.
    fn engine_does_the_work(&self) -> bool {
        false
    }
}

/// How many steps run at once: those whose work is the host's (Maven, seeding, writes) and
/// those whose work is mostly the engine's (image builds, their staging included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Jobs {
    pub host: usize,
    pub engine: usize,
}

impl Jobs {
    /// `n` of every kind: what a user who says how many means.
    #[must_use]
    pub fn exactly(n: usize) -> Jobs {
        Jobs { host: n, engine: n }
    }

    /// The default: one host step per core, and twice as many image builds (measured on
    /// 2 cores, ten cold builds took 3.57 s at 4 at once against 4.59 s at 2 on Docker
    /// 20.10, 2.39 s against 2.48 s on the containerd store; 10 at once gained no more).
    #[must_use]
    pub fn for_cores(cores: usize) -> Jobs {
        let cores = cores.max(1);
        Jobs {
            host: cores,
            engine: 2 * cores,
        }
    }

    /// [`Jobs::for_cores`] on this host.
    pub fn for_this_host() -> Jobs {
        Jobs::for_cores(std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
    }

    /// Whether one more step of its kind may start; never more steps in all than the
    /// larger limit (so `--jobs 1` runs one step at a time).
    fn admits(self, running: Running, engine_does_the_work: bool) -> bool {
        let all = self.host.max(self.engine).max(1);
        let of_kind = if engine_does_the_work {
            running.engine < self.engine.max(1)
        } else {
            running.host < self.host.max(1)
        };
        of_kind && running.host + running.engine < all
    }
}

/// The steps running, by kind.
#[derive(Clone, Copy, Default)]
struct Running {
    host: usize,
    engine: usize,
}

impl Running {
    fn count(&mut self, engine_does_the_work: bool) -> &mut usize {
        if engine_does_the_work {
            &mut self.engine
        } else {
            &mut self.host
        }
    }
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
    pub jobs: Jobs,
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
            let mut running = Running::default();
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
                    if ready && self.jobs.admits(running, step.engine_does_the_work()) {
                        started[i] = true;
                        *running.count(step.engine_does_the_work()) += 1;
                        let tx = tx.clone();
                        let body = &body;
                        scope.spawn(move || {
                            let _ = tx.send((i, self.perform(step, body)));
                        });
                    }
                }
                if running.host + running.engine == 0 {
                    break;
                }
                let (i, report) = rx.recv().expect("a worker always reports");
                *running.count(steps[i].engine_does_the_work()) -= 1;
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    struct Fake {
        id: String,
        engine: bool,
    }

    impl Scheduled for Fake {
        fn id(&self) -> &str {
            &self.id
        }
        fn title(&self) -> &str {
            &self.id
        }
        fn deps(&self) -> &[usize] {
            &[]
        }
        fn engine_does_the_work(&self) -> bool {
            self.engine
        }
    }

    /// The most steps of each kind, and in all, that ran at once with `jobs`, of 12 steps
    /// with no dependencies, every `host_every`-th one a host step.
    fn most_at_once(jobs: Jobs, host_every: usize) -> (usize, usize, usize) {
        let steps: Vec<Fake> = (0..12)
            .map(|i| Fake {
                id: format!("step-{i}"),
                engine: i % host_every != 0,
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let executor = Executor {
            ui: Ui::plain(),
            log_dir: dir.path().to_path_buf(),
            keep_going: false,
            jobs,
        };
        // Running now, the most of each kind so far, the most in all so far.
        let counts = Mutex::new((Running::default(), Running::default(), 0));
        let reports = executor.run(&steps, |step, _, _| {
            {
                let mut guard = counts.lock().unwrap();
                let (now, most, all) = &mut *guard;
                *now.count(step.engine) += 1;
                let of_kind = *now.count(step.engine);
                let most_of_kind = most.count(step.engine);
                *most_of_kind = (*most_of_kind).max(of_kind);
                *all = (*all).max(now.host + now.engine);
            }
            std::thread::sleep(Duration::from_millis(40));
            *counts.lock().unwrap().0.count(step.engine) -= 1;
            Ok(Done::Ran(()))
        });
        assert!(reports.iter().all(|r| r.outcome.succeeded()));
        let (_, most, all) = counts.into_inner().unwrap();
        (most.host, most.engine, all)
    }

    #[test]
    fn engine_does_the_work_steps_have_their_own_limit_under_one_for_all() {
        let default = Jobs::for_cores(2);
        assert_eq!(default, Jobs { host: 2, engine: 4 });
        let running = |host, engine| Running { host, engine };
        // Host steps up to the cores; builds beside them up to twice that in all.
        assert!(!default.admits(running(2, 0), false));
        assert!(default.admits(running(2, 1), true));
        assert!(!default.admits(running(2, 2), true));
        assert!(default.admits(running(0, 3), true));
        assert!(!default.admits(running(0, 4), true));
        assert!(!default.admits(running(1, 3), false));
        // A number given is every kind's and the whole run's.
        assert!(!Jobs::exactly(1).admits(running(0, 1), false));
        assert!(!Jobs::exactly(1).admits(running(1, 0), true));
        assert_eq!(Jobs::for_cores(0), Jobs { host: 1, engine: 2 });

        // As the executor runs them: builds alone fill twice the cores; mixed steps never
        // exceed the limits; one job is one step at a time.
        assert_eq!(most_at_once(default, usize::MAX), (1, 4, 4));
        let (host, engine, all) = most_at_once(default, 3);
        assert!(
            host <= 2 && engine <= 4 && all <= 4,
            "{host} {engine} {all}"
        );
        assert_eq!(most_at_once(Jobs::exactly(1), 3), (1, 1, 1));
    }
}
