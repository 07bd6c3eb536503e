//! Questions to the Docker engine: whether it answers, where, its version and platform,
//! how it stores images, and which images it holds.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use xshell::Shell;

use crate::docker::images::{self, ImageInfo, LocalImages};
use crate::process;

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
    #[must_use]
    pub fn holds_several_platforms(&self) -> bool {
        matches!(self, ImageStore::Containerd(_))
    }

    /// Whether it keeps (and `docker save` writes) layers gzip-compressed.
    #[must_use]
    pub fn keeps_layers_compressed(&self) -> bool {
        matches!(self, ImageStore::Containerd(_))
    }

    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            ImageStore::GraphDriver(driver) => format!("graph driver {driver}"),
            ImageStore::Containerd(snapshotter) => {
                format!("containerd image store (snapshotter {snapshotter})")
            }
        }
    }

    /// From `docker info`'s driver and driver status (see [`images::image_store`]).
    #[must_use]
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
    process::query(sh, &images::image_store())
        .map(|info| ImageStore::parse(&info))
        .context("cannot ask the engine how it stores images (docker info)")
}

/// Checks that `docker` is on PATH and its daemon answers; returns its version and
/// platform.
pub fn check(sh: &Shell) -> Result<Server> {
    which::which("docker").context(
        "`docker` is not on PATH: install Docker Engine (Debian: apt-get install docker.io) or add its directory to PATH",
    )?;
    match process::query(sh, &images::server_version()) {
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
            if let Some(refused) = socket_refused(&host, &why) {
                bail!("{refused}");
            }
            bail!(
                "the Docker daemon at {host} does not answer: start it (systemctl start docker, or dockerd), check DOCKER_HOST and the docker context (docker context ls), and that you may use its socket\n{why}"
            )
        }
    }
}

/// When the daemon is up but its socket refused this user: who may use the socket and
/// how to become one of them.
fn socket_refused(host: &str, why: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let socket = host.strip_prefix("unix://")?;
    if !why.contains("permission denied") {
        return None;
    }
    let meta = std::fs::metadata(socket).ok()?;
    let name_of = |file: &str, id: u32| {
        std::fs::read_to_string(file)
            .ok()
            .and_then(|text| {
                text.lines()
                    .map(|l| l.split(':').collect::<Vec<_>>())
                    .find(|f| f.len() > 2 && f[2] == id.to_string())
                    .map(|f| f[0].to_string())
            })
            .unwrap_or_else(|| id.to_string())
    };
    let (owner, group) = (
        name_of("/etc/passwd", meta.uid()),
        name_of("/etc/group", meta.gid()),
    );
    Some(format!(
        "the Docker daemon's socket {socket} (owner {owner}, group {group}) refuses this user: the daemon is up, but only {owner} and the members of {group} may use it; join the group (sudo usermod -aG {group} \"$USER\", then log in again) or run the command with sudo"
    ))
}

/// Whether the daemon answers now (from any thread).
#[must_use]
pub fn answers() -> bool {
    process::query_anywhere(&images::server_version()).is_ok()
}

/// The daemon the CLI talks to: `DOCKER_HOST`, else the endpoint of the selected docker
/// context (`docker context use`, `DOCKER_CONTEXT`), else the default socket.
#[must_use]
pub fn endpoint() -> String {
    if let Ok(host) = std::env::var("DOCKER_HOST")
        && !host.is_empty()
    {
        return host;
    }
    process::query_anywhere(&images::context_endpoint())
        .ok()
        .map(|out| out.trim().to_string())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into())
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
    let ask = |sh: &Shell, refs: &[String]| match process::query_status(sh, &images::inspect(refs))
    {
        Ok((success, stdout, stderr)) => (
            images::parse_inspect(&stdout, refs),
            success || images::only_missing_images(&stderr),
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
    let out = process::query_anywhere(&images::inspect(&refs))?;
    images::parse_inspect(&out, &refs)
        .remove(reference)
        .map(|info| info.id)
        .with_context(|| format!("the engine does not list {reference}"))
}

/// From this many references on, two calls at once.
const INSPECT_SPLIT_FROM: usize = 6;
