//! The real FATE 1.0.2 definitions (`docker/`, `example-tree-dir/`), read as data: what
//! cannot be built here (nothing can be pulled, CentOS's mirrors are out of reach) is
//! held to its contract instead.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use xtask::imageset::ImageSet;

fn dockerfiles() -> Vec<PathBuf> {
    walkdir::WalkDir::new(support::workspace().join("docker"))
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("Dockerfile"))
        })
        .collect()
}

/// The image set of the workspace, read by the tool's own reader.
fn image_set() -> ImageSet {
    ImageSet::load(&support::workspace()).unwrap()
}

/// Download locations the image set declares, per profile.
fn mirrors() -> (BTreeSet<String>, BTreeSet<String>) {
    let set = image_set();
    (
        set.mirrors.global.keys().cloned().collect(),
        set.mirrors.cn.keys().cloned().collect(),
    )
}

#[test]
fn every_download_is_a_build_arg_with_a_global_and_a_china_location() {
    let url = regex::Regex::new(r"\b(?:https?|ftp)://[^\s'\x22|]+").unwrap();
    let arg = regex::Regex::new(r"^ARG ([A-Z0-9_]+)=").unwrap();
    let (global, cn) = mirrors();
    let files = dockerfiles();
    assert!(files.len() >= 5, "{files:?}");
    let mut args_seen = 0;
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with('#') || !url.is_match(line) {
                continue;
            }
            let at = format!("{}:{}: {line}", file.display(), n + 1);
            let name = arg
                .captures(line.trim_start())
                .unwrap_or_else(|| panic!("a URL that is not a build arg's default: {at}"))[1]
                .to_string();
            assert!(
                global.contains(&name) && cn.contains(&name),
                "{name} needs a global and a China location in docker/images.toml: {at}"
            );
            args_seen += 1;
        }
    }
    assert!(args_seen >= 6, "only {args_seen} download args found");
}

#[test]
fn the_egg_make_line_names_its_tools_and_the_builder_only_the_linked_boost() {
    let root = support::workspace();
    let egg = fs::read_to_string(root.join("docker/modules/egg/Dockerfile")).unwrap();
    let make: String = egg
        .split("RUN ")
        .find(|r| r.contains("make -C"))
        .expect("egg runs make")
        .lines()
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("COPY"))
        .collect();
    for expected in [
        "LD_LIBRARY_PATH=${THIRD_PARTY}/lib make",
        "PROTOC=${THIRD_PARTY}/bin/protoc",
        "GRPC_CPP_PLUGIN=${THIRD_PARTY}/bin/grpc_cpp_plugin",
    ] {
        assert!(make.contains(expected), "{expected} in {make}");
    }
    let builder = fs::read_to_string(root.join("docker/builder/Dockerfile")).unwrap();
    assert!(builder.contains("--with-libraries=system,filesystem"));
    let base = fs::read_to_string(root.join("docker/base/Dockerfile")).unwrap();
    // The Makefile's own checks run `which`.
    assert!(base.contains(" which;"), "the base installs which");
    for pin in [
        "--no-wheel --no-setuptools --no-download",
        "pip==18.1 setuptools==40.6.3 wheel==0.32.3",
    ] {
        assert!(base.contains(pin), "{pin}");
    }
}

