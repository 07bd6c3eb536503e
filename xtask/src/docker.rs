//! Questions to the Docker engine (through the `docker` CLI).

use anyhow::{Context, Result, bail};

use std::collections::BTreeMap;

use crate::exec::{query, query_stdout, succeeds};
use crate::plan::{Builder, ImageInfo, LABEL_INPUTS};

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

/// The local images among `references`, with ID and inputs label: one `docker` call.
pub fn inspect_images(references: &[String]) -> BTreeMap<String, ImageInfo> {
    if references.is_empty() {
        return BTreeMap::new();
    }
    let format = format!(
        "{{{{json .RepoTags}}}} {{{{.Id}}}} {{{{.Size}}}} {{{{with .Config}}}}{{{{with .Labels}}}}{{{{index . \"{LABEL_INPUTS}\"}}}}{{{{end}}}}{{{{end}}}}"
    );
    let mut args = vec!["image", "inspect", "--format", &format];
    args.extend(references.iter().map(String::as_str));
    // Exits non-zero when some are missing, still listing the ones found.
    let out = query_stdout("docker", &args);
    let mut found = BTreeMap::new();
    for line in out.lines() {
        let mut fields = line.splitn(4, ' ');
        let (Some(tags), Some(id), Some(size)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let inputs = fields
            .next()
            .filter(|l| !l.is_empty() && *l != "<no value>")
            .map(str::to_string);
        for reference in references
            .iter()
            .filter(|r| tags.contains(&format!("\"{r}\"")))
        {
            found.insert(
                reference.clone(),
                ImageInfo {
                    id: id.to_string(),
                    inputs: inputs.clone(),
                    size: size.parse().unwrap_or(0),
                },
            );
        }
    }
    found
}
