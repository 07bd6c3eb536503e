//! The planner's tests: plans made from sample facts, no engine and no disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::*;
use crate::config::Config;
use crate::config::selection;
use crate::config::{Overrides, resolve};
use crate::docker::argv::{Builder, ImageInfo};
use crate::facts::preflight::Facts;
use crate::imageset::ImageSet;
use crate::imageset::tests::sample_set;
use crate::maven;
use crate::maven::pom;
use crate::stage::dockerfile::ArgDecl;
use crate::steps::action::Action;
use crate::steps::build::BuildStep;
use crate::steps::host;

fn config(ov: Overrides) -> Config {
    resolve(
        Path::new("/fate"),
        Path::new("/fate/.env"),
        "PREFIX=fed\nBASE_TAG=b1\nBUILDER_TAG=s1\nTAG=t1\nMAVEN_CACHE_DIR=/cache\n",
        &BTreeMap::new(),
        &sample_set(),
        &ov,
    )
    .unwrap()
}

/// The plan as a run makes it: preflight decides the selection first.
fn images(config: &Config, set: &ImageSet, facts: &Facts, options: &Options) -> Result<Plan> {
    let mut facts = facts.clone();
    facts.needed = selection::needs(
        config,
        set,
        &facts.local_images,
        &options.selection,
        options.every_parent,
    )?
    .names();
    super::images(config, set, &facts, options)
}

fn facts() -> Facts {
    let module = pom::Module {
        group_id: "org.example".into(),
        dir: "/fate/arch/eggroll/egg".into(),
        artifact_id: "fate-egg".into(),
        version: "0.3".into(),
        final_name: "fate-egg-0.3".into(),
    };
    let args = |names: &[&str]| {
        names
            .iter()
            .map(|n| ArgDecl {
                name: n.to_string(),
                default: None,
            })
            .collect()
    };
    Facts {
        uid_gid: "1000:1000".into(),
        revision: "abc123".into(),
        builder: Builder::Legacy,
        local_images: BTreeMap::new(),
        needed: selection::Needed::default(),
        modules: [("egg".to_string(), module)].into(),
        reactor_modules: [
            (
                "arch".to_string(),
                vec![
                    reactor_module(".", &["arch/pom.xml"], true),
                    reactor_module("core", &["arch/core/pom.xml", "arch/core/src"], false),
                ],
            ),
            (
                "fate-serving".to_string(),
                vec![reactor_module(".", &["fate-serving/pom.xml"], false)],
            ),
        ]
        .into(),
        dockerfile_args: [
            (
                "egg".to_string(),
                args(&["PREFIX", "BUILDER_TAG", "BASE_TAG"]),
            ),
            ("base-image".to_string(), args(&["PIP_INDEX_URL", "UNSET"])),
        ]
        .into(),
        missing_packages: vec![],
        run_id: "r1".into(),
        seed_from_repo: None,
        maven_image_present: true,
        engine: crate::docker::engine::Server {
            version: "20.10".into(),
            platform: "linux/amd64".into(),
        },
        image_store: None,
        engine_down: None,
        buildx_plugin: None,
    }
}

fn reactor_module(path: &str, inputs: &[&str], aggregates: bool) -> pom::ReactorModule {
    pom::ReactorModule {
        path: path.into(),
        inputs: inputs.iter().map(PathBuf::from).collect(),
        aggregates,
        uses: Vec::new(),
        artifact_id: path.into(),
        depends_on: Vec::new(),
    }
}

/// The plan of the sample set with default flags.
fn default_plan() -> Plan {
    images(
        &config(Overrides::default()),
        &sample_set(),
        &facts(),
        &Options::default(),
    )
    .unwrap()
}

fn ids(plan: &Plan) -> Vec<&str> {
    plan.steps.iter().map(|s| s.id.as_str()).collect()
}

#[test]
fn all_images_in_dependency_order() {
    let plan = default_plan();
    assert_eq!(
        plan.images,
        ["base-image", "storage-service-builder", "egg", "python"]
    );
    assert_eq!(
        ids(&plan),
        [
            "mvn-arch",
            "build-base-image",
            "build-storage-service-builder",
            "build-egg",
            "build-python"
        ]
    );
    // egg waits for the Maven build of its jar and both parents.
    let Action::Build(egg) = &plan.steps[3].action else {
        panic!()
    };
    assert_eq!(plan.steps[3].deps, vec![0, 1, 2]);
    assert_eq!(
        egg.parents,
        ["fed/storage-service-builder:s1", "fed/base-image:b1"]
    );
    // Its context: the egg tree, the python tree and a source directory.
    let ops: Vec<String> = egg
        .ops
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    assert_eq!(
        ops,
        [
            "copy /fate/example-tree-dir/egg -> egg-service",
            "jar /fate/arch/eggroll/egg/target/fate-egg-0.3.jar + lib/ -> egg-service, link fate-egg.jar -> fate-egg-0.3.jar, service.sh JAVA_HOME=/usr/lib/jvm/jre",
            "copy /fate/example-tree-dir/python -> egg-processor",
            "copy /fate/arch -> egg-processor/arch (without **/src/main/java)",
            "copy /fate/federatedml -> egg-processor/federatedml",
        ]
    );
}

