#![allow(
    clippy::too_many_lines,
    reason = "a real-engine scenario reads best as one story"
)]
//! Faults and bad input: every failure exits non-zero, says what failed, where and how
//! to fix it, and leaves the source tree, the engine and the destination as they were.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Fixture, Run, run_with_engine};

/// Runs the binary and expects a failure whose stderr holds every `expected` text.
fn fails_with(fx: &Fixture, cmd: &mut Command, expected: &[&str]) -> Run {
    let before = fx.git_status();
    let run = Run::from(run_with_engine(cmd)).failed();
    for e in expected {
        assert!(run.stderr.contains(e), "expected {e:?} in:\n{}", run.stderr);
    }
    assert_eq!(fx.git_status(), before, "the source tree changed");
    assert_eq!(
        fx.stray_containers(),
        Vec::<String>::new(),
        "containers were left behind"
    );
    run
}

/// A directory of links to the given host programs: a PATH without the others.
fn path_with(dir: &Path, programs: &[&str]) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    for p in programs {
        let real = which::which(p).unwrap_or_else(|_| panic!("{p} is needed by this test"));
        std::os::unix::fs::symlink(real, dir.join(p)).unwrap();
    }
    dir.to_path_buf()
}

/// Containers left by the broken Dockerfiles' failed `RUN ["/bin/false"]`.
fn failed_run_containers() -> Vec<String> {
    support::Engine::system()
        .docker(&["ps", "-a", "--format", "{{.ID}} {{.Command}}"])
        .lines()
        .filter(|l| l.contains("/bin/false"))
        .map(str::to_string)
        .collect()
}

fn restore(fx: &Fixture) {
    support::git(&fx.root, &["checkout", "--", "."]);
    support::git(&fx.root, &["clean", "-fdq", "-e", "target"]);
}

