//! `cargo xtask images`: preflight, plan, then Maven, packaging and docker builds.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::cli;
use crate::config::project::Project;
use crate::config::selection::Options;
use crate::docker::argv::{self, Builder, LocalImages};
use crate::docker::engine;
use crate::facts::preflight::Facts;
use crate::facts::preflight::Purpose;
use crate::plan::Plan;
use crate::plan::json;
use crate::run::lock;
use crate::run::pipeline::{Pipeline, Ran, RunOptions};
use crate::run::preview;
use crate::run::report::{self, RunReport};
use crate::scheduler::Outcome;
use crate::scheduler::StepReport;
use crate::steps::action::Action;
use crate::steps::decision::Reason;
use crate::steps::kind;
use crate::steps::records::Recorded;
use fate_bundle::{process, ui};

impl cli::Images {
    pub fn run(self, project: &Project) -> Result<()> {
        // Taken before preflight: what a concurrent run is building counts as built.
        let _lock = if self.dry_run {
            None
        } else {
            Some(lock::lock(&project.config.work_dir(), &project.ui)?)
        };
        self.run_locked(project, &mut std::io::stdout())
    }

    /// The images named, built with default flags (for commands that need them).
    #[must_use]
    pub fn of(images: Vec<String>) -> cli::Images {
        cli::Images {
            images,
            config: cli::ConfigFlags::default(),
            dry_run: false,
            format: cli::PlanFormat::Text,
            no_cache: false,
            keep_going: false,
            force: false,
            jobs: None,
            init_submodules: false,
        }
    }

    /// The run, with the FATE root's lock held by the caller; the summary goes to `summary`
    /// (stdout for `images`, stderr where another command's results own stdout).
    pub fn run_locked(self, project: &Project, summary: &mut dyn std::io::Write) -> Result<()> {
        let Project { config, ui, .. } = project;
        let purpose = match (self.dry_run, self.init_submodules) {
            (true, _) => Purpose::Preview,
            (false, true) => Purpose::RunWithSubmodules,
            (false, false) => Purpose::Run,
        };
        let options = Options {
            selection: self.images.clone(),
            no_cache: self.no_cache,
            every_parent: false,
        };
        let pipeline = Pipeline::prepare(project, &options, purpose, |facts| {
            check_platforms(&config.build.platforms, facts)
        })?;
        let Pipeline {
            work, facts, plan, ..
        } = &pipeline;
        let recorded = Recorded::read(work);
        if self.dry_run {
            self.print_preview(&pipeline, &recorded);
            return Ok(());
        }
        let started = Instant::now();
        let how = RunOptions {
            force: self.force,
            keep_going: self.keep_going,
            jobs: self.jobs(),
            stage_only: false,
        };
        let Ran {
            reports,
            state: steps,
        } = pipeline.run(recorded, &how)?;
        let recorded = steps.recorded.into_inner().expect("no worker panics");
        recorded.write(work)?;
        let local_images = steps.local_images.into_inner().expect("no worker panics");
        print_summary(
            summary,
            project,
            plan,
            &reports,
            &local_images,
            started.elapsed(),
        );
        let built = plan.steps.iter().zip(&reports).any(|(s, r)| {
            matches!(s.action, Action::Build(_)) && matches!(r.outcome, Outcome::Ran(_))
        });
        if built && facts.builder == Builder::Legacy && !ui.is_quiet() {
            // Said once here; the legacy builder's own notice is kept out of every log.
            ui.note(&format!(
                "note: built with the legacy builder, which Docker deprecates; BuildKit is faster: {}",
                argv::GET_BUILDKIT
            ));
        }
        RunReport::new(
            plan,
            &reports,
            process::process_started().elapsed().as_secs_f64(),
            process::child_time().as_secs_f64(),
        )
        .write(&work.join(report::FILE))?;
        pipeline.refuse_if_interrupted(", build containers stopped")?;
        let failed: Vec<&str> = pipeline
            .failures(&reports)
            .iter()
            .map(|(id, _)| *id)
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

    /// `--dry-run`: the plan with each step's decision, as text or JSON.
    fn print_preview(&self, pipeline: &Pipeline, recorded: &Recorded) {
        let Pipeline {
            project,
            facts,
            plan,
            caches,
            ..
        } = pipeline;
        let status = preview::preview(
            plan,
            &kind::Preview {
                local_images: &facts.local_images,
                caches,
                recorded,
                force: self.force,
                engine_down: facts.engine_down.is_some(),
            },
        );
        match self.format {
            cli::PlanFormat::Json => print!("{}", json::render(plan, &status, facts)),
            cli::PlanFormat::Text => {
                if let Some(why) = &facts.engine_down {
                    project.ui.note(&format!("warning: {why}"));
                }
                let status: Vec<String> = status.iter().map(ToString::to_string).collect();
                print!("{}", plan.render(&status));
            }
        }
    }
}

/// The run's end: an error when it was interrupted or a step failed.
/// One summary row per step: what happened and why; per image also its ID and size.
fn summary_rows(
    project: &Project,
    plan: &Plan,
    reports: &[StepReport<Option<Reason>>],
    local_images: &LocalImages,
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
    let mut images = local_images.clone();
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
    local_images: &LocalImages,
    total: Duration,
) {
    let rows = summary_rows(project, plan, reports, local_images);
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

/// Several platforms per tag load only into the containerd image store, through BuildKit;
/// a graph-driver engine holds one image per tag. (Unknown when a dry run goes on without
/// an engine.)
fn check_platforms(platforms: &[String], facts: &Facts) -> Result<()> {
    if platforms.len() < 2 {
        return Ok(());
    }
    let list = platforms.join(",");
    if facts.builder == Builder::Legacy {
        bail!(
            "several platforms ({list}) need BuildKit, but this run uses the legacy builder: {}",
            argv::GET_BUILDKIT
        );
    }
    match &facts.image_store {
        Some(store) if !store.holds_several_platforms() => bail!(
            "several platforms ({list}) cannot be loaded into this engine, whose {} holds one image per tag: turn on the containerd image store (the default of Docker Engine 29+ and Docker Desktop; in /etc/docker/daemon.json: {{\"features\": {{\"containerd-snapshotter\": true}}}}, then restart dockerd), or build one platform here (--platform linux/arm64), or write a bake file (cargo xtask bake) and let a multi-platform builder push them: docker buildx bake -f target/xtask/docker-bake.json --push",
            store.describe()
        ),
        _ => Ok(()),
    }
}
