//! Questions to the Docker engine (through the `docker` CLI).

use anyhow::{Context, Result, bail};

use crate::exec::{query, succeeds};
use crate::plan::Builder;

/// Checks that `docker` is on PATH and its daemon answers; returns the server version.
pub fn check_engine() -> Result<String> {
    which::which("docker").context(
        "`docker` is not on PATH: install Docker Engine (Debian: apt-get install docker.io) or add its directory to PATH",
    )?;
    match query("docker", &["version", "--format", "{{.Server.Version}}"]) {
        Ok(v) if !v.is_empty() => Ok(v),
        Ok(_) | Err(_) => {
            let host = std::env::var("DOCKER_HOST")
                .unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
            let why = query("docker", &["version"])
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default();
            bail!(
                "the Docker daemon at {host} does not answer: start it (systemctl start docker, or dockerd), check DOCKER_HOST, and that you may use its socket\n{why}"
            )
        }
    }
}

/// BuildKit when the buildx plugin is present, else the legacy builder.
pub fn builder() -> Builder {
    if succeeds("docker", &["buildx", "version"]) {
        Builder::BuildKit
    } else {
        Builder::Legacy
    }
}

/// ID of a local image, if present.
pub fn image_id(reference: &str) -> Option<String> {
    query(
        "docker",
        &["image", "inspect", "--format", "{{.Id}}", reference],
    )
    .ok()
}

/// ID and size in bytes of a local image.
pub fn image_id_and_size(reference: &str) -> Result<(String, u64)> {
    let out = query(
        "docker",
        &[
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{.Size}}",
            reference,
        ],
    )?;
    let (id, size) = out
        .split_once(' ')
        .context("unexpected docker image inspect output")?;
    Ok((id.to_string(), size.parse().unwrap_or(0)))
}
