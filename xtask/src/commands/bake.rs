//! `cargo xtask bake`: Maven and staging as `images` does them, then a docker-bake.json
//! for the builds instead of building, to hand them to a BuildKit fleet.

use std::path::Path;

use anyhow::{Result, bail};

use crate::bake::bakefile;
use crate::cli;
use crate::config::project::Project;
use crate::config::selection::Options;
use crate::facts::preflight::Purpose;
use crate::run::lock;
use crate::run::pipeline::{Pipeline, RunOptions};
use crate::scheduler::Jobs;
use crate::steps::action::Action;
use crate::steps::records::Recorded;

impl cli::Bake {
    pub fn run(self, project: &Project) -> Result<()> {
        let Project { config, ui, .. } = project;
        let _lock = lock::lock(&config.work_dir(), ui)?;
        // The builders that bake it start with nothing: every parent is a target.
        let options = Options {
            selection: self.images.clone(),
            no_cache: false,
            every_parent: true,
        };
        let mut pipeline = Pipeline::prepare(project, &options, Purpose::Run, |facts| {
            facts.local_images.clear();
            Ok(())
        })?;
        for step in &mut pipeline.plan.steps {
            if let Action::Build(b) = &step.action {
                step.title = format!("stage {}", b.reference);
            }
        }
        let how = RunOptions {
            force: false,
            keep_going: false,
            jobs: Jobs::for_this_host(),
            stage_only: true,
        };
        let ran = pipeline.run(Recorded::default(), &how)?;
        pipeline.refuse_if_interrupted("")?;
        let work = &pipeline.work;
        if let Some((id, message)) = pipeline.failures(&ran.reports).first() {
            bail!(
                "step {id} failed, no bake file written: {message}\nfull logs are in {}",
                work.join("logs").display()
            );
        }
        let plan = &pipeline.plan;
        let file = self.file.unwrap_or_else(|| work.join("docker-bake.json"));
        let bake = bakefile::of(plan, !self.no_named_contexts);
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
    fate_bundle::fsx::write_whole(file, text.as_bytes())
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
