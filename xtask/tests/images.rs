#![allow(
    clippy::too_many_lines,
    reason = "a real-engine scenario reads best as one story"
)]
//! `cargo xtask images` against the real Docker engine and real Maven.

mod support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use support::{Builder, Engine, Fixture};

const JAVA_MODULES: [(&str, &str); 5] = [
    (
        "federation",
        "arch/driver/federation/target/fate-federation-0.3.jar",
    ),
    ("proxy", "arch/networking/proxy/target/fate-proxy-0.3.jar"),
    ("roll", "arch/eggroll/roll/target/fate-roll-0.3.jar"),
    (
        "meta-service",
        "arch/eggroll/meta-service/target/fate-meta-service-0.3.jar",
    ),
    (
        "serving-server",
        "fate-serving/serving-server/target/fate-serving-server-1.0.jar",
    ),
];

/// A packaged Java module: versioned jar (the one Maven built), stable symlink, lib/,
/// conf/ and service.sh with JAVA_HOME set.
fn assert_java_module(dir: &Path, module: &str, built_jar: &Path, java_home: &str, with_lib: bool) {
    let jar_name = built_jar.file_name().unwrap();
    let jar = dir.join(jar_name);
    assert_eq!(
        fs::read(&jar).unwrap(),
        fs::read(built_jar).unwrap(),
        "{module}: jar differs from Maven's"
    );
    let link = dir.join(format!("{}.jar", module_jar_stem(module)));
    assert_eq!(
        fs::read_link(&link).unwrap(),
        Path::new(jar_name),
        "{module}: symlink"
    );
    let service = fs::read_to_string(dir.join("service.sh")).unwrap();
    assert!(
        service.contains(&format!("JAVA_HOME={java_home}\n")),
        "{module}: {service}"
    );
    if with_lib {
        assert!(
            dir.join("lib/commons-lang3-3.12.0.jar").is_file(),
            "{module}: lib/"
        );
        assert!(
            dir.join("lib/fate-core-0.3.jar").is_file(),
            "{module}: lib/ has fate-core"
        );
    } else {
        assert!(!dir.join("lib").exists(), "{module}: no lib/");
    }
    assert!(
        fs::read_dir(dir.join("conf")).unwrap().count() > 0,
        "{module}: conf/"
    );
}

fn module_jar_stem(module: &str) -> String {
    if module == "fateboard" {
        module.to_string()
    } else {
        format!("fate-{module}")
    }
}

on_both_engines!(builds_all_ten_images_of_the_example, builds_all_ten);

