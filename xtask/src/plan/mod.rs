//! The pure core of `images`: resolved config + image set + facts about the machine ->
//! an ordered list of steps, each with the exact command line that runs or its staging
//! operations. `--dry-run` prints it.

pub mod freshness;
pub mod json;
pub mod kind;
mod machine;
pub mod preflight;
mod revision;
mod sources;
pub mod submodules;
pub mod writable;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use anyhow::Result;

use crate::config::{Config, MavenMode};
use crate::docker::argv;
use crate::image::staging::StageOp;
use crate::image::step::{self, BuildStep};
use crate::imageset::selection;
use crate::imageset::{ContextPart, ImageSet, Tree};
use crate::maven::{self, MavenStep};
use crate::plan::preflight::Facts;
use fate_bundle::process::Command;

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a plan holds a few dozen steps: boxing the large ones would save nothing"
)]
pub enum Action {
    InstallPackages(kind::InstallPackages),
    WriteFile(kind::WriteFile),
    SeedMavenRepo(kind::SeedMavenRepo),
    /// `mvn clean package` of one project, skipped while its inputs are unchanged.
    Maven(MavenStep),
    /// Stage one image's context and `docker build` it, skipped while its inputs are unchanged.
    Build(BuildStep),
    Pull(kind::Pull),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Unique, file-name safe: also the log's name.
    pub id: String,
    pub title: String,
    /// Indices of steps that must succeed first.
    pub deps: Vec<usize>,
    pub action: Action,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Images named on the command line plus missing parents, in build order.
    pub images: Vec<String>,
}

impl Plan {
    fn push(&mut self, id: &str, title: String, deps: Vec<usize>, action: Action) -> usize {
        self.steps.push(Step {
            id: id.to_string(),
            title,
            deps,
            action,
        });
        self.steps.len() - 1
    }
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub selection: Vec<String>,
    /// Every parent is built, present or not (a bake's builders start with nothing).
    pub every_parent: bool,
    pub no_cache: bool,
}

/// What every piece of a plan is computed from: the configuration, the image set and what
/// preflight found.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    pub config: &'a Config,
    pub set: &'a ImageSet,
    pub facts: &'a Facts,
}

/// Builds the plan for `cargo xtask images`.
pub fn images(config: &Config, set: &ImageSet, facts: &Facts, options: &Options) -> Result<Plan> {
    let inputs = Inputs { config, set, facts };
    // Decided once, by preflight, for the whole run.
    let needs = selection::resolve(set, &facts.needed);
    let mut plan = Plan {
        images: needs.images.iter().map(|i| i.name.clone()).collect(),
        ..Plan::default()
    };
    let prelude: Vec<usize> = host_packages(&mut plan, facts).into_iter().collect();
    let maven_steps = if needs.projects.is_empty() {
        BTreeMap::new()
    } else {
        maven_steps(&mut plan, inputs, &needs.projects, &prelude)
    };
    let mut build_steps: BTreeMap<&str, usize> = BTreeMap::new();
    for image in &needs.images {
        let mut deps = Vec::new();
        let mut ops = Vec::new();
        for part in &image.context {
            match part {
                ContextPart::Tree { tree, to } => {
                    let tree = set.tree(tree).expect("the image set was checked");
                    ops.extend(tree_ops(inputs, tree, to.as_deref().unwrap_or("."))?);
                    if let Some(java) = &tree.java {
                        deps.extend(maven_steps.get(java.maven.as_str()));
                    }
                }
                ContextPart::Source(c) => ops.push(StageOp::Copy {
                    from: config.fate_root.join(&c.from),
                    to: c.dest(),
                    exclude: c.exclude.clone(),
                }),
            }
        }
        deps.extend(
            image
                .parents
                .iter()
                .filter_map(|p| build_steps.get(p.as_str())),
        );
        deps.sort_unstable();
        deps.dedup();
        let step = step::step(inputs, image, ops, options.no_cache);
        let title = format!("build {}", step.reference);
        let i = plan.push(
            &format!("build-{}", image.name),
            title,
            deps,
            Action::Build(step),
        );
        build_steps.insert(&image.name, i);
    }
    Ok(plan)
}

/// `apt-get install` of the host packages Maven needs, when some are missing.
fn host_packages(plan: &mut Plan, facts: &Facts) -> Option<usize> {
    if facts.missing_packages.is_empty() {
        return None;
    }
    // Wait for a dpkg lock held by another install instead of failing at once.
    let mut args = vec![
        "-o",
        "DPkg::Lock::Timeout=300",
        "install",
        "-y",
        "--no-install-recommends",
    ];
    args.extend(facts.missing_packages.iter().map(String::as_str));
    let install = Command::new("apt-get", args).env("DEBIAN_FRONTEND", "noninteractive");
    Some(plan.push(
        "host-packages",
        format!(
            "install host packages: {}",
            facts.missing_packages.join(" ")
        ),
        vec![],
        Action::InstallPackages(kind::InstallPackages(install)),
    ))
}

