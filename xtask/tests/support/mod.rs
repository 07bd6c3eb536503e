//! Shared by the real-engine tests: a private copy of the example FATE tree per test,
//! the real `xtask` binary, and cleanup of every image a test made.

#![allow(dead_code)]

pub mod bundles;
pub mod engine;

pub use engine::Engine;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_xtask");

/// The eight module images of the example (pushed and bundled).
pub const MODULES: [&str; 8] = [
    "federation",
    "proxy",
    "roll",
    "python",
    "meta-service",
    "serving-server",
    "fateboard",
    "egg",
];

/// The ten images in the order they are built.
pub fn build_order() -> Vec<&'static str> {
    let mut all = vec!["base-image", "storage-service-builder"];
    all.extend(MODULES);
    all
}

/// Builds of parallel tests share the legacy builder's cached intermediate images, which
/// removing one test's images may delete under another's running build: runs hold this
/// shared, cleanups exclusively.
pub(crate) static ENGINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Holds off image removal by other tests while the guard lives.
pub fn engine_shared() -> std::sync::RwLockReadGuard<'static, ()> {
    ENGINE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs a command while no test removes images.
pub fn run_with_engine(cmd: &mut Command) -> Output {
    let _shared = ENGINE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    cmd.output().unwrap()
}

/// The only variables a test's xtask inherits: the caller's shell (PREFIX, TAG, mirror
/// locations, ...) cannot leak into a test, whatever keys the configuration grows.
const INHERITED: [&str; 8] = [
    "PATH",
    "HOME",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "TMPDIR",
    "LANG",
    "USER",
    "RUST_BACKTRACE",
];

/// A command with only [`INHERITED`] variables from this process.
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    c.env_clear();
    for key in INHERITED {
        if let Some(value) = std::env::var_os(key) {
            c.env(key, value);
        }
    }
    c
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The Maven cache shared by tests (plugins resolve once per machine).
pub fn shared_maven_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("maven-cache")
}

/// Real-engine tests never skip: no engine is a failure.
pub fn require_docker(engine: &Engine) {
    let out = engine
        .docker_command(&["version", "--format", "{{.Server.Version}}"])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "these tests need a running Docker engine ({}, DOCKER_HOST={:?}): {}",
            engine.name,
            std::env::var("DOCKER_HOST").ok(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("these tests need the docker CLI on PATH: {e}"),
    }
}

/// What a run of the binary printed and how it ended.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "xtask failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn failed(self) -> Run {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "xtask should have failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// One step of an `images` run, as its run report (`last-run.json`) records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepDone {
    /// `build`, `maven`, `write-file`, ...
    pub kind: String,
    /// `ran`, `up-to-date`, `failed` or `not-run`.
    pub result: String,
    /// Why it ran, in the dry run's words.
    pub reason: Option<String>,
}

/// The steps of the last `images` run on the FATE root `root`, by step id.
pub fn last_run(root: &Path) -> BTreeMap<String, StepDone> {
    let path = root.join("target/xtask/last-run.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no run report at {}: {e}", path.display()));
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    report["steps"]
        .as_array()
        .expect("a run report lists its steps")
        .iter()
        .map(|s| {
            let text = |key: &str| s[key].as_str().map(str::to_string);
            let done = StepDone {
                kind: text("kind").expect("each step has a kind"),
                result: text("result").expect("each step has a result"),
                reason: text("reason"),
            };
            (text("id").expect("each step has an id"), done)
        })
        .collect()
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Which image builder a test's runs use; chosen per command, never by the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builder {
    /// `DOCKER_BUILDKIT=0`.
    Legacy,
    /// The buildx plugin from Debian's archive, in a test-private `DOCKER_CONFIG`.
    BuildKit,
}

