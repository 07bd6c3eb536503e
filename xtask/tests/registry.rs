#![allow(
    clippy::too_many_lines,
    reason = "a real-engine scenario reads best as one story"
)]
//! Bundles pushed straight into a registry (`load --registry`) with no Docker engine:
//! Debian's docker-registry, plain and with htpasswd; pulled back by both engines with
//! the identity the bundle records; the loader the bundle carries, alone in a scratch
//! container; a registry killed mid-push; a tampered bundle that pushes nothing.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::{Builder, Engine, Fixture, Registry, Run};

/// A bundled image as `bundle.json` records it.
struct Bundled {
    reference: String,
    id: String,
    config: String,
    layers: Vec<String>,
}

fn bundled(dir: &Path) -> Vec<Bundled> {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("bundle.json")).unwrap()).unwrap();
    json["archives"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["images"].as_array().unwrap().clone())
        .map(|i| Bundled {
            reference: i["reference"].as_str().unwrap().to_string(),
            id: i["id"].as_str().unwrap().to_string(),
            config: i["config"].as_str().unwrap().to_string(),
            layers: i["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().to_string())
                .collect(),
        })
        .collect()
}

/// `program args` where `engine`'s registry is reachable, with no `docker` on PATH and
/// `DOCKER_HOST` pointing nowhere: nothing of Docker can be used.
fn without_docker(engine: &Engine, program: &Path, args: &[&str], tmp: &Path) -> Command {
    let empty_path = tmp.join("empty-path");
    std::fs::create_dir_all(&empty_path).unwrap();
    // nsenter by its full path: the program's PATH holds nothing.
    let mut c = match engine.netns() {
        Some(pid) => {
            let mut c = Command::new("/usr/bin/nsenter");
            c.arg(format!("--net=/proc/{pid}/ns/net")).arg(program);
            c
        }
        None => Command::new(program),
    };
    c.env_clear()
        .env("PATH", &empty_path)
        .env("HOME", tmp)
        .env("TMPDIR", std::env::temp_dir())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("DOCKER_CONFIG", tmp.join("no-docker-config"))
        .args(args);
    c
}

/// The xtask binary as `cargo xtask` builds it (without the tests' dev-dependency
/// features: no registry client), in a target directory of its own, built once.
fn plain_xtask() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plain-xtask");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let out = Command::new(cargo)
                .args([
                    "build",
                    "--quiet",
                    "--locked",
                    "--package",
                    "xtask",
                    "--bin",
                    "xtask",
                ])
                .arg("--target-dir")
                .arg(&target)
                .current_dir(support::workspace())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "cargo build of xtask: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            target.join("debug/xtask")
        })
        .clone()
}

fn run(mut c: Command) -> Run {
    c.output().unwrap().into()
}

/// The result lines: `HOST/REPOSITORY:TAG` -> `sha256:...`.
fn pushed(run: &Run) -> BTreeMap<String, String> {
    run.stdout
        .lines()
        .filter_map(|l| l.split_once('@'))
        .map(|(r, d)| (r.to_string(), d.to_string()))
        .collect()
}

fn last_component(reference: &str) -> String {
    reference.rsplit('/').next().unwrap().to_string()
}

on_both_engines!(
    bundles_push_into_a_registry_without_docker_and_keep_their_identity,
    push_without_docker
);

