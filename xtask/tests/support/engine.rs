//! The two Docker engines the tests run on: the system's (Docker 20.10, a graph driver)
//! and a private Docker 26 with the containerd image store (containerd-engine.sh), the
//! store Docker 29+ and Docker Desktop use by default. A test that concerns both is one
//! function taking an [`Engine`], run once per engine by [`on_both_engines!`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use std::fs;

use super::{ENGINE, workspace};

/// How an engine stores images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// IDs are config digests; one platform per tag.
    GraphDriver,
    /// IDs are manifest or index digests; several platforms per tag.
    Containerd,
}

/// One engine: where its socket is, and for the private one the network namespace its
/// registries must run in.
#[derive(Clone, Debug)]
pub struct Engine {
    pub name: &'static str,
    /// `DOCKER_HOST` for it; `None`: the one the test process was given.
    host: Option<String>,
    /// The dockerd whose network namespace holds the engine's loopback.
    netns_pid: Option<u32>,
    pub store: Store,
}

impl Engine {
    /// The system's engine (Docker 20.10 with a graph driver on this machine and in CI).
    pub fn system() -> Engine {
        Engine {
            name: "system",
            host: None,
            netns_pid: None,
            store: Store::GraphDriver,
        }
    }

    /// The private Docker 26 with the containerd image store, started once per machine
    /// (it stays up for later test runs; `containerd-engine.sh stop DIR` ends it). A failed
    /// download or start fails the test with its reason.
    pub fn containerd() -> Engine {
        static STARTED: std::sync::OnceLock<(String, u32)> = std::sync::OnceLock::new();
        let (host, pid) = STARTED.get_or_init(|| {
            let dir = state_dir();
            let script = workspace().join("xtask/tests/support/containerd-engine.sh");
            let out = Command::new(&script)
                .arg("start")
                .arg(&dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "the containerd-store tests need Docker 26, and {} could not start it:\n{}{}",
                script.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let host = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let pid = std::fs::read_to_string(dir.join("pid"))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            (host, pid)
        });
        Engine {
            name: "containerd",
            host: Some(host.clone()),
            netns_pid: Some(*pid),
            store: Store::Containerd,
        }
    }

    /// Points `c` at this engine.
    pub fn apply(&self, c: &mut Command) {
        if let Some(host) = &self.host {
            c.env("DOCKER_HOST", host);
        }
    }

    /// The process whose network namespace the engine runs in, if not the host's.
    pub fn netns(&self) -> Option<u32> {
        self.netns_pid
    }

    /// `program` run where this engine's loopback is (its network namespace).
    pub fn near(&self, program: &str) -> Command {
        match self.netns_pid {
            Some(pid) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/proc/{pid}/ns/net")).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    /// `docker` against this engine.
    pub fn docker_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.args(args);
        self.apply(&mut c);
        c
    }

    /// Runs `docker args`, which must succeed; its trimmed stdout.
    pub fn docker(&self, args: &[&str]) -> String {
        let out = self.docker_command(args).output().unwrap();
        assert!(
            out.status.success(),
            "docker {args:?} on the {} engine: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs `docker args` as it may end.
    pub fn docker_output(&self, args: &[&str]) -> Output {
        self.docker_command(args).output().unwrap()
    }

    /// The engine's version, e.g. `26.1.5+dfsg1`.
    pub fn version(&self) -> String {
        self.docker(&["version", "--format", "{{.Server.Version}}"])
    }

    /// An image's file system, unpacked into `dest` (docker create + export).
    pub fn export_image(&self, reference: &str, dest: &Path) {
        let id = self.docker(&["create", reference, "/nonexistent"]);
        std::fs::create_dir_all(dest).unwrap();
        let mut export = Command::new("sh");
        export
            .arg("-c")
            .arg("docker export \"$1\" | tar -x -C \"$2\"")
            .args(["sh", &id])
            .arg(dest);
        self.apply(&mut export);
        let export = export.output().unwrap();
        self.docker(&["rm", &id]);
        assert!(
            export.status.success(),
            "export {reference}: {}",
            String::from_utf8_lossy(&export.stderr)
        );
    }

    /// Every file of an image: path -> (mode and link target or content).
    pub fn image_files(&self, reference: &str, dest: &Path) -> BTreeMap<String, String> {
        use std::os::unix::fs::PermissionsExt;
        self.export_image(reference, dest);
        walkdir::WalkDir::new(dest)
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.path() != dest.join(".dockerenv"))
            .map(|e| {
                let rel = e.path().strip_prefix(dest).unwrap().display().to_string();
                let ft = e.file_type();
                let what = if ft.is_symlink() {
                    format!("-> {}", std::fs::read_link(e.path()).unwrap().display())
                } else if ft.is_file() {
                    let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
                    format!("{mode:o} {:?}", std::fs::read(e.path()).unwrap())
                } else {
                    "dir".into()
                };
                (rel, what)
            })
            .collect()
    }

    /// An image's labels, without the time of its build.
    pub fn labels(&self, reference: &str) -> BTreeMap<String, String> {
        let json = self.docker(&[
            "image",
            "inspect",
            "--format",
            "{{json .Config.Labels}}",
            reference,
        ]);
        let mut labels: BTreeMap<String, String> = serde_json::from_str(&json).unwrap();
        labels.remove("org.opencontainers.image.created");
        labels
    }

    pub fn label(&self, reference: &str, key: &str) -> String {
        self.docker(&[
            "image",
            "inspect",
            "--format",
            &format!("{{{{index .Config.Labels \"{key}\"}}}}"),
            reference,
        ])
    }

    /// Removes the image `reference` (while no other test builds: images of the example
    /// are the same in every test, so their layers are shared with others' builds).
    pub fn remove_image(&self, reference: &str) {
        let _exclusive = ENGINE
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.docker(&["rmi", reference]);
    }

    /// Empties the engine's build cache (while no other test builds), so that what a
    /// build reuses must come from elsewhere.
    pub fn prune_build_cache(&self) {
        let _exclusive = ENGINE
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut c = self.docker_command(&["builder", "prune", "--all", "--force"]);
        super::Builder::BuildKit.apply(&mut c);
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Imports `reference`: an image holding only this host's `sleep` and the C library
    /// it needs, so that a `RUN` step can last (nothing can be pulled).
    pub fn import_sleep_rootfs(&self, reference: &str) {
        let import = format!(
            "tar -chf - -C / usr/bin/sleep lib/x86_64-linux-gnu/libc.so.6 lib64/ld-linux-x86-64.so.2 | docker import - {reference}"
        );
        let mut c = Command::new("sh");
        c.args(["-ec", &import]);
        self.apply(&mut c);
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A second Docker engine on a private socket, in its own network namespace (started
/// plainly it would take over the running engine's bridge), killed and restarted by a test.
pub struct PrivateEngine {
    child: std::process::Child,
    dir: PathBuf,
}

impl PrivateEngine {
    pub fn start(dir: &Path) -> PrivateEngine {
        fs::create_dir_all(dir).unwrap();
        // Its own (empty) configuration, not the host engine's /etc/docker/daemon.json.
        fs::write(dir.join("daemon.json"), "{}").unwrap();
        let log = fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new("unshare")
            .arg("--net")
            .arg("dockerd")
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
            .args([
                "--storage-driver",
                "vfs",
                "--iptables=false",
                "--bridge=none",
            ])
            .arg("--data-root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut engine = PrivateEngine {
            child,
            dir: dir.to_path_buf(),
        };
        let started = Instant::now();
        while !engine.docker(&["version"]).status.success() {
            assert!(
                started.elapsed() < Duration::from_mins(1)
                    && engine.child.try_wait().unwrap().is_none(),
                "the private engine did not start: {}",
                fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        engine
    }

    /// It as an [`Engine`] (a graph-driver engine).
    pub fn engine(&self) -> Engine {
        Engine {
            name: "private",
            host: Some(self.host()),
            netns_pid: None,
            store: Store::GraphDriver,
        }
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .env("DOCKER_HOST", self.host())
            .args(args)
            .output()
            .unwrap()
    }

    /// SIGKILL to the engine and to the containerd it started, as a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let pid_file = self.dir.join("exec/containerd/containerd.pid");
        if let Ok(pid) = fs::read_to_string(&pid_file) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
            let _ = fs::remove_file(&pid_file);
        }
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Where the private engine keeps its state: under this checkout's target directory.
fn state_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("containerd-engine")
}

/// `#[test]`s named `<name>_on_docker_20` and `<name>_on_containerd_store`, each
/// calling `body(engine)` with its engine.
#[macro_export]
macro_rules! on_both_engines {
    ($name:ident, $body:ident) => {
        mod $name {
            #[test]
            fn on_docker_20() {
                super::$body(super::support::Engine::system());
            }

            #[test]
            fn on_containerd_store() {
                super::$body(super::support::Engine::containerd());
            }
        }
    };
}