#[test]
fn build_argv_has_tag_labels_and_declared_args_only() {
    let plan = default_plan();
    let Action::Build(BuildStep {
        command, reference, ..
    }) = &plan.steps[3].action
    else {
        panic!()
    };
    assert_eq!(reference, "fed/egg:t1");
    assert_eq!(
        command.env,
        [("DOCKER_BUILDKIT".to_string(), "0".to_string())]
    );
    let Action::Build(build) = &plan.steps[3].action else {
        panic!()
    };
    let labels: Vec<String> = build
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(
        labels,
        [
            "org.opencontainers.image.version=t1",
            "org.opencontainers.image.revision=abc123",
            "org.opencontainers.image.created=1970-01-01T00:00:00Z",
            "org.opencontainers.image.source=https://github.com/FederatedAI/FATE",
            "org.fedai.fate-xtask.image=egg",
            "org.fedai.fate-xtask.inputs=<inputs>",
            "org.fedai.fate-xtask.platforms=linux/amd64",
        ]
    );
    assert_eq!(
        build.dockerfile,
        Path::new("/fate/docker/modules/egg/Dockerfile")
    );
    assert_eq!(
        command.args,
        [
            "build",
            "--force-rm",
            "--file",
            "/fate/target/xtask/contexts/egg.Dockerfile",
            "--tag",
            "fed/egg:t1",
            "--build-arg",
            "PREFIX=fed",
            "--build-arg",
            "BUILDER_TAG=s1",
            "--build-arg",
            "BASE_TAG=b1",
            "--iidfile",
            "/fate/target/xtask/contexts/egg.iid",
            "/fate/target/xtask/contexts/egg"
        ]
    );
}

#[test]
fn chinese_mirror_switches_dockerfile_args_and_maven_settings() {
    let plain = config(Overrides::default());
    assert_eq!(maven::settings_xml(&plain), None);
    let cn = config(Overrides {
        chinese_mirror: true,
        ..Default::default()
    });
    let plan = images(&cn, &sample_set(), &facts(), &Options::default()).unwrap();
    assert_eq!(plan.steps[0].id, "maven-settings");
    let Action::WriteFile(host::WriteFile { contents, .. }) = &plan.steps[0].action else {
        panic!()
    };
    assert!(contents.contains("<url>https://maven.aliyun.com/repository/public</url>"));
    let base = plan
        .steps
        .iter()
        .find(|s| s.id == "build-base-image")
        .unwrap();
    let Action::Build(BuildStep { command, .. }) = &base.action else {
        panic!()
    };
    let Action::Build(build) = &base.action else {
        panic!()
    };
    assert_eq!(
        build.dockerfile,
        Path::new("/fate/docker/base/Dockerfile-cn")
    );
    assert!(
        command
            .args
            .contains(&"PIP_INDEX_URL=https://pypi.tuna.tsinghua.edu.cn/simple".to_string())
    );
    assert!(!command.args.iter().any(|a| a.starts_with("UNSET")));
    let mvn = plan.steps.iter().find(|s| s.id == "mvn-arch").unwrap();
    let Action::Maven(m) = &mvn.action else {
        panic!()
    };
    assert!(
        m.command
            .args
            .contains(&"/var/maven/settings.xml".to_string())
    );
    assert!(
        m.salt.contains("maven.aliyun.com"),
        "the mirror decides whether Maven reruns"
    );
}