/// Every image of the bundle pushed with no engine; pulled back by the engine with the
/// config, layers (and, from the containerd store, the manifest digest) the bundle
/// records; a second push sends nothing; compression is the same every time; the loader
/// the bundle carries does the same; a tampered bundle pushes nothing.
fn push_without_docker(engine: Engine) {
    let fx = Fixture::mini_on("registry", Builder::Legacy, engine.clone());
    fx.xtask(&["images"]).ok();
    let dir = fx.tmp.path().join("bundle");
    fx.xtask(&["bundle", "--out", dir.to_str().unwrap()]).ok();
    let images = bundled(&dir);
    assert_eq!(images.len(), 10);
    let registry = Registry::start_for(&engine, None);
    let tmp = fx.tmp.path();
    let bin = PathBuf::from(support::BIN);
    let push = |program: &Path, namespace: &str| {
        run(without_docker(
            &engine,
            program,
            &[
                "load",
                dir.to_str().unwrap(),
                "--registry",
                &registry.addr,
                "--namespace",
                namespace,
            ],
            tmp,
        ))
    };

    let first = push(&bin, "fate").ok();
    let digests = pushed(&first);
    assert_eq!(digests.len(), 10, "{}", first.stdout);
    for image in &images {
        let name = format!(
            "{}/fate/{}",
            registry.addr,
            last_component(&image.reference)
        );
        let digest = digests
            .get(&name)
            .unwrap_or_else(|| panic!("{name} not pushed"));
        engine.docker(&["pull", &name]);
        let id = engine.docker(&["image", "inspect", "-f", "{{.Id}}", &name]);
        let layers = engine.docker(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", &name]);
        let layers: Vec<String> = serde_json::from_str(&layers).unwrap();
        assert_eq!(layers, image.layers, "{name}: layers");
        if engine.netns().is_some() {
            // The containerd store's own manifest went up unchanged: same digest, same ID.
            assert_eq!(digest, &image.id, "{name}: the manifest as built");
            assert_eq!(id, image.id, "{name}: pulled as the store built it");
        } else {
            assert_eq!(
                id, image.config,
                "{name}: the config digest, its ID on 20.10"
            );
        }
        engine.remove_image(&name);
    }

    // Pulled by the other engine (from a registry where it reaches one): the same layers;
    // on 20.10 the config digest as the ID, on the containerd store the manifest pushed.
    let other_engine = if engine.netns().is_some() {
        Engine::system()
    } else {
        Engine::containerd()
    };
    let other_registry = Registry::start_for(&other_engine, None);
    let to_other = run(without_docker(
        &other_engine,
        &bin,
        &[
            "load",
            dir.to_str().unwrap(),
            "--registry",
            &other_registry.addr,
            "--namespace",
            "other",
        ],
        tmp,
    ))
    .ok();
    let other_digests = pushed(&to_other);
    for image in &images {
        let name = format!(
            "{}/other/{}",
            other_registry.addr,
            last_component(&image.reference)
        );
        other_engine.docker(&["pull", &name]);
        let id = other_engine.docker(&["image", "inspect", "-f", "{{.Id}}", &name]);
        let layers =
            other_engine.docker(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", &name]);
        let layers: Vec<String> = serde_json::from_str(&layers).unwrap();
        assert_eq!(layers, image.layers, "{name} on the other engine: layers");
        if other_engine.netns().is_some() {
            assert_eq!(
                Some(&id),
                other_digests.get(&name),
                "{name}: the manifest pushed"
            );
        } else {
            assert_eq!(
                id, image.config,
                "{name}: the config digest, its ID on 20.10"
            );
        }
        other_engine.remove_image(&name);
    }
    drop(other_registry);

    // Again: nothing is sent, the same lines.
    let again = push(&bin, "fate").ok();
    assert_eq!(pushed(&again), digests);
    assert!(
        again.stderr.contains("nothing was sent"),
        "{}",
        again.stderr
    );

    // Into another namespace: the same manifests (compression is the same every time),
    // the blobs mounted, not uploaded.
    let other = push(&bin, "again").ok();
    let renamed: BTreeMap<String, String> = pushed(&other)
        .into_iter()
        .map(|(r, d)| (r.replace("/again/", "/fate/"), d))
        .collect();
    assert_eq!(renamed, digests, "the same manifest digests");
    assert!(
        other.stderr.contains("0 blobs uploaded"),
        "{}",
        other.stderr
    );

    // A zstd bundle in 1 MiB parts: read from its parts, the same manifests.
    let zstd = tmp.join("zstd bundle");
    fx.xtask(&[
        "bundle",
        "--out",
        zstd.to_str().unwrap(),
        "--compress",
        "zstd",
        "--split-size",
        "1MiB",
    ])
    .ok();
    let from_parts = run(without_docker(
        &engine,
        &bin,
        &[
            "load",
            zstd.to_str().unwrap(),
            "--registry",
            &registry.addr,
            "--namespace",
            "parts",
        ],
        tmp,
    ))
    .ok();
    let renamed: BTreeMap<String, String> = pushed(&from_parts)
        .into_iter()
        .map(|(r, d)| (r.replace("/parts/", "/fate/"), d))
        .collect();
    assert_eq!(
        renamed, digests,
        "from zstd parts, the same manifest digests"
    );

    // The loader the bundle carries, alone: the same result.
    let loader = dir.join("fate-xtask");
    let by_loader = push(&loader, "loader").ok();
    let renamed: BTreeMap<String, String> = pushed(&by_loader)
        .into_iter()
        .map(|(r, d)| (r.replace("/loader/", "/fate/"), d))
        .collect();
    assert_eq!(renamed, digests);

    // `cargo xtask` as users build it has no registry client (the tests' build has): it
    // builds the loader in the checkout and runs it, with the same result.
    let plain = plain_xtask();
    let mut by_plain = support::clean_command(&plain);
    by_plain.args([
        "load",
        dir.to_str().unwrap(),
        "--registry",
        &registry.addr,
        "--namespace",
        "plain",
    ]);
    engine.apply(&mut by_plain);
    let by_plain = match engine.netns() {
        Some(pid) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/proc/{pid}/ns/net"))
                .arg(by_plain.get_program())
                .args(by_plain.get_args())
                .env_clear()
                .envs(by_plain.get_envs().filter_map(|(k, v)| Some((k, v?))));
            run(c)
        }
        None => run(by_plain),
    }
    .ok();
    let renamed: BTreeMap<String, String> = pushed(&by_plain)
        .into_iter()
        .map(|(r, d)| (r.replace("/plain/", "/fate/"), d))
        .collect();
    assert_eq!(renamed, digests, "through the loader, the same digests");

    // A tampered copy: one byte of an archive changed, its size kept. Nothing goes up.
    let tampered = tmp.join("tampered");
    support::copy_tree(&dir, &tampered);
    let archive = tampered.join("fate.images.tar.gz");
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&archive, bytes).unwrap();
    let refused = run(without_docker(
        &engine,
        &bin,
        &[
            "load",
            tampered.to_str().unwrap(),
            "--registry",
            &registry.addr,
            "--namespace",
            "tampered",
        ],
        tmp,
    ))
    .failed();
    assert!(
        refused.stderr.contains("nothing was pushed"),
        "{}",
        refused.stderr
    );
    let (_, catalog) = registry.http("GET", "/v2/_catalog", None);
    assert!(catalog.contains("fate/"), "{catalog}");
    assert!(!catalog.contains("tampered/"), "{catalog}");
}

