//! `cargo xtask push`: the images the image set marks for pushing (or those named),
//! parents first, each retried on transient failures; digests on stdout.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::config::Config;
use crate::config::project::Project;
use crate::docker::{argv, engine};
use crate::imageset::Image;
use crate::scheduler::Scheduled;
use crate::steps::records::Recorded;
use fate_bundle::process;
use fate_bundle::ui::StepLine;
use fate_bundle::ui::problems::Problems;

/// Pushing one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushStep {
    id: String,
    title: String,
    deps: Vec<usize>,
    /// The local reference, `${PREFIX}/<name>:<tag>`.
    source: String,
    /// What is pushed: the source, or `<registry>/<source>`.
    pub target: String,
    retries: u32,
    /// Bound of one attempt.
    timeout: Duration,
}

impl Scheduled for PushStep {
    fn id(&self) -> &str {
        &self.id
    }
    fn title(&self) -> &str {
        &self.title
    }
    fn deps(&self) -> &[usize] {
        &self.deps
    }
}

/// The digest the registry reports for a pushed image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest(pub String);

/// Every image to push must be built, by this tool, from its sources.
pub fn check_built(project: &Project, images: &[&Image]) -> Result<()> {
    let references: Vec<String> = images.iter().map(|i| project.config.reference(i)).collect();
    let present = engine::inspect_images(&project.sh, &references);
    let mut problems = Problems::new("images to push are not built");
    for (image, reference) in images.iter().zip(&references) {
        if !present.contains_key(reference) {
            problems.push(format!(
                "{reference} is missing; build it: cargo xtask images {}",
                image.name
            ));
        }
    }
    let recorded = Recorded::read(&project.config.work_dir());
    let found = images
        .iter()
        .zip(&references)
        .filter_map(|(i, r)| present.get(r).map(|info| (i.name.as_str(), r, info)));
    recorded.check(found, &mut problems);
    problems.into_result()
}

/// One push step per image, each after its parents' pushes; `bounds` are the retries
/// and the time bound of each attempt.
#[must_use]
pub fn push_steps(
    config: &Config,
    images: &[&Image],
    registry: &str,
    (retries, timeout): (u32, Duration),
) -> Vec<PushStep> {
    let mut steps: Vec<PushStep> = Vec::new();
    let mut index_of: BTreeMap<&str, usize> = BTreeMap::new();
    for image in images {
        let source = config.reference(image);
        let target = if registry.is_empty() {
            source.clone()
        } else {
            format!("{registry}/{source}")
        };
        let deps = image
            .parents
            .iter()
            .filter_map(|p| index_of.get(p.as_str()).copied())
            .collect();
        index_of.insert(&image.name, steps.len());
        steps.push(PushStep {
            id: format!("push-{}", image.name),
            title: format!("push {target}"),
            deps,
            source,
            target,
            retries,
            timeout,
        });
    }
    steps
}

/// Pushes one image: tags it for the registry, retries transient failures with backoff,
/// and returns the digest the registry reports.
pub fn push_with_retries(step: &PushStep, log: &Path, line: &StepLine) -> Result<Digest> {
    if step.source != step.target {
        process::run_captured(&argv::tag(&step.source, &step.target))?;
    }
    let _untag = Untag(step);
    let command = argv::push(&step.target);
    let mut attempt = 0;
    loop {
        let Err(e) = process::run_logged_within(&command, log, line, Some(step.timeout)) else {
            let text = std::fs::read_to_string(log)?;
            return digest_of(&text)
                .map(Digest)
                .with_context(|| format!("docker push printed no digest (see {})", log.display()));
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let failure = if e.downcast_ref::<process::TimedOut>().is_some() {
            Failure::Transient
        } else {
            classify(&text)
        };
        match failure {
            Failure::Auth => bail!(
                "the registry refused {} (not logged in, wrong credentials or no permission); log in with `cargo xtask push --login --user USER` (password on stdin or --password-env VAR) or `docker login`; log: {}",
                step.target,
                log.display()
            ),
            Failure::Transient if attempt < step.retries && !process::interrupted() => {
                attempt += 1;
                let wait = Duration::from_secs(1 << (attempt - 1).min(5));
                line.progress(&format!(
                    "transient failure; retry {attempt} of {} in {wait:?}",
                    step.retries
                ));
                process::sleep_unless_interrupted(wait);
            }
            Failure::Transient => {
                return Err(e.context(format!(
                    "pushing {} failed after {} attempts (each bounded by --timeout {} s); is the registry up and reachable?",
                    step.target,
                    attempt + 1,
                    step.timeout.as_secs()
                )));
            }
            Failure::UntrustedCertificate => bail!("{}", untrusted_certificate(&step.target, log)),
            Failure::Other => return Err(e),
        }
    }
}

/// What to do when the engine does not trust the registry's TLS certificate (one it
/// reaches on an address other than loopback, which Docker always trusts).
fn untrusted_certificate(target: &str, log: &Path) -> String {
    let registry = target.split('/').next().unwrap_or(target);
    format!(
        "the Docker engine does not trust the TLS certificate of the registry {registry} (self-signed, or signed by a CA it does not know), so it refused to push {target}: put the CA's certificate (or the registry's own, if self-signed) in /etc/docker/certs.d/{registry}/ca.crt on the engine's host (no restart needed), or, for a test registry only, add \"{registry}\" to \"insecure-registries\" in /etc/docker/daemon.json and restart dockerd; log: {}",
        log.display()
    )
}

/// Removes the registry tag made for pushing (the image keeps its own tag).
struct Untag<'a>(&'a PushStep);

impl Drop for Untag<'_> {
    fn drop(&mut self) {
        if self.0.source != self.0.target {
            let _ = process::run_captured(&argv::untag(&self.0.target));
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Failure {
    Auth,
    Transient,
    /// The engine does not trust the registry's certificate: no retry mends that.
    UntrustedCertificate,
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
        "deadline exceeded",
        "blob upload unknown",
        "eof",
        "500 internal server error",
        "502 bad gateway",
        "503 service unavailable",
        "504 gateway timeout",
        "no such host",
    ];
    let untrusted = [
        "x509: certificate signed by unknown authority",
        "tls: failed to verify certificate",
        "certificate is not trusted",
        "x509: certificate is valid for",
        "certificate relies on legacy common name",
    ];
    if untrusted.iter().any(|p| text.contains(p)) {
        Failure::UntrustedCertificate
    } else if auth.iter().any(|p| text.contains(p)) {
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
pub fn read_password(env: Option<&str>) -> Result<String> {
    let password = if let Some(var) = env {
        std::env::var(var).with_context(|| {
            format!("--password-env {var}: that environment variable is not set")
        })?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the registry password from stdin")?;
        line
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
            classify("Get \"https://h/v2/\": context deadline exceeded"),
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
        assert_eq!(
            classify(
                "Get \"https://198.18.0.1:5000/v2/\": tls: failed to verify certificate: x509: certificate signed by unknown authority"
            ),
            Failure::UntrustedCertificate,
            "not retried as a connection failure"
        );
    }

    #[test]
    fn digest_is_read_from_push_output() {
        let out = "232f: Pushed\nt1: digest: sha256:f62e size: 527\n";
        assert_eq!(digest_of(out).as_deref(), Some("sha256:f62e"));
        assert_eq!(digest_of("nothing"), None);
    }
}
