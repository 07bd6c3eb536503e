//! Questions to the Docker engine and the cleanup of what a run started, through the
//! command lines `docker_argv` builds and the processes this module runs.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use xshell::Shell;

use crate::process;
use crate::process::docker_argv::{self, Builder, ImageInfo, LocalImages};

/// The engine that answered: its version and the platform it runs on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Server {
    pub version: String,
    /// `os/arch`, as image platforms are written.
    pub platform: String,
}

/// How the engine stores images: what decides image IDs, what `docker save` writes and
/// whether one tag can hold several platforms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageStore {
    /// A graph driver (overlay2, fuse-overlayfs, vfs, ...): one platform per tag, IDs are
    /// config digests.
    GraphDriver(String),
    /// The containerd image store (Docker 29+ and Docker Desktop by default): several
    /// platforms per tag, IDs are manifest or index digests.
    Containerd(String),
}

impl ImageStore {
    pub fn holds_several_platforms(&self) -> bool {
        matches!(self, ImageStore::Containerd(_))
    }

    /// Whether it keeps (and `docker save` writes) layers gzip-compressed.
    pub fn keeps_layers_compressed(&self) -> bool {
        matches!(self, ImageStore::Containerd(_))
    }

    pub fn describe(&self) -> String {
        match self {
            ImageStore::GraphDriver(driver) => format!("graph driver {driver}"),
            ImageStore::Containerd(snapshotter) => {
                format!("containerd image store (snapshotter {snapshotter})")
            }
        }
    }

    /// From `docker info`'s driver and driver status (see [`docker_argv::image_store`]).
    pub fn parse(info: &str) -> ImageStore {
        let (driver, status) = info.trim().split_once(' ').unwrap_or((info.trim(), ""));
        if status.contains("io.containerd.snapshotter") {
            ImageStore::Containerd(driver.to_string())
        } else {
            ImageStore::GraphDriver(driver.to_string())
        }
    }
}

/// How the engine stores images (one `docker info`).
pub fn image_store(sh: &Shell) -> Result<ImageStore> {
    process::query(sh, &docker_argv::image_store())
        .map(|info| ImageStore::parse(&info))
        .context("cannot ask the engine how it stores images (docker info)")
}

/// Checks that `docker` is on PATH and its daemon answers; returns its version and
/// platform.
pub fn check(sh: &Shell) -> Result<Server> {
    which::which("docker").context(
        "`docker` is not on PATH: install Docker Engine (Debian: apt-get install docker.io) or add its directory to PATH",
    )?;
    match process::query(sh, &docker_argv::server_version()) {
        Ok(v) if !v.is_empty() => {
            let (version, platform) = v.split_once(' ').unwrap_or((&v, ""));
            Ok(Server {
                version: version.to_string(),
                platform: platform.to_string(),
            })
        }
        answer => {
            let why = match answer {
                Err(e) => format!("{e:#}"),
                Ok(_) => "it gave no version".into(),
            };
            if process::interrupted() {
                bail!("{why}");
            }
            let host = endpoint();
            bail!(
                "the Docker daemon at {host} does not answer: start it (systemctl start docker, or dockerd), check DOCKER_HOST and the docker context (docker context ls), and that you may use its socket\n{why}"
            )
        }
    }
}

/// Whether the daemon answers now (from any thread).
pub fn answers() -> bool {
    process::query_anywhere(&docker_argv::server_version()).is_ok()
}

/// The daemon the CLI talks to: `DOCKER_HOST`, else the endpoint of the selected docker
/// context (`docker context use`, `DOCKER_CONTEXT`), else the default socket.
pub fn endpoint() -> String {
    if let Ok(host) = std::env::var("DOCKER_HOST")
        && !host.is_empty()
    {
        return host;
    }
    process::query_anywhere(&docker_argv::context_endpoint())
        .ok()
        .map(|out| out.trim().to_string())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into())
}

/// The builder that runs: `DOCKER_BUILDKIT` first, else BuildKit when the buildx plugin
/// is installed: found where the docker CLI looks for plugins (no process), else when
/// `docker buildx version` answers (a plugin dir set in the CLI's config.json).
pub fn builder(sh: &Shell) -> Result<Builder, String> {
    let switch = std::env::var("DOCKER_BUILDKIT").ok();
    let off = docker_argv::choose_builder(switch.as_deref(), true) == Ok(Builder::Legacy);
    let buildx = !off
        && (buildx_plugin().is_some()
            || process::query(sh, &docker_argv::buildx_version()).is_ok());
    docker_argv::choose_builder(switch.as_deref(), buildx)
}

