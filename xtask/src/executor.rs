//! Carries out a plan: steps whose dependencies are done run concurrently (up to `jobs`),
//! each with a progress line and its own log. Maven projects and images whose inputs are
//! unchanged are skipped. The first failure stops new work unless keep-going, and the
//! dependents of a failure never run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::plan::{
    Action, BuildStep, INPUTS_PLACEHOLDER, ImageInfo, MavenStep, Plan, StageOp, VOLATILE_LABELS,
};
use crate::ui::Ui;
use crate::{exec, maven, package};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Ran; the text says why it had to.
    Done(String),
    /// Skipped because its inputs are unchanged.
    UpToDate,
    Failed(String),
    /// Not run: a step it depends on did not succeed, or the run stopped first.
    Skipped(String),
}

impl Outcome {
    fn succeeded(&self) -> bool {
        matches!(self, Outcome::Done(_) | Outcome::UpToDate)
    }
}

#[derive(Clone, Debug)]
pub struct StepReport {
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// Whether a step has to run, decided from its inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Decision {
    UpToDate,
    Run { why: String, inputs: String },
}

pub struct Executor {
    pub ui: Ui,
    pub log_dir: PathBuf,
    pub keep_going: bool,
    pub force: bool,
    pub jobs: usize,
}

impl Executor {
    /// Runs every step; returns one report per step, in plan order.
    pub fn run(&self, plan: &Plan, images: BTreeMap<String, ImageInfo>) -> Vec<StepReport> {
        let images = Mutex::new(images);
        let n = plan.steps.len();
        let mut reports: Vec<Option<StepReport>> = vec![None; n];
        let mut started = vec![false; n];
        let (tx, rx) = mpsc::channel::<(usize, StepReport)>();
        std::thread::scope(|scope| {
            let mut running = 0;
            let mut stop = false;
            loop {
                for i in 0..n {
                    if started[i] || reports[i].is_some() {
                        continue;
                    }
                    let step = &plan.steps[i];
                    let failed_dep = step.deps.iter().find(|d| {
                        reports[**d]
                            .as_ref()
                            .is_some_and(|r| !r.outcome.succeeded())
                    });
                    let skip = if exec::interrupted() {
                        Some("interrupted".to_string())
                    } else if stop {
                        Some("an earlier step failed".to_string())
                    } else {
                        failed_dep.map(|d| format!("{} did not succeed", plan.steps[*d].id))
                    };
                    if let Some(why) = skip {
                        reports[i] = Some(StepReport {
                            outcome: Outcome::Skipped(why),
                            elapsed: Duration::ZERO,
                        });
                        continue;
                    }
                    let ready = step.deps.iter().all(|d| reports[*d].is_some());
                    if ready && running < self.jobs.max(1) {
                        started[i] = true;
                        running += 1;
                        let tx = tx.clone();
                        let images = &images;
                        scope.spawn(move || {
                            let report = self.perform(step, images);
                            let _ = tx.send((i, report));
                        });
                    }
                }
                if running == 0 {
                    break;
                }
                let (i, report) = rx.recv().expect("a worker always reports");
                running -= 1;
                if matches!(report.outcome, Outcome::Failed(_)) && !self.keep_going {
                    stop = true;
                }
                reports[i] = Some(report);
            }
        });
        reports
            .into_iter()
            .map(|r| r.expect("every step is reported"))
            .collect()
    }

    /// For `--dry-run`: what each step would do, without doing it.
    pub fn preview(&self, plan: &Plan, images: &BTreeMap<String, ImageInfo>) -> Vec<String> {
        let mut will_run = vec![false; plan.steps.len()];
        let mut out = Vec::new();
        for (i, step) in plan.steps.iter().enumerate() {
            let dep = step.deps.iter().find(|d| will_run[**d]);
            let decision = match (&step.action, dep) {
                (Action::Maven(_) | Action::Build(_), Some(d)) => Ok(Decision::Run {
                    why: format!("{} runs first", plan.steps[*d].id),
                    inputs: String::new(),
                }),
                (Action::Maven(m), None) => self.maven_decision(m),
                (Action::Build(b), None) => self.build_decision(b, images).map(|(d, _)| d),
                _ => Ok(Decision::Run {
                    why: String::new(),
                    inputs: String::new(),
                }),
            };
            out.push(match decision {
                Ok(Decision::UpToDate) => "up to date (inputs unchanged)".to_string(),
                Ok(Decision::Run { why, .. }) if why.is_empty() => "will run".to_string(),
                Ok(Decision::Run { why, .. }) => format!("will run: {why}"),
                Err(e) => format!("will run: {e:#}"),
            });
            will_run[i] = !out[i].starts_with("up to date");
        }
        out
    }