/// A bundle of the example on the system engine, and its directory.
fn example_bundle(name: &str) -> (Fixture, PathBuf) {
    let fx = Fixture::mini_on(name, Builder::Legacy, Engine::system());
    fx.xtask(&["images"]).ok();
    let dir = fx.tmp.path().join("bundle");
    fx.xtask(&["bundle", "--out", dir.to_str().unwrap()]).ok();
    (fx, dir)
}

/// Basic auth as operators give it: `--user` with the password on stdin or in a variable,
/// or a `docker login`'s `config.json`; a wrong password is refused before anything is
/// sent, naming the fix.
#[test]
fn credentials_come_from_stdin_a_variable_or_docker_login() {
    let (fx, dir) = example_bundle("regauth");
    let registry = Registry::start(Some(("fate", "s3cret")));
    let tmp = fx.tmp.path();
    let bin = PathBuf::from(support::BIN);
    let engine = Engine::system();
    let args = |ns: &'static str, extra: &[&'static str]| -> Vec<String> {
        let mut v = vec![
            "load".to_string(),
            dir.to_str().unwrap().to_string(),
            "--registry".into(),
            registry.addr.clone(),
            "--namespace".into(),
            ns.into(),
        ];
        v.extend(extra.iter().map(|s| (*s).to_string()));
        v
    };
    let with = |ns: &'static str, extra: &[&'static str]| {
        let a = args(ns, extra);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        without_docker(&engine, &bin, &refs, tmp)
    };

    // Anonymous: refused, with the fix named.
    let refused = run(with("anon", &[])).failed();
    assert!(refused.stderr.contains("--user"), "{}", refused.stderr);

    // The password on stdin.
    let mut c = with("stdin", &["--user", "fate"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    }
    let by_stdin: Run = child.wait_with_output().unwrap().into();
    assert_eq!(pushed(&by_stdin.ok()).len(), 10);

    // The password in a variable; a wrong one is refused before anything is sent.
    let mut c = with("env", &["--user", "fate", "--password-env", "REG_PASSWORD"]);
    c.env("REG_PASSWORD", "s3cret");
    assert_eq!(pushed(&run(c).ok()).len(), 10);
    let mut c = with(
        "wrong",
        &["--user", "fate", "--password-env", "REG_PASSWORD"],
    );
    c.env("REG_PASSWORD", "wrong");
    let wrong = run(c).failed();
    assert!(wrong.stderr.contains("refused"), "{}", wrong.stderr);

    // docker login's config.json.
    let config_dir = tmp.join("docker-config");
    std::fs::create_dir_all(&config_dir).unwrap();
    // base64 of "fate:s3cret", as docker login writes it.
    let auth = "ZmF0ZTpzM2NyZXQ=";
    std::fs::write(
        config_dir.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, registry.addr),
    )
    .unwrap();
    let mut c = with("login", &[]);
    c.env("DOCKER_CONFIG", &config_dir);
    assert_eq!(pushed(&run(c).ok()).len(), 10);

    // A credential helper that config.json names (credHelpers), found on PATH.
    let helpers = tmp.join("helpers");
    std::fs::create_dir_all(&helpers).unwrap();
    let helper = helpers.join("docker-credential-fatetest");
    std::fs::write(
        &helper,
        "#!/bin/sh\nread server\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"fate\",\"Secret\":\"s3cret\"}' \"$server\"\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let helper_config = tmp.join("helper-config");
    std::fs::create_dir_all(&helper_config).unwrap();
    std::fs::write(
        helper_config.join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"fatetest"}}}}"#, registry.addr),
    )
    .unwrap();
    let mut c = with("helper", &[]);
    c.env("DOCKER_CONFIG", &helper_config).env("PATH", &helpers);
    assert_eq!(pushed(&run(c).ok()).len(), 10);

    let (_, catalog) = registry.http("GET", "/v2/_catalog", Some("fate:s3cret"));
    for ns in ["stdin/", "env/", "login/", "helper/"] {
        assert!(catalog.contains(ns), "{catalog}");
    }
    for ns in ["anon/", "wrong/"] {
        assert!(!catalog.contains(ns), "{catalog}");
    }
}