/// All ten, labelled, packaged as FATE's scripts did; then a run with nothing changed
/// builds nothing.
fn builds_all_ten(engine: Engine) {
    let fx = Fixture::mini_on("all", Builder::Legacy, engine);
    let run = fx.xtask(&["images"]).ok();

    let images = fx.images();
    for name in support::build_order() {
        let reference = fx.reference(name);
        assert!(
            images.contains_key(&reference),
            "{reference} missing; have {images:?}"
        );
        assert!(
            run.stdout.contains(&reference),
            "summary lacks {reference}:\n{}",
            run.stdout
        );
        assert_eq!(
            fx.label(&reference, "org.opencontainers.image.version"),
            "1.0.2-release"
        );
        assert_eq!(
            fx.label(&reference, "org.opencontainers.image.source"),
            "https://github.com/FederatedAI/FATE"
        );
        assert_eq!(
            fx.label(&reference, "org.opencontainers.image.revision")
                .len(),
            40,
            "{reference}: revision"
        );
        // The image's own time (SOURCE_DATE_EPOCH), not the build's: two builds agree.
        assert_eq!(
            fx.label(&reference, "org.opencontainers.image.created"),
            "1970-01-01T00:00:00Z",
            "{reference}: created"
        );
    }
    // The summary: columns as wide as their content (references here are over 40
    // characters), sizes in Docker's units.
    let header = run.stdout.lines().find(|l| l.starts_with("step ")).unwrap();
    let at = header.find("image id").unwrap();
    let rows: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with(&fx.prefix))
        .collect();
    assert!(rows.iter().any(|r| r.find(' ').unwrap() > 40), "{rows:?}");
    for row in rows {
        let id = &row[at..at + 12];
        assert!(
            id.chars().all(|c| c.is_ascii_hexdigit()),
            "misaligned: {row}"
        );
    }
    assert!(
        run.stdout.contains("kB") && !run.stdout.contains("0.0MB"),
        "{}",
        run.stdout
    );
    assert_eq!(
        fx.steps_ran().len(),
        13,
        "3 Maven projects and 10 images: {}",
        run.stdout
    );

    let fs_root = fx.tmp.path().join("fs");
    for (module, jar) in JAVA_MODULES {
        let dest = fs_root.join(module);
        fx.export_image(&fx.reference(module), &dest);
        let dir = dest.join("data/projects/fate").join(module);
        assert_java_module(&dir, module, &fx.root.join(jar), "/opt/java/openjdk", true);
    }
    let board = fs_root.join("fateboard");
    fx.export_image(&fx.reference("fateboard"), &board);
    assert_java_module(
        &board.join("data/projects/fate/fateboard"),
        "fateboard",
        &fx.root.join("fateboard/target/fateboard-1.0.jar"),
        "/opt/java/openjdk",
        false,
    );

    let python = fs_root.join("python");
    fx.export_image(&fx.reference("python"), &python);
    let tree = python.join("data/projects/fate/python");
    for part in [
        "federatedml/__init__.py",
        "fate_flow/fate_flow_server.py",
        "workflow/task_executor.py",
        "examples/toy_example/run_toy_example.py",
        "arch/api/__init__.py",
        "conf/server_conf.properties",
        "service.sh",
        "processor.sh",
    ] {
        assert!(tree.join(part).is_file(), "python tree lacks {part}");
    }
    assert!(
        !tree.join("arch/core/target").exists(),
        "Maven output copied into the python tree"
    );
    assert!(
        python
            .join("data/projects/fate/base/requirements.txt")
            .is_file(),
        "python is built on base-image"
    );

    let egg = fs_root.join("egg");
    fx.export_image(&fx.reference("egg"), &egg);
    let fate = egg.join("data/projects/fate");
    assert_java_module(
        &fate.join("egg"),
        "egg",
        &fx.root.join("arch/eggroll/egg/target/fate-egg-0.3.jar"),
        "/usr/lib/jvm/jre-1.8.0-openjdk",
        true,
    );
    // What the builder stage produced, copied in by the second stage.
    assert_eq!(
        fs::read_to_string(fate.join("storage-service-cxx/third_party/include/lmdb.h")).unwrap(),
        fs::read_to_string(
            fx.root
                .join("arch/eggroll/storage-service-cxx/third_party/prebuilt/include/lmdb.h")
        )
        .unwrap()
    );
    for part in [
        "third_party/lib/libglog.so.0.4.0",
        "third_party/bin/protoc",
        "third_party/share/doc/grpc.txt",
        "Makefile",
        "src/storage_service.cc",
    ] {
        assert!(
            fate.join("storage-service-cxx").join(part).is_file(),
            "egg lacks storage-service-cxx/{part}"
        );
    }
    assert!(
        fate.join("storage-service-cxx/logs").is_dir(),
        "egg lacks storage-service-cxx/logs"
    );
    assert!(
        fate.join("python/federatedml/__init__.py").is_file(),
        "egg lacks the python tree"
    );

    // Nothing changed: nothing is built, and the images keep their IDs.
    let before = fx.images();
    let again = fx.xtask(&["images"]).ok();
    assert_eq!(fx.steps_ran(), Vec::<String>::new(), "{}", again.stdout);
    assert_eq!(fx.images(), before);
    fx.assert_clean();
}

