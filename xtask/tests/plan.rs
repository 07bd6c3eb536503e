#![allow(
    clippy::too_many_lines,
    reason = "a real-engine scenario reads best as one story"
)]
//! `--dry-run` over the real FATE definitions (docker/, example-tree-dir/, .env of the
//! workspace) in a skeleton FATE tree: preflight passes and the plan is complete.

mod support;

use std::fs;
use std::path::Path;

use support::Fixture;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn pom(artifact: &str, version: &str, modules: &[&str]) -> String {
    let modules: String = modules
        .iter()
        .map(|m| format!("<module>{m}</module>"))
        .collect();
    format!(
        "<project><modelVersion>4.0.0</modelVersion><groupId>com.webank.ai.fate</groupId>\
         <artifactId>{artifact}</artifactId><version>{version}</version><modules>{modules}</modules></project>"
    )
}

/// The real definitions plus the smallest sources their preflight asks for.
fn skeleton_fate_tree(fx: &Fixture) {
    let ws = support::workspace();
    support::copy_tree(&ws.join("docker"), &fx.root.join("docker"));
    support::copy_tree(
        &ws.join("example-tree-dir"),
        &fx.root.join("example-tree-dir"),
    );
    fs::copy(ws.join(".env"), fx.root.join(".env")).unwrap();
    let r = &fx.root;
    write(
        r,
        "arch/pom.xml",
        &pom(
            "fate-arch",
            "0.3",
            &["core", "driver/federation", "networking/proxy", "eggroll"],
        ),
    );
    write(r, "arch/core/pom.xml", &pom("fate-core", "0.3", &[]));
    write(
        r,
        "arch/driver/federation/pom.xml",
        &pom("fate-federation", "0.3", &[]),
    );
    write(
        r,
        "arch/networking/proxy/pom.xml",
        &pom("fate-proxy", "0.3", &[]),
    );
    write(
        r,
        "arch/eggroll/pom.xml",
        &pom("fate-eggroll", "0.3", &["roll", "meta-service", "egg"]),
    );
    for m in ["roll", "meta-service", "egg"] {
        write(
            r,
            &format!("arch/eggroll/{m}/pom.xml"),
            &pom(&format!("fate-{m}"), "0.3", &[]),
        );
    }
    write(r, "arch/eggroll/storage-service-cxx/Makefile", "all:\n");
    write(r, "fateboard/pom.xml", &pom("fateboard", "1.0", &[]));
    write(
        r,
        "fate-serving/pom.xml",
        &pom("fate-serving", "1.0", &["serving-server"]),
    );
    write(
        r,
        "fate-serving/serving-server/pom.xml",
        &pom("fate-serving-server", "1.0", &[]),
    );
    write(
        r,
        "cluster-deploy/scripts/fate-base/env.sh",
        "#!/bin/bash\n",
    );
    write(r, "requirements.txt", "numpy\n");
    for d in ["federatedml", "workflow", "examples", "fate_flow"] {
        write(r, &format!("{d}/__init__.py"), "");
    }
}

/// The ids of build steps, in plan order.
fn builds(plan: &str) -> Vec<String> {
    plan.lines()
        .filter_map(|l| l.split_once("[build-"))
        .map(|(_, rest)| rest.split(']').next().unwrap().to_string())
        .collect()
}

#[test]
fn dry_run_accepts_the_real_fate_definitions() {
    let fx = Fixture::empty("real-plan");
    skeleton_fate_tree(&fx);
    let run = fx
        .command(&["images", "--dry-run"])
        .env_remove("PREFIX")
        .output()
        .unwrap();
    let run = support::Run::from(run).ok();
    assert_eq!(
        builds(&run.stdout),
        support::build_order(),
        "{}",
        run.stdout
    );
    let plan = &run.stdout;
    assert!(
        plan.contains("--tag federatedai/base-image:1.0.2-release"),
        "{plan}"
    );
    assert!(
        plan.contains("--tag federatedai/egg:1.0.2-release"),
        "{plan}"
    );
    // Maven in a container, as the caller, arch beside fate-serving.
    assert!(
        plan.contains("docker run --rm --name fate-xtask-"),
        "{plan}"
    );
    assert!(
        plan.contains("/fate-serving:/data/projects/fate/fate-serving"),
        "{plan}"
    );
    assert!(plan.contains("/arch:/data/projects/fate/arch --workdir /data/projects/fate/fate-serving maven:3.6-jdk-8 mvn"), "{plan}");
    assert!(
        plan.contains("--build-arg JRE_IMAGE=eclipse-temurin:8-jre"),
        "{plan}"
    );
    assert!(
        plan.contains("--build-arg PIP_INDEX_URL=https://pypi.org/simple"),
        "{plan}"
    );
    assert!(
        !plan.contains("maven-settings"),
        "no mirror without --chinese-mirror: {plan}"
    );
    // Nothing ran: no image, no staging.
    assert!(!fx.root.join("target/xtask/contexts").exists());

    let run = fx
        .command(&["images", "--dry-run", "--chinese-mirror"])
        .env_remove("PREFIX")
        .output()
        .unwrap();
    let plan = support::Run::from(run).ok().stdout;
    assert!(
        plan.contains("[maven-settings] write Maven settings"),
        "{plan}"
    );
    assert!(
        plan.contains("--build-arg PIP_INDEX_URL=https://pypi.tuna.tsinghua.edu.cn/simple"),
        "{plan}"
    );
    assert!(
        plan.contains("--build-arg CENTOS_VAULT_URL=https://mirrors.aliyun.com/centos-vault"),
        "{plan}"
    );
    assert!(
        plan.contains("--build-arg JRE_IMAGE=docker.m.daocloud.io/library/eclipse-temurin:8-jre"),
        "{plan}"
    );
    // No China mirror is named for boost: the global location is used.
    assert!(
        plan.contains("--build-arg BOOST_URL=https://archives.boost.io/"),
        "{plan}"
    );
}