/// The Maven projects needed, in build order, after what they need; by project name.
fn maven_steps<'a>(
    plan: &mut Plan,
    inputs: Inputs<'a>,
    projects: &std::collections::BTreeSet<&str>,
    prelude: &[usize],
) -> BTreeMap<&'a str, usize> {
    let Inputs { config, set, facts } = inputs;
    let work = config.work_dir();
    let settings_xml = maven::settings_xml(config);
    let (settings, before) = maven_prelude(plan, inputs, settings_xml.as_deref(), prelude);
    let runner = maven::Runner {
        uid_gid: facts.uid_gid.clone(),
        run_id: facts.run_id.clone(),
    };
    let salt = format!("{:?}\n{}", config.maven, settings_xml.unwrap_or_default());
    let mut steps: BTreeMap<&str, usize> = BTreeMap::new();
    for project in set.maven_order() {
        if !projects.contains(project.name.as_str()) {
            continue;
        }
        let mut deps = before.clone();
        deps.extend(project.after.iter().filter_map(|a| steps.get(a.as_str())));
        let command = |scope| {
            maven::command(
                config,
                &runner,
                &project.name,
                &project.after,
                settings.as_deref(),
                scope,
            )
        };
        let step = MavenStep {
            command: command(maven::Scope::Reactor),
            modules_command: command(maven::Scope::Modules),
            root: config.fate_root.clone(),
            project: config.fate_root.join(&project.name),
            modules: facts
                .reactor_modules
                .get(&project.name)
                .cloned()
                .unwrap_or_default(),
            salt: salt.clone(),
            stamp: work.join("maven").join(format!("{}.inputs", project.name)),
            outputs: set
                .trees
                .iter()
                .filter(|t| t.java.as_ref().is_some_and(|j| j.maven == project.name))
                .filter_map(|t| facts.modules.get(&t.name))
                .cloned()
                .collect(),
        };
        let id = format!("mvn-{}", project.name);
        let title = format!("maven {}", project.name);
        steps.insert(
            &project.name,
            plan.push(&id, title, deps, Action::Maven(step)),
        );
    }
    steps
}

/// What every Maven step waits for: the generated settings (their path, if any), the
/// Maven image, the cache seed; returns the settings' path and the steps to wait for.
fn maven_prelude(
    plan: &mut Plan,
    Inputs { config, facts, .. }: Inputs,
    settings_xml: Option<&str>,
    prelude: &[usize],
) -> (Option<PathBuf>, Vec<usize>) {
    let mut before = prelude.to_vec();
    let settings = settings_xml.map(|xml| {
        let path = config.work_dir().join("maven").join("settings.xml");
        let action = Action::WriteFile(kind::WriteFile {
            path: path.clone(),
            contents: xml.to_string(),
        });
        let title = "write Maven settings (mirror)".to_string();
        before.push(plan.push("maven-settings", title, prelude.to_vec(), action));
        path
    });
    if let MavenMode::Docker { image } = &config.maven
        && !facts.maven_image_present
    {
        let hint = format!(
            "the Maven image {image} is not present and cannot be pulled; load it (docker load), set MAVEN_IMAGE in .env to one you have, or use --maven host"
        );
        let action = Action::Pull(kind::Pull {
            command: argv::pull(image),
            hint,
        });
        let title = format!("pull the Maven image {image}");
        before.push(plan.push("maven-image", title, prelude.to_vec(), action));
    }
    if let Some(from_repo) = &facts.seed_from_repo {
        let action = Action::SeedMavenRepo(kind::SeedMavenRepo {
            from_repo: from_repo.clone(),
            local_repo: config.maven_cache.join("repository"),
        });
        let title = "give the Maven cache plexus-utils 1.1 (missing from the file mirror)".into();
        before.push(plan.push("maven-seed", title, prelude.to_vec(), action));
    }
    (settings, before)
}

