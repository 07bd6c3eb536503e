//! `cargo xtask push`: the images the image set marks for pushing (or those named),
//! parents first, each retried on transient failures; digests on stdout.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::Project;
use crate::cli;
use crate::exec;
use crate::executor::{Executor, Outcome};
use crate::plan::{self, Action, Command, Plan, PushStep};
use crate::problems::Problems;
use crate::reference;

impl cli::Push {
    pub fn run(self, project: &Project) -> Result<()> {
        let Project { set, config, ui } = project;
        let registry = self
            .registry
            .clone()
            .unwrap_or_else(|| config.value("REGISTRY").to_string());
        if !registry.is_empty() {
            reference::check_registry(&registry).map_err(|why| {
                anyhow::anyhow!("--registry {registry:?} {why}; give HOST or HOST:PORT")
            })?;
        }
        let images: Vec<_> = if self.images.is_empty() {
            set.build_order()
                .into_iter()
                .filter(|i| self.all || i.push)
                .collect()
        } else {
            set.select(&self.images)?
        };
        crate::docker::check_engine()?;
        let references: Vec<String> = images.iter().map(|i| plan::reference(config, i)).collect();
        let present = crate::docker::inspect_images(&references);
        let mut missing = Problems::new("images to push are not built");
        for (image, reference) in images.iter().zip(&references) {
            if !present.contains_key(reference) {
                missing.push(format!(
                    "{reference} is missing; build it: cargo xtask images {}",
                    image.name
                ));
            }
        }
        missing.into_result()?;

        if self.login {
            let user = self
                .user
                .clone()
                .unwrap_or_else(|| config.value("REGISTRY_USER").to_string());
            if user.is_empty() {
                bail!("--login needs a user: pass --user USER or set REGISTRY_USER in .env");
            }
            let password = read_password(self.password_env.as_deref())?;
            exec::docker_login(&registry, &user, &password)?;
        }

        let plan = push_plan(config, &images, &registry, self.retries);
        let executor = Executor {
            ui: ui.clone(),
            log_dir: config.work_dir().join("logs"),
            // One image's failure must not hide the others' outcomes.
            keep_going: true,
            force: false,
            jobs: self.jobs.map(usize::from).unwrap_or(1),
        };
        let reports = executor.run(&plan, present);
        let mut failed = Vec::new();
        for (step, report) in plan.steps.iter().zip(&reports) {
            let Action::Push(p) = &step.action else {
                continue;
            };
            match &report.outcome {
                Outcome::Done(digest) => {
                    println!("{}@{digest}", p.target);
                    eprintln!("pushed   {} {digest}", p.target);
                }
                Outcome::Failed(_) => {
                    eprintln!("FAILED   {} (the reason is above)", p.target);
                    failed.push(p.target.clone());
                }
                Outcome::Skipped(why) => {
                    eprintln!("skipped  {}: {why}", p.target);
                    failed.push(p.target.clone());
                }
                Outcome::UpToDate => {}
            }
        }
        if !failed.is_empty() {
            bail!(
                "{} of {} pushes failed: {}",
                failed.len(),
                plan.steps.len(),
                failed.join(", ")
            );
        }
        Ok(())
    }
}

/// One push step per image, in build order, each after its parents' pushes.
fn push_plan(
    config: &crate::config::Config,
    images: &[&crate::imageset::Image],
    registry: &str,
    retries: u32,
) -> Plan {
    let mut plan = Plan::default();
    for image in images {
        let source = plan::reference(config, image);
        let target = if registry.is_empty() {
            source.clone()
        } else {
            format!("{registry}/{source}")
        };
        let deps = image
            .parents
            .iter()
            .filter_map(|p| plan.steps.iter().position(|s| s.id == format!("push-{p}")))
            .collect();
        plan.images.push(image.name.clone());
        plan.steps.push(plan::Step {
            id: format!("push-{}", image.name),
            title: format!("push {target}"),
            deps,
            action: Action::Push(PushStep {
                command: Command::new("docker", ["push", target.as_str()]),
                source,
                target,
                retries,
            }),
        });
    }
    plan
}