    fn perform(
        &self,
        step: &crate::plan::Step,
        images: &Mutex<BTreeMap<String, ImageInfo>>,
    ) -> StepReport {
        let started = Instant::now();
        let line = self.ui.start(&step.title);
        let log = self.log_dir.join(format!("{}.log", step.id));
        let result = match &step.action {
            Action::Run(command) => {
                exec::run_logged(command, &log, &line).map(|_| Outcome::Done(String::new()))
            }
            Action::WriteFile { path, contents } => {
                write_file(path, contents).map(|_| Outcome::Done(String::new()))
            }
            Action::SeedMavenRepo {
                from_repo,
                local_repo,
            } => maven::seed_plexus_utils(from_repo, local_repo)
                .map(|_| Outcome::Done(String::new())),
            Action::Maven(m) => self.maven(m, &log, &line),
            Action::Build(b) => self.build(b, images, &log, &line),
            Action::Push(p) => crate::push::push_with_retries(p, &log, &line).map(Outcome::Done),
            Action::Pull { reference, hint } => {
                let pull = crate::plan::Command::new("docker", ["pull", reference.as_str()]);
                exec::run_logged(&pull, &log, &line)
                    .map(|_| Outcome::Done(String::new()))
                    .map_err(|e| e.context(hint.clone()))
            }
        };
        let outcome = match result {
            Ok(Outcome::UpToDate) => {
                line.finish("fresh", " up to date: inputs unchanged");
                Outcome::UpToDate
            }
            Ok(outcome) => {
                line.finish("done", "");
                outcome
            }
            Err(e) => {
                line.finish("FAILED", "");
                let message = if exec::interrupted() {
                    "interrupted".to_string()
                } else {
                    format!("{e:#}")
                };
                self.ui.note(&format!("step {} failed: {message}", step.id));
                Outcome::Failed(message)
            }
        };
        StepReport {
            outcome,
            elapsed: started.elapsed(),
        }
    }

    fn maven_decision(&self, m: &MavenStep) -> Result<Decision> {
        let mut hasher = Sha256::new();
        hasher.update(&m.salt);
        for source in &m.sources {
            let op = StageOp::Copy {
                from: source.clone(),
                to: ".".into(),
                exclude: Vec::new(),
            };
            package::digest(&package::collect(&[op])?, &mut hasher)?;
        }
        let inputs = hex::encode(hasher.finalize());
        let last = std::fs::read_to_string(&m.stamp).unwrap_or_default();
        let why = if self.force {
            "--force"
        } else if last.is_empty() {
            "no earlier run"
        } else if last.trim() != inputs {
            "sources changed"
        } else if let Some(missing) = m.outputs.iter().find(|o| !o.is_file()) {
            return Ok(Decision::Run {
                why: format!("{} is missing", missing.display()),
                inputs,
            });
        } else {
            return Ok(Decision::UpToDate);
        };
        Ok(Decision::Run {
            why: why.to_string(),
            inputs,
        })
    }

    fn maven(&self, m: &MavenStep, log: &Path, line: &crate::ui::StepLine) -> Result<Outcome> {
        let Decision::Run { why, inputs } = self.maven_decision(m)? else {
            return Ok(Outcome::UpToDate);
        };
        // A failed or interrupted run must not look up to date.
        let _ = std::fs::remove_file(&m.stamp);
        exec::run_logged(&m.command, log, line)?;
        write_file(&m.stamp, &inputs)?;
        Ok(Outcome::Done(why))
    }

