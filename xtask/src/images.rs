//! `cargo xtask images`: preflight, plan, then Maven, packaging and docker builds.

use std::fs::File;
use std::path::Path;

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
        let facts = preflight::check(config, set, &self.images)?;
        let options = Options {
            selection: self.images.clone(),
            no_cache: self.no_cache,
        };
        let plan = plan::images(config, set, &facts, &options)?;
        if self.dry_run {
            print!("{plan}");
            return Ok(());
        }
        let work = config.work_dir();
        let _lock = lock(&work, ui)?;
        let _sweep = ContainerSweep::new(format!("{LABEL_TOOL}.run={}", facts.run_id));
        let executor = Executor {
            ui: ui.clone(),
            log_dir: work.join("logs"),
            keep_going: self.keep_going,
        };
        let reports = executor.run(&plan);
        print_summary(&plan, &reports);
        if exec::interrupted() {
            // Staged trees and contexts of an interrupted run are not to be trusted.
            for dir in ["trees", "contexts"] {
                let _ = std::fs::remove_dir_all(work.join(dir));
            }
            bail!("interrupted; staged contexts removed, build containers stopped");
        }
        let failed: Vec<&str> = reports
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
            .map(|r| r.id.as_str())
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

/// Per image: reference, ID, size, time, outcome. Printed on stdout.
fn print_summary(plan: &Plan, reports: &[StepReport]) {
    println!(
        "{:<26} {:<48} {:<14} {:>9} {:>7}  result",
        "image", "reference", "id", "size", "time"
    );
    for (step, report) in plan.steps.iter().zip(reports) {
        let Action::Build {
            image, reference, ..
        } = &step.action
        else {
            continue;
        };
        let (id, size) = match report.outcome {
            Outcome::Done => docker::image_id_and_size(reference)
                .map(|(id, size)| {
                    let short = id.trim_start_matches("sha256:").chars().take(12).collect();
                    (short, format!("{:.1}MB", size as f64 / 1e6))
                })
                .unwrap_or_default(),
            _ => (String::from("-"), String::from("-")),
        };
        let result = match &report.outcome {
            Outcome::Done => "built".to_string(),
            Outcome::Failed(_) => "FAILED".to_string(),
            Outcome::Skipped(why) => format!("not built: {why}"),
        };
        println!(
            "{image:<26} {reference:<48} {id:<14} {size:>9} {:>6.1}s  {result}",
            report.elapsed.as_secs_f64()
        );
    }
    for (step, report) in plan.steps.iter().zip(reports) {
        if let Outcome::Failed(message) = &report.outcome {
            eprintln!("\nFAILED {}: {message}", step.id);
        }
    }
}