#[test]
fn fateboard_keeps_its_heap_flags_and_lets_them_be_replaced() {
    let sh = support::workspace().join("example-tree-dir/fateboard/service.sh");
    let text = fs::read_to_string(&sh).unwrap();
    assert!(text.contains(": \"${FATEBOARD_JAVA_OPTS:=-Xmx2048m -Xms2048m -XX:+PrintGCDetails"));
    // Started for real with a stand-in java that prints its arguments.
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("fateboard");
    fs::create_dir_all(tree.join("conf")).unwrap();
    let java_home = tmp.path().join("jdk");
    fs::create_dir_all(java_home.join("bin")).unwrap();
    let java = java_home.join("bin/java");
    fs::write(&java, "#!/bin/sh\necho \"$@\"\n").unwrap();
    fs::set_permissions(&java, fs::Permissions::from_mode(0o755)).unwrap();
    let script = text.replace(
        "JAVA_HOME=\n",
        &format!("JAVA_HOME={}\n", java_home.display()),
    );
    fs::write(tree.join("service.sh"), script).unwrap();
    let run = |opts: Option<&str>| {
        let mut c = std::process::Command::new("bash");
        c.arg(tree.join("service.sh"))
            .env_remove("FATEBOARD_JAVA_OPTS");
        if let Some(o) = opts {
            c.env("FATEBOARD_JAVA_OPTS", o);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let default = run(None);
    assert!(
        default.contains("-Xmx2048m -Xms2048m -XX:+PrintGCDetails"),
        "{default}"
    );
    assert!(
        default.trim_end().ends_with("-jar fateboard.jar"),
        "{default}"
    );
    let small = run(Some("-Xmx512m -Xms256m"));
    assert!(
        small.contains("-Xmx512m -Xms256m -jar fateboard.jar"),
        "{small}"
    );
    assert!(!small.contains("2048m"), "{small}");
}

/// The conf files of FATE 1.0.2's `cluster-deploy/example-dir-tree`, per module, with the
/// keys its `.properties` files set. The modules load them from `conf/` (e.g.
/// `Federation.java` loads `applicationContext-federation.xml`), and KubeFATE's chart
/// mounts single files over them with `subPath`: the rest must come from the image.
const FATE_CONF: [(&str, &str, &[&str]); 24] = [
    ("egg", "applicationContext-egg.xml", &[]),
    (
        "egg",
        "egg.properties",
        &[
            "party.id",
            "service.port",
            "processor.venv",
            "processor.path",
            "python.path",
            "data.dir",
            "max.processors.count",
        ],
    ),
    (
        "egg",
        "log4j2.properties",
        &["property.module", "rootLogger.level"],
    ),
    (
        "fateboard",
        "application.properties",
        &[
            "server.port",
            "fateflow.url",
            "spring.datasource.url",
            "spring.datasource.username",
            "spring.datasource.password",
        ],
    ),
    ("fateboard", "ssh.properties", &[]),
    ("federation", "applicationContext-federation.xml", &[]),
    (
        "federation",
        "federation.properties",
        &[
            "party.id",
            "service.port",
            "meta.service.ip",
            "meta.service.port",
        ],
    ),
    (
        "federation",
        "log4j2.properties",
        &["property.module", "rootLogger.level"],
    ),
    ("meta-service", "applicationContext-meta-service.xml", &[]),
    (
        "meta-service",
        "jdbc.properties",
        &[
            "jdbc.driver.classname",
            "jdbc.url",
            "jdbc.username",
            "jdbc.password",
            "target.project",
        ],
    ),
    (
        "meta-service",
        "log4j2.properties",
        &["property.module", "rootLogger.level"],
    ),
    (
        "meta-service",
        "meta-service.properties",
        &["party.id", "service.port"],
    ),
    ("proxy", "applicationContext-proxy.xml", &[]),
    (
        "proxy",
        "log4j2.properties",
        &["property.module", "rootLogger.level"],
    ),
    (
        "proxy",
        "proxy.properties",
        &["coordinator", "ip", "port", "route.table", "root.crt"],
    ),
    ("proxy", "route_table.json", &[]),
    ("python", "mock_roll.json", &[]),
    ("python", "server_conf.json", &[]),
    ("python", "setting_conf.json", &[]),
    ("roll", "applicationContext-roll.xml", &[]),
    (
        "roll",
        "log4j2.properties",
        &["property.module", "rootLogger.level"],
    ),
    (
        "roll",
        "roll.properties",
        &[
            "party.id",
            "service.port",
            "meta.service.ip",
            "meta.service.port",
        ],
    ),
    ("serving-server", "log4j2.xml", &[]),
    (
        "serving-server",
        "serving-server.properties",
        &[
            "ip",
            "port",
            "workMode",
            "redis.ip",
            "redis.port",
            "redis.password",
            "party.id",
            "proxy",
            "roll",
            "OnlineDataAccessAdapter",
        ],
    ),
];

#[test]
fn every_module_has_the_conf_files_fate_loads_with_their_keys() {
    let tree = support::workspace().join("example-tree-dir");
    for (module, file, keys) in FATE_CONF {
        let path = tree.join(module).join("conf").join(file);
        let text =
            fs::read_to_string(&path).unwrap_or_else(|_| panic!("{module} lacks conf/{file}"));
        let extension = std::path::Path::new(file)
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if extension == "properties" {
            let set: BTreeSet<&str> = text
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
                .collect();
            for key in keys {
                assert!(set.contains(key), "{module}/conf/{file} lacks {key}");
            }
        }
        if extension == "json" {
            let _: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{module}/conf/{file}: {e}"));
        }
        if file.starts_with("applicationContext-") {
            assert!(text.contains("<context:component-scan base-package=\"com.webank.ai.fate\"/>"));
        }
    }
    // The services find each other by the compose service names.
    let federation =
        fs::read_to_string(tree.join("federation/conf/federation.properties")).unwrap();
    assert!(federation.contains("meta.service.ip=meta-service"));
    let server: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(tree.join("python/conf/server_conf.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(server["servers"]["roll"]["host"], "roll");
    assert_eq!(server["servers"]["federation"]["port"], 9394);
}

/// The make step and the library copies of an egg Dockerfile.
fn make_step(dockerfile: &str) -> Vec<String> {
    let text = fs::read_to_string(support::workspace().join(dockerfile)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("RUN LD_LIBRARY_PATH="))
        .unwrap_or_else(|| panic!("{dockerfile} has no make step"));
    let mut step: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with("COPY --from=builder") || l.starts_with("ARG THIRD_PARTY="))
        .map(|l| (*l).to_string())
        .collect();
    step.extend(
        lines[start..]
            .iter()
            .take_while(|l| !l.trim().is_empty() && !l.starts_with("COPY") && !l.starts_with("ENV"))
            .map(|l| (*l).to_string()),
    );
    step
}

#[test]
fn the_example_egg_runs_the_real_egg_make_step() {
    let real = make_step("docker/modules/egg/Dockerfile");
    assert_eq!(real.len(), 8, "{real:?}");
    assert_eq!(real, make_step("examples/cxx-egg/docker/egg/Dockerfile"));
}

/// The ports KubeFATE v1.0.2's `docker-deploy/docker-compose.yml` exposes per service.
/// serving-server: compose exposes 8001, while its conf (FATE's and KubeFATE's alike)
/// makes it listen on 8000, which the image declares.
const COMPOSE_PORTS: [(&str, &[u16]); 8] = [
    ("federation", &[9394]),
    ("proxy", &[9370]),
    ("serving-server", &[8000]),
    ("fateboard", &[8080]),
    ("roll", &[8011]),
    ("egg", &[7888, 7778, 50001, 50002, 50003, 50004]),
    ("python", &[9360, 9380]),
    ("meta-service", &[8590]),
];

#[test]
fn every_image_declares_the_ports_and_start_kubefate_uses() {
    let root = support::workspace();
    let set = image_set();
    for (name, ports) in COMPOSE_PORTS {
        let image = set.image(name).unwrap_or_else(|| panic!("no image {name}"));
        let text = fs::read_to_string(root.join(&image.dockerfile)).unwrap();
        let port_arg = image.args.get("PORT").map_or("", String::as_str);
        let mut declared = BTreeSet::new();
        for line in text.lines().filter(|l| l.starts_with("EXPOSE ")) {
            for word in line.split_whitespace().skip(1) {
                let word = word.replace("${PORT}", port_arg);
                let (from, to) = word.split_once('-').unwrap_or((&word, &word));
                let (from, to): (u16, u16) = (from.parse().unwrap(), to.parse().unwrap());
                declared.extend(from..=to);
            }
        }
        for port in ports {
            assert!(
                declared.contains(port),
                "{name} does not EXPOSE {port}: {declared:?}"
            );
        }
        let start = text.lines().rfind(|l| l.starts_with("CMD ")).unwrap();
        let expected = match name {
            "python" => "fate_flow_server.py",
            "egg" => "storage-service -p 7778",
            _ => "service.sh",
        };
        assert!(start.contains(expected), "{name} starts with {start}");
    }
}
