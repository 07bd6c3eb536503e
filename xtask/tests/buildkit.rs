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
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::engine::Store;
use support::{Builder, Engine, Fixture, Run};

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

/// How many images the last `images` run on `fx` built (its run report).
fn images_built(fx: &Fixture) -> usize {
    fx.images_built().len()
}

#[test]
fn both_builders_make_the_same_images_and_switching_rebuilds_nothing() {
    let fx = Fixture::mini_with("bk-same", Builder::BuildKit);
    let run = fx.xtask(&["images"]).ok();
    assert_eq!(images_built(&fx), 10, "{}", run.stdout);
    let egg_log = fs::read_to_string(fx.root.join("target/xtask/logs/build-egg.log")).unwrap();
    // The plugin runs as itself (no docker CLI before it), without asking git.
    let first = egg_log.lines().next().unwrap();
    assert!(
        first.starts_with("$ BUILDX_GIT_INFO=0 ")
            && first.contains("/cli-plugins/docker-buildx build --load"),
        "{egg_log}"
    );
    assert!(
        !run.stderr.contains("legacy builder"),
        "BuildKit needs no notice: {}",
        run.stderr
    );

    // A no-op, and a plan that says so.
    let run = fx.xtask(&["images"]).ok();
    assert_eq!(images_built(&fx), 0, "{}", run.stdout);
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
    assert_eq!(images_built(&fx), 0, "{}", run.stdout);

    // The legacy builder makes the same files and labels; its deprecation notice is
    // said once, not in every log.
    let run = legacy(&["images", "--force"]).ok();
    assert_eq!(images_built(&fx), 10, "{}", run.stdout);
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
    assert_eq!(images_built(&fx), 0, "{}", run.stdout);
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

on_both_engines!(buildkit_options_run_for_real, buildkit_options);

/// Cache export and import through a real registry, --pull, --platform (one, and several
/// where the store holds them), --builder, refusals, and what doctor says.
fn buildkit_options(engine: Engine) {
    let fx = Fixture::mini_on("bk-options", Builder::BuildKit, engine);
    let registry = support::Registry::start_for(&fx.engine, None);
    let log = |name: &str| {
        fs::read_to_string(fx.root.join(format!("target/xtask/logs/build-{name}.log"))).unwrap()
    };

    // Cache, imported from the registry after the local cache is gone (as on a fresh
    // engine): inline in the pushed image on the graph driver (whose docker driver
    // exports no other cache), a registry cache of its own on the containerd store.
    let cache_tag = match fx.engine.store {
        Store::GraphDriver => {
            fx.xtask(&["images", "base-image", "--cache-to", "type=inline"])
                .ok();
            assert!(log("base-image").contains("--cache-to type=inline"));
            fx.xtask(&["push", "base-image", "--registry", &registry.addr])
                .ok();
            "1.0.2-release"
        }
        Store::Containerd => {
            let export = format!(
                "type=registry,ref={}/{}/{{image}}:cache,mode=max",
                registry.addr, fx.prefix
            );
            fx.xtask(&["images", "base-image", "--cache-to", &export])
                .ok();
            let text = log("base-image");
            assert!(text.contains("exporting cache"), "{text}");
            let repo = format!("/v2/{}/base-image/tags/list", fx.prefix);
            let (status, tags) = registry.http("GET", &repo, None);
            assert!(status == 200 && tags.contains("\"cache\""), "{tags}");
            "cache"
        }
    };
    fx.remove_images();
    fx.engine.prune_build_cache();
    let cache = format!(
        "type=registry,ref={}/{}/{{image}}:{cache_tag}",
        registry.addr, fx.prefix
    );
    fx.xtask(&["images", "base-image", "--cache-from", &cache])
        .ok();
    let text = log("base-image");
    assert!(
        text.contains(&format!(
            "importing cache manifest from {}/{}/base-image:{cache_tag}",
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
            "--cache-from type=registry,ref={}/{}/base-image:{cache_tag}",
            registry.addr, fx.prefix
        )),
        "{}",
        plan.stdout
    );
    support::git(&fx.root, &["checkout", "--", ".env"]);

    // --pull (the base is `scratch`), --platform (an input: it rebuilds), --builder.
    let run = fx.xtask(&["images", "base-image", "--pull"]).ok();
    assert_eq!(
        images_built(&fx),
        1,
        "--pull rebuilds what starts from outside: {}",
        run.stdout
    );
    assert!(log("base-image").contains("--pull"));
    let run = fx
        .xtask(&["images", "federation", "--platform", "linux/amd64"])
        .ok();
    assert_eq!(images_built(&fx), 1, "{}", run.stdout);
    assert!(log("federation").contains("--platform linux/amd64"));
    let run = fx
        .xtask(&["images", "federation", "--platform", "linux/amd64"])
        .ok();
    assert_eq!(images_built(&fx), 0, "{}", run.stdout);
    let run = fx.xtask(&["images", "proxy", "--builder", "default"]).ok();
    assert_eq!(images_built(&fx), 1, "{}", run.stdout);
    assert!(log("proxy").contains("buildx build --builder default"));

    // Several platforms: built and loaded where the store holds them, refused before any
    // work where it does not.
    several_platforms(&fx);

    // What cannot be done is refused before any work.
    let before = fx.images();
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

    // doctor names the engine, its image store, the builder and what it builds, whether
    // a foreign platform's RUN steps could run here; and how to get BuildKit where it is
    // missing.
    let doctor = fx
        .xtask(&["doctor", "--platform", "linux/amd64,linux/arm64"])
        .ok();
    let store = match fx.engine.store {
        Store::GraphDriver => "graph driver ",
        Store::Containerd => {
            "containerd image store (snapshotter overlayfs): several platforms per tag"
        }
    };
    for expected in [
        format!(
            "docker engine  {} (linux/amd64), building with BuildKit",
            fx.engine.version()
        ),
        format!("image store    {store}"),
        "builds for     linux/amd64".to_string(),
        // What two builds of one commit give alike (tests/reproducible.rs shows both).
        match fx.engine.store {
            Store::GraphDriver => {
                "reproducible   the same layers (diff IDs), not the same image IDs"
            }
            Store::Containerd => "reproducible   the same image IDs",
        }
        .to_string(),
    ] {
        assert!(
            doctor.stdout.contains(&expected),
            "{expected}: {}",
            doctor.stdout
        );
    }
    let registered = Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists();
    let emulation = if registered {
        "emulation      linux/arm64: QEMU registered (qemu-aarch64)"
    } else {
        "emulation      linux/arm64: none here, and none needed: no Dockerfile of the image set has RUN (/proc/sys/fs/binfmt_misc has no enabled qemu-aarch64: apt-get install qemu-user-static"
    };
    assert!(
        doctor.stdout.contains(emulation),
        "{emulation}: {}",
        doctor.stdout
    );
    let doctor = Run::from(support::run_with_engine(
        &mut fx.command_with(Builder::Legacy, &["doctor"]),
    ))
    .ok();
    assert!(
        doctor.stdout.contains("building with the legacy builder")
            && doctor
                .stdout
                .contains("reproducible   the same layers (diff IDs), not the same image IDs"),
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

/// `--platform linux/amd64,linux/arm64`: on the containerd store the image and its parent
/// hold both (the example's Dockerfiles only COPY: no emulation), a rerun builds nothing
/// and one platform is a change; on a graph driver it is refused, naming the ways forward.
fn several_platforms(fx: &Fixture) {
    // python starts from base-image, which is present for one platform only.
    let two = ["images", "python", "--platform", "linux/amd64,linux/arm64"];
    match fx.engine.store {
        Store::GraphDriver => {
            let before = fx.images();
            let run = fx.xtask(&two).failed();
            for expected in [
                "several platforms (linux/amd64,linux/arm64) cannot be loaded into this engine",
                "containerd-snapshotter",
                "cargo xtask bake",
            ] {
                assert!(run.stderr.contains(expected), "{expected}: {}", run.stderr);
            }
            assert_eq!(fx.images(), before, "nothing may be built");
        }
        Store::Containerd => {
            let run = fx.xtask(&two).ok();
            assert!(images_built(fx) >= 1, "{}", run.stdout);
            for name in ["base-image", "python"] {
                assert_eq!(
                    platforms_of(fx, &fx.reference(name)),
                    ["linux/amd64", "linux/arm64"],
                    "{name}"
                );
            }
            let again = fx.xtask(&two).ok();
            assert_eq!(images_built(fx), 0, "{}", again.stdout);
            let one = fx
                .xtask(&["images", "python", "--platform", "linux/amd64"])
                .ok();
            assert!(
                images_built(fx) >= 1,
                "the platform set is an input: {}",
                one.stdout
            );
            // And the reason says so.
            assert_eq!(
                fx.last_run()["build-python"].reason.as_deref(),
                Some("platforms changed: linux/amd64,linux/arm64 -> linux/amd64"),
                "{}",
                one.stdout
            );
        }
    }
}

/// The platforms of the images an image index holds, read from `docker save` (the
/// store's own index is the image's ID).
fn platforms_of(fx: &Fixture, reference: &str) -> Vec<String> {
    let id = fx.docker(&["image", "inspect", "--format", "{{.Id}}", reference]);
    let dir = fx.tmp.path().join("saved");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let tar = dir.join("image.tar");
    fx.docker(&["save", "-o", tar.to_str().unwrap(), reference]);
    let blob = format!("blobs/sha256/{}", id.trim_start_matches("sha256:"));
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(&tar)
        .arg(&blob)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{reference}: no {blob} in its archive"
    );
    let index: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("{reference} is not an image index: {index}"))
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap_or_default(),
                m["platform"]["architecture"].as_str().unwrap_or_default()
            )
        })
        .filter(|p| p != "unknown/unknown")
        .collect();
    platforms.sort();
    platforms
}