/// The buildx plugin the docker CLI runs, where the CLI's environment and config.json
/// tell it without a process (see [`docker_argv::buildx_plugin`]).
pub fn buildx_plugin() -> Option<std::path::PathBuf> {
    let config = std::env::var_os("DOCKER_CONFIG").map(std::path::PathBuf::from);
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let cli_config = config
        .clone()
        .or_else(|| home.as_ref().map(|h| h.join(".docker")))
        .and_then(|dir| std::fs::read_to_string(dir.join("config.json")).ok());
    docker_argv::buildx_plugin(
        &docker_argv::buildx_plugin_paths(config.as_deref(), home.as_deref()),
        std::path::Path::is_file,
        cli_config.as_deref(),
    )
}

/// The local images among `references`, with ID and inputs label.
pub fn inspect_images(sh: &Shell, references: &[String]) -> BTreeMap<String, ImageInfo> {
    inspect_images_answer(sh, references).0
}

/// The local images among `references`, and whether the engine plainly answered (each
/// found or said missing; else it may not answer at all). Asked in two `docker` calls at
/// once when there are many: the CLI asks the engine one image after another, and on the
/// containerd store each answer costs the engine about 10 ms of walking the image's
/// content (so ten images are 0.1 s asked in turn).
pub fn inspect_images_answer(sh: &Shell, references: &[String]) -> (LocalImages, bool) {
    if references.is_empty() {
        return (BTreeMap::new(), true);
    }
    // Exits non-zero when some are missing, still listing the ones found.
    let ask = |sh: &Shell, refs: &[String]| match process::query_status(
        sh,
        &docker_argv::inspect(refs),
    ) {
        Ok((success, stdout, stderr)) => (
            docker_argv::parse_inspect(&stdout, refs),
            success || docker_argv::only_missing_images(&stderr),
        ),
        Err(_) => (BTreeMap::new(), false),
    };
    if references.len() < INSPECT_SPLIT_FROM {
        return ask(sh, references);
    }
    let (first, second) = references.split_at(references.len() / 2);
    let dir = sh.current_dir();
    std::thread::scope(|scope| {
        let other = scope.spawn(|| {
            let sh = Shell::new().expect("a shell for short commands");
            sh.change_dir(&dir);
            ask(&sh, second)
        });
        let (mut found, plain) = ask(sh, first);
        let (rest, plain_too) = other.join().expect("an image question panicked");
        found.extend(rest);
        (found, plain && plain_too)
    })
}

/// The ID of the local image `reference`, as `docker image inspect` gives it.
pub fn image_id(reference: &str) -> Result<String> {
    let refs = [reference.to_string()];
    let out = process::query_anywhere(&docker_argv::inspect(&refs))?;
    docker_argv::parse_inspect(&out, &refs)
        .remove(reference)
        .map(|info| info.id)
        .with_context(|| format!("the engine does not list {reference}"))
}

/// From this many references on, two calls at once.
const INSPECT_SPLIT_FROM: usize = 6;

/// `docker login --password-stdin`: the password goes to the child's stdin only, never
/// into argv, logs or messages.
pub fn login(registry: &str, user: &str, password: &str) -> Result<()> {
    let (ok, said) = process::run_with_stdin(
        &docker_argv::login(registry, user),
        &format!("{password}\n"),
    )
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
    let ids = process::query_anywhere(&docker_argv::stopped_build_containers())?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        process::query_anywhere(&docker_argv::remove_containers(&ids))
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
    pub fn new(label: String) -> ContainerSweep {
        ContainerSweep {
            label,
            armed: std::sync::Arc::default(),
        }
    }

    /// What a step sets before it starts a container.
    pub fn trigger(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.armed.clone()
    }
}

impl Drop for ContainerSweep {
    fn drop(&mut self) {
        if !self.armed.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if let Ok(ids) = process::query_anywhere(&docker_argv::containers_with_label(&self.label)) {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = process::query_anywhere(&docker_argv::remove_containers(&ids));
            }
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