/// The operations that stage a module tree at `to` inside a context.
fn tree_ops(Inputs { config, set, facts }: Inputs, tree: &Tree, to: &str) -> Result<Vec<StageOp>> {
    let at = |rel: &str| {
        if to == "." {
            rel.to_string()
        } else {
            format!("{to}/{rel}")
        }
    };
    let mut ops = Vec::new();
    if tree.skeleton {
        ops.push(StageOp::Copy {
            from: config
                .fate_root
                .join(&set.packaging.skeletons)
                .join(&tree.name),
            to: to.to_string(),
            exclude: Vec::new(),
        });
    }
    if let Some(java) = &tree.java {
        let module = facts.modules.get(&tree.name).cloned().ok_or_else(|| {
            anyhow::anyhow!("no Maven module was resolved for tree {}", tree.name)
        })?;
        ops.push(StageOp::Jar {
            module,
            to: to.to_string(),
            link: format!("{}.jar", java.artifact),
            lib: java.lib,
            java_home: java.java_home.clone(),
        });
    }
    for c in &tree.copy {
        ops.push(StageOp::Copy {
            from: config.fate_root.join(&c.from),
            to: at(&c.dest()),
            exclude: c.exclude.clone(),
        });
    }
    ops.extend(tree.empty_dirs.iter().map(|d| StageOp::EmptyDir(at(d))));
    Ok(ops)
}

impl Plan {
    /// The plan as text, with each step's status (up to date, or why it runs) where given.
    pub fn render(&self, status: &[String]) -> String {
        let mut out = String::new();
        self.write(&mut out, status).expect("writing to a String");
        out
    }

    fn write(&self, f: &mut impl fmt::Write, status: &[String]) -> fmt::Result {
        writeln!(
            f,
            "plan: {} steps; images: {}",
            self.steps.len(),
            self.images.join(", ")
        )?;
        for (n, step) in self.steps.iter().enumerate() {
            let after: Vec<String> = step.deps.iter().map(|d| (d + 1).to_string()).collect();
            let after = if after.is_empty() {
                String::new()
            } else {
                format!("  (after {})", after.join(", "))
            };
            writeln!(f, "{:>3}. [{}] {}{after}", n + 1, step.id, step.title)?;
            if let Some(s) = status.get(n) {
                writeln!(f, "       -> {s}")?;
            }
            step.action.write(f)?;
        }
        Ok(())
    }
}

impl Action {
    /// The kind of step, as the JSON plan names it.
    /// The type of this kind of step, which says, decides and does the rest.
    pub fn step_kind(&self) -> &dyn kind::StepKind {
        match self {
            Action::InstallPackages(k) => k,
            Action::WriteFile(k) => k,
            Action::SeedMavenRepo(k) => k,
            Action::Maven(k) => k,
            Action::Build(k) => k,
            Action::Pull(k) => k,
        }
    }

    pub fn kind(&self) -> &'static str {
        self.step_kind().kind()
    }

    /// The process the step runs (a Maven step: when all of it runs).
    pub fn command(&self) -> Option<&Command> {
        self.step_kind().command()
    }

    /// What the step writes or stages, in order; a build's staging operations come after
    /// its Dockerfile and context lines.
    pub fn operations(&self) -> Vec<String> {
        self.step_kind().operations()
    }

    /// What the step runs or writes, as the plan shows it.
    fn write(&self, f: &mut impl fmt::Write) -> fmt::Result {
        for (n, op) in self.operations().iter().enumerate() {
            // A build's staging operations sit under its `stage` line.
            let indent = if matches!(self, Action::Build(_)) && n >= 2 {
                9
            } else {
                7
            };
            writeln!(f, "{:indent$}{op}", "")?;
        }
        match self.command() {
            Some(c) => writeln!(f, "       $ {c}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, &[])
    }
}

impl crate::run::scheduler::Scheduled for Step {
    fn id(&self) -> &str {
        &self.id
    }
    fn title(&self) -> &str {
        &self.title
    }
    fn deps(&self) -> &[usize] {
        &self.deps
    }
    fn engine_bound(&self) -> bool {
        matches!(self.action, Action::Build(_))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{Overrides, resolve};
    use crate::docker::argv::{Builder, ImageInfo};
    use crate::image::dockerfile::ArgDecl;
    use crate::imageset::tests::sample_set;
    use crate::maven::pom;

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
            created: "2026-11-28T00:00:00Z".into(),
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
                "org.opencontainers.image.created=2026-11-28T00:00:00Z",
                "org.opencontainers.image.source=https://github.com/FederatedAI/FATE",
                "org.fedai.fate-xtask.image=egg",
                "org.fedai.fate-xtask.inputs=<inputs>",
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
        let Action::WriteFile(kind::WriteFile { contents, .. }) = &plan.steps[0].action else {
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
        let Action::InstallPackages(kind::InstallPackages(c)) = &plan.steps[0].action else {
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
        use crate::plan::freshness::{Reason, Status};
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
            assert!(text.contains(&format!("[{id}]")), "{id}");
            assert!(text.contains(&format!("-> {status}")));
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
}
