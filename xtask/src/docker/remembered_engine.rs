//! The engine a FATE root's runs last found at an endpoint, remembered in its work
//! directory: a run that knows the endpoint does not ask `docker version` (a docker
//! process, a tenth of a no-op's time), as its question about the images says whether the
//! engine answers (see `argv::only_missing_images`). What a run takes from it is the
//! engine's platform, which does not change at an endpoint; dry runs and `doctor`, which
//! print the version, always ask.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::engine::Server;

/// Where it is kept, in the work directory.
pub const FILE: &str = "engine.json";

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Remembered {
    endpoint: String,
    version: String,
    platform: String,
}

/// What names the daemon the CLI talks to, without asking it: `DOCKER_HOST`, else
/// `DOCKER_CONTEXT`, else the current context of the CLI's config.
#[must_use]
pub fn endpoint_key(
    docker_host: Option<&str>,
    docker_context: Option<&str>,
    cli_config: Option<&str>,
) -> String {
    if let Some(host) = docker_host.filter(|h| !h.is_empty()) {
        return format!("host {host}");
    }
    if let Some(context) = docker_context.filter(|c| !c.is_empty()) {
        return format!("context {context}");
    }
    let current = cli_config
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .and_then(|config| config["currentContext"].as_str().map(String::from))
        .filter(|c| !c.is_empty() && c != "default");
    match current {
        Some(context) => format!("context {context}"),
        None => "default".into(),
    }
}

/// This process's endpoint key: what names the engine it talks to (see [`endpoint_key`]).
#[must_use]
pub fn this_endpoint() -> String {
    let config_dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
    let cli_config = config_dir.and_then(|d| std::fs::read_to_string(d.join("config.json")).ok());
    endpoint_key(
        std::env::var("DOCKER_HOST").ok().as_deref(),
        std::env::var("DOCKER_CONTEXT").ok().as_deref(),
        cli_config.as_deref(),
    )
}

/// The engine last found at this endpoint, if any.
#[must_use]
pub fn recall(work: &Path) -> Option<Server> {
    let bytes = std::fs::read(work.join(FILE)).ok()?;
    let remembered: Remembered = serde_json::from_slice(&bytes).ok()?;
    let here = remembered.endpoint == this_endpoint() && !remembered.platform.is_empty();
    here.then_some(Server {
        version: remembered.version,
        platform: remembered.platform,
    })
}

/// Remembers the engine that answered at this endpoint (best effort: a run that cannot
/// write it asks again next time). Callers write it when it differs from what they recalled.
pub fn remember(work: &Path, server: &Server) {
    let remembered = Remembered {
        endpoint: this_endpoint(),
        version: server.version.clone(),
        platform: server.platform.clone(),
    };
    if !work.is_dir() {
        return;
    }
    let text = serde_json::to_vec(&remembered).expect("it serializes");
    let _ = fate_bundle::fsx::write_whole(&work.join(FILE), &text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_named_as_the_cli_chooses_it() {
        let config = r#"{"auths":{},"currentContext":"remote"}"#;
        assert_eq!(
            endpoint_key(Some("unix:///s.sock"), Some("x"), Some(config)),
            "host unix:///s.sock"
        );
        assert_eq!(endpoint_key(Some(""), Some("x"), Some(config)), "context x");
        assert_eq!(endpoint_key(None, None, Some(config)), "context remote");
        assert_eq!(
            endpoint_key(None, None, Some(r#"{"currentContext":"default"}"#)),
            "default"
        );
        assert_eq!(endpoint_key(None, None, Some("not json")), "default");
        assert_eq!(endpoint_key(None, None, None), "default");
    }

    #[test]
    fn an_engine_is_recalled_at_its_endpoint_only() {
        let work = tempfile::tempdir().unwrap();
        assert_eq!(recall(work.path()), None);
        let server = Server {
            version: "26.1.5".into(),
            platform: "linux/amd64".into(),
        };
        remember(work.path(), &server);
        assert_eq!(recall(work.path()), Some(server));
        // Another endpoint: not recalled.
        let other = Remembered {
            endpoint: "host tcp://elsewhere:2376".into(),
            version: "20.10".into(),
            platform: "linux/arm64".into(),
        };
        std::fs::write(work.path().join(FILE), serde_json::to_vec(&other).unwrap()).unwrap();
        assert_eq!(recall(work.path()), None);
        std::fs::write(work.path().join(FILE), "{").unwrap();
        assert_eq!(recall(work.path()), None);
    }
}
