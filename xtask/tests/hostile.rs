//! Hostile but realistic machines, round three: an engine that accepts connections and
//! never answers, shared temporary directories with planted links, trees left by the old
//! script's root containers, paths the tools underneath split, and registries whose
//! certificate the engine does not trust.

mod support;

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Fixture, Run};

/// A Docker socket that accepts every connection and never answers: a hung daemon, a
/// stale socket forward, a context pointing at a dead tunnel.
struct SilentEngine {
    _dir: tempfile::TempDir,
    socket: PathBuf,
}

impl SilentEngine {
    fn start() -> SilentEngine {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("silent-docker.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for connection in listener.incoming().flatten() {
                held.push(connection);
            }
        });
        SilentEngine { _dir: dir, socket }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

/// A bundle whose archives are intact, so that `load` gets as far as the engine.
fn intact_bundle(dir: &Path) -> PathBuf {
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(
        bundle.join("fate.images.tar"),
        b"not really a tar, but intact",
    )
    .unwrap();
    write_bundle_json(
        &bundle,
        &serde_json::json!({"reference": "fate/egg:1", "id": "sha256:00"}),
    );
    bundle
}

/// The `bundle.json` of one uncompressed archive, `fate.images.tar`, holding `image`.
fn write_bundle_json(bundle: &Path, image: &serde_json::Value) {
    let archive = bundle.join("fate.images.tar");
    let manifest = serde_json::json!({
        "format": "fate-xtask-bundle/1",
        "created": "2026-12-01T00:00:00Z",
        "archives": [{
            "file": "fate.images.tar",
            "compression": "none",
            "size": std::fs::metadata(&archive).unwrap().len(),
            "sha256": support::sha256(&archive),
            "images": [image],
        }],
    });
    std::fs::write(bundle.join("bundle.json"), manifest.to_string()).unwrap();
}

/// Processes (other than this test) whose environment names `needle`: children the tool
/// left behind.
fn processes_naming(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter(|e| e.file_name().to_string_lossy() != me)
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .is_ok_and(|env| String::from_utf8_lossy(&env).contains(needle))
        })
        .map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).replace('\0', " ")
        })
        .collect()
}