#[test]
fn doctor_reports_the_example_ready() {
    let fx = Fixture::mini("doctor");
    let run = fx.xtask(&["doctor"]).ok();
    // The fixture's commands run with DOCKER_BUILDKIT=0.
    assert!(
        run.stdout.contains("building with the legacy builder"),
        "{}",
        run.stdout
    );
    let buildkit = support::Run::from(support::run_with_engine(
        &mut fx.command_with(support::Builder::BuildKit, &["doctor"]),
    ))
    .ok();
    assert!(
        buildkit
            .stdout
            .contains("building with BuildKit (docker buildx)"),
        "{}",
        buildkit.stdout
    );
    assert!(!run.stdout.contains("Legacy"), "{}", run.stdout);
    assert!(
        run.stdout.contains("ok: preflight passed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("{}/egg:1.0.2-release", fx.prefix)),
        "{}",
        run.stdout
    );
    fx.assert_clean();
}

/// How the tool reads to a person: usage as `cargo xtask`, `images --help` listing the
/// image set it would use, completions, the endpoint of the selected docker context in
/// the "does not answer" error, `-v` and `-q`, and docker compose's `.env` forms.
#[test]
fn the_cli_speaks_as_cargo_xtask() {
    let fx = Fixture::mini("cli");
    let run = fx.xtask(&["--help"]).ok();
    assert!(run.stdout.contains("Usage: cargo xtask"), "{}", run.stdout);
    let run = fx.xtask(&["images", "--help"]).ok();
    assert!(
        run.stdout.contains("The image set of")
            && run.stdout.contains("redis")
            && run
                .stdout
                .contains("Groups: base, builder, modules, third-party, all"),
        "{}",
        run.stdout
    );
    let run = fx.xtask(&["completions", "bash"]).ok();
    assert!(run.stdout.contains("complete -F"), "{}", run.stdout);

    // A docker context selected with `docker context use`: the error names its endpoint.
    let config = fx.tmp.path().join("docker-config");
    let socket = fx.tmp.path().join("nope.sock");
    let host = format!("host=unix://{}", socket.display());
    for args in [
        vec!["context", "create", "broken", "--docker", host.as_str()],
        vec!["context", "use", "broken"],
    ] {
        let out = support::clean_command("docker")
            .env("DOCKER_CONFIG", &config)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut doctor = fx.command(&["doctor"]);
    doctor
        .env("DOCKER_CONFIG", &config)
        .env_remove("DOCKER_HOST");
    let run = support::Run::from(doctor.output().unwrap()).failed();
    assert!(
        run.stderr.contains(&format!(
            "the Docker daemon at unix://{} does not answer",
            socket.display()
        )),
        "{}",
        run.stderr
    );

    // On a terminal, NO_COLOR keeps the spinners (the bars use no colour).
    let typescript = fx.tmp.path().join("typescript");
    let line = format!(
        "NO_COLOR=1 {} --fate-root '{}' images base-image --force",
        support::BIN,
        fx.root.display()
    );
    let shared = support::engine_shared();
    let out = support::clean_command("script")
        .args(["-qec", &line])
        .arg(&typescript)
        .env("PREFIX", &fx.prefix)
        .env("TERM", "xterm")
        .output()
        .unwrap();
    drop(shared);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let screen = fs::read_to_string(&typescript).unwrap();
    assert!(
        screen.contains("\u{1b}[") && !screen.contains("start build"),
        "bars on a terminal, not plain lines: {screen}"
    );

    // -v shows each command line; -q only results.
    let run = fx.xtask(&["-v", "images", "base-image", "--force"]).ok();
    // The exact command line of the build, as it runs.
    let shown = run
        .stderr
        .lines()
        .find(|l| l.contains("  $ "))
        .unwrap_or_default();
    assert!(
        shown.contains("$ DOCKER_BUILDKIT=0 docker build --force-rm --file ")
            && shown.contains(&format!(
                "--tag {} --build-arg PIP_INDEX_URL=",
                fx.reference("base-image")
            ))
            && shown.ends_with(&format!(
                "--iidfile {} {}",
                fate_bundle::process::quote(
                    &fx.root
                        .join("target/xtask/contexts/base-image.iid")
                        .display()
                        .to_string()
                ),
                fate_bundle::process::quote(
                    &fx.root
                        .join("target/xtask/contexts/base-image")
                        .display()
                        .to_string()
                )
            )),
        "{}",
        run.stderr
    );
    let run = fx.xtask(&["-q", "images", "base-image", "--force"]).ok();
    assert!(!run.stderr.contains("start build"), "{}", run.stderr);
    assert!(run.stdout.contains("built (--force)"), "{}", run.stdout);

    // docker compose's forms in .env.
    let env_file = fx.tmp.path().join("compose.env");
    fs::write(
        &env_file,
        "PREFIX=${FATE_TEST_PREFIX:?set it}\nBASE_TAG=${UNSET:-1.0}\nBUILDER_TAG=${BASE_TAG}-b\nTAG=1.0\n",
    )
    .unwrap();
    let mut cmd = fx.command(&[
        "--env-file",
        env_file.to_str().unwrap(),
        "images",
        "--dry-run",
        "storage-service-builder",
    ]);
    cmd.env_remove("PREFIX").env("FATE_TEST_PREFIX", &fx.prefix);
    let run = support::Run::from(support::run_with_engine(&mut cmd)).ok();
    assert!(
        run.stdout.contains(&format!(
            "--tag {}/storage-service-builder:1.0-b",
            fx.prefix
        )),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let mut cmd = fx.command(&["--env-file", env_file.to_str().unwrap(), "doctor"]);
    cmd.env_remove("PREFIX");
    let run = support::Run::from(support::run_with_engine(&mut cmd)).failed();
    assert!(
        run.stderr.contains(
            "compose.env:1: PREFIX: required variable FATE_TEST_PREFIX is missing a value: set it"
        ),
        "{}",
        run.stderr
    );
    fx.assert_clean();
}

/// Options a builder would refuse are refused before any work, with either builder: a
/// platform no builder targets, cache specs BuildKit rejects; nothing is built, staged or
/// tagged, and Maven does not run.
#[test]
fn options_a_builder_would_refuse_are_refused_before_any_work() {
    let fx = Fixture::mini("refused-options");
    for builder in [support::Builder::Legacy, support::Builder::BuildKit] {
        for (args, why) in [
            (
                ["images", "--platform", "linux/notanarch"],
                "names the architecture \"notanarch\", which no builder targets",
            ),
            (
                ["images", "--cache-from", "type=registry"],
                "has type registry without ref=",
            ),
        ] {
            let mut command = fx.command_with(builder, &args);
            let run = support::Run::from(support::run_with_engine(&mut command)).failed();
            assert!(run.stderr.contains(why), "{args:?}: {}", run.stderr);
        }
    }
    assert!(fx.images().is_empty(), "{:?}", fx.images());
    let work = fx.root.join("target/xtask");
    assert!(!work.join("contexts").exists(), "contexts were staged");
    assert!(!work.join("last-run.json").exists(), "a run ran");
    assert!(!work.join("logs/mvn-arch.log").exists(), "Maven ran");
    fx.assert_clean();
}

/// A Dockerfile that is not there is named with the line of `docker/images.toml` that
/// declares its image, before any work.
#[test]
fn a_missing_dockerfile_names_the_line_that_declares_its_image() {
    let fx = Fixture::mini("missing-dockerfile");
    let toml = "docker/images.toml";
    support::edit(
        &fx.root,
        toml,
        "name = \"proxy\"\ndockerfile = \"docker/modules/java/Dockerfile\"",
        "name = \"proxy\"\ndockerfile = \"docker/none/Dockerfile\"",
    );
    let text = fs::read_to_string(fx.root.join(toml)).unwrap();
    let images_from = text.find("[[image]]").unwrap();
    let line = text[..images_from].lines().count()
        + text[images_from..]
            .lines()
            .position(|l| l == "name = \"proxy\"")
            .unwrap()
        + 1;
    let run = fx.xtask(&["images", "proxy"]).failed();
    let expected = format!(
        "image proxy: Dockerfile {} does not exist; create it or fix `dockerfile` of the image declared at {}:{line}",
        fx.root.join("docker/none/Dockerfile").display(),
        fx.root.join(toml).display()
    );
    assert!(run.stderr.contains(&expected), "{expected}\n{}", run.stderr);
    assert!(fx.images().is_empty());
    support::git(&fx.root, &["checkout", "--", "."]);
    fx.assert_clean();
}
