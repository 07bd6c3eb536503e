#![allow(
    clippy::too_many_lines,
    reason = "a real-engine scenario reads best as one story"
)]
//! BuildKit for real: Debian's docker-buildx plugin against this engine (the docker
//! driver). The same images as the legacy builder, switching builders rebuilds nothing,
//! a failing RUN and Ctrl-C, BuildKit's options, and a bake file that
//! `docker buildx bake` builds into the same images.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Builder, Fixture, Run};

/// An image's files and labels.
type Contents = (BTreeMap<String, String>, BTreeMap<String, String>);

/// The content and labels of every image of the example, by image name.
fn snapshot(fx: &Fixture, tag: &str) -> BTreeMap<String, Contents> {
    support::build_order()
        .into_iter()
        .map(|name| {
            let reference = fx.reference(name);
            let dest = fx.tmp.path().join("snapshots").join(tag).join(name);
            let files = fx.image_files(&reference, &dest);
            (name.to_string(), (files, fx.labels(&reference)))
        })
        .collect()
}

fn logs(fx: &Fixture) -> String {
    let dir = fx.root.join("target/xtask/logs");
    let mut all = String::new();
    for entry in fs::read_dir(&dir).unwrap() {
        all.push_str(&fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }
    all
}

fn images_built(run: &Run) -> usize {
    run.steps_with("built")
        .iter()
        .filter(|s| !s.starts_with("mvn-"))
        .count()
}

#[test]
fn both_builders_make_the_same_images_and_switching_rebuilds_nothing() {
    let fx = Fixture::mini_with("bk-same", Builder::BuildKit);
    let run = fx.xtask(&["images"]).ok();
    assert_eq!(images_built(&run), 10, "{}", run.stdout);
    let egg_log = fs::read_to_string(fx.root.join("target/xtask/logs/build-egg.log")).unwrap();
    assert!(egg_log.starts_with("$ docker buildx build"), "{egg_log}");
    assert!(
        !run.stderr.contains("legacy builder"),
        "BuildKit needs no notice: {}",
        run.stderr
    );

    // A no-op, and a plan that says so.
    let run = fx.xtask(&["images"]).ok();
    assert_eq!(images_built(&run), 0, "{}", run.stdout);
    let plan = fx.xtask(&["images", "--dry-run", "--format", "json"]).ok();
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(plan["builder"], "buildkit");
    for step in plan["steps"].as_array().unwrap() {
        assert_eq!(step["decision"], "up-to-date", "{step}");
    }
    let buildkit = snapshot(&fx, "buildkit");

    // Switching builders rebuilds nothing: the inputs are the same.
    let legacy = |args: &[&str]| {
        Run::from(support::run_with_engine(
            &mut fx.command_with(Builder::Legacy, args),
        ))
    };
    let run = legacy(&["images"]).ok();
    assert_eq!(images_built(&run), 0, "{}", run.stdout);

    // The legacy builder makes the same files and labels; its deprecation notice is
    // said once, not in every log.
    let run = legacy(&["images", "--force"]).ok();
    assert_eq!(images_built(&run), 10, "{}", run.stdout);
    assert_eq!(
        run.stderr
            .matches("legacy builder, which Docker deprecates")
            .count(),
        1,
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("docker-buildx"), "{}", run.stderr);
    assert!(
        !logs(&fx).contains("DEPRECATED"),
        "the legacy notice is kept out of the logs"
    );
    let legacy_images = snapshot(&fx, "legacy");
    for (name, (files, labels)) in &buildkit {
        let (other_files, other_labels) = &legacy_images[name];
        assert_eq!(
            files, other_files,
            "{name}: contents differ between builders"
        );
        // Parents' IDs are inputs, and each builder makes its own IDs.
        let mut labels = labels.clone();
        let mut other = other_labels.clone();
        if ["storage-service-builder", "python", "egg"].contains(&name.as_str()) {
            labels.remove("org.fedai.fate-xtask.inputs");
            other.remove("org.fedai.fate-xtask.inputs");
        }
        assert_eq!(labels, other, "{name}: labels differ between builders");
    }

    // And back: nothing to do.
    let run = fx.xtask(&["images"]).ok();
    assert_eq!(images_built(&run), 0, "{}", run.stdout);
    fx.assert_clean();
}

#[test]
fn a_failing_run_and_ctrl_c_under_buildkit() {
    let fx = Fixture::mini_with("bk-faults", Builder::BuildKit);
    fs::create_dir_all(fx.root.join("docker/broken")).unwrap();
    fs::write(
        fx.root.join("docker/broken/Dockerfile"),
        "FROM scratch\nRUN [\"/bin/false\"]\n",
    )
    .unwrap();
    let toml = "docker/images.toml";
    support::edit(
        &fx.root,
        toml,
        "dockerfile = \"docker/base/Dockerfile\"",
        "dockerfile = \"docker/broken/Dockerfile\"",
    );
    let run = fx
        .xtask(&["images", "base-image", "proxy", "--keep-going"])
        .failed();
    for expected in [
        "step build-base-image failed",
        "--- last lines of",
        "logs/build-base-image.log",
    ] {
        assert!(run.stderr.contains(expected), "{expected}: {}", run.stderr);
    }
    assert!(
        fx.images().contains_key(&fx.reference("proxy")),
        "{}",
        run.stdout
    );
    assert!(!fx.images().contains_key(&fx.reference("base-image")));
    support::git(&fx.root, &["checkout", "--", "."]);
    fs::remove_dir_all(fx.root.join("docker/broken")).unwrap();
    fx.assert_clean();

    // Ctrl-C during a RUN step: the client goes, BuildKit stops the step.
    let rootfs = format!("{}/sleep-rootfs:1", fx.prefix);
    fx.engine.import_sleep_rootfs(&rootfs);
    support::edit(
        &fx.root,
        "docker/base/Dockerfile",
        "FROM scratch",
        &format!("FROM {rootfs}\nRUN [\"/usr/bin/sleep\", \"313\"]"),
    );
    let log = fx.root.join("target/xtask/logs/build-base-image.log");
    let _ = fs::remove_file(&log);
    let guard = support::engine_shared();
    let mut child = fx
        .command(&["images", "base-image"])
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sleeping = || {
        Command::new("pgrep")
            .args(["-f", "sleep 313"])
            .output()
            .unwrap()
            .status
            .success()
    };
    let started = Instant::now();
    while !sleeping() {
        assert!(
            started.elapsed() < Duration::from_mins(2),
            "the RUN step never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let group = format!("-{}", child.id());
    assert!(
        Command::new("kill")
            .args(["-INT", "--", &group])
            .status()
            .unwrap()
            .success()
    );
    let stopped = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            stopped.elapsed() < Duration::from_secs(5),
            "not stopped within 5 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = Run::from(child.wait_with_output().unwrap());
    drop(guard);
    assert_eq!(run.code, Some(130), "{}", run.stderr);
    assert!(run.stderr.contains("interrupted"), "{}", run.stderr);
    assert!(!fx.root.join("target/xtask/contexts").exists());
    while sleeping() {
        assert!(
            stopped.elapsed() < Duration::from_secs(30),
            "BuildKit kept running the interrupted RUN step"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    support::git(&fx.root, &["checkout", "--", "."]);
    fx.assert_clean();
}

#[test]
fn buildkit_options_run_for_real() {
    let fx = Fixture::mini_with("bk-options", Builder::BuildKit);
    let registry = support::Registry::start(None);
    let log = |name: &str| {
        fs::read_to_string(fx.root.join(format!("target/xtask/logs/build-{name}.log"))).unwrap()
    };

    // Cache: inline in the pushed image, imported from the registry after the local
    // cache is gone.
    fx.xtask(&["images", "base-image", "--cache-to", "type=inline"])
        .ok();
    assert!(log("base-image").contains("--cache-to type=inline"));
    fx.xtask(&["push", "base-image", "--registry", &registry.addr])
        .ok();
    fx.remove_images();
    fx.engine.prune_build_cache();
    let cache = format!(
        "type=registry,ref={}/{}/{{image}}:1.0.2-release",
        registry.addr, fx.prefix
    );
    fx.xtask(&["images", "base-image", "--cache-from", &cache])
        .ok();
    let text = log("base-image");
    assert!(
        text.contains(&format!(
            "importing cache manifest from {}/{}/base-image:1.0.2-release",
            registry.addr, fx.prefix
        )),
        "{text}"
    );
    assert!(
        text.contains("CACHED"),
        "the layers came from the registry's cache: {text}"
    );

    // The same, set in .env.
    let env = fx.root.join(".env");
    let mut text = fs::read_to_string(&env).unwrap();
    text.push_str(&format!("BUILD_CACHE_FROM={cache}\n"));
    fs::write(&env, text).unwrap();
    let plan = fx
        .xtask(&["images", "base-image", "--force", "--dry-run"])
        .ok();
    assert!(
        plan.stdout.contains(&format!(
            "--cache-from type=registry,ref={}/{}/base-image:1.0.2-release",
            registry.addr, fx.prefix
        )),
        "{}",
        plan.stdout
    );
    support::git(&fx.root, &["checkout", "--", ".env"]);

    // --pull (the base is `scratch`), --platform (an input: it rebuilds), --builder.
    let run = fx.xtask(&["images", "base-image", "--pull"]).ok();
    assert_eq!(
        images_built(&run),
        1,
        "--pull rebuilds what starts from outside: {}",
        run.stdout
    );
    assert!(log("base-image").contains("--pull"));
    let run = fx
        .xtask(&["images", "federation", "--platform", "linux/amd64"])
        .ok();
    assert_eq!(images_built(&run), 1, "{}", run.stdout);
    assert!(log("federation").contains("--platform linux/amd64"));
    let run = fx
        .xtask(&["images", "federation", "--platform", "linux/amd64"])
        .ok();
    assert_eq!(images_built(&run), 0, "{}", run.stdout);
    let run = fx.xtask(&["images", "proxy", "--builder", "default"]).ok();
    assert_eq!(images_built(&run), 1, "{}", run.stdout);
    assert!(log("proxy").contains("buildx build --builder default"));

    // What cannot be done is refused before any work.
    let before = fx.images();
    let run = fx
        .xtask(&["images", "roll", "--platform", "linux/amd64,linux/arm64"])
        .failed();
    assert!(
        run.stderr
            .contains("several platforms (linux/amd64,linux/arm64) cannot be loaded"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("cargo xtask bake"), "{}", run.stderr);
    let run = fx
        .xtask(&["images", "roll", "--builder", "nosuch"])
        .failed();
    assert!(
        run.stderr
            .contains("buildx builder \"nosuch\" does not exist"),
        "{}",
        run.stderr
    );
    let legacy = Run::from(support::run_with_engine(&mut fx.command_with(
        Builder::Legacy,
        &["images", "roll", "--cache-to", "type=inline"],
    )))
    .failed();
    assert!(
        legacy
            .stderr
            .contains("--cache-to type=inline need BuildKit"),
        "{}",
        legacy.stderr
    );
    assert!(legacy.stderr.contains("docker-buildx"), "{}", legacy.stderr);
    assert_eq!(fx.images(), before, "nothing may be built");

    // doctor names the builder, and how to get BuildKit where it is missing.
    let doctor = fx.xtask(&["doctor"]).ok();
    assert!(
        doctor.stdout.contains("building with BuildKit"),
        "{}",
        doctor.stdout
    );
    let doctor = Run::from(support::run_with_engine(
        &mut fx.command_with(Builder::Legacy, &["doctor"]),
    ))
    .ok();
    assert!(
        doctor.stdout.contains("building with the legacy builder"),
        "{}",
        doctor.stdout
    );
    assert!(
        doctor.stdout.contains("apt install docker-buildx"),
        "{}",
        doctor.stdout
    );
    fx.assert_clean();
}

#[test]
fn a_bake_file_bakes_the_images_xtask_builds() {
    let fx = Fixture::mini_with("bk-bake", Builder::BuildKit);
    fx.xtask(&["images"]).ok();
    let ours = snapshot(&fx, "xtask");

    // The same tree under another prefix, baked by `docker buildx bake` in waves
    // (this engine's BuildKit predates named contexts).
    let baked_prefix = format!("{}-baked", fx.prefix);
    let file = fx.tmp.path().join("docker-bake.json");
    let run = Run::from(support::run_with_engine(
        fx.command(&["bake", "--no-named-contexts", "--file"])
            .arg(&file)
            .env("PREFIX", &baked_prefix),
    ))
    .ok();
    assert!(run.stderr.contains("wrote 10 targets"), "{}", run.stderr);
    let bake: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(bake["target"].as_object().unwrap().len(), 10);
    let waves = ["stage-1", "stage-2", "stage-3"];
    assert_eq!(
        bake["group"]["stage-3"]["targets"],
        serde_json::json!(["egg"])
    );
    let baked = Fixture {
        tmp: tempfile::tempdir().unwrap(),
        root: fx.root.clone(),
        prefix: baked_prefix,
        builder: Builder::BuildKit,
        engine: fx.engine.clone(),
    };
    for wave in waves {
        let mut bake = Command::new("docker");
        bake.args(["buildx", "bake", "--load", "--progress=plain", "-f"])
            .arg(&file)
            .arg(wave);
        Builder::BuildKit.apply(&mut bake);
        let out = support::run_with_engine(&mut bake);
        assert!(
            out.status.success(),
            "bake {wave}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let theirs = snapshot(&baked, "baked");
    for (name, (files, labels)) in &ours {
        let (baked_files, baked_labels) = &theirs[name];
        assert_eq!(files, baked_files, "{name}: contents differ");
        let mut labels = labels.clone();
        labels.remove("org.fedai.fate-xtask.inputs");
        assert_eq!(&labels, baked_labels, "{name}: labels differ");
    }

    // With named contexts (BuildKit 0.10 and later): bake reads it and ties egg to
    // the targets it starts from.
    let named = fx.tmp.path().join("named.json");
    Run::from(support::run_with_engine(
        fx.command(&["bake", "--file"]).arg(&named),
    ))
    .ok();
    let mut print = Command::new("docker");
    print.args(["buildx", "bake", "--print", "-f"]).arg(&named);
    Builder::BuildKit.apply(&mut print);
    let out = print.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed["target"]["egg"]["contexts"][fx.reference("base-image")],
        "target:base-image"
    );
    drop(baked);
    fx.assert_clean();
}

#[test]
fn a_dry_run_needs_no_engine() {
    let fx = Fixture::mini_with("bk-offline", Builder::Legacy);
    // A Maven cache of its own: the shared one may be filled by another test between
    // the two dry runs, which would then rightly decide differently.
    let cache = fx.tmp.path().join("maven-cache");
    let offline = |args: &[&str]| -> Run {
        fx.command(args)
            .env("MAVEN_CACHE_DIR", &cache)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .output()
            .unwrap()
            .into()
    };
    let json = offline(&["images", "--dry-run", "--format", "json"]).ok();
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(plan["engine"], serde_json::Value::Null);
    let text = offline(&["images", "--dry-run"]).ok();
    assert!(text.stderr.contains("does not answer"), "{}", text.stderr);
    for step in plan["steps"].as_array().unwrap() {
        let id = step["id"].as_str().unwrap();
        if step["kind"] == "build" {
            assert_eq!(step["decision"], "unknown", "{step}");
            assert_eq!(step["reason"], "the Docker engine is unreachable");
        }
        let decision = match step["decision"].as_str().unwrap() {
            "up-to-date" => "up to date".to_string(),
            other => format!(
                "{}: {}",
                other.replace('-', " "),
                step["reason"].as_str().unwrap()
            ),
        };
        let shown = text
            .stdout
            .split(&format!("[{id}]"))
            .nth(1)
            .and_then(|rest| rest.lines().nth(1))
            .unwrap_or_default();
        assert!(
            shown.contains(&format!("-> {decision}")),
            "{id}: {shown} vs {decision}"
        );
        if let Some(argv) = step["argv"].as_array() {
            let argv: Vec<String> = argv.iter().map(|a| quote(a.as_str().unwrap())).collect();
            assert!(text.stdout.contains(&argv[1..].join(" ")), "{id}: {argv:?}");
        }
    }
    assert!(fx.images().is_empty());
    fx.assert_clean();
}

/// Quoted as the text plan shows an argument.
fn quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}