impl Builder {
    pub fn apply(self, c: &mut Command) {
        match self {
            Builder::Legacy => {
                c.env("DOCKER_BUILDKIT", "0");
            }
            Builder::BuildKit => {
                c.env("DOCKER_CONFIG", buildkit_config())
                    .env_remove("DOCKER_BUILDKIT");
            }
        }
    }
}

/// A `DOCKER_CONFIG` whose cli-plugins/ holds docker-buildx, fetched once per machine
/// by get-buildx.sh; a failed download fails the test with its reason.
pub fn buildkit_config() -> PathBuf {
    static CONFIG: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("buildkit-docker-config");
            let script = workspace().join("xtask/tests/support/get-buildx.sh");
            let out = Command::new(&script).arg(&dir).output().unwrap();
            assert!(
                out.status.success(),
                "BuildKit tests need docker-buildx, and {} could not get it:\n{}{}",
                script.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            dir
        })
        .clone()
}

/// A private FATE tree (a git repository) and the image prefix only this test uses.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub prefix: String,
    /// The builder its commands use.
    pub builder: Builder,
    /// The engine its commands use.
    pub engine: Engine,
}

impl Fixture {
    /// A committed copy of examples/mini-fate; the path has a space and non-ASCII letters.
    pub fn mini(name: &str) -> Fixture {
        Fixture::mini_with(name, Builder::Legacy)
    }

    /// [`Fixture::mini`] whose commands build with `builder`.
    pub fn mini_with(name: &str, builder: Builder) -> Fixture {
        Fixture::mini_on(name, builder, Engine::system())
    }

    /// [`Fixture::mini_with`] on `engine`.
    pub fn mini_on(name: &str, builder: Builder, engine: Engine) -> Fixture {
        let mut fx = Fixture::committed_copy("mini-fate", "mini fate é", name, builder);
        require_docker(&engine);
        fx.engine = engine;
        fx
    }

    /// [`Fixture::mini`] in a directory named `dir` (a path the tools underneath may
    /// split).
    pub fn mini_in(dir: &str, name: &str) -> Fixture {
        Fixture::committed_copy("mini-fate", dir, name, Builder::Legacy)
    }

    /// A committed copy of `examples/<example>` whose commands build with `builder`.
    pub fn example(example: &str, name: &str, builder: Builder) -> Fixture {
        Fixture::committed_copy(example, example, name, builder)
    }

    /// `examples/<example>` copied to a git repository named `dir`, committed.
    fn committed_copy(example: &str, dir: &str, name: &str, builder: Builder) -> Fixture {
        require_docker(&Engine::system());
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join(dir);
        copy_tree(&workspace().join("examples").join(example), &root);
        commit_all(&root, "fixture");
        Fixture {
            tmp,
            root,
            prefix: format!("fate-test-{name}-{}", std::process::id()),
            builder,
            engine: Engine::system(),
        }
    }

    /// An empty FATE root the test fills itself.
    pub fn empty(name: &str) -> Fixture {
        require_docker(&Engine::system());
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("fate");
        std::fs::create_dir_all(&root).unwrap();
        Fixture {
            tmp,
            root,
            prefix: format!("fate-test-{name}-{}", std::process::id()),
            builder: Builder::Legacy,
            engine: Engine::system(),
        }
    }