/// A registry killed in the middle of a push: the push fails naming what to do; run again
/// once the registry is back, it sends only what is missing and completes.
#[test]
fn a_push_cut_off_resumes_where_it_stopped() {
    let fx = Fixture::mini_on("regkill", Builder::Legacy, Engine::system());
    // Incompressible bytes in two layers that take a while to send: the python tree's
    // (python and egg images) and fateboard's.
    write_noise(&fx.root.join("federatedml/noise.bin"), 96 << 20, 1);
    write_noise(
        &fx.root.join("example-tree-dir/fateboard/noise.bin"),
        64 << 20,
        2,
    );
    support::commit_all(&fx.root, "noise");
    fx.xtask(&["images"]).ok();
    let dir = fx.tmp.path().join("bundle");
    fx.xtask(&["bundle", "--out", dir.to_str().unwrap(), "--no-loader"])
        .ok();
    let mut registry = Registry::start(None);
    let addr = registry.addr.clone();
    let tmp = fx.tmp.path();
    let bin = PathBuf::from(support::BIN);
    let engine = Engine::system();
    let args = [
        "load",
        dir.to_str().unwrap(),
        "--registry",
        &addr,
        "--jobs",
        "1",
        "--retries",
        "0",
        "--timeout",
        "5",
    ];
    let child = without_docker(&engine, &bin, &args, tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed once the largest layer is in (the largest go first) and the next partly.
    let started = std::time::Instant::now();
    while registry.stored_bytes() < 120 << 20 {
        assert!(
            started.elapsed() < std::time::Duration::from_mins(2),
            "the push did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    registry.kill();
    let cut: Run = child.wait_with_output().unwrap().into();
    let cut = cut.failed();
    assert!(
        cut.stderr.contains("run the same command again"),
        "{}",
        cut.stderr
    );
    registry.restart();
    let resumed = run(without_docker(&engine, &bin, &args, tmp)).ok();
    assert_eq!(pushed(&resumed).len(), 10, "{}", resumed.stdout);
    // The layer sent whole before the cut is not sent again.
    let kept = summary_bytes(&resumed.stderr, "already there (");
    assert!(
        kept >= 96 << 20,
        "only {kept} bytes were kept from the cut push: {}",
        resumed.stderr
    );
    for image in bundled(&dir) {
        let name = format!("{}/{}", registry.addr, image.reference);
        engine.docker(&["pull", &name]);
        let id = engine.docker(&["image", "inspect", "-f", "{{.Id}}", &name]);
        assert_eq!(id, image.config, "{name}");
        engine.remove_image(&name);
    }
}

/// A registry killed in the middle of a push and back a second later: with retries, the
/// same push goes on (each chunk retried, the upload started again where the registry
/// lost it) and completes.
#[test]
fn a_push_with_retries_outlives_a_registry_restart() {
    let fx = Fixture::mini_on("regretry", Builder::Legacy, Engine::system());
    write_noise(&fx.root.join("federatedml/noise.bin"), 96 << 20, 3);
    support::commit_all(&fx.root, "noise");
    fx.xtask(&["images"]).ok();
    let dir = fx.tmp.path().join("bundle");
    fx.xtask(&["bundle", "--out", dir.to_str().unwrap(), "--no-loader"])
        .ok();
    let mut registry = Registry::start(None);
    let addr = registry.addr.clone();
    let engine = Engine::system();
    let bin = PathBuf::from(support::BIN);
    let args = [
        "load",
        dir.to_str().unwrap(),
        "--registry",
        &addr,
        "--jobs",
        "1",
        "--retries",
        "6",
        "--timeout",
        "5",
    ];
    let child = without_docker(&engine, &bin, &args, fx.tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while registry.stored_bytes() < 24 << 20 {
        assert!(
            started.elapsed() < std::time::Duration::from_mins(2),
            "the push did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    registry.kill();
    std::thread::sleep(std::time::Duration::from_secs(1));
    registry.restart();
    let done: Run = child.wait_with_output().unwrap().into();
    let done = done.ok();
    assert_eq!(pushed(&done).len(), 10, "{}", done.stdout);
    assert!(done.stderr.contains("retrying sha256:"), "{}", done.stderr);
    for image in bundled(&dir) {
        let name = format!("{addr}/{}", image.reference);
        engine.docker(&["pull", &name]);
        let id = engine.docker(&["image", "inspect", "-f", "{{.Id}}", &name]);
        assert_eq!(id, image.config, "{name}");
        engine.remove_image(&name);
    }
}

/// A size of the push's summary (`N blobs uploaded (SIZE), ..., M already there (SIZE)`)
/// after `label`, in bytes.
fn summary_bytes(stderr: &str, label: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("no summary in {stderr}"));
    let size = line.split(label).nth(1).unwrap();
    let size = size.split(')').next().unwrap();
    let (number, unit) = size.split_at(size.find(|c: char| c.is_ascii_alphabetic()).unwrap());
    let number: f64 = number.parse().unwrap();
    let scale = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => panic!("unit {other}"),
    };
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a size"
    )]
    let bytes = (number * scale) as u64;
    bytes
}

/// `len` bytes that do not compress (a xorshift stream from `seed`).
fn write_noise(path: &Path, len: usize, seed: u64) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ seed;
    let bytes: Vec<u8> = (0..len / 8)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect();
    std::fs::write(path, bytes).unwrap();
}

/// The loader alone in a container built FROM scratch with the bundle: it checks the
/// bundle and pushes it, with nothing else in the container.
#[test]
fn the_loader_pushes_from_a_scratch_container() {
    let (fx, dir) = example_bundle("regscratch");
    let registry = Registry::start(None);
    let engine = Engine::system();
    let context = fx.tmp.path().join("scratch");
    support::copy_tree(&dir, &context.join("bundle"));
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY bundle /bundle\nWORKDIR /bundle\nENTRYPOINT [\"/bundle/fate-xtask\"]\n",
    )
    .unwrap();
    let image = format!("{}/scratch-loader:test", fx.prefix);
    engine.docker(&["build", "-q", "-t", &image, context.to_str().unwrap()]);
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    assert!(sums.contains("  fate-xtask\n"), "{sums}");
    let out = engine.docker_output(&[
        "run",
        "--rm",
        "--network",
        "host",
        &image,
        "load",
        ".",
        "--registry",
        &registry.addr,
        "--namespace",
        "airgap",
    ]);
    let run: Run = out.into();
    let run = run.ok();
    assert_eq!(pushed(&run).len(), 10, "{}", run.stdout);
    for image in bundled(&dir) {
        let name = format!(
            "{}/airgap/{}",
            registry.addr,
            last_component(&image.reference)
        );
        engine.docker(&["pull", &name]);
        let id = engine.docker(&["image", "inspect", "-f", "{{.Id}}", &name]);
        assert_eq!(id, image.config, "{name}");
        engine.remove_image(&name);
    }
    engine.remove_image(&image);
}

/// The token endpoint of `support/token-server.py`, stopped when dropped.
struct TokenServer {
    child: std::process::Child,
    port: u16,
    issued: PathBuf,
}

impl TokenServer {
    fn start(dir: &Path, key: &Path, cert: &Path, user: &str, password: &str) -> TokenServer {
        let port_file = dir.join("token-port");
        let issued = dir.join("tokens-issued");
        let script = support::workspace().join("xtask/tests/support/token-server.py");
        let child = Command::new("python3")
            .arg(script)
            .arg(&port_file)
            .arg(key)
            .arg(cert)
            .args([user, password, "fate-registry", "fate-token-issuer"])
            .arg(&issued)
            .spawn()
            .unwrap();
        let mut server = TokenServer {
            child,
            port: 0,
            issued,
        };
        for _ in 0..100 {
            if let Ok(port) = std::fs::read_to_string(&port_file) {
                server.port = port.trim().parse().unwrap();
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the token server did not start");
    }

    fn tokens_issued(&self) -> usize {
        std::fs::read_to_string(&self.issued).map_or(0, |t| t.lines().count())
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Bearer token flow, as Harbor and Docker Hub have it: the registry answers
/// `WWW-Authenticate: Bearer realm=...`, the credentials buy a token at the realm, the
/// token pushes. A wrong password gets no token and pushes nothing.
#[test]
fn the_bearer_token_flow_pushes() {
    support::ensure_packages("openssl", &["openssl"]);
    let (fx, dir) = example_bundle("regtoken");
    let tmp = fx.tmp.path();
    let key = tmp.join("token.key");
    let cert = tmp.join("token.crt");
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=fate-token-issuer", "-keyout"])
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
    let tokens = TokenServer::start(tmp, &key, &cert, "harbor", "Harbor12345");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let registry = Registry::start_with(
        &addr,
        &format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: fate-registry\n    issuer: fate-token-issuer\n    rootcertbundle: {}\n",
            tokens.port,
            cert.display()
        ),
    );
    for _ in 0..100 {
        if registry.http("GET", "/v2/", None).0 == 401 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (status, challenge) = registry.http("GET", "/v2/", None);
    assert_eq!(status, 401, "{challenge}");
    assert!(challenge.contains("Bearer realm="), "{challenge}");

    let bin = PathBuf::from(support::BIN);
    let engine = Engine::system();
    let push = |password: &str, ns: &str| {
        let mut c = without_docker(
            &engine,
            &bin,
            &[
                "load",
                dir.to_str().unwrap(),
                "--registry",
                &addr,
                "--namespace",
                ns,
                "--user",
                "harbor",
                "--password-env",
                "HARBOR_PASSWORD",
            ],
            tmp,
        );
        c.env("HARBOR_PASSWORD", password);
        run(c)
    };
    let wrong = push("wrong", "denied").failed();
    assert!(wrong.stderr.contains("refused"), "{}", wrong.stderr);
    let before = tokens.tokens_issued();
    let pushed_once = push("Harbor12345", "fate").ok();
    assert_eq!(pushed(&pushed_once).len(), 10, "{}", pushed_once.stdout);
    assert!(tokens.tokens_issued() > before, "no token was issued");
    let again = push("Harbor12345", "fate").ok();
    assert_eq!(pushed(&again), pushed(&pushed_once));
    assert!(
        again.stderr.contains("nothing was sent"),
        "{}",
        again.stderr
    );
}

/// A network namespace with a veth link to this host: a host off loopback, removed when
/// dropped.
struct Netns {
    name: String,
    host_addr: String,
    inner_addr: String,
}

impl Netns {
    fn create() -> Netns {
        support::ensure_packages("ip", &["iproute2"]);
        let id = std::process::id() % 200 + 20;
        let name = format!("fxreg{id}");
        let (outer, inner) = (format!("vfx{id}a"), format!("vfx{id}b"));
        let net = Netns {
            name: name.clone(),
            host_addr: format!("10.231.{id}.1"),
            inner_addr: format!("10.231.{id}.2"),
        };
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().unwrap();
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        ip(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ]);
        ip(&["link", "set", &inner, "netns", &name]);
        ip(&[
            "addr",
            "add",
            &format!("{}/24", net.host_addr),
            "dev",
            &outer,
        ]);
        ip(&["link", "set", &outer, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", name.as_str(), "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        inside(&[
            "addr",
            "add",
            &format!("{}/24", net.inner_addr),
            "dev",
            &inner,
        ]);
        inside(&["link", "set", &inner, "up"]);
        inside(&["link", "set", "lo", "up"]);
        net
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // The veth pair goes with the namespace.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A registry with a certificate from a private CA, on a host off loopback: refused with
/// the certificate problem and both fixes named; pushed with `--ca-file`, or `--insecure`.
#[test]
fn a_registry_with_a_private_ca_is_trusted_only_when_told() {
    support::ensure_packages("openssl", &["openssl"]);
    let (fx, dir) = example_bundle("regtls");
    let tmp = fx.tmp.path();
    let net = Netns::create();
    let ca_key = tmp.join("ca.key");
    let ca = tmp.join("ca.crt");
    let key = tmp.join("registry.key");
    let csr = tmp.join("registry.csr");
    let cert = tmp.join("registry.crt");
    let ext = tmp.join("san.ext");
    std::fs::write(&ext, format!("subjectAltName=IP:{}\n", net.inner_addr)).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(tmp)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let p = |path: &Path| path.to_str().unwrap().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=Bank private CA",
        "-keyout",
        &p(&ca_key),
        "-out",
        &p(&ca),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=harbor.bank",
        "-keyout",
        &p(&key),
        "-out",
        &p(&csr),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p(&csr),
        "-CA",
        &p(&ca),
        "-CAkey",
        &p(&ca_key),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &p(&ext),
        "-out",
        &p(&cert),
    ]);

    let addr = format!("{}:5000", net.inner_addr);
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n  tls:\n    certificate: {}\n    key: {}\n",
            data.path().join("data").display(),
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(data.path().join("log")).unwrap();
    let mut server = Command::new("ip")
        .args(["netns", "exec", &net.name, "docker-registry", "serve"])
        .arg(&config)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let curl_ok = || {
        Command::new("curl")
            .args(["-s", "-o", "/dev/null", "--cacert", &p(&ca)])
            .arg(format!("https://{addr}/v2/"))
            .status()
            .unwrap()
            .success()
    };
    let started = std::time::Instant::now();
    while !curl_ok() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the TLS registry did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let bin = PathBuf::from(support::BIN);
    let engine = Engine::system();
    let push = |extra: &[&str], ns: &str| {
        let mut args = vec![
            "load",
            dir.to_str().unwrap(),
            "--registry",
            &addr,
            "--namespace",
            ns,
        ];
        args.extend_from_slice(extra);
        run(without_docker(&engine, &bin, &args, tmp))
    };
    let untrusted = push(&[], "untrusted").failed();
    for words in [
        "certificate",
        "--ca-file",
        "/etc/docker/certs.d/",
        "--insecure",
    ] {
        assert!(
            untrusted.stderr.contains(words),
            "{words}: {}",
            untrusted.stderr
        );
    }
    let with_ca = push(&["--ca-file", &p(&ca)], "fate").ok();
    assert_eq!(pushed(&with_ca).len(), 10, "{}", with_ca.stdout);
    assert!(
        with_ca.stderr.contains(&format!("https://{addr}")),
        "{}",
        with_ca.stderr
    );
    let insecure = push(&["--insecure"], "insecure").ok();
    assert_eq!(pushed(&insecure).len(), 10, "{}", insecure.stdout);
    let _ = server.kill();
    let _ = server.wait();
}

/// An update bundle (`bundle --since`) pushes only onto a registry that holds what it
/// updates: into an empty one, nothing goes up and the bundle to push first is named;
/// after that bundle, the update pushes the images it carries.
#[test]
fn update_bundles_push_only_onto_their_base() {
    let fx = Fixture::mini_on("regupdate", Builder::Legacy, Engine::system());
    fx.xtask(&["images"]).ok();
    let old = fx.tmp.path().join("old");
    fx.xtask(&["bundle", "--out", old.to_str().unwrap(), "--no-loader"])
        .ok();
    let init = fx.root.join("federatedml/__init__.py");
    let text = std::fs::read_to_string(&init).unwrap();
    std::fs::write(&init, format!("{text}# edited\n")).unwrap();
    support::commit_all(&fx.root, "a python edit");
    fx.xtask(&["images"]).ok();
    let update = fx.tmp.path().join("update");
    fx.xtask(&[
        "bundle",
        "--since",
        old.to_str().unwrap(),
        "--out",
        update.to_str().unwrap(),
        "--no-loader",
    ])
    .ok();
    let registry = Registry::start(None);
    let engine = Engine::system();
    let bin = PathBuf::from(support::BIN);
    let push = |dir: &Path| {
        run(without_docker(
            &engine,
            &bin,
            &["load", dir.to_str().unwrap(), "--registry", &registry.addr],
            fx.tmp.path(),
        ))
    };
    let refused = push(&update).failed();
    assert!(
        refused.stderr.contains("push that bundle first"),
        "{}",
        refused.stderr
    );
    let (_, catalog) = registry.http("GET", "/v2/_catalog", None);
    assert!(!catalog.contains(&fx.prefix), "{catalog}");
    assert_eq!(pushed(&push(&old).ok()).len(), 10);
    let updated = pushed(&push(&update).ok());
    let names: Vec<String> = updated.keys().map(|r| last_component(r)).collect();
    assert_eq!(
        names,
        ["egg:1.0.2-release", "python:1.0.2-release"],
        "{updated:?}"
    );
    for image in bundled(&update) {
        let name = format!("{}/{}", registry.addr, image.reference);
        engine.docker(&["pull", &name]);
        let id = engine.docker(&["image", "inspect", "-f", "{{.Id}}", &name]);
        assert_eq!(id, image.config, "{name}");
        engine.remove_image(&name);
    }
}

/// The body of a registry answer (`Registry::http` gives headers and body).
fn body(answer: &str) -> serde_json::Value {
    let text = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no body in {answer}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Images built for two platforms on the containerd store go up as an index holding both;
/// `--platform linux/arm64` pushes that platform's manifest alone under the tag.
#[test]
fn multi_platform_images_go_up_as_an_index() {
    let engine = Engine::containerd();
    let fx = Fixture::mini_on("regmulti", Builder::BuildKit, engine.clone());
    let two = "linux/amd64,linux/arm64";
    fx.xtask(&["images", "--platform", two]).ok();
    fx.xtask(&["images", "third-party", "--platform", two]).ok();
    let dir = fx.tmp.path().join("bundle");
    fx.xtask(&["bundle", "--out", dir.to_str().unwrap(), "--no-loader"])
        .ok();
    let registry = Registry::start_for(&engine, None);
    let bin = PathBuf::from(support::BIN);
    let push = |ns: &str, extra: &[&str]| {
        let mut args = vec![
            "load",
            dir.to_str().unwrap(),
            "--registry",
            &registry.addr,
            "--namespace",
            ns,
        ];
        args.extend_from_slice(extra);
        run(without_docker(&engine, &bin, &args, fx.tmp.path())).ok()
    };
    let all = push("multi", &[]);
    assert_eq!(pushed(&all).len(), 10, "{}", all.stdout);
    let (_, answer) = registry.http("GET", "/v2/multi/python/manifests/1.0.2-release", None);
    let index = body(&answer);
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("not an index: {index}"))
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap_or(""),
                m["platform"]["architecture"].as_str().unwrap_or("")
            )
        })
        .collect();
    for platform in ["linux/amd64", "linux/arm64"] {
        assert!(platforms.iter().any(|p| p == platform), "{platforms:?}");
    }
    // Pulled by the engine: its own platform's image, with the layers it built.
    let name = format!("{}/multi/python:1.0.2-release", registry.addr);
    engine.docker(&["pull", &name]);
    let arch = engine.docker(&["image", "inspect", "-f", "{{.Architecture}}", &name]);
    assert_eq!(arch, "amd64");
    engine.remove_image(&name);

    let arm = push("arm", &["--platform", "linux/arm64"]);
    assert_eq!(pushed(&arm).len(), 10, "{}", arm.stdout);
    let (_, answer) = registry.http("GET", "/v2/arm/python/manifests/1.0.2-release", None);
    let manifest = body(&answer);
    let config = manifest["config"]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("not one manifest: {manifest}"));
    let (_, config) = registry.http("GET", &format!("/v2/arm/python/blobs/{config}"), None);
    assert_eq!(body(&config)["architecture"], "arm64");
}