#[test]
fn environment_faults_are_explained() {
    let fx = Fixture::mini("env-faults");
    // 1. docker not on PATH.
    let bin = path_with(
        &fx.tmp.path().join("no-docker"),
        &["git", "id", "sh", "mvn", "dpkg-query"],
    );
    fails_with(
        &fx,
        fx.command(&["images"]).env("PATH", &bin),
        &["`docker` is not on PATH", "install Docker Engine"],
    );
    // 2. The daemon does not answer; then (2b) it answered at that endpoint before and
    // stopped since: a run that remembers it (and so does not ask its version) still names
    // the daemon that fails.
    let work = fx.root.join("target/xtask");
    for remembered in [false, true] {
        if remembered {
            fs::create_dir_all(&work).unwrap();
            fs::write(
                work.join("engine.json"),
                r#"{"endpoint":"host unix:///nonexistent/docker.sock","version":"26.1.5","platform":"linux/amd64"}"#,
            )
            .unwrap();
        }
        fails_with(
            &fx,
            fx.command(&["images"])
                .env("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
            &[
                "the Docker daemon at unix:///nonexistent/docker.sock does not answer",
                "start it",
            ],
        );
    }
    fs::remove_file(work.join("engine.json")).unwrap();
    // 3. mvn missing in host mode.
    let bin = path_with(
        &fx.tmp.path().join("no-mvn"),
        &["git", "id", "sh", "docker", "dpkg-query"],
    );
    fails_with(
        &fx,
        fx.command(&["images", "federation", "--maven", "host"])
            .env("PATH", &bin),
        &["`mvn` is not on PATH", "use --maven docker"],
    );
    // 3. The Maven image missing (and unpullable) in container mode.
    let missing = format!("{}/no-such-maven:1", fx.prefix);
    fails_with(
        &fx,
        fx.command(&["images", "federation", "--maven", "docker"])
            .env("MAVEN_IMAGE", &missing),
        &[
            &format!("the Maven image {missing} is not present and cannot be pulled"),
            "--maven host",
        ],
    );
    assert!(fx.images().is_empty(), "nothing may be built");
}

#[test]
fn build_failures_stop_dependents_and_keep_going_builds_the_rest() {
    let fx = Fixture::mini("build-faults");
    // 4. A Java compile error: Maven's error is shown, and no image is built after it.
    let src = "arch/driver/federation/src/main/java/com/webank/ai/fate/driver/Federation.java";
    support::edit(
        &fx.root,
        src,
        "public static void main",
        "int broken = ; public static void main",
    );
    fails_with(
        &fx,
        &mut fx.command(&["images", "--jobs", "1"]),
        &[
            "step mvn-arch failed",
            "Compilation failure",
            "Federation.java:[6,18]",
            "logs/mvn-arch.log",
        ],
    );
    assert!(
        fx.images().is_empty(),
        "no image may be built after a Maven failure"
    );
    restore(&fx);

    // 5. A RUN that fails, and a COPY whose source is missing.
    fs::create_dir_all(fx.root.join("docker/broken")).unwrap();
    fs::write(
        fx.root.join("docker/broken/Dockerfile"),
        "FROM scratch\nRUN [\"/bin/false\"]\n",
    )
    .unwrap();
    fs::write(
        fx.root.join("docker/broken/Dockerfile.copy"),
        "FROM scratch\nCOPY no-such-dir/ /\n",
    )
    .unwrap();
    let toml = "docker/images.toml";
    support::edit(
        &fx.root,
        toml,
        "name = \"proxy\"\ndockerfile = \"docker/modules/java/Dockerfile\"",
        "name = \"proxy\"\ndockerfile = \"docker/broken/Dockerfile\"",
    );
    let run = fails_with(
        &fx,
        &mut fx.command(&["images", "proxy", "roll", "--jobs", "1"]),
        &[
            "step build-proxy failed",
            "--- last lines of",
            "logs/build-proxy.log",
        ],
    );
    assert!(
        fx.last_run().values().any(|s| s.result == "not-run"
            && s.reason.as_deref() == Some("an earlier step failed")),
        "{}",
        run.stdout
    );
    assert!(
        !fx.images().contains_key(&fx.reference("roll")),
        "the run stops at the first failure"
    );
    let run = fails_with(
        &fx,
        &mut fx.command(&["images", "proxy", "roll", "--keep-going", "--jobs", "1"]),
        &["1 step(s) failed: build-proxy"],
    );
    assert!(
        fx.images().contains_key(&fx.reference("roll")),
        "--keep-going builds the independent rest: {}",
        run.stdout
    );
    support::edit(
        &fx.root,
        toml,
        "docker/broken/Dockerfile\"",
        "docker/broken/Dockerfile.copy\"",
    );
    fails_with(
        &fx,
        &mut fx.command(&["images", "proxy"]),
        &["step build-proxy failed", "no-such-dir"],
    );
    // A copy from the context to anywhere but the root (its directories would be made at
    // build time, with the build's time) is refused before any work, with the fix.
    fs::write(
        fx.root.join("docker/broken/Dockerfile.copy"),
        "FROM scratch\nCOPY . /data/projects/fate/proxy/\n",
    )
    .unwrap();
    fails_with(
        &fx,
        &mut fx.command(&["images", "proxy"]),
        &[
            "preflight found problems; nothing was built",
            "has `COPY . /data/projects/fate/proxy/`, which makes directories at build time",
            "and copy it with `COPY image/ /`",
        ],
    );

    // A failed parent: its dependents are not built, the independent rest is.
    support::edit(
        &fx.root,
        toml,
        "dockerfile = \"docker/base/Dockerfile\"",
        "dockerfile = \"docker/broken/Dockerfile\"",
    );
    let run = fails_with(
        &fx,
        &mut fx.command(&[
            "images",
            "base-image",
            "python",
            "federation",
            "--keep-going",
        ]),
        &["build-base-image"],
    );
    let python = &fx.last_run()["build-python"];
    assert_eq!(python.result, "not-run", "{}", run.stdout);
    assert_eq!(
        python.reason.as_deref(),
        Some("build-base-image did not succeed"),
        "{}",
        run.stdout
    );
    assert!(fx.images().contains_key(&fx.reference("federation")));
    assert_eq!(
        failed_run_containers(),
        Vec::<String>::new(),
        "a failed RUN left its container"
    );
    restore(&fx);
    fx.assert_clean();
}

/// Starts the binary in its own process group (as a terminal's foreground job).
fn spawn_group(cmd: &mut Command) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Starts `images --jobs 1` in its own process group and waits until its first docker
/// build has begun.
fn start_during_build(fx: &Fixture, logs: &Path) -> std::process::Child {
    let log = logs.join("build-base-image.log");
    let _ = fs::remove_file(&log);
    let child = spawn_group(&mut fx.command(&["images", "--jobs", "1"]));
    wait_for(&log, "Step 1/", Duration::from_mins(3));
    child
}

/// Waits until `path` exists and contains `text`.
fn wait_for(path: &Path, text: &str, limit: Duration) {
    let started = Instant::now();
    while started.elapsed() < limit {
        if fs::read_to_string(path).is_ok_and(|t| t.contains(text)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{} never showed {text:?}", path.display());
}

/// Ctrl-C: SIGINT to the whole process group, then an exit with 130 within 5 s.
fn interrupt(fx: &Fixture, child: std::process::Child) -> Run {
    let group = format!("-{}", child.id());
    stop_with(fx, child, &["-INT", "--", &group], 130)
}

/// Sends `kill ARGS` and expects an exit with `code` within 5 s, contexts removed.
fn stop_with(fx: &Fixture, mut child: std::process::Child, kill: &[&str], code: i32) -> Run {
    let started = Instant::now();
    let ok = Command::new("kill").args(kill).status().unwrap();
    assert!(ok.success());
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not stopped within 5 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, Some(code), "{}", run.stderr);
    assert!(run.stderr.contains("interrupted"), "{}", run.stderr);
    assert!(
        !fx.root.join("target/xtask/contexts").exists(),
        "staged contexts must be removed"
    );
    run
}

#[test]
fn ctrl_c_stops_maven_and_builds_and_cleans_up() {
    let fx = Fixture::mini("sigint");
    let logs = fx.root.join("target/xtask/logs");
    // During Maven (in a container, so its container must go too).
    let maven_image = format!("{}/maven:local", fx.prefix);
    let script = support::workspace().join("xtask/tests/support/make-maven-image.sh");
    assert!(
        Command::new(&script)
            .arg(&maven_image)
            .status()
            .unwrap()
            .success()
    );
    let guard = support::engine_shared();
    let child = spawn_group(
        fx.command(&["images", "--jobs", "1", "--maven", "docker"])
            .env("MAVEN_IMAGE", &maven_image),
    );
    wait_for(&logs.join("mvn-arch.log"), "[INFO]", Duration::from_mins(2));
    interrupt(&fx, child);
    drop(guard);
    assert_eq!(
        fx.stray_containers(),
        Vec::<String>::new(),
        "the Maven container must be removed"
    );

    // During a docker build.
    let guard = support::engine_shared();
    let child = start_during_build(&fx, &logs);
    interrupt(&fx, child);
    drop(guard);
    fx.assert_clean();

    // SIGTERM to the tool alone (CI cancellation, `timeout`): the same cleanup, exit 143.
    let guard = support::engine_shared();
    let child = start_during_build(&fx, &logs);
    let pid = child.id().to_string();
    let run = stop_with(&fx, child, &["-TERM", &pid], 143);
    assert!(
        run.stderr.contains("interrupted (SIGTERM)"),
        "{}",
        run.stderr
    );
    drop(guard);
    fx.assert_clean();
}

#[test]
fn concurrent_runs_wait_and_a_full_disk_leaves_no_bundle() {
    let fx = Fixture::mini("lock");
    // 9. Two runs at once on one FATE root: the second waits for the first.
    let guard = support::engine_shared();
    let first = spawn_group(&mut fx.command(&["images", "--jobs", "2"]));
    wait_for(
        &fx.root.join("target/xtask/logs/mvn-arch.log"),
        "$ ",
        Duration::from_mins(1),
    );
    let second = spawn_group(&mut fx.command(&["images"]));
    let first = Run::from(first.wait_with_output().unwrap()).ok();
    let second = Run::from(second.wait_with_output().unwrap()).ok();
    drop(guard);
    assert!(
        second
            .stderr
            .contains("another cargo xtask is running on this FATE root; waiting"),
        "{}",
        second.stderr
    );
    // The first built every image; the second (whose run report is the last) found
    // every one up to date.
    assert_eq!(fx.images().len(), 10, "{}", first.stdout);
    assert_eq!(
        fx.steps_ran(),
        Vec::<String>::new(),
        "the second run found everything up to date: {}",
        second.stdout
    );

    // 7. A bundle to a full disk: a clear error, and nothing at the destination.
    fx.xtask(&["images", "third-party"]).ok();
    let full = fx.tmp.path().join("full disk");
    fs::create_dir_all(&full).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(&full)
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "this test mounts a small tmpfs (needs root)"
    );
    let run = Run::from(run_with_engine(&mut fx.command(&[
        "bundle",
        "--out",
        full.to_str().unwrap(),
    ])));
    let left: Vec<_> = fs::read_dir(&full)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let _ = Command::new("umount").arg(&full).status();
    let run = run.failed();
    assert!(run.stderr.contains("is the disk full?"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&full.display().to_string()),
        "{}",
        run.stderr
    );
    assert!(left.is_empty(), "left at the destination: {left:?}");
    // Into a directory the bundle makes: not even the directory stays.
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(&full)
        .status()
        .unwrap();
    assert!(mounted.success());
    let new_out = full.join("new/bundle");
    let run = Run::from(run_with_engine(&mut fx.command(&[
        "bundle",
        "--out",
        new_out.to_str().unwrap(),
    ])));
    let made = full.join("new").exists();
    let _ = Command::new("umount").arg(&full).status();
    assert!(run.failed().stderr.contains("is the disk full?"));
    assert!(!made, "the bundle left the directory it made");

    // A full disk while staging: the message names the path.
    let contexts = fx.root.join("target/xtask/contexts");
    fs::create_dir_all(&contexts).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&contexts)
        .status()
        .unwrap();
    assert!(mounted.success());
    let run = Run::from(run_with_engine(&mut fx.command(&[
        "images",
        "federation",
        "--force",
    ])));
    let _ = Command::new("umount").arg(&contexts).status();
    let run = run.failed();
    assert!(
        run.stderr
            .contains(&format!("cannot stage {}", contexts.display()))
            && run.stderr.contains("No space left on device"),
        "{}",
        run.stderr
    );
    fx.assert_clean();
}

