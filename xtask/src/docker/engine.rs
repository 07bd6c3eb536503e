//! Questions to the Docker engine (the library's, and those of builds: the builder, the
//! buildx plugin, login) and the cleanup of what a run started, through the command
//! lines `argv` builds.

use anyhow::{Context, Result, bail};
pub use fate_bundle::docker::engine::{
    ImageStore, Server, answers, check, endpoint, image_id, image_store, inspect_images,
    inspect_images_answer,
};
use fate_bundle::process;
use xshell::Shell;

use crate::docker::argv::{self, Builder};

/// The builder that runs: `DOCKER_BUILDKIT` first, else BuildKit when the buildx plugin
/// is installed: found where the docker CLI looks for plugins (no process), else when
/// `docker buildx version` answers (a plugin dir set in the CLI's config.json).
pub fn builder(sh: &Shell) -> Result<Builder, String> {
    let switch = std::env::var("DOCKER_BUILDKIT").ok();
    let off = argv::choose_builder(switch.as_deref(), true) == Ok(Builder::Legacy);
    let buildx =
        !off && (buildx_plugin().is_some() || process::query(sh, &argv::buildx_version()).is_ok());
    argv::choose_builder(switch.as_deref(), buildx)
}

/// The buildx plugin the docker CLI runs, where the CLI's environment and config.json
/// tell it without a process (see [`argv::buildx_plugin`]).
pub fn buildx_plugin() -> Option<std::path::PathBuf> {
    let config = std::env::var_os("DOCKER_CONFIG").map(std::path::PathBuf::from);
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let cli_config = config
        .clone()
        .or_else(|| home.as_ref().map(|h| h.join(".docker")))
        .and_then(|dir| std::fs::read_to_string(dir.join("config.json")).ok());
    argv::buildx_plugin(
        &argv::buildx_plugin_paths(config.as_deref(), home.as_deref()),
        std::path::Path::is_file,
        cli_config.as_deref(),
    )
}

/// `docker login --password-stdin`: the password goes to the child's stdin only, never
/// into argv, logs or messages.
pub fn login(registry: &str, user: &str, password: &str) -> Result<()> {
    let (ok, said) =
        process::run_with_stdin(&argv::login(registry, user), &format!("{password}\n"))
            .context("cannot run docker login")?;
    if ok {
        return Ok(());
    }
    let said = said.replace(password, "***");
    let host = if registry.is_empty() {
        "Docker Hub"
    } else {
        registry
    };
    bail!(
        "docker login to {host} as {user} failed: {}; check the user and password (the password is read from stdin or --password-env VAR)",
        said.trim()
    )
}

/// After the engine stopped answering during a run (its marker file exists): removes the
/// build containers the crash left, then the marker.
pub fn sweep_after_crash(marker: &std::path::Path) -> Result<()> {
    if !marker.exists() {
        return Ok(());
    }
    let ids = process::query_anywhere(&argv::stopped_build_containers())?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        process::query_anywhere(&argv::remove_containers(&ids))
            .context("removing the build containers a crashed engine left")?;
    }
    std::fs::remove_file(marker).with_context(|| format!("cannot remove {}", marker.display()))
}

/// Removes containers carrying a label when dropped, once armed (a step started one), so
/// a failed or interrupted step leaves none behind (killing the docker client does not
/// stop its container). A run that started no container asks the engine nothing.
pub struct ContainerSweep {
    label: String,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl ContainerSweep {
    #[must_use]
    pub fn new(label: String) -> ContainerSweep {
        ContainerSweep {
            label,
            armed: std::sync::Arc::default(),
        }
    }

    /// What a step sets before it starts a container.
    #[must_use]
    pub fn trigger(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.armed.clone()
    }
}

impl Drop for ContainerSweep {
    fn drop(&mut self) {
        if !self.armed.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if let Ok(ids) = process::query_anywhere(&argv::containers_with_label(&self.label)) {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = process::query_anywhere(&argv::remove_containers(&ids));
            }
        }
    }
}

/// The image builder as a record names it: `BuildKit v0.13.2` (as `docker buildx
/// inspect` gives the engine's own; Debian's builds say `v0.0.0+unknown`), or the legacy
/// builder.
pub fn builder_description(sh: &Shell, builder: Builder) -> String {
    match builder {
        Builder::Legacy => "the legacy builder".to_string(),
        Builder::BuildKit => {
            let inspect = process::Command::new("docker", ["buildx", "inspect"]);
            let answer = process::query_stdout(sh, &inspect);
            let version = answer
                .lines()
                .find_map(|l| {
                    l.strip_prefix("BuildKit version:")
                        .or_else(|| l.strip_prefix("Buildkit:"))
                })
                .map_or("(version unknown)", str::trim);
            format!("BuildKit {version}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_store_is_read_from_the_driver_status() {
        let containerd =
            ImageStore::parse(r#"overlayfs [["driver-type","io.containerd.snapshotter.v1"]]"#);
        assert_eq!(containerd, ImageStore::Containerd("overlayfs".into()));
        assert!(containerd.holds_several_platforms());
        let graph = ImageStore::parse(r#"fuse-overlayfs [["Backing Filesystem","extfs"]]"#);
        assert_eq!(graph, ImageStore::GraphDriver("fuse-overlayfs".into()));
        assert!(!graph.holds_several_platforms());
    }
}
