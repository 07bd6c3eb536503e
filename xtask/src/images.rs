//! `cargo xtask images`: preflight, plan, then Maven, packaging and docker builds.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::Project;
use crate::cli;
use crate::exec::{self, ContainerSweep};
use crate::executor::{Executor, Outcome, StepReport};
use crate::plan::{self, Action, LABEL_TOOL, Options, Plan};
use crate::{docker, preflight};

impl cli::Images {
    pub fn run(self, project: &Project) -> Result<()> {
        let Project { set, config, ui } = project;
        let work = config.work_dir();
        // Taken before preflight: what a concurrent run is building counts as built.
        let _lock = if self.dry_run {
            None
        } else {
            Some(lock(&work, ui)?)
        };
        let facts = preflight::check(config, set, &self.images)?;
        let options = Options {
            selection: self.images.clone(),
            no_cache: self.no_cache,
        };
        let plan = plan::images(config, set, &facts, &options)?;
        let executor = Executor {
            ui: ui.clone(),
            log_dir: work.join("logs"),
            keep_going: self.keep_going,
            force: self.force,
            jobs: self.jobs(),
        };
        if self.dry_run {
            print!("{}", plan.render(&executor.preview(&plan, &facts.existing)));
            return Ok(());
        }
        let _sweep = ContainerSweep::new(format!("{LABEL_TOOL}.run={}", facts.run_id));
        let started = Instant::now();
        let reports = executor.run(&plan, facts.existing.clone());
        print_summary(&plan, &reports, started.elapsed());
        write_report(
            &work.join("last-run.tsv"),
            &plan,
            &reports,
            crate::started().elapsed(),
        )?;
        if exec::interrupted() {
            // Staged contexts of an interrupted run are not to be trusted.
            let _ = std::fs::remove_dir_all(work.join("contexts"));
            bail!("interrupted; staged contexts removed, build containers stopped");
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

/// One run at a time per FATE root: a second waits instead of corrupting staged contexts.
fn lock(work: &Path, ui: &crate::ui::Ui) -> Result<File> {
    std::fs::create_dir_all(work).with_context(|| format!("cannot create {}", work.display()))?;
    let path = work.join("lock");
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    if file.try_lock().is_err() {
        ui.note(&format!(
            "another cargo xtask is running on this FATE root; waiting for it ({})",
            path.display()
        ));
        file.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
    }
    Ok(file)
}

/// A machine-readable record of the run (for benchmarks): wall time since the process
/// started, time covered by child processes, and each step's outcome and duration.
fn write_report(path: &Path, plan: &Plan, reports: &[StepReport], wall: Duration) -> Result<()> {
    let mut out = format!(
        "wall_s\t{:.3}\nchild_s\t{:.3}\n",
        wall.as_secs_f64(),
        exec::child_time().as_secs_f64()
    );
    for (step, report) in plan.steps.iter().zip(reports) {
        let word = match report.outcome {
            Outcome::Done(_) => "ran",
            Outcome::UpToDate => "up-to-date",
            Outcome::Failed(_) => "failed",
            Outcome::Skipped(_) => "skipped",
        };
        out.push_str(&format!(
            "step\t{}\t{word}\t{:.3}\n",
            step.id,
            report.elapsed.as_secs_f64()
        ));
    }
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}

/// Per step: what happened and why; per image also its ID and size. Printed on stdout.
fn print_summary(plan: &Plan, reports: &[StepReport], total: Duration) {
    let references: Vec<String> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Build(b) => Some(b.reference.clone()),
            _ => None,
        })
        .collect();
    let images = docker::inspect_images(&references);
    println!(
        "{:<40} {:<14} {:>9} {:>7}  result",
        "step", "image id", "size", "time"
    );
    for (step, report) in plan.steps.iter().zip(reports) {
        let (id, size) = match (&step.action, &report.outcome) {
            (Action::Build(b), Outcome::Done(_) | Outcome::UpToDate) => images
                .get(&b.reference)
                .map(|i| {
                    let short =
                        i.id.trim_start_matches("sha256:")
                            .chars()
                            .take(12)
                            .collect();
                    (short, format!("{:.1}MB", i.size as f64 / 1e6))
                })
                .unwrap_or_default(),
            _ => (String::from("-"), String::from("-")),
        };
        let result = match &report.outcome {
            Outcome::Done(why) if why.is_empty() => "done".to_string(),
            Outcome::Done(why) => format!("built ({why})"),
            Outcome::UpToDate => "up to date (inputs unchanged)".to_string(),
            Outcome::Failed(_) => "FAILED".to_string(),
            Outcome::Skipped(why) => format!("not run: {why}"),
        };
        let name = match &step.action {
            Action::Build(b) => b.reference.clone(),
            _ => step.id.clone(),
        };
        println!(
            "{name:<40} {id:<14} {size:>9} {:>6.1}s  {result}",
            report.elapsed.as_secs_f64()
        );
    }
    println!("total {:.1}s", total.as_secs_f64());
    for (step, report) in plan.steps.iter().zip(reports) {
        if let Outcome::Failed(message) = &report.outcome {
            eprintln!("\nFAILED {}: {message}", step.id);
        }
    }
}
