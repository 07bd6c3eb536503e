//! `cargo xtask bake`: Maven and staging as `images` does them, then a docker-bake.json
//! for the builds instead of building, to hand them to a BuildKit fleet.

pub mod bakefile;

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};

use crate::plan::preflight::{self, Purpose};
use crate::plan::{self, Action, Options};
use crate::process::engine::ContainerSweep;
use crate::run::scheduler::{Executor, Outcome};
use crate::run::steps::RunState;
use crate::{Project, cli, process, process::docker_argv, run::digest_cache, run::lock};

impl cli::Bake {
    pub fn run(self, project: &Project) -> Result<()> {
        let Project {
            set,
            config,
            ui,
            sh,
        } = project;
        let work = config.work_dir();
        let _lock = lock::lock(&work, ui)?;
        let mut facts = preflight::check(sh, config, set, &self.images, Purpose::Run)?;
        digest_cache::open(&work.join(crate::commands::images::DIGEST_CACHE));
        crate::image::staging::share_walks();
        // The builders that bake it start with nothing: every parent is a target.
        facts.existing.clear();
        let options = Options {
            selection: self.images.clone(),
            no_cache: false,
        };
        let mut plan = plan::images(config, set, &facts, &options)?;
        for step in &mut plan.steps {
            if let Action::Build(b) = &step.action {
                step.title = format!("stage {}", b.reference);
            }
        }
        let executor = Executor {
            ui: ui.clone(),
            log_dir: work.join("logs"),
            keep_going: false,
            jobs: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        };
        let sweep =
            ContainerSweep::new(format!("{}.run={}", docker_argv::LABEL_TOOL, facts.run_id));
        let steps = RunState {
            force: false,
            images: Mutex::default(),
            recorded: Mutex::default(),
            engine_lost: work.join("engine-lost"),
            containers_started: sweep.trigger(),
            stage_only: true,
        };
        let reports = executor.run(&plan.steps, |step, log, line| {
            steps.perform(step, log, line)
        });
        digest_cache::save()?;
        if process::interrupted() {
            let _ = std::fs::remove_dir_all(work.join("contexts"));
            bail!(
                "interrupted ({}); staged contexts removed",
                process::signal_name()
            );
        }
        let failed: Vec<(&str, &String)> = plan
            .steps
            .iter()
            .zip(&reports)
            .filter_map(|(s, r)| match &r.outcome {
                Outcome::Failed(message) => Some((s.id.as_str(), message)),
                _ => None,
            })
            .collect();
        if let Some((id, message)) = failed.first() {
            bail!(
                "step {id} failed, no bake file written: {message}\nfull logs are in {}",
                work.join("logs").display()
            );
        }
        let file = self.file.unwrap_or_else(|| work.join("docker-bake.json"));
        let bake = bakefile::of(&plan, !self.no_named_contexts);
        write_whole(&file, &bake)?;
        let how = how_to_bake(&file, &bake, self.no_named_contexts);
        println!("{}", file.display());
        ui.note(&format!(
            "wrote {} targets with their staged contexts; build them: {how}",
            bake.target.len()
        ));
        Ok(())
    }
}

/// Written beside and renamed: whole or not at all.
fn write_whole(file: &Path, bake: &bakefile::BakeFile) -> Result<()> {
    let text = serde_json::to_string_pretty(bake).expect("a bake file serializes") + "\n";
    let partial = file.with_extension("json.partial");
    std::fs::write(&partial, text)
        .and_then(|()| std::fs::rename(&partial, file))
        .with_context(|| format!("cannot write {}", file.display()))
}

/// The commands that build a bake file's targets.
fn how_to_bake(file: &Path, bake: &bakefile::BakeFile, no_named_contexts: bool) -> String {
    if no_named_contexts {
        let waves: Vec<String> = bake
            .group
            .keys()
            .filter(|g| *g != "default")
            .map(|g| format!("docker buildx bake -f {} --load {g}", file.display()))
            .collect();
        format!("bake the groups in order: {}", waves.join(" && "))
    } else {
        format!(
            "docker buildx bake -f {} --load (or --push, with --builder for a fleet)",
            file.display()
        )
    }
}