#[test]
fn a_silent_engine_is_named_within_30_s_and_sigterm_stops_every_command() {
    let fx = Fixture::mini("silent-engine");
    let engine = SilentEngine::start();
    let bundle = intact_bundle(fx.tmp.path());
    let commands: Vec<Vec<&str>> = vec![
        vec!["doctor"],
        vec!["images"],
        vec!["images", "--dry-run"],
        vec!["push"],
        vec!["bundle"],
        vec!["load", bundle.to_str().unwrap()],
    ];
    let command = |args: &[&str]| {
        let mut c = fx.command(args);
        c.env("DOCKER_HOST", engine.host())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };

    // Each answers with what failed and where, within 30 s, all at once.
    let answers: Vec<(Vec<&str>, Run, Duration)> = std::thread::scope(|scope| {
        let running: Vec<_> = commands
            .iter()
            .map(|args| {
                let mut c = command(args);
                scope.spawn(move || {
                    let started = Instant::now();
                    let run = Run::from(c.output().unwrap());
                    (args.clone(), run, started.elapsed())
                })
            })
            .collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (args, run, took) in answers {
        assert!(took < Duration::from_secs(30), "{args:?} took {took:?}");
        if args == ["images", "--dry-run"] {
            let run = run.ok();
            assert!(
                run.stdout
                    .contains("unknown: the Docker engine is unreachable"),
                "{}",
                run.stdout
            );
        } else {
            let run = run.failed();
            for expected in [
                "does not answer",
                engine.socket.to_str().unwrap(),
                "did not answer within 10 s",
            ] {
                assert!(
                    run.stderr.contains(expected),
                    "{args:?}: {expected}: {}",
                    run.stderr
                );
            }
        }
    }

    // SIGTERM while a question waits: every command stops within 5 s with 128 + 15, and
    // leaves no child behind.
    for args in &commands {
        let child = command(args).spawn().unwrap();
        std::thread::sleep(Duration::from_secs(1));
        let signalled = Instant::now();
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let run = Run::from(child.wait_with_output().unwrap());
        assert!(
            signalled.elapsed() < Duration::from_secs(5),
            "{args:?} took {:?} to stop",
            signalled.elapsed()
        );
        assert_eq!(run.code, Some(143), "{args:?}: {}", run.stderr);
        let left = processes_naming(engine.socket.to_str().unwrap());
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
    fx.assert_clean();
}

/// A bundle of one small image made here (`docker save` of a FROM-scratch build).
fn small_bundle(fx: &Fixture, dir: &Path) -> (PathBuf, String) {
    let context = dir.join("context");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("hello"), "hello\n").unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY hello /hello\n",
    )
    .unwrap();
    let reference = format!("{}/small:1", fx.prefix);
    let mut build = Command::new("docker");
    build
        .args(["build", "-q", "-t", &reference])
        .arg(&context)
        .env("DOCKER_BUILDKIT", "0");
    fx.engine.apply(&mut build);
    assert!(build.output().unwrap().status.success());
    let inspect = fx.docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{json .RootFS.Layers}}",
        &reference,
    ]);
    let (id, layers) = inspect.split_once(' ').unwrap();
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let archive = bundle.join("fate.images.tar");
    fx.docker(&["save", "-o", archive.to_str().unwrap(), &reference]);
    let layers: serde_json::Value = serde_json::from_str(layers).unwrap();
    // The config digest, as the archive names it (on the containerd store the ID is the
    // manifest's digest).
    let saved = Command::new("tar")
        .arg("-xOf")
        .arg(&archive)
        .arg("manifest.json")
        .output()
        .unwrap();
    let saved: serde_json::Value = serde_json::from_slice(&saved.stdout).unwrap();
    let config_file = saved[0]["Config"].as_str().unwrap();
    let config = format!(
        "sha256:{}",
        config_file
            .trim_start_matches("blobs/sha256/")
            .trim_end_matches(".json")
    );
    write_bundle_json(
        &bundle,
        &serde_json::json!({"reference": reference, "id": id, "config": config, "layers": layers}),
    );
    fx.remove_only(std::slice::from_ref(&reference));
    (bundle, reference)
}