#[test]
fn maven_in_a_container_runs_as_the_caller() {
    const UID: u32 = 4242;
    let fx = Fixture::mini("mvn-docker");
    let maven_image = format!("{}/maven:local", fx.prefix);
    let script = support::workspace().join("xtask/tests/support/make-maven-image.sh");
    let made = std::process::Command::new(&script)
        .arg(&maven_image)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "making the Maven image: {}",
        String::from_utf8_lossy(&made.stderr)
    );

    // Run as an unprivileged user who may use the Docker socket.
    let cache = fx.tmp.path().join("maven cache");
    fs::create_dir_all(&cache).unwrap();
    let chown = |p: &Path| {
        let ok = std::process::Command::new("chown")
            .arg("-R")
            .arg(format!("{UID}:{UID}"))
            .arg(p)
            .status()
            .unwrap();
        assert!(ok.success());
    };
    chown(&fx.root);
    chown(&cache);
    let socket = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(str::to_string))
        .unwrap_or_else(|| "/var/run/docker.sock".into());
    let socket_gid = fs::metadata(&socket).unwrap().gid();

    let cmd = fx.command(&[
        "images",
        "federation",
        "serving-server",
        "--maven",
        "docker",
    ]);
    let args: Vec<std::ffi::OsString> = cmd.get_args().map(Into::into).collect();
    let mut as_user = std::process::Command::new("setpriv");
    as_user
        .args([
            format!("--reuid={UID}"),
            format!("--regid={UID}"),
            format!("--groups={socket_gid}"),
        ])
        .arg(support::BIN)
        .args(args);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => as_user.env(k, v),
            None => as_user.env_remove(k),
        };
    }
    as_user
        .env("MAVEN_CACHE_DIR", &cache)
        .env("MAVEN_IMAGE", &maven_image)
        .env("HOME", fx.tmp.path());
    let run: support::Run = support::run_with_engine(&mut as_user).into();
    let run = run.ok();
    assert!(
        run.stdout.contains(&fx.reference("federation")),
        "{}",
        run.stdout
    );
    assert!(fx.images().contains_key(&fx.reference("serving-server")));

    for jar in [
        "arch/driver/federation/target/fate-federation-0.3.jar",
        "arch/core/target/fate-core-0.3.jar",
        "fate-serving/serving-server/target/fate-serving-server-1.0.jar",
    ] {
        let meta = fs::metadata(fx.root.join(jar)).unwrap_or_else(|e| panic!("{jar}: {e}"));
        assert_eq!(
            (meta.uid(), meta.gid()),
            (UID, UID),
            "{jar} must belong to the invoking user"
        );
    }
    let log = fs::read_to_string(fx.root.join("target/xtask/logs/mvn-fate-serving.log")).unwrap();
    assert!(log.starts_with("$ docker run --rm"), "{log}");
    assert!(log.contains(&format!("--user {UID}:{UID}")), "{log}");
    assert!(
        cache
            .join("repository/org/apache/commons/commons-lang3/3.12.0")
            .is_dir(),
        "the Maven cache was not used"
    );
    fx.assert_clean();
}

#[test]
fn chinese_mirror_builds_mirror_variants_and_resolves_through_the_mirror() {
    let fx = Fixture::mini("cn");
    let mirror = fx.tmp.path().join("cn mirror");
    std::os::unix::fs::symlink("/usr/share/maven-repo", &mirror).unwrap();
    let cache = fx.tmp.path().join("fresh cache");
    let mirror_url = format!("file://{}", mirror.display());

    let mut run = fx.command(&["images", "base-image", "fateboard", "--chinese-mirror"]);
    run.env("CN_MAVEN_MIRROR_URL", &mirror_url)
        .env("MAVEN_CACHE_DIR", &cache);
    support::Run::from(support::run_with_engine(&mut run)).ok();
    assert_eq!(
        fx.label(&fx.reference("base-image"), "org.fedai.fate.base-variant"),
        "cn"
    );
    let log = fs::read_to_string(fx.root.join("target/xtask/logs/mvn-fateboard.log")).unwrap();
    assert!(
        log.contains(&format!("from fate-mirror: {mirror_url}/")),
        "Maven did not resolve through the China mirror:\n{log}"
    );
    assert!(fx.images().contains_key(&fx.reference("fateboard")));

    // Without the flag, the global variant is built.
    fx.xtask(&["images", "base"]).ok();
    assert_eq!(
        fx.label(&fx.reference("base-image"), "org.fedai.fate.base-variant"),
        ""
    );
    fx.assert_clean();
}