/// Pushes one image: tags it for the registry, retries transient failures with backoff,
/// and returns the digest the registry reports.
pub fn push_with_retries(
    step: &PushStep,
    log: &std::path::Path,
    line: &crate::ui::StepLine,
) -> Result<String> {
    if step.source != step.target {
        exec::query("docker", &["tag", &step.source, &step.target])?;
    }
    let _untag = Untag(step);
    let mut attempt = 0;
    loop {
        match exec::run_logged(&step.command, log, line) {
            Ok(()) => {
                let text = std::fs::read_to_string(log)?;
                return digest_of(&text).with_context(|| {
                    format!("docker push printed no digest (see {})", log.display())
                });
            }
            Err(e) => {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                match classify(&text) {
                    Failure::Auth => bail!(
                        "the registry refused {} (not logged in, wrong credentials or no permission); log in with `cargo xtask push --login --user USER` (password on stdin or --password-env VAR) or `docker login`; log: {}",
                        step.target,
                        log.display()
                    ),
                    Failure::Transient if attempt < step.retries && !exec::interrupted() => {
                        attempt += 1;
                        let wait = Duration::from_secs(1 << (attempt - 1).min(5));
                        line.progress(&format!(
                            "transient failure; retry {attempt} of {} in {wait:?}",
                            step.retries
                        ));
                        std::thread::sleep(wait);
                    }
                    Failure::Transient => {
                        return Err(e.context(format!(
                            "pushing {} failed after {} attempts; is the registry up and reachable?",
                            step.target,
                            attempt + 1
                        )));
                    }
                    Failure::Other => return Err(e),
                }
            }
        }
    }
}

/// Removes the registry tag made for pushing (the image keeps its own tag).
struct Untag<'a>(&'a PushStep);

impl Drop for Untag<'_> {
    fn drop(&mut self) {
        if self.0.source != self.0.target {
            let _ = exec::query("docker", &["rmi", &self.0.target]);
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Failure {
    Auth,
    Transient,
    Other,
}

/// What kind of failure a `docker push` output shows.
fn classify(output: &str) -> Failure {
    let text = output.to_ascii_lowercase();
    let auth = [
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
        "denied",
        "forbidden",
    ];
    let transient = [
        "connection refused",
        "connection reset",
        "timeout",
        "timed out",
        "blob upload unknown",
        "eof",
        "500 internal server error",
        "502 bad gateway",
        "503 service unavailable",
        "504 gateway timeout",
        "no such host",
    ];
    if auth.iter().any(|p| text.contains(p)) {
        Failure::Auth
    } else if transient.iter().any(|p| text.contains(p)) {
        Failure::Transient
    } else {
        Failure::Other
    }
}

/// `<tag>: digest: sha256:... size: N` -> `sha256:...`.
fn digest_of(output: &str) -> Option<String> {
    output.lines().rev().find_map(|l| {
        let rest = l.split_once("digest: ")?.1;
        Some(rest.split_whitespace().next()?.to_string())
    })
}

/// The registry password: from the named environment variable, else stdin. Never echoed.
fn read_password(env: Option<&str>) -> Result<String> {
    let password = match env {
        Some(var) => std::env::var(var).with_context(|| {
            format!("--password-env {var}: that environment variable is not set")
        })?,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the registry password from stdin")?;
            line
        }
    };
    let password = password.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!(
            "the registry password is empty: pipe it on stdin or name a variable with --password-env"
        );
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified() {
        assert_eq!(
            classify(
                "Get \"http://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused"
            ),
            Failure::Transient
        );
        assert_eq!(
            classify("blob upload unknown to registry"),
            Failure::Transient
        );
        assert_eq!(
            classify("received unexpected HTTP status: 503 Service Unavailable"),
            Failure::Transient
        );
        assert_eq!(classify("no basic auth credentials"), Failure::Auth);
        assert_eq!(
            classify("denied: requested access to the resource is denied"),
            Failure::Auth
        );
        assert_eq!(
            classify("An image does not exist locally with the tag: x"),
            Failure::Other
        );
    }

    #[test]
    fn digest_is_read_from_push_output() {
        let out = "232f: Pushed\nt1: digest: sha256:f62e size: 527\n";
        assert_eq!(digest_of(out).as_deref(), Some("sha256:f62e"));
        assert_eq!(digest_of("nothing"), None);
    }
}