/// `load` (which has no FATE root) writes its logs to this user's private state
/// directory: a shared temporary directory another user made, links planted there or in
/// the state directory, and a state directory another user owns change nothing outside
/// and do not stop the load.
#[test]
fn load_writes_nothing_through_planted_links_or_foreign_directories() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let fx = Fixture::mini("private-logs");
    let dir = fx.tmp.path();
    let (bundle, reference) = small_bundle(&fx, dir);
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let log_name = "load-fate.images.tar.log";

    // The old fixed place, made first by someone else, with a link to the victim.
    let tmp = dir.join("tmp");
    let shared = tmp.join("fate-xtask-logs");
    std::fs::create_dir_all(&shared).unwrap();
    std::os::unix::fs::symlink(&victim, shared.join(log_name)).unwrap();
    Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&shared)
        .status()
        .unwrap();
    // This user's state directory, with a link planted where the log goes.
    let state = dir.join("state");
    let logs = state.join("fate-xtask/logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::os::unix::fs::symlink(&victim, logs.join(log_name)).unwrap();

    let load = |state_home: &Path| {
        let mut c = support::clean_command(support::BIN);
        c.current_dir(dir)
            .env("TMPDIR", &tmp)
            .env("XDG_STATE_HOME", state_home)
            .args(["load", bundle.to_str().unwrap()]);
        fx.engine.apply(&mut c);
        let run = Run::from(support::run_with_engine(&mut c)).ok();
        fx.remove_only(std::slice::from_ref(&reference));
        run
    };
    let run = load(&state);
    assert!(run.stdout.contains(&reference), "{}", run.stdout);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let log = logs.join(log_name);
    let meta = std::fs::symlink_metadata(&log).unwrap();
    assert!(
        meta.file_type().is_file(),
        "the planted link was replaced by the log"
    );
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(&logs).unwrap().mode() & 0o777,
        0o700,
        "the state directory is private"
    );

    // A state directory owned by another user is not used: a private one is, and said.
    let foreign = dir.join("foreign");
    std::fs::create_dir_all(foreign.join("fate-xtask/logs")).unwrap();
    Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(foreign.join("fate-xtask"))
        .status()
        .unwrap();
    let run = load(&foreign);
    assert!(run.stderr.contains("logs go to"), "{}", run.stderr);
    assert!(
        run.stderr.contains("belongs to user 65534"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_dir(foreign.join("fate-xtask/logs"))
            .unwrap()
            .count(),
        0,
        "nothing written in another user's directory"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(
        std::fs::read_dir(&shared).unwrap().count(),
        1,
        "the shared directory is not used"
    );
    fx.assert_clean();
}

/// A user made for one test (in the docker group, as a developer is), removed when
/// dropped.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl TestUser {
    fn create(name: &str) -> TestUser {
        TestUser::with_groups(name, &["--groups", "docker"])
    }

    /// A user who may not use the Docker socket.
    fn outside_docker(name: &str) -> TestUser {
        TestUser::with_groups(name, &[])
    }

    fn with_groups(name: &str, groups: &[&str]) -> TestUser {
        let _ = Command::new("userdel").arg(name).output();
        let out = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/bin/sh"])
            .args(groups)
            .arg(name)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, name]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        TestUser {
            name: name.to_string(),
            uid: id("-u"),
            gid: id("-g"),
        }
    }

    /// `cmd` run as this user, with the same environment and arguments.
    fn run(&self, cmd: &Command) -> Run {
        let mut as_user = Command::new("setpriv");
        as_user
            .arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--init-groups")
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .env_clear();
        for (key, value) in cmd.get_envs() {
            if let Some(value) = value {
                as_user.env(key, value);
            }
        }
        Run::from(support::run_with_engine(&mut as_user))
    }

    fn chown(&self, path: &Path) {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// Loads into one engine take turns: one waits (and says so) while another holds this
/// user's lock for that engine; and two loads of one bundle at once on the containerd
/// store both succeed, ten times in a row.
#[test]
fn loads_into_one_engine_take_turns() {
    let fx = Fixture::mini("load-turns").on(support::Engine::containerd());
    let dir = fx.tmp.path();
    let (bundle, reference) = small_bundle(&fx, dir);
    let state = dir.join("state");
    let load = || {
        let mut c = support::clean_command(support::BIN);
        c.env("XDG_STATE_HOME", &state)
            .args(["--progress", "plain", "load", bundle.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        fx.engine.apply(&mut c);
        c
    };
    Run::from(load().output().unwrap()).ok();
    let locks: Vec<PathBuf> = std::fs::read_dir(state.join("fate-xtask/locks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(locks.len(), 1, "{locks:?}");
    let held = std::fs::File::open(&locks[0]).unwrap();
    held.lock().unwrap();
    let mut waiting = load().spawn().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "the second load did not wait for the lock"
    );
    held.unlock().unwrap();
    let run = Run::from(waiting.wait_with_output().unwrap()).ok();
    assert!(
        run.stderr.contains("another load into the engine at")
            && run.stderr.contains("waiting for it"),
        "{}",
        run.stderr
    );
    for attempt in 0..10 {
        fx.remove_only(std::slice::from_ref(&reference));
        let (first, second) = (load().spawn().unwrap(), load().spawn().unwrap());
        for child in [first, second] {
            let run = Run::from(child.wait_with_output().unwrap());
            assert_eq!(run.code, Some(0), "attempt {attempt}: {}", run.stderr);
        }
    }
    fx.remove_only(std::slice::from_ref(&reference));
}

/// A user outside the docker group is told the daemon is up, whose socket refused them,
/// and how to join its group: not to start a daemon that runs. Once the hint is followed
/// (run as written, by root), the same load succeeds.
#[test]
fn a_user_outside_the_docker_group_is_told_how_to_join_it() {
    let fx = Fixture::mini("nodocker");
    let dir = fx.tmp.path();
    let (bundle, reference) = small_bundle(&fx, dir);
    let user = TestUser::outside_docker("fate-xtask-nodocker");
    user.chown(dir);
    let mut load = support::clean_command(env!("CARGO_BIN_EXE_xtask"));
    load.args(["load"])
        .arg(&bundle)
        .env_remove("DOCKER_HOST")
        .env("XDG_STATE_HOME", dir.join("state"));
    let run = user.run(&load).failed();
    assert!(
        run.stderr
            .contains("socket /var/run/docker.sock (owner root, group docker) refuses this user")
            && run.stderr.contains("sudo usermod -aG docker \"$USER\"")
            && !run.stderr.contains("start it"),
        "{}",
        run.stderr
    );
    // The hint as written; this test runs as root, where sudo (when it is not installed)
    // adds nothing.
    let join = support::hint(&run.stderr, "join the group (");
    let join = if which::which("sudo").is_ok() {
        join
    } else {
        join.trim_start_matches("sudo ").to_string()
    };
    let out = Command::new("sh")
        .args(["-c", &join])
        .env("USER", &user.name)
        .output()
        .unwrap();
    assert!(out.status.success(), "{join}: {out:?}");
    let run = user.run(&load).ok();
    assert!(run.stdout.contains(&reference), "{}", run.stdout);
}

/// As a developer (not root) in a checkout where the old script's root Maven container
/// left `target/` trees: doctor and the run name them and the command that mends them
/// before any step runs; once mended, doctor passes.
#[test]
fn root_owned_target_trees_are_found_before_any_step_runs() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::mini("root-owned");
    let user = TestUser::create("fxtask-dev");
    std::fs::set_permissions(fx.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = fx.tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    user.chown(&fx.root);
    user.chown(&home);
    let left = fx
        .root
        .join("arch/core/target/generated-sources/annotations");
    std::fs::create_dir_all(&left).unwrap();
    std::fs::write(left.join("Generated.java"), "// by root\n").unwrap();
    // Left by root: root-owned, as the old script's container made it.
    Command::new("chown")
        .args(["-R", "0:0"])
        .arg(fx.root.join("arch/core/target"))
        .status()
        .unwrap();
    let as_developer = |args: &[&str]| {
        let mut c = fx.command(args);
        c.env("HOME", &home)
            .env("MAVEN_CACHE_DIR", home.join("maven"));
        user.run(&c)
    };
    let expected = [
        "arch/core/target is owned by root (left by an earlier build as root",
        "run sudo chown -R $(id -u):$(id -g) ",
    ];
    let doctor = as_developer(&["doctor"]).failed();
    for e in expected {
        assert!(doctor.stderr.contains(e), "doctor: {e}: {}", doctor.stderr);
    }
    let run = as_developer(&["images"]).failed();
    for e in expected.iter().chain(&["nothing was built"]) {
        assert!(run.stderr.contains(e), "images: {e}: {}", run.stderr);
    }
    let logs = fx.root.join("target/xtask/logs");
    let ran: Vec<_> = std::fs::read_dir(&logs)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(ran.is_empty(), "no step ran: {ran:?}");
    user.chown(&fx.root.join("arch/core/target"));
    as_developer(&["doctor"]).ok();
    // The tree goes back to root, who removes it with the fixture.
    Command::new("chown")
        .args(["-R", "0:0"])
        .arg(&fx.root)
        .status()
        .unwrap();
    support::git(&fx.root, &["clean", "-fdxq"]);
    fx.assert_clean();
}

/// A FATE root whose path has a `:` (where the classpath and docker's --volume split):
/// named before any work by doctor and the run, with the way out.
#[test]
fn a_colon_in_the_fate_root_is_refused_before_any_work() {
    let fx = Fixture::mini_in("fate:1.0", "colon");
    for args in [
        &["doctor"][..],
        &["images"],
        &["images", "--maven", "docker"],
    ] {
        let run = fx.xtask(args).failed();
        assert!(
            run.stderr.contains("has a ':' in its path") && run.stderr.contains("ln -s"),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert!(!fx.root.join("target/xtask/logs").exists(), "nothing ran");
    let plain = Fixture::mini("colon-cache");
    let mut cache = plain.command(&["images", "--maven", "docker", "--dry-run"]);
    cache.env("MAVEN_CACHE_DIR", plain.tmp.path().join("maven:cache"));
    let run = Run::from(support::run_with_engine(&mut cache)).failed();
    assert!(
        run.stderr.contains("the Maven cache (MAVEN_CACHE_DIR)")
            && run.stderr.contains("has a ':'"),
        "{}",
        run.stderr
    );
    fx.assert_clean();
    plain.assert_clean();
}

/// The other characters that reach `docker` and `mvn` argv in paths (`,` `=` `%` `#`,
/// and a directory named with a leading `-`) build as any other: argv is never split.
#[test]
fn other_characters_in_the_fate_root_build() {
    let fx = Fixture::mini_in("-fate ,=%#", "odd-chars");
    let run = fx.xtask(&["images"]).ok();
    assert_eq!(fx.steps_ran().len(), 13, "{}", run.stdout);
    let again = fx.xtask(&["images"]).ok();
    assert!(fx.steps_ran().is_empty(), "{}", again.stdout);
    fx.assert_clean();
}

/// A registry with a self-signed certificate on an address of the containerd engine's
/// network namespace that is not loopback (Docker trusts any registry on loopback):
/// 198.18.0.1, of the range set aside for tests of network devices, on that namespace's
/// loopback device. Stopped when dropped.
struct UntrustedRegistry {
    child: std::process::Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl UntrustedRegistry {
    fn start(engine: &support::Engine) -> UntrustedRegistry {
        support::ensure_packages("docker-registry", &["docker-registry"]);
        let ip = "198.18.0.1";
        let add = engine
            .near("ip")
            .args(["addr", "replace", &format!("{ip}/32"), "dev", "lo"])
            .output()
            .unwrap();
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let made = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", &format!("/CN={ip}")])
            .args(["-addext", &format!("subjectAltName=IP:{ip}")])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let port = 5443;
        let addr = format!("{ip}:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("data").display(),
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = engine
            .near("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let registry = UntrustedRegistry {
            child,
            addr,
            _dir: dir,
        };
        for _ in 0..100 {
            let probe = engine
                .near("curl")
                .args([
                    "-sk",
                    "-o",
                    "/dev/null",
                    &format!("https://{}/v2/", registry.addr),
                ])
                .status()
                .unwrap();
            if probe.success() {
                return registry;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the TLS registry did not start on {}", registry.addr);
    }
}

impl Drop for UntrustedRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A push to a registry whose certificate the engine does not trust says so and what to
/// do, at once (no retries), and leaves no registry tag.
#[test]
fn an_untrusted_registry_certificate_is_explained() {
    let engine = support::Engine::containerd();
    let fx = Fixture::mini_on("tls", support::Builder::Legacy, engine);
    fx.xtask(&["images", "federation"]).ok();
    let registry = UntrustedRegistry::start(&fx.engine);
    let started = Instant::now();
    let run = fx
        .xtask(&["push", "federation", "--registry", &registry.addr])
        .failed();
    for expected in [
        format!(
            "the Docker engine does not trust the TLS certificate of the registry {}",
            registry.addr
        ),
        format!("/etc/docker/certs.d/{}/ca.crt", registry.addr),
        "insecure-registries".to_string(),
    ] {
        assert!(run.stderr.contains(&expected), "{expected}: {}", run.stderr);
    }
    assert!(!run.stderr.contains("retry"), "{}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let tags = fx.docker(&[
        "images",
        "-q",
        "--filter",
        &format!("reference={}/*/*", registry.addr),
    ]);
    assert_eq!(tags, "", "the registry tag was removed");
    fx.assert_clean();
}