on_both_engines!(a_bake_file_bakes_the_images_xtask_builds, bakes);

/// The bake file `cargo xtask bake` writes, built by `docker buildx bake` under another
/// prefix, gives images with the files and labels of xtask's own: with named contexts in
/// one bake where the engine's BuildKit has them (0.10+: Docker 26's 0.13), else in
/// waves (Docker 20.10's BuildKit 0.8).
fn bakes(engine: Engine) {
    let fx = Fixture::mini_on("bk-bake", Builder::BuildKit, engine);
    fx.xtask(&["images"]).ok();
    let ours = snapshot(&fx, "xtask");

    let baked_prefix = format!("{}-baked", fx.prefix);
    let file = fx.tmp.path().join("docker-bake.json");
    let named_contexts = fx.engine.store == Store::Containerd;
    let mut write = fx.command(&["bake", "--file"]);
    write.arg(&file).env("PREFIX", &baked_prefix);
    if !named_contexts {
        write.arg("--no-named-contexts");
    }
    let run = Run::from(support::run_with_engine(&mut write)).ok();
    assert!(run.stderr.contains("wrote 10 targets"), "{}", run.stderr);
    let bake: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(bake["target"].as_object().unwrap().len(), 10);
    assert_eq!(
        bake["group"]["stage-3"]["targets"],
        serde_json::json!(["egg"])
    );
    let baked = Fixture {
        tmp: tempfile::tempdir().unwrap(),
        root: fx.root.clone(),
        prefix: baked_prefix.clone(),
        builder: Builder::BuildKit,
        engine: fx.engine.clone(),
    };
    let groups: Vec<&str> = if named_contexts {
        assert_eq!(
            bake["target"]["egg"]["contexts"][format!("{baked_prefix}/base-image:1.0.2-release")],
            "target:base-image"
        );
        vec!["default"]
    } else {
        vec!["stage-1", "stage-2", "stage-3"]
    };
    for group in groups {
        let mut bake =
            fx.engine
                .docker_command(&["buildx", "bake", "--load", "--progress=plain", "-f"]);
        bake.arg(&file).arg(group);
        Builder::BuildKit.apply(&mut bake);
        let out = support::run_with_engine(&mut bake);
        assert!(
            out.status.success(),
            "bake {group}: {}",
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

    // The named-contexts file, read by bake itself, ties egg to the targets it starts
    // from.
    let named = fx.tmp.path().join("named.json");
    Run::from(support::run_with_engine(
        fx.command(&["bake", "--file"]).arg(&named),
    ))
    .ok();
    let mut print = fx
        .engine
        .docker_command(&["buildx", "bake", "--print", "-f"]);
    print.arg(&named);
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