    /// The binary with `--fate-root`, this test's PREFIX and the shared Maven cache.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = clean_command(BIN);
        c.env("PREFIX", &self.prefix)
            .env("MAVEN_CACHE_DIR", shared_maven_cache())
            .env("NO_COLOR", "1")
            .arg("--fate-root")
            .arg(&self.root)
            .args(args);
        self.builder.apply(&mut c);
        self.engine.apply(&mut c);
        c
    }

    /// [`Fixture::command`] with another builder.
    pub fn command_with(&self, builder: Builder, args: &[&str]) -> Command {
        let mut c = self.command(args);
        builder.apply(&mut c);
        self.engine.apply(&mut c);
        c
    }

    /// This test's tree and prefix on another engine (its images there are removed when
    /// it is dropped).
    pub fn on(&self, engine: Engine) -> Fixture {
        require_docker(&engine);
        Fixture {
            tmp: tempfile::tempdir().unwrap(),
            root: self.root.clone(),
            prefix: self.prefix.clone(),
            builder: self.builder,
            engine,
        }
    }

    /// `docker args` on this test's engine, which must succeed; its trimmed stdout.
    pub fn docker(&self, args: &[&str]) -> String {
        self.engine.docker(args)
    }

    pub fn label(&self, reference: &str, key: &str) -> String {
        self.engine.label(reference, key)
    }

    pub fn labels(&self, reference: &str) -> BTreeMap<String, String> {
        self.engine.labels(reference)
    }

    pub fn export_image(&self, reference: &str, dest: &Path) {
        self.engine.export_image(reference, dest);
    }

    pub fn image_files(&self, reference: &str, dest: &Path) -> BTreeMap<String, String> {
        self.engine.image_files(reference, dest)
    }

    pub fn xtask(&self, args: &[&str]) -> Run {
        run_with_engine(&mut self.command(args)).into()
    }

    /// What the last `images` run on this tree did, by step id (`last-run.json`).
    pub fn last_run(&self) -> BTreeMap<String, StepDone> {
        last_run(&self.root)
    }

    /// The ids of the last run's steps that ran, of the kinds that make something
    /// (Maven projects and images), sorted.
    pub fn steps_ran(&self) -> Vec<String> {
        self.last_run()
            .into_iter()
            .filter(|(_, s)| s.result == "ran" && (s.kind == "build" || s.kind == "maven"))
            .map(|(id, _)| id)
            .collect()
    }

    /// The images (by the image set's names) the last run built, sorted.
    pub fn images_built(&self) -> Vec<String> {
        self.steps_ran()
            .iter()
            .filter_map(|id| id.strip_prefix("build-").map(str::to_string))
            .collect()
    }

    pub fn reference(&self, image: &str) -> String {
        format!("{}/{image}:1.0.2-release", self.prefix)
    }

    pub fn git_status(&self) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(["status", "--porcelain"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// IDs of this test's images, by reference.
    pub fn images(&self) -> BTreeMap<String, String> {
        let out = self.docker(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
            "--filter",
            &format!("reference={}/*", self.prefix),
        ]);
        out.lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(r, id)| (r.to_string(), id.to_string()))
            .collect()
    }

    /// Containers made from this test's images or by xtask for this tree, which must
    /// never be left over.
    pub fn stray_containers(&self) -> Vec<String> {
        let all = self.docker(&[
            "ps",
            "-a",
            "--format",
            "{{.ID}} {{.Image}} {{.Names}} {{.Labels}}",
        ]);
        let ours = format!("org.fedai.fate-xtask.root={}", self.root.display());
        all.lines()
            .filter(|l| {
                l.split(' ')
                    .nth(1)
                    .is_some_and(|image| image.starts_with(&self.prefix))
                    || l.contains(&ours)
            })
            .map(str::to_string)
            .collect()
    }

    /// Asserts the source tree is as committed and no container is left.
    pub fn assert_clean(&self) {
        assert_eq!(self.git_status(), "", "the source tree changed");
        assert_eq!(
            self.stray_containers(),
            Vec::<String>::new(),
            "containers were left behind"
        );
    }
}

impl Fixture {
    /// Removes every image of this test (while no other test builds).
    pub fn remove_images(&self) {
        let refs: Vec<String> = self.images().into_keys().collect();
        self.remove_only(&refs);
    }