    /// The decision, and the collected context (reused by the build).
    fn build_decision(
        &self,
        b: &BuildStep,
        images: &BTreeMap<String, ImageInfo>,
    ) -> Result<(Decision, package::Entries)> {
        let entries = package::collect(&b.ops)?;
        let mut hasher = Sha256::new();
        hasher.update(
            std::fs::read(&b.dockerfile)
                .with_context(|| format!("cannot read {}", b.dockerfile.display()))?,
        );
        for arg in deciding_args(&b.command.args) {
            hasher.update(arg);
            hasher.update([0]);
        }
        for (k, v) in b
            .labels
            .iter()
            .filter(|(k, _)| !VOLATILE_LABELS.contains(&k.as_str()))
        {
            hasher.update(format!("{k}={v}\0"));
        }
        for parent in &b.parents {
            let id = images
                .get(parent)
                .map(|i| i.id.as_str())
                .with_context(|| format!("parent image {parent} is not present"))?;
            hasher.update(id);
        }
        package::digest(&entries, &mut hasher)?;
        let inputs = hex::encode(hasher.finalize());
        let why = match images.get(&b.reference) {
            _ if self.force => "--force",
            None => "not built yet",
            Some(info) if info.inputs.as_deref() == Some(inputs.as_str()) => {
                return Ok((Decision::UpToDate, entries));
            }
            Some(info) if info.inputs.is_none() => "built without an inputs label",
            Some(_) => "inputs changed",
        };
        Ok((
            Decision::Run {
                why: why.to_string(),
                inputs,
            },
            entries,
        ))
    }

    fn build(
        &self,
        b: &BuildStep,
        images: &Mutex<BTreeMap<String, ImageInfo>>,
        log: &Path,
        line: &crate::ui::StepLine,
    ) -> Result<Outcome> {
        let snapshot = images.lock().expect("no worker panics").clone();
        let (decision, entries) = self.build_decision(b, &snapshot)?;
        let Decision::Run { why, inputs } = decision else {
            return Ok(Outcome::UpToDate);
        };
        package::materialize(&b.context, &entries)?;
        let labels: Vec<(String, String)> = b
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.replace(INPUTS_PLACEHOLDER, &inputs)))
            .collect();
        let dockerfile = std::fs::read_to_string(&b.dockerfile)
            .with_context(|| format!("cannot read {}", b.dockerfile.display()))?;
        write_file(
            &b.staged_dockerfile,
            &format!(
                "{dockerfile}\n{}",
                crate::dockerfile::label_instruction(&labels)
            ),
        )?;
        let iidfile = b.context.with_extension("iid");
        let mut command = b.command.clone();
        let context_arg = command
            .args
            .pop()
            .expect("the context is the last argument");
        command.args.push("--iidfile".into());
        command.args.push(iidfile.display().to_string());
        command.args.push(context_arg);
        exec::run_logged(&command, log, line)?;
        let id = std::fs::read_to_string(&iidfile)
            .with_context(|| format!("docker build wrote no image ID to {}", iidfile.display()))?;
        images.lock().expect("no worker panics").insert(
            b.reference.clone(),
            ImageInfo {
                id: id.trim().to_string(),
                inputs: Some(inputs),
                // Children need only the ID; the summary asks the engine for sizes.
                size: 0,
            },
        );
        Ok(Outcome::Done(why))
    }
}

/// The build arguments that decide the image: not `--no-cache`, and not the paths of the
/// staged Dockerfile and context (their content is hashed), so a FATE tree that moves
/// keeps its images.
fn deciding_args(args: &[String]) -> impl Iterator<Item = &String> {
    let context = args.len().saturating_sub(1);
    args.iter().enumerate().filter_map(move |(i, a)| {
        let is_path = i == context || (i > 0 && args[i - 1] == "--file");
        (!is_path && a != "--no-cache").then_some(a)
    })
}

fn write_file(path: &Path, contents: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_no_cache_do_not_decide_the_image() {
        let args: Vec<String> = [
            "build",
            "--file",
            "/a/x.Dockerfile",
            "--tag",
            "p/x:1",
            "--build-arg",
            "A=b",
            "--no-cache",
            "/a/ctx",
        ]
        .map(String::from)
        .to_vec();
        let kept: Vec<&String> = deciding_args(&args).collect();
        assert_eq!(
            kept,
            ["build", "--file", "--tag", "p/x:1", "--build-arg", "A=b"]
        );
    }
}