/// `.env` is data: a missing file, missing, empty and invalid values, shell substitution
/// (never run), control characters and huge values are refused with the key and line;
/// CRLF and a BOM are accepted; a duplicate and an unknown key warn.
#[test]
fn bad_env_files_are_refused_before_any_work() {
    let fx = Fixture::mini("bad-env");
    let env_file = fx.tmp.path().join("test.env");
    let marker = fx.tmp.path().join("executed");
    let good = "PREFIX=fate-x\nBASE_TAG=1.0\nBUILDER_TAG=1.0\nTAG=1.0\n";
    let check_env = |text: &str, expected: &[&str]| {
        fs::write(&env_file, text).unwrap();
        let mut cmd = fx.command(&[
            "--env-file",
            env_file.to_str().unwrap(),
            "images",
            "--dry-run",
        ]);
        cmd.env_remove("PREFIX");
        fails_with(&fx, &mut cmd, expected);
    };
    // 11. .env
    let mut cmd = fx.command(&["--env-file", "/nonexistent/.env", "images"]);
    fails_with(
        &fx,
        &mut cmd,
        &["cannot read /nonexistent/.env", "--env-file"],
    );
    check_env(
        "PREFIX=fate-x\nBASE_TAG=1.0\nBUILDER_TAG=1.0\n",
        &["required key TAG is missing"],
    );
    check_env(
        &good.replace("TAG=1.0\n", "TAG=\n"),
        &["test.env:4: TAG=\"\" is empty"],
    );
    check_env(
        &good.replace("TAG=1.0\n", "TAG=\"1.0 release\"\n"),
        &["test.env:4: TAG=\"1.0 release\" is not a valid tag"],
    );
    check_env(
        &good.replace("TAG=1.0\n", &format!("TAG={}\n", "a".repeat(129))),
        &["longer than 128 characters"],
    );
    check_env(
        &good.replace("TAG=1.0\n", "TAG=.hidden\n"),
        &["test.env:4: TAG=\".hidden\" is not a valid tag"],
    );
    check_env(
        &good.replace("fate-x", "FATE-X"),
        &["test.env:1: PREFIX=\"FATE-X\"", "lowercase"],
    );
    check_env(
        &good.replace("fate-x", &format!("$(touch {})", marker.display())),
        &["test.env:1:", "shell command substitution"],
    );
    check_env(
        &good.replace("fate-x", &format!("`touch {}`", marker.display())),
        &["test.env:1:", "shell command substitution"],
    );
    assert!(!marker.exists(), ".env was executed");
    // CRLF and a BOM are accepted; a duplicate and an unknown key warn.
    fs::write(
        &env_file,
        format!(
            "\u{feff}{}TAG=2.0\r\nMAVN_IMAGE=x\r\n",
            good.replace('\n', "\r\n")
        ),
    )
    .unwrap();
    let mut cmd = fx.command(&[
        "--env-file",
        env_file.to_str().unwrap(),
        "images",
        "--dry-run",
        "base-image",
    ]);
    cmd.env_remove("PREFIX");
    let run = Run::from(run_with_engine(&mut cmd)).ok();
    assert!(
        run.stdout.contains("--tag fate-x/base-image:1.0"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("test.env:5: TAG is set again (first on line 4); the last value wins"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("unknown key MAVN_IMAGE is ignored; did you mean MAVEN_IMAGE?"),
        "{}",
        run.stderr
    );

    // .env values: control characters and huge values, with the key and line.
    check_env(
        &format!("{good}SOURCE_URL=\"a\u{0}b\"\n"),
        &["test.env:5: SOURCE_URL contains the control character U+0000"],
    );
    check_env(
        &format!("{good}SOURCE_URL={}\n", "x".repeat(1_000_000)),
        &["test.env:5: SOURCE_URL is 1000000 bytes long"],
    );

    fx.assert_clean();
}

/// An unknown image, an unknown flag and conflicting flags are usage errors.
#[test]
fn usage_errors_name_what_is_valid() {
    let fx = Fixture::mini("bad-usage");
    // 12. Unknown image, unknown flag, conflicting flags: usage errors.
    let run = fails_with(
        &fx,
        &mut fx.command(&["images", "eg"]),
        &[
            "unknown image or group \"eg\" (did you mean egg?)",
            "valid images: base-image",
            "groups: base, builder",
        ],
    );
    assert_eq!(run.code, Some(1));
    let run = fails_with(
        &fx,
        &mut fx.command(&["images", "--no-such-flag"]),
        &["unexpected argument '--no-such-flag'"],
    );
    assert_eq!(run.code, Some(2));
    let run = fails_with(
        &fx,
        &mut fx.command(&["push", "--all", "federation"]),
        &["cannot be used with"],
    );
    assert_eq!(run.code, Some(2));

    fx.assert_clean();
}

/// The image set's problems (a missing Dockerfile, a cycle, paths out of the FATE root, a
/// name like a group's, an unknown parent) are refused before any work, with their line.
#[test]
fn image_set_problems_are_refused_before_any_work() {
    let fx = Fixture::mini("bad-set");
    // 13. The image set: a missing Dockerfile, a cycle, paths out of the FATE root.
    let toml = "docker/images.toml";
    support::edit(
        &fx.root,
        toml,
        "docker/modules/python/Dockerfile",
        "docker/modules/python/Nope",
    );
    fails_with(
        &fx,
        &mut fx.command(&["images", "--dry-run"]),
        &["image python: Dockerfile", "Nope does not exist"],
    );
    restore(&fx);
    support::edit(
        &fx.root,
        toml,
        "name = \"base-image\"\ngroup = \"base\"",
        "name = \"base-image\"\ngroup = \"base\"\nparents = [\"egg\"]",
    );
    fails_with(
        &fx,
        &mut fx.command(&["images", "--dry-run"]),
        &["cycle: ", "base-image -> egg"],
    );
    restore(&fx);
    support::edit(
        &fx.root,
        toml,
        "{ from = \"requirements.txt\",",
        "{ from = \"../../etc\",",
    );
    fails_with(
        &fx,
        &mut fx.command(&["images", "--dry-run"]),
        &["escapes the FATE root"],
    );
    restore(&fx);
    support::edit(
        &fx.root,
        toml,
        "{ from = \"requirements.txt\",",
        "{ from = \"/etc/passwd\",",
    );
    fails_with(
        &fx,
        &mut fx.command(&["images", "--dry-run"]),
        &["must be a relative path inside the FATE root"],
    );
    restore(&fx);
    fs::remove_file(fx.root.join("requirements.txt")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", fx.root.join("requirements.txt")).unwrap();
    fails_with(
        &fx,
        &mut fx.command(&["images", "--dry-run"]),
        &["resolves to /etc/passwd, outside the FATE root"],
    );
    restore(&fx);
    // Semantic errors of the image set say on which line; an image named like a group is
    // refused.
    support::edit(&fx.root, toml, "name = \"redis\"", "name = \"modules\"");
    fails_with(
        &fx,
        &mut fx.command(&["images", "--dry-run"]),
        &["images.toml", "image modules is named like a group"],
    );
    restore(&fx);
    support::edit(
        &fx.root,
        toml,
        "name = \"base-image\"\ngroup = \"base\"",
        "name = \"base-image\"\ngroup = \"base\"\nparents = [\"nope\"]",
    );
    let text = fs::read_to_string(fx.root.join(toml)).unwrap();
    let line = 1 + text
        .lines()
        .position(|l| l == "name = \"base-image\"")
        .unwrap();
    fails_with(
        &fx,
        &mut fx.command(&["images", "--dry-run"]),
        &[&format!(
            "line {line}: image base-image has unknown parent nope"
        )],
    );
    restore(&fx);

    fx.assert_clean();
}

#[test]
fn a_fifo_in_a_source_tree_is_refused_never_opened() {
    let fx = Fixture::mini("fifo");
    // A FIFO in a copied source directory is refused with its path, never opened (which
    // would block until a writer appears).
    let fifo = fx.root.join("federatedml/pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let run = within(
        &mut fx.command(&["images", "--dry-run", "python"]),
        Duration::from_secs(30),
    );
    assert!(run.stdout.contains("pipe is a FIFO"), "{}", run.stdout);
    let run = within(
        &mut fx.command(&["images", "python"]),
        Duration::from_mins(2),
    );
    assert_ne!(run.code, Some(0));
    assert!(
        run.stderr
            .contains(&format!("{} is a FIFO", fifo.display())),
        "{}",
        run.stderr
    );
    fs::remove_file(&fifo).unwrap();
    fx.assert_clean();
}

/// Runs a command that must end within `limit` (killed and failed otherwise).
fn within(cmd: &mut Command, limit: Duration) -> Run {
    let _shared = support::engine_shared();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{cmd:?} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Run::from(child.wait_with_output().unwrap())
}

/// The engine dies in the middle of a build: the error says the engine stopped answering
/// (not a bare `unexpected EOF`), and once it is back the next run removes the build
/// container the crash left (the legacy builder's container of a `RUN` step).
#[test]
fn an_engine_that_dies_mid_build_is_named_and_its_leftovers_are_removed() {
    let fx = Fixture::mini("crash");
    let engine_dir = fx.tmp.path().join("engine");
    let mut engine = support::engine::PrivateEngine::start(&engine_dir);
    // A base with `sleep` (from this host) so a RUN step lasts until the crash.
    let rootfs = "fate-crash-rootfs:1";
    engine.engine().import_sleep_rootfs(rootfs);
    support::edit(
        &fx.root,
        "docker/base/Dockerfile",
        "FROM scratch",
        &format!("FROM {rootfs}\nRUN [\"/usr/bin/sleep\", \"300\"]"),
    );
    let log = fx.root.join("target/xtask/logs/build-base-image.log");
    let mut cmd = fx.command(&["images", "base-image"]);
    cmd.env("DOCKER_HOST", engine.host());
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&log, "Running in", Duration::from_mins(3));
    engine.kill();
    let run = Run::from(child.wait_with_output().unwrap()).failed();
    assert!(
        run.stderr.contains(&format!(
            "the Docker engine stopped answering during this step ({})",
            engine.host()
        )),
        "{}",
        run.stderr
    );
    let marker = fx.root.join("target/xtask/engine-lost");
    assert!(marker.exists());

    // Back up: the crash left the RUN step's container; the next run removes it.
    let engine = support::engine::PrivateEngine::start(&engine_dir);
    let left = String::from_utf8(engine.docker(&["ps", "-aq"]).stdout).unwrap();
    assert!(
        !left.trim().is_empty(),
        "the crash left no container to remove"
    );
    support::git(&fx.root, &["checkout", "--", "."]);
    let mut cmd = fx.command(&["images", "base-image"]);
    cmd.env("DOCKER_HOST", engine.host());
    Run::from(cmd.output().unwrap()).ok();
    let after = String::from_utf8(engine.docker(&["ps", "-aq"]).stdout).unwrap();
    assert_eq!(after.trim(), "", "containers left: {after}");
    assert!(!marker.exists());
    assert_eq!(fx.git_status(), "");
}

/// A git submodule inside what an image stages, empty after a plain clone: named before
/// any work with the exact command, and checked out by `--init-submodules`.
#[test]
fn empty_git_submodules_are_named_and_can_be_checked_out() {
    let fx = Fixture::mini("submodules");
    // A real repository, added as a submodule by a file:// URL.
    let lib = fx.tmp.path().join("lmdb-src");
    fs::create_dir_all(&lib).unwrap();
    fs::write(lib.join("lmdb.h"), "/* lmdb */\n").unwrap();
    support::commit_all(&lib, "lmdb");
    let sub = "arch/eggroll/storage-service-cxx/third_party/lmdb";
    let url = format!("file://{}", lib.display());
    support::git(
        &fx.root,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            &url,
            sub,
        ],
    );
    support::commit_all(&fx.root, "submodule");
    // A plain clone: the submodule is an empty directory.
    let clone = fx.tmp.path().join("clone é");
    let out = Command::new("git")
        .args(["clone", "-q"])
        .arg(&fx.root)
        .arg(&clone)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read_dir(clone.join(sub)).unwrap().count(), 0);
    let cloned = Fixture {
        tmp: tempfile::tempdir().unwrap(),
        root: clone.clone(),
        prefix: format!("{}-clone", fx.prefix),
        builder: fx.builder,
        engine: fx.engine.clone(),
    };
    let run = cloned.xtask(&["images", "--dry-run"]).failed();
    for expected in [
        format!("1 git submodule(s) that the images stage are not checked out (empty): {sub}"),
        format!("submodule update --init --recursive -- {sub}"),
        "--init-submodules".to_string(),
    ] {
        assert!(run.stderr.contains(&expected), "{expected}: {}", run.stderr);
    }
    let run = cloned
        .xtask(&["images", "storage-service-builder"])
        .failed();
    assert!(run.stderr.contains("not checked out"), "{}", run.stderr);
    assert!(cloned.images().is_empty(), "nothing may be built");

    // git allows file:// submodules only when asked (this test's URL; FATE's are https).
    let run = Run::from(support::run_with_engine(
        cloned
            .command(&["images", "storage-service-builder", "--init-submodules"])
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "protocol.file.allow")
            .env("GIT_CONFIG_VALUE_0", "always"),
    ))
    .ok();
    assert!(clone.join(sub).join("lmdb.h").is_file(), "{}", run.stderr);
    let staged = clone.join(
        "target/xtask/contexts/storage-service-builder/image/data/projects/fate/storage-service-cxx/third_party/lmdb",
    );
    assert!(staged.join("lmdb.h").is_file(), "the submodule is staged");
    assert!(!staged.join(".git").exists(), "its .git link is not");
    assert_eq!(
        cloned.git_status(),
        "",
        "checking out a submodule leaves the tree clean"
    );
    assert_eq!(cloned.images().len(), 2, "the builder and its base");
}