#[test]
fn maven_in_docker_runs_as_caller_with_cache_and_sibling_mounts() {
    let mut set = sample_set();
    set.trees[0].java.as_mut().unwrap().maven = "fate-serving".into();
    let plan = images(
        &config(Overrides::default()),
        &set,
        &facts(),
        &Options::default(),
    )
    .unwrap();
    assert_eq!(&ids(&plan)[..2], ["mvn-arch", "mvn-fate-serving"]);
    let Action::Maven(m) = &plan.steps[1].action else {
        panic!()
    };
    assert_eq!(
        m.modules,
        [reactor_module(".", &["fate-serving/pom.xml"], false)]
    );
    assert_eq!(m.project, Path::new("/fate/fate-serving"));
    let jars: Vec<PathBuf> = m.outputs.iter().map(pom::Module::jar).collect();
    assert_eq!(
        jars,
        [Path::new("/fate/arch/eggroll/egg/target/fate-egg-0.3.jar")]
    );
    let argv = m.command.to_string();
    assert!(
        argv.starts_with("docker run --rm --name fate-xtask-r1-mvn-fate-serving"),
        "{argv}"
    );
    assert!(argv.contains("--user 1000:1000"), "{argv}");
    assert!(argv.contains("--volume /cache:/var/maven/.m2"), "{argv}");
    assert!(
        argv.contains("--volume /fate/fate-serving:/data/projects/fate/fate-serving"),
        "{argv}"
    );
    assert!(
        argv.contains("--volume /fate/arch:/data/projects/fate/arch"),
        "{argv}"
    );
    assert!(argv.ends_with("maven:3.6-jdk-8 mvn -Dmaven.repo.local=/var/maven/.m2/repository -Duser.home=/var/maven -B -Dstyle.color=never -Dproject.build.outputTimestamp=2000-01-01T00:00:00Z clean package -DskipTests"), "{argv}");
    assert_eq!(plan.steps[1].deps, vec![0]);
}

#[test]
fn one_module_builds_missing_parents_but_not_present_ones() {
    let cfg = config(Overrides::default());
    let only = Options {
        selection: vec!["python".into()],
        ..Default::default()
    };
    let plan = images(&cfg, &sample_set(), &facts(), &only).unwrap();
    assert_eq!(plan.images, ["base-image", "python"]);
    assert!(!ids(&plan).contains(&"mvn-arch"));
    let mut f = facts();
    f.local_images
        .insert("fed/base-image:b1".into(), ImageInfo::default());
    let plan = images(&cfg, &sample_set(), &f, &only).unwrap();
    assert_eq!(plan.images, ["python"]);
    assert_eq!(ids(&plan), ["build-python"]);
}

#[test]
fn several_platforms_take_every_parent_along() {
    let cfg = config(Overrides {
        build: crate::config::BuildOverrides {
            platform: Some("linux/amd64,linux/arm64".into()),
            ..Default::default()
        },
        ..Default::default()
    });
    let mut f = facts();
    f.local_images
        .insert("fed/base-image:b1".into(), ImageInfo::default());
    let only = Options {
        selection: vec!["python".into()],
        ..Default::default()
    };
    let plan = images(&cfg, &sample_set(), &f, &only).unwrap();
    assert_eq!(
        plan.images,
        ["base-image", "python"],
        "a present parent may hold fewer platforms: its digest decides"
    );
}

#[test]
fn missing_host_packages_come_first() {
    let mut f = facts();
    f.missing_packages = vec!["libmaven-jar-plugin-java".into()];
    let plan = images(
        &config(Overrides::default()),
        &sample_set(),
        &f,
        &Options::default(),
    )
    .unwrap();
    assert_eq!(plan.steps[0].id, "host-packages");
    let Action::InstallPackages(host::InstallPackages(c)) = &plan.steps[0].action else {
        panic!()
    };
    assert_eq!(
        c.to_string(),
        "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends libmaven-jar-plugin-java"
    );
    assert_eq!(plan.steps[1].deps, vec![0]);
}

#[test]
fn buildkit_options_apply_per_image() {
    let cfg = config(Overrides {
        build: crate::config::BuildOverrides {
            builder: Some("fleet".into()),
            cache_from: vec!["type=registry,ref=r:5000/fed/{image}:cache".into()],
            cache_to: vec!["type=inline".into()],
            pull: true,
            platform: Some("linux/arm64".into()),
        },
        ..Default::default()
    });
    let mut facts = facts();
    facts.builder = Builder::BuildKit;
    let plan = images(&cfg, &sample_set(), &facts, &Options::default()).unwrap();
    let build = |id: &str| -> BuildStep {
        let step = plan.steps.iter().find(|s| s.id == id).unwrap();
        let Action::Build(b) = &step.action else {
            panic!()
        };
        b.clone()
    };
    let (base, egg) = (build("build-base-image"), build("build-egg"));
    assert_eq!(
        base.command.args[..14],
        [
            "buildx",
            "build",
            "--builder",
            "fleet",
            "--load",
            "--progress=plain",
            "--provenance=false",
            "--platform",
            "linux/arm64",
            "--pull",
            "--cache-from",
            "type=registry,ref=r:5000/fed/base-image:cache",
            "--cache-to",
            "type=inline",
        ]
    );
    // egg starts from this set's images, which are local only: it does not pull.
    assert!(!egg.command.args.contains(&"--pull".to_string()));
    assert!(
        egg.command
            .args
            .contains(&"type=registry,ref=r:5000/fed/egg:cache".to_string())
    );
    // BuildKit needs no switch; buildx is told not to ask git.
    assert_eq!(
        egg.command.env,
        [("BUILDX_GIT_INFO".to_string(), "0".to_string())]
    );
}