    /// Removes these images (while no other test builds).
    pub fn remove_only(&self, refs: &[String]) {
        let _exclusive = ENGINE
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !refs.is_empty() {
            let mut args = vec!["rmi", "-f"];
            args.extend(refs.iter().map(String::as_str));
            let _ = self.engine.docker_output(&args);
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.remove_images();
    }
}

/// Installs Debian packages a test needs when they are missing (we are root in CI);
/// otherwise fails with the command to run.
pub fn ensure_packages(program: &str, packages: &[&str]) {
    if Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .unwrap()
        .status
        .success()
    {
        return;
    }
    let install = || {
        Command::new("apt-get")
            .args([
                "-o",
                "DPkg::Lock::Timeout=300",
                "install",
                "-y",
                "--no-install-recommends",
            ])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    // A fresh machine may have no package lists yet: read them once, then try again.
    let installed = install()
        || (Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=300", "update", "-q"])
            .output()
            .is_ok_and(|o| o.status.success())
            && install());
    assert!(
        installed,
        "{program} is missing; install it: sudo apt-get install -y {}",
        packages.join(" ")
    );
}

/// `pyspdxtools`, the SPDX project's validator, from PyPI into a virtual environment of
/// the tests' own under `target/` (made once per checkout; nothing installed system-wide).
pub fn spdx_validator() -> PathBuf {
    static VALIDATOR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("spdx-venv");
            let validator = venv.join("bin/pyspdxtools");
            if validator.is_file() {
                return validator;
            }
            let script = format!(
                "python3 -m venv '{0}' && '{0}/bin/pip' install -q --disable-pip-version-check spdx-tools",
                venv.display()
            );
            let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
            assert!(
                out.status.success() && validator.is_file(),
                "the SBOM tests need the SPDX validator, and `{script}` could not get it:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            validator
        })
        .clone()
}

/// A real registry server (Debian's docker-registry) on 127.0.0.1 of an engine's network
/// namespace, optionally with htpasswd authentication; stopped when dropped.
pub struct Registry {
    child: std::process::Child,
    pub addr: String,
    engine: Engine,
    dir: tempfile::TempDir,
}

impl Registry {
    /// A registry the system's engine reaches.
    pub fn start(auth: Option<(&str, &str)>) -> Registry {
        Registry::start_for(&Engine::system(), auth)
    }

    /// A registry on the system's loopback whose config ends with `extra` (an `auth:` or
    /// `http: tls:` section of docker-registry's config), with `addr` its `http.addr`.
    pub fn start_with(addr: &str, extra: &str) -> Registry {
        ensure_packages("docker-registry", &["docker-registry"]);
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n{extra}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let engine = Engine::system();
        let child = serve(&engine, dir.path());
        Registry {
            child,
            addr: addr.to_string(),
            engine,
            dir,
        }
    }

    /// A registry `engine` reaches on its loopback (inside its network namespace).
    pub fn start_for(engine: &Engine, auth: Option<(&str, &str)>) -> Registry {
        ensure_packages("docker-registry", &["docker-registry"]);
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = auth {
            ensure_packages("htpasswd", &["apache2-utils"]);
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .unwrap();
            assert!(out.status.success());
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                file.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let child = serve(engine, dir.path());
        // Owned from here on: dropping it (also on a panic below) stops the server.
        let registry = Registry {
            child,
            addr,
            engine: engine.clone(),
            dir,
        };
        registry.wait_until_up();
        registry
    }

    fn wait_until_up(&self) {
        for _ in 0..100 {
            if self.http("GET", "/v2/", None).0 != 0 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the registry did not start on {}", self.addr);
    }

    /// Kills the server at once (SIGKILL: a crash, or a dropped link).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same address and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.child = serve(&self.engine, self.dir.path());
        self.wait_until_up();
    }

    /// Bytes the registry stores (blobs and uploads in progress).
    pub fn stored_bytes(&self) -> u64 {
        walkdir_size(&self.dir.path().join("data"))
    }

    /// GET (or HEAD) through the registry's HTTP API: (status, headers+body).
    pub fn http(&self, method: &str, path: &str, user: Option<&str>) -> (u16, String) {
        let mut c = self.engine.near("curl");
        c.args([
            "-s",
            "-i",
            "-X",
            method,
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.list.v2+json",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
            "-H",
            "Accept: application/vnd.oci.image.index.v1+json",
        ]);
        if method == "HEAD" {
            c.arg("-I");
        }
        if let Some(u) = user {
            c.args(["-u", u]);
        }
        let out = c
            .arg(format!("http://{}{path}", self.addr))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    }
}

fn serve(engine: &Engine, dir: &Path) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("registry.log"))
        .unwrap();
    engine
        .near("docker-registry")
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn walkdir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => walkdir_size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sha256 (hex) of a file, as `sha256sum` prints it.
pub fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Makes `dir` a git repository (if it is not one) and commits all it holds.
pub fn commit_all(dir: &Path, message: &str) {
    if !dir.join(".git").exists() {
        git(dir, &["init", "-q"]);
    }
    git(dir, &["add", "-A"]);
    git(
        dir,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            message,
        ],
    );
}

