#![allow(
    clippy::too_many_lines,
    reason = "a real-engine scenario reads best as one story"
)]
//! `cargo xtask push` against real registry servers on 127.0.0.1.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Builder, Engine, Fixture, Registry, Run, run_with_engine};

/// `ref@digest` lines of push's stdout, by reference.
fn digests(run: &Run) -> BTreeMap<String, String> {
    run.stdout
        .lines()
        .filter_map(|l| l.split_once('@'))
        .map(|(r, d)| (r.to_string(), d.to_string()))
        .collect()
}

/// The registry's digest for a tag, from its HTTP API.
fn registry_digest(registry: &Registry, name: &str, tag: &str, user: Option<&str>) -> String {
    let (status, head) = registry.http("HEAD", &format!("/v2/{name}/manifests/{tag}"), user);
    assert_eq!(status, 200, "{head}");
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("docker-content-digest:")
                .then(|| l[22..].trim().to_string())
        })
        .unwrap_or_else(|| panic!("no digest header: {head}"))
}

on_both_engines!(pushes_to_real_registries, pushes);

/// Pushes to an open registry, one with htpasswd auth, and one that is down.
fn pushes(engine: Engine) {
    let fx = Fixture::mini_on("push", Builder::Legacy, engine);
    fx.xtask(&["images", "federation", "proxy"]).ok();
    let docker_config = fx.tmp.path().join("docker-config");
    std::fs::create_dir_all(&docker_config).unwrap();

    // An open registry: every image and tag arrives, with the digests push printed.
    let open = Registry::start_for(&fx.engine, None);
    let run = run_with_engine(
        fx.command(&["push", "federation", "proxy", "--registry", &open.addr])
            .env("DOCKER_CONFIG", &docker_config),
    );
    let run = Run::from(run).ok();
    let printed = digests(&run);
    assert_eq!(printed.len(), 2, "{}", run.stdout);
    for name in ["federation", "proxy"] {
        let repo = format!("{}/{name}", fx.prefix);
        let (status, body) = open.http("GET", &format!("/v2/{repo}/tags/list"), None);
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"1.0.2-release\""), "{body}");
        let target = format!("{}/{repo}:1.0.2-release", open.addr);
        assert_eq!(
            printed[&target],
            registry_digest(&open, &repo, "1.0.2-release", None),
            "{target}"
        );
    }
    // The registry tags made for pushing are not left behind.
    let leftovers = fx.docker(&[
        "images",
        "-q",
        "--filter",
        &format!("reference={}/*/*", open.addr),
    ]);
    assert_eq!(leftovers, "", "registry tags left behind");

    // A registry with htpasswd auth.
    let secure = Registry::start_for(&fx.engine, Some(("alice", "s3cret-pw")));
    let push = |extra: &[&str], password_env: Option<&str>| {
        let mut args = vec!["push", "federation", "--registry", &secure.addr];
        args.extend(extra);
        let mut cmd = fx.command(&args);
        cmd.env("DOCKER_CONFIG", &docker_config);
        if let Some(p) = password_env {
            cmd.env("REGISTRY_PASSWORD", p);
        }
        let started = Instant::now();
        (Run::from(run_with_engine(&mut cmd)), started.elapsed())
    };
    // Not logged in: a clear error, at once, no retry loop.
    let (run, took) = push(&[], None);
    let run = run.failed();
    assert!(
        run.stderr.contains("log in with `cargo xtask push --login"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("retry"), "{}", run.stderr);
    assert!(
        took.as_secs() < 5,
        "auth failures are not retried: {took:?}"
    );
    // Wrong password: refused, and the password appears nowhere.
    let (run, _) = push(
        &[
            "--login",
            "--user",
            "alice",
            "--password-env",
            "REGISTRY_PASSWORD",
        ],
        Some("wrong-pw-123"),
    );
    let run = run.failed();
    assert!(run.stderr.contains("docker login to"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("wrong-pw-123") && !run.stdout.contains("wrong-pw-123"),
        "password leaked"
    );
    let logs = fx.root.join("target/xtask/logs");
    for entry in std::fs::read_dir(&logs).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        assert!(!text.contains("wrong-pw-123"), "password in a log");
    }
    // The right password, on stdin: pushed, with the registry's digest.
    let mut cmd = fx.command(&[
        "push",
        "federation",
        "--registry",
        &secure.addr,
        "--login",
        "--user",
        "alice",
    ]);
    cmd.env("DOCKER_CONFIG", &docker_config)
        .stdin(std::process::Stdio::piped());
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cret-pw\n")
        .unwrap();
    let run = Run::from(child.wait_with_output().unwrap()).ok();
    let repo = format!("{}/federation", fx.prefix);
    let target = format!("{}/{repo}:1.0.2-release", secure.addr);
    assert_eq!(
        digests(&run)[&target],
        registry_digest(&secure, &repo, "1.0.2-release", Some("alice:s3cret-pw"))
    );
    assert!(!run.stderr.contains("s3cret-pw"));

    // A registry that is down: bounded retries, then a clear error.
    let down = {
        let r = Registry::start_for(&fx.engine, None);
        r.addr.clone()
    };
    let started = Instant::now();
    let run = run_with_engine(
        fx.command(&["push", "proxy", "--registry", &down, "--retries", "2"])
            .env("DOCKER_CONFIG", &docker_config),
    );
    let run = Run::from(run).failed();
    let took = started.elapsed();
    assert!(
        run.stderr
            .contains("failed after 3 attempts (each bounded by --timeout 300 s); is the registry up and reachable?"),
        "{}",
        run.stderr
    );
    assert!(
        took.as_secs() >= 3 && took.as_secs() < 60,
        "backoff 1 s + 2 s, bounded: {took:?}"
    );
    fx.assert_clean();
}