#[test]
fn the_bake_file_ties_targets_to_their_parents() {
    let plan = default_plan();
    let bake = crate::bake::bakefile::of(&plan, true);
    let egg = &bake.target["egg"];
    assert_eq!(egg.tags, ["fed/egg:t1"]);
    assert_eq!(egg.dockerfile, "/fate/target/xtask/contexts/egg.Dockerfile");
    assert_eq!(egg.context, "/fate/target/xtask/contexts/egg");
    assert_eq!(egg.args["PREFIX"], "fed");
    assert_eq!(
        egg.contexts,
        BTreeMap::from([
            (
                "fed/base-image:b1".to_string(),
                "target:base-image".to_string()
            ),
            (
                "fed/storage-service-builder:s1".to_string(),
                "target:storage-service-builder".to_string()
            ),
        ])
    );
    let targets = |g: &str| bake.group[g].targets.clone();
    assert_eq!(targets("stage-1"), ["base-image"]);
    assert_eq!(targets("stage-2"), ["storage-service-builder", "python"]);
    assert_eq!(targets("stage-3"), ["egg"]);
    assert_eq!(targets("default").len(), 4);
    let flat = crate::bake::bakefile::of(&plan, false);
    assert!(flat.target.values().all(|t| t.contexts.is_empty()));
}

#[test]
fn json_and_text_plans_agree() {
    use crate::steps::decision::Reason;
    use crate::steps::decision::Status;
    let plan = default_plan();
    let status: Vec<Status> = (0..plan.steps.len())
        .map(|i| match i {
            0 => Status::UpToDate,
            1 => Status::WillRun(Reason::NotBuilt),
            _ => Status::Unknown("the Docker engine is unreachable".into()),
        })
        .collect();
    let json: serde_json::Value =
        serde_json::from_str(&crate::plan::json::render(&plan, &status, &facts())).unwrap();
    let text = plan.render(&status.iter().map(ToString::to_string).collect::<Vec<_>>());
    let steps = json["steps"].as_array().unwrap();
    assert_eq!(steps.len(), plan.steps.len());
    for (step, status) in steps.iter().zip(&status) {
        let id = step["id"].as_str().unwrap();
        // Each step's own status, on the line under its own header.
        let lines: Vec<&str> = text.lines().collect();
        let header = lines
            .iter()
            .position(|l| l.contains(&format!("[{id}]")))
            .unwrap_or_else(|| panic!("{id} is not in the text plan"));
        assert_eq!(lines[header + 1].trim(), format!("-> {status}"), "{id}");
        let argv: Vec<&str> = step["argv"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap()).collect())
            .unwrap_or_default();
        if !argv.is_empty() {
            assert!(text.contains(&argv[1..].join(" ")), "{id}: {argv:?}");
        }
    }
    assert_eq!(steps[0]["decision"], "up-to-date");
    assert_eq!(steps[1]["decision"], "will-run");
    assert_eq!(steps[1]["reason"], "not built yet");
    assert_eq!(steps[2]["decision"], "unknown");
    assert_eq!(steps[3]["dependencies"][0], "mvn-arch");
    assert_eq!(json["builder"], "legacy");
}

#[test]
fn a_modules_run_keeps_the_callers_maven_opts_and_adds_the_short_run_jvm() {
    let env: BTreeMap<String, String> =
        [("MAVEN_OPTS".to_string(), "-Dhttp.proxyHost=p".to_string())].into();
    let host = resolve(
        Path::new("/fate"),
        Path::new("/fate/.env"),
        "PREFIX=fed\nBASE_TAG=b1\nBUILDER_TAG=s1\nTAG=t1\nMAVEN_MODE=host\nMAVEN_CACHE_DIR=/c\n",
        &env,
        &sample_set(),
        &Overrides::default(),
    )
    .unwrap();
    let plan = images(&host, &sample_set(), &facts(), &Options::default()).unwrap();
    let Action::Maven(m) = &plan.steps[0].action else {
        panic!()
    };
    assert!(m.command.args.contains(&"clean".to_string()));
    assert!(m.command.env.is_empty());
    assert!(!m.modules_command.args.contains(&"clean".to_string()));
    assert_eq!(
        m.modules_command.env,
        [(
            "MAVEN_OPTS".to_string(),
            format!("-Dhttp.proxyHost=p {}", maven::SHORT_RUN_JVM)
        )]
    );
    let docker = default_plan();
    let Action::Maven(m) = &docker.steps[0].action else {
        panic!()
    };
    let argv = m.modules_command.to_string();
    assert!(
        argv.contains("--env 'MAVEN_OPTS=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC'"),
        "{argv}"
    );
}