/// `git -C dir ARGS`, which must succeed; its output, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A Debian bookworm image with make and g++, made once per engine from Debian's
/// archive by make-toolchain-image.sh (debootstrap, about 4 minutes); a failure fails
/// the test with its reason.
pub fn toolchain_image() -> String {
    static IMAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let name = "fate-xtask/toolchain:bookworm".to_string();
            ensure_packages("debootstrap", &["debootstrap"]);
            let script = workspace().join("xtask/tests/support/make-toolchain-image.sh");
            let out = Command::new(&script).arg(&name).output().unwrap();
            assert!(
                out.status.success(),
                "the C++ tests need a toolchain image, and {} could not make it:\n{}{}",
                script.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            name
        })
        .clone()
}

/// Replaces the first `from` in a file of the tree (which must contain it) with `to`.
pub fn edit(root: &Path, rel: &str, from: &str, to: &str) {
    let p = root.join(rel);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{rel} lacks {from:?}");
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
}

/// `cmd` run on a pseudo-terminal (util-linux `script`), with its environment and working
/// directory: what it drew on the terminal comes back as the wrapper's stdout.
pub fn on_terminal(cmd: &Command) -> Command {
    let line: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy().replace('\'', r"'\''")))
        .collect();
    let mut wrapper = clean_command("script");
    wrapper.args(["-qec", &line.join(" "), "/dev/null"]);
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => wrapper.env(key, value),
            None => wrapper.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapper.current_dir(dir);
    }
    wrapper.env("TERM", "xterm");
    wrapper
}

/// Copies a tree, leaving out build output.
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from)
        .into_iter()
        .filter_entry(|e| e.file_name() != "target")
    {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// The command a message hands its reader after `marker`, as it would be typed: the
/// words up to the end of its clause (`;`, `, `, `(`, `)` or the line's end), quotes
/// kept as written, backticks around it dropped. Panics, with the message, when there is no such hint.
pub fn hint(message: &str, marker: &str) -> String {
    let start = message
        .find(marker)
        .unwrap_or_else(|| panic!("no hint after {marker:?} in:\n{message}"))
        + marker.len();
    let rest = &message[start..];
    let end = [";", ", ", "(", ")", "\n"]
        .iter()
        .filter_map(|stop| rest.find(stop))
        .min()
        .unwrap_or(rest.len());
    rest[..end].trim().trim_matches('`').trim().to_string()
}

impl Fixture {
    /// Follows a hint of the form `cargo xtask ARGS` (plain words) on this fixture's
    /// tree, engine and builder: it must succeed.
    pub fn follow(&self, hint: &str) -> Run {
        let words: Vec<&str> = hint.split_whitespace().collect();
        assert!(
            words.len() > 2 && words[..2] == ["cargo", "xtask"],
            "not a cargo xtask command: {hint:?}"
        );
        self.xtask(&words[2..]).ok()
    }
}