#[test]
fn env_errors_are_reported_and_nothing_is_executed() {
    let fx = Fixture::mini("env");
    let marker = fx.tmp.path().join("executed");
    let env_file = fx.tmp.path().join("bad.env");
    let cases = [
        (
            "PREFIX=fate-x\nBASE_TAG=a\nBUILDER_TAG=b\n",
            "required key TAG is missing",
        ),
        (
            "PREFIX=fate-x\nBASE_TAG=a\nBUILDER_TAG=b\nTAG=\"1.0 release\"\n",
            "bad.env:4: TAG=\"1.0 release\" is not a valid tag",
        ),
        (
            &format!(
                "PREFIX=$(touch {})\nBASE_TAG=a\nBUILDER_TAG=b\nTAG=c\n",
                marker.display()
            ),
            "bad.env:1: `PREFIX=$(touch",
        ),
        (
            &format!(
                "PREFIX=`touch {}`\nBASE_TAG=a\nBUILDER_TAG=b\nTAG=c\n",
                marker.display()
            ),
            "shell command substitution",
        ),
    ];
    for (text, expected) in cases {
        fs::write(&env_file, text).unwrap();
        let out = support::run_with_engine(
            fx.command(&["--env-file", env_file.to_str().unwrap(), "images"])
                .env_remove("PREFIX"),
        );
        let run = support::Run::from(out).failed();
        assert!(
            run.stderr.contains(expected),
            "expected {expected:?} in:\n{}",
            run.stderr
        );
        assert!(!marker.exists(), ".env was executed");
    }
    assert!(
        fx.docker(&["images", "-q", "--filter", "reference=fate-x/*"])
            .is_empty(),
        "something was built"
    );
    fx.assert_clean();
}

/// Maven decides the jar's name (here a parent's `finalName`, which the pom reader does
/// not follow): the jar packaged is the one Maven built, and a module whose jar Maven did
/// not build is named with what was expected and what Maven produced.
#[test]
fn the_jar_packaged_is_the_one_maven_built() {
    let fx = Fixture::mini("jarname");
    let driver = fx.root.join("arch/driver/pom.xml");
    let pom = fs::read_to_string(&driver).unwrap();
    fs::write(
        &driver,
        pom.replace(
            "<packaging>pom</packaging>",
            "<packaging>pom</packaging>\n  <build><finalName>${project.artifactId}</finalName></build>",
        ),
    )
    .unwrap();
    let run = fx.xtask(&["images", "federation"]).ok();
    let built = fx
        .root
        .join("arch/driver/federation/target/fate-federation.jar");
    assert!(built.is_file(), "{}", run.stderr);
    let dir = fx.tmp.path().join("federation-fs");
    fx.export_image(&fx.reference("federation"), &dir);
    let packaged = dir.join("data/projects/fate/federation/fate-federation.jar");
    assert_eq!(fs::read(&packaged).unwrap(), fs::read(&built).unwrap());
    assert!(
        !packaged.is_symlink(),
        "a jar already named <artifact>.jar is no link"
    );

    // A finalName that does not start with the artifactId: the module's jar is not there.
    fs::write(
        &driver,
        pom.replace(
            "<packaging>pom</packaging>",
            "<packaging>pom</packaging>\n  <build><finalName>renamed</finalName></build>",
        ),
    )
    .unwrap();
    let run = fx.xtask(&["images", "federation"]).failed();
    assert!(
        run.stderr
            .contains("Maven built no single jar for module fate-federation")
            && run
                .stderr
                .contains("expected fate-federation-0.3.jar; it holds renamed.jar"),
        "{}",
        run.stderr
    );
    fs::write(&driver, pom).unwrap();
    fx.assert_clean();
}