/// A registry that accepts connections and never answers: each attempt is bounded by
/// `--timeout`, retried, and the failure says to check the registry. SIGTERM during such a
/// push stops it within 5 s and removes the registry tag.
#[test]
fn a_silent_registry_is_bounded_by_the_timeout_and_sigterm_cleans_up() {
    let fx = Fixture::mini("silent");
    fx.xtask(&["images", "base"]).ok();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let tagged = format!("{addr}/{}", fx.reference("base-image"));

    let started = Instant::now();
    let run = fx
        .xtask(&[
            "push",
            "base-image",
            "--registry",
            &addr,
            "--timeout",
            "3",
            "--retries",
            "1",
        ])
        .failed();
    let took = started.elapsed();
    assert!(
        run.stderr
            .contains("failed after 2 attempts (each bounded by --timeout 3 s)")
            && run.stderr.contains("is the registry up and reachable?"),
        "{}",
        run.stderr
    );
    assert!(
        took >= Duration::from_secs(6) && took < Duration::from_secs(30),
        "two bounded attempts took {took:?}"
    );
    assert!(
        !fx.images().keys().any(|r| r.starts_with(&addr)),
        "{tagged} was left"
    );
    assert!(
        fx.docker(&["images", "-q", &tagged]).is_empty(),
        "the registry tag was left"
    );

    // SIGTERM to the tool alone (as CI cancellation or `timeout` send it).
    let mut child = fx
        .command(&[
            "push",
            "base-image",
            "--registry",
            &addr,
            "--timeout",
            "120",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = fx.root.join("target/xtask/logs/push-base-image.log");
    let waited = Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains(&addr)) {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the push never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let pid = child.id().to_string();
    let stopping = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    while child.try_wait().unwrap().is_none() {
        assert!(
            stopping.elapsed() < Duration::from_secs(5),
            "not stopped within 5 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, Some(143), "{}", run.stderr);
    assert!(
        fx.docker(&["images", "-q", &tagged]).is_empty(),
        "the registry tag was left"
    );
    let pushes = Command::new("pgrep")
        .args(["-f", &format!("docker push {addr}")])
        .output()
        .unwrap();
    assert!(
        pushes.stdout.is_empty(),
        "a docker push child was left running"
    );
}
