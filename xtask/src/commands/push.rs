//! `cargo xtask push`: the images the image set marks for pushing (or those named), each
//! checked to be the one this tool built, pushed with retries, its digest printed.

use std::time::Duration;

use anyhow::{Result, bail};
use fate_bundle::docker::reference;

use crate::cli;
use crate::config::Config;
use crate::config::project::Project;
use crate::docker::engine;
use crate::imageset::Image;
use crate::push::{self, Digest};
use crate::scheduler::{Done, Executor, Jobs, Outcome};

impl cli::Push {
    pub fn run(self, project: &Project) -> Result<()> {
        let Project {
            set,
            config,
            ui,
            sh,
        } = project;
        let registry = self
            .registry
            .clone()
            .unwrap_or_else(|| config.registry.clone());
        if !registry.is_empty() {
            reference::check_registry(&registry).map_err(|why| {
                anyhow::anyhow!("--registry {registry:?} {why}; give HOST or HOST:PORT")
            })?;
        }
        let images: Vec<&Image> = if self.images.is_empty() {
            set.build_order()
                .into_iter()
                .filter(|i| self.all || i.push)
                .collect()
        } else {
            set.select(&self.images)?
        };
        engine::check(sh)?;
        push::check_built(project, &images)?;
        if self.login {
            self.log_in(config, &registry)?;
        }
        let bounds = (self.retries, Duration::from_secs(self.timeout));
        let steps = push::push_steps(config, &images, &registry, bounds);
        let executor = Executor {
            ui: ui.clone(),
            log_dir: config.work_dir().join("logs"),
            // One image's failure must not hide the others' outcomes.
            keep_going: true,
            jobs: Jobs::exactly(self.jobs.map_or(1, usize::from)),
        };
        let reports = executor.run(&steps, |step, log, line| {
            push::push_with_retries(step, log, line).map(Done::Ran)
        });
        let mut failed = Vec::new();
        for (step, report) in steps.iter().zip(&reports) {
            match &report.outcome {
                Outcome::Ran(Digest(digest)) => {
                    println!("{}@{digest}", step.target);
                    eprintln!("pushed   {} {digest}", step.target);
                }
                Outcome::Failed(_) => {
                    eprintln!("FAILED   {} (the reason is above)", step.target);
                    failed.push(step.target.clone());
                }
                Outcome::NotRun(why) => {
                    eprintln!("skipped  {}: {why}", step.target);
                    failed.push(step.target.clone());
                }
                Outcome::UpToDate => {}
            }
        }
        if !failed.is_empty() {
            bail!(
                "{} of {} pushes failed: {}",
                failed.len(),
                steps.len(),
                failed.join(", ")
            );
        }
        Ok(())
    }

    fn log_in(&self, config: &Config, registry: &str) -> Result<()> {
        let user = self
            .user
            .clone()
            .unwrap_or_else(|| config.registry_user.clone());
        if user.is_empty() {
            bail!("--login needs a user: pass --user USER or set REGISTRY_USER in .env");
        }
        let password = push::read_password(self.password_env.as_deref())?;
        engine::login(registry, &user, &password)
    }
}
