//! `cargo xtask images`: preflight, plan, then Maven, packaging and docker builds.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::cli;
use crate::docker::{ImageInfo, LABEL_TOOL};
use crate::engine::{self, ContainerSweep};
use crate::executor::{Executor, Outcome, StepReport};
use crate::freshness::{self, Reason, Recorded};
use crate::image_steps::ImageSteps;
use crate::plan::{self, Action, Options, Plan};
use crate::report::{self, RunReport};
use crate::{Project, exec, preflight, root_lock, ui};

impl cli::Images {
    pub fn run(self, project: &Project) -> Result<()> {
        // Taken before preflight: what a concurrent run is building counts as built.
        let _lock = if self.dry_run {
            None
        } else {
            Some(root_lock::lock(&project.config.work_dir(), &project.ui)?)
        };
        self.run_locked(project, &mut std::io::stdout())
    }

    /// The images named, built with default flags (for commands that need them).
    pub fn of(images: Vec<String>) -> cli::Images {
        cli::Images {
            images,
            config: cli::ConfigFlags {
                chinese_mirror: false,
                maven: None,
            },
            dry_run: false,
            no_cache: false,
            keep_going: false,
            force: false,
            jobs: None,
        }
    }

    /// The run, with the FATE root's lock held by the caller; the summary goes to `summary`
    /// (stdout for `images`, stderr where another command's results own stdout).
    pub fn run_locked(self, project: &Project, summary: &mut dyn std::io::Write) -> Result<()> {
        let Project {
            set,
            config,
            ui,
            sh,
        } = project;
        let work = config.work_dir();
        let facts = preflight::check(sh, config, set, &self.images)?;
        let options = Options {
            selection: self.images.clone(),
            no_cache: self.no_cache,
        };
        let plan = plan::images(config, set, &facts, &options)?;
        let recorded = Recorded::read(&work);
        if self.dry_run {
            let status: Vec<String> =
                freshness::preview(&plan, &facts.existing, &recorded, self.force)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
            print!("{}", plan.render(&status));
            return Ok(());
        }
        let executor = Executor {
            ui: ui.clone(),
            log_dir: work.join("logs"),
            keep_going: self.keep_going,
            jobs: self.jobs(),
        };
        let engine_lost = work.join("engine-lost");
        engine::sweep_after_crash(&engine_lost)?;
        let sweep = ContainerSweep::new(format!("{LABEL_TOOL}.run={}", facts.run_id));
        let started = Instant::now();
        let steps = ImageSteps {
            force: self.force,
            images: Mutex::new(facts.existing.clone()),
            recorded: Mutex::new(recorded),
            engine_lost,
            containers_started: sweep.trigger(),
        };
        let reports = executor.run(&plan.steps, |step, log, line| {
            steps.perform(step, log, line)
        });
        let recorded = steps.recorded.into_inner().expect("no worker panics");
        recorded.write(&work)?;
        let known = steps.images.into_inner().expect("no worker panics");
        print_summary(summary, project, &plan, &reports, &known, started.elapsed());
        RunReport::new(
            &plan,
            &reports,
            crate::started().elapsed().as_secs_f64(),
            exec::child_time().as_secs_f64(),
        )
        .write(&work.join(report::FILE))?;
        if exec::interrupted() {
            // Staged contexts of an interrupted run are not to be trusted.
            let _ = std::fs::remove_dir_all(work.join("contexts"));
            bail!(
                "interrupted ({}); staged contexts removed, build containers stopped",
                exec::signal_name()
            );
        }
        let failed: Vec<&str> = plan
            .steps
            .iter()
            .zip(&reports)
            .filter(|(_, r)| matches!(r.outcome, Outcome::Failed(_)))
            .map(|(s, _)| s.id.as_str())
            .collect();
        if !failed.is_empty() {
            bail!(
                "{} step(s) failed: {}; full logs are in {}",
                failed.len(),
                failed.join(", "),
                work.join("logs").display()
            );
        }
        Ok(())
    }
}

/// One summary row per step: what happened and why; per image also its ID and size.
fn summary_rows(
    project: &Project,
    plan: &Plan,
    reports: &[StepReport<Option<Reason>>],
    known: &BTreeMap<String, ImageInfo>,
) -> Vec<[String; 5]> {
    // Sizes are known of the images preflight found; only those built now are asked for.
    let built: Vec<String> = plan
        .steps
        .iter()
        .zip(reports)
        .filter_map(|(s, r)| match (&s.action, &r.outcome) {
            (Action::Build(b), Outcome::Ran(_)) => Some(b.reference.clone()),
            _ => None,
        })
        .collect();
    let mut images = known.clone();
    images.extend(engine::inspect_images(&project.sh, &built));
    let mut rows = vec![["step", "image id", "size", "time", "result"].map(String::from)];
    for (step, report) in plan.steps.iter().zip(reports) {
        let (name, id, size) = match &step.action {
            Action::Build(b) => {
                let info = images
                    .get(&b.reference)
                    .filter(|_| report.outcome.succeeded());
                let id = info.map_or("-".into(), |i| {
                    i.id.trim_start_matches("sha256:")
                        .chars()
                        .take(12)
                        .collect()
                });
                let size = info.map_or("-".into(), |i| ui::human_size(i.size));
                (b.reference.clone(), id, size)
            }
            _ => (step.id.clone(), "-".into(), "-".into()),
        };
        let result = match &report.outcome {
            Outcome::Ran(None) => "done".to_string(),
            Outcome::Ran(Some(why))
                if matches!(step.action, Action::Build(_) | Action::Maven(_)) =>
            {
                format!("built ({why})")
            }
            Outcome::Ran(Some(why)) => format!("ran ({why})"),
            Outcome::UpToDate => "up to date (inputs unchanged)".to_string(),
            Outcome::Failed(_) => "FAILED".to_string(),
            Outcome::NotRun(why) => format!("not run: {why}"),
        };
        let time = format!("{:.1}s", report.elapsed.as_secs_f64());
        rows.push([name, id, size, time, result]);
    }
    rows
}

/// The summary table on stdout, each column as wide as its content; failures on stderr.
fn print_summary(
    out: &mut dyn std::io::Write,
    project: &Project,
    plan: &Plan,
    reports: &[StepReport<Option<Reason>>],
    known: &BTreeMap<String, ImageInfo>,
    total: Duration,
) {
    let rows = summary_rows(project, plan, reports, known);
    let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
    let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
    // A closed stdout (`| head`) must not turn a finished run into a failure.
    for [name, id, size, time, result] in &rows {
        let _ = writeln!(
            out,
            "{name:<w0$}  {id:<w1$}  {size:>w2$}  {time:>w3$}  {result}"
        );
    }
    let _ = writeln!(out, "total {:.1}s", total.as_secs_f64());
    for (step, report) in plan.steps.iter().zip(reports) {
        if let Outcome::Failed(message) = &report.outcome {
            eprintln!("\nFAILED {}: {message}", step.id);
        }
    }
}
