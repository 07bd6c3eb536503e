//! The pure core: resolved config + image set + facts about the machine -> an ordered
//! list of steps, each with its exact argv or staging operations. `--dry-run` prints it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::{Config, MavenMode, MirrorProfile};
use crate::dockerfile::ArgDecl;
use crate::imageset::{ContextPart, Image, ImageSet};
use crate::pom;

/// A child process: program, arguments, working directory, extra environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<(String, String)>,
}

impl Command {
    pub fn new(program: &str, args: impl IntoIterator<Item = impl Into<String>>) -> Command {
        Command {
            program: program.to_string(),
            args: args.into_iter().map(Into::into).collect(),
            cwd: None,
            env: Vec::new(),
        }
    }
}

impl fmt::Display for Command {
    /// Shell-like rendering, quoted where needed, for plans and error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quote = |s: &str| {
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c))
            {
                s.to_string()
            } else {
                format!("'{}'", s.replace('\'', r"'\''"))
            }
        };
        if let Some(cwd) = &self.cwd {
            write!(f, "(cd {} && ", quote(&cwd.to_string_lossy()))?;
        }
        for (k, v) in &self.env {
            write!(f, "{k}={} ", quote(v))?;
        }
        write!(f, "{}", quote(&self.program))?;
        for a in &self.args {
            write!(f, " {}", quote(a))?;
        }
        if self.cwd.is_some() {
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// One staging operation into a build context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageOp {
    /// Copy a file or directory tree to `to` (symlinks kept; `target/` beside a pom,
    /// `.git/` and paths matching `exclude` left out).
    Copy {
        from: PathBuf,
        to: String,
        exclude: Vec<String>,
    },
    /// Install a Maven-built jar at `to`, with its `lib/`, a stable-named symlink and
    /// `JAVA_HOME=` set in the `service.sh` staged there before.
    Jar {
        module: pom::Module,
        to: String,
        link: String,
        lib: bool,
        java_home: String,
    },
    EmptyDir(String),
}

impl fmt::Display for StageOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StageOp::Copy { from, to, exclude } => {
                write!(f, "copy {} -> {to}", from.display())?;
                if !exclude.is_empty() {
                    write!(f, " (without {})", exclude.join(", "))?;
                }
                Ok(())
            }
            StageOp::Jar {
                module,
                to,
                link,
                lib,
                java_home,
            } => write!(
                f,
                "jar {}{} -> {to}, link {link} -> {}.jar, service.sh JAVA_HOME={java_home}",
                module.jar().display(),
                if *lib { " + lib/" } else { "" },
                module.final_name
            ),
            StageOp::EmptyDir(d) => write!(f, "mkdir {d}"),
        }
    }
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run a command (apt).
    Run(Command),
    /// Write a generated file.
    WriteFile { path: PathBuf, contents: String },
    /// Give a local Maven repository the `plexus-utils:1.1` that Debian's repository lacks.
    SeedMavenRepo {
        from_repo: PathBuf,
        local_repo: PathBuf,
    },
    /// `mvn clean package` of one project, skipped while its inputs are unchanged.
    Maven(MavenStep),
    /// Stage one image's context and `docker build` it, skipped while its inputs are unchanged.
    Build(BuildStep),
    /// Tag an image for its registry and push it, retrying transient failures.
    Push(PushStep),
    /// Pull an image the run needs but does not build (the Maven image).
    Pull { reference: String, hint: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushStep {
    /// The local reference, `${PREFIX}/<name>:<tag>`.
    pub source: String,
    /// What is pushed: the source, or `<registry>/<source>`.
    pub target: String,
    pub command: Command,
    pub retries: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MavenStep {
    pub project: String,
    pub command: Command,
    /// Source directories whose content decides whether to run (the project and the
    /// projects it uses by path).
    pub sources: Vec<PathBuf>,
    /// Everything else the result depends on (Maven mode and image, settings).
    pub salt: String,
    /// Where the inputs digest of the last successful run is kept.
    pub stamp: PathBuf,
    /// Jars the plan needs from this project: all must exist to skip the run.
    pub outputs: Vec<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildStep {
    pub image: String,
    pub reference: String,
    /// The image set's Dockerfile.
    pub dockerfile: PathBuf,
    /// What is built: that Dockerfile plus one `LABEL` instruction with `labels` (one step;
    /// the legacy builder makes every `--label` flag a step of its own).
    pub staged_dockerfile: PathBuf,
    /// OCI and tool labels; the inputs digest is filled in when known.
    pub labels: Vec<(String, String)>,
    /// References of this set's images it builds on.
    pub parents: Vec<String>,
    pub context: PathBuf,
    pub ops: Vec<StageOp>,
    /// `docker build ...` of the staged Dockerfile.
    pub command: Command,
}

/// Stands in for the inputs digest, known once the context is collected.
pub const INPUTS_PLACEHOLDER: &str = "<inputs>";
/// Labels that do not decide the image's content (and so not whether to rebuild).
pub const VOLATILE_LABELS: [&str; 3] = [
    "org.opencontainers.image.created",
    "org.opencontainers.image.revision",
    LABEL_INPUTS,
];
/// The label holding an image's inputs digest.
pub const LABEL_INPUTS: &str = "org.fedai.fate-xtask.inputs";

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

/// How images get built on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builder {
    BuildKit,
    Legacy,
}

/// What the machine and the FATE tree told preflight; the plan is a function of these.
#[derive(Clone, Debug)]
pub struct Facts {
    pub uid_gid: String,
    pub revision: String,
    pub created: String,
    pub builder: Builder,
    /// Images of this set present locally, by reference.
    pub existing: BTreeMap<String, ImageInfo>,
    /// Java tree name -> its Maven module.
    pub modules: BTreeMap<String, pom::Module>,
    /// Image name -> ARGs of the Dockerfile that will be used.
    pub dockerfile_args: BTreeMap<String, Vec<ArgDecl>>,
    /// Debian packages the image set needs that are not installed.
    pub missing_packages: Vec<String>,
    /// Names this run's containers, so they can be found and removed.
    pub run_id: String,
    /// Local file repository backing a `file://` Maven mirror, when it lacks plexus-utils 1.1.
    pub seed_from_repo: Option<PathBuf>,
    /// Whether MAVEN_IMAGE is present locally (container Maven only).
    pub maven_image_present: bool,
    /// The Docker engine's version.
    pub engine_version: String,
}

/// What the engine says of a local image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    /// The inputs digest label, if this tool built it.
    pub inputs: Option<String>,
    /// Size in bytes.
    pub size: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub selection: Vec<String>,
    pub no_cache: bool,
}

/// Jars of reproducible builds carry this time instead of the build's (maven-jar-plugin
/// 3.2+), so unchanged sources give byte-identical jars and unchanged images.
pub const MAVEN_OUTPUT_TIMESTAMP: &str = "2000-01-01T00:00:00Z";

/// The label every image and container of this tool carries.
pub const LABEL_TOOL: &str = "org.fedai.fate-xtask";
/// Where Maven projects sit inside the Maven container (the old script's layout).
pub const CONTAINER_FATE_ROOT: &str = "/data/projects/fate";
const CONTAINER_MAVEN_HOME: &str = "/var/maven";

/// `${PREFIX}/<name>:<tag>` of an image.
pub fn reference(config: &Config, image: &Image) -> String {
    format!(
        "{}/{}:{}",
        config.prefix(),
        image.name,
        config.value(&image.tag_key)
    )
}

/// What a selection needs: images (with missing parents), trees and Maven projects.
#[derive(Clone, Debug)]
pub struct Needs<'a> {
    pub images: Vec<&'a Image>,
    pub trees: BTreeSet<&'a str>,
    pub projects: BTreeSet<&'a str>,
}

/// Resolves a selection against the image set and the images present locally.
pub fn needs<'a>(
    config: &Config,
    set: &'a ImageSet,
    existing: &BTreeMap<String, ImageInfo>,
    selection: &[String],
) -> anyhow::Result<Needs<'a>> {
    let selected = set.select(selection)?;
    let images = with_missing_parents(config, set, existing, &selected);
    let trees: BTreeSet<&str> = images.iter().flat_map(|i| i.trees()).collect();
    let mut projects: BTreeSet<&str> = trees
        .iter()
        .filter_map(|t| set.tree(t).and_then(|t| t.java.as_ref()))
        .map(|j| j.maven.as_str())
        .collect();
    // Projects needed by needed projects (fate-serving needs arch beside it).
    loop {
        let more: Vec<&str> = set
            .maven
            .iter()
            .filter(|m| projects.contains(m.name.as_str()))
            .flat_map(|m| m.after.iter().map(String::as_str))
            .filter(|a| !projects.contains(a))
            .collect();
        if more.is_empty() {
            break;
        }
        projects.extend(more);
    }
    Ok(Needs {
        images,
        trees,
        projects,
    })
}

/// Builds the plan for `cargo xtask images`.
pub fn images(
    config: &Config,
    set: &ImageSet,
    facts: &Facts,
    options: &Options,
) -> anyhow::Result<Plan> {
    let Needs {
        images: wanted,
        projects,
        ..
    } = needs(config, set, &facts.existing, &options.selection)?;
    let mut plan = Plan {
        images: wanted.iter().map(|i| i.name.clone()).collect(),
        ..Plan::default()
    };
    let work = config.work_dir();

    let mut prelude = Vec::new();
    if !facts.missing_packages.is_empty() {
        // Wait for a dpkg lock held by another install instead of failing at once.
        let mut args = vec![
            "-o",
            "DPkg::Lock::Timeout=300",
            "install",
            "-y",
            "--no-install-recommends",
        ];
        args.extend(facts.missing_packages.iter().map(String::as_str));
        let mut install = Command::new("apt-get", args);
        install
            .env
            .push(("DEBIAN_FRONTEND".into(), "noninteractive".into()));
        prelude.push(push(
            &mut plan,
            "host-packages",
            format!(
                "install host packages: {}",
                facts.missing_packages.join(" ")
            ),
            vec![],
            Action::Run(install),
        ));
    }

    let mut maven_steps: BTreeMap<&str, usize> = BTreeMap::new();
    if !projects.is_empty() {
        let settings = maven_settings(config).map(|xml| {
            let path = work.join("maven").join("settings.xml");
            let i = push(
                &mut plan,
                "maven-settings",
                "write Maven settings (mirror)".into(),
                prelude.clone(),
                Action::WriteFile {
                    path: path.clone(),
                    contents: xml,
                },
            );
            (path, i)
        });
        let local_repo = config.maven_cache.join("repository");
        let mut maven_prelude = prelude.clone();
        maven_prelude.extend(settings.as_ref().map(|(_, i)| *i));
        if let MavenMode::Docker { image } = &config.maven
            && !facts.maven_image_present
        {
            maven_prelude.push(push(
                &mut plan,
                "maven-image",
                format!("pull the Maven image {image}"),
                prelude.clone(),
                Action::Pull {
                    reference: image.clone(),
                    hint: format!(
                        "the Maven image {image} is not present and cannot be pulled; load it (docker load), set MAVEN_IMAGE in .env to one you have, or use --maven host"
                    ),
                },
            ));
        }
        if let Some(from_repo) = &facts.seed_from_repo {
            maven_prelude.push(push(
                &mut plan,
                "maven-seed",
                "give the Maven cache plexus-utils 1.1 (missing from the file mirror)".into(),
                prelude.clone(),
                Action::SeedMavenRepo {
                    from_repo: from_repo.clone(),
                    local_repo: local_repo.clone(),
                },
            ));
        }
        for project in set.maven_order() {
            if !projects.contains(project.name.as_str()) {
                continue;
            }
            let mut deps = maven_prelude.clone();
            deps.extend(
                project
                    .after
                    .iter()
                    .filter_map(|a| maven_steps.get(a.as_str())),
            );
            let settings_path = settings.as_ref().map(|(p, _)| p.as_path());
            let command =
                maven_command(config, facts, &project.name, &project.after, settings_path);
            let salt = format!(
                "{:?}\n{}",
                config.maven,
                maven_settings(config).unwrap_or_default()
            );
            let outputs = set
                .trees
                .iter()
                .filter(|t| t.java.as_ref().is_some_and(|j| j.maven == project.name))
                .filter_map(|t| facts.modules.get(&t.name))
                .map(|m| m.jar())
                .collect();
            let sources = std::iter::once(&project.name)
                .chain(&project.after)
                .map(|p| config.fate_root.join(p))
                .collect();
            let i = push(
                &mut plan,
                &format!("mvn-{}", project.name),
                format!("maven {}", project.name),
                deps,
                Action::Maven(MavenStep {
                    project: project.name.clone(),
                    command,
                    sources,
                    salt,
                    stamp: work.join("maven").join(format!("{}.inputs", project.name)),
                    outputs,
                }),
            );
            maven_steps.insert(&project.name, i);
        }
    }

    let mut build_steps: BTreeMap<&str, usize> = BTreeMap::new();
    for image in &wanted {
        let mut deps = Vec::new();
        let mut ops = Vec::new();
        for part in &image.context {
            match part {
                ContextPart::Tree { tree, to } => {
                    let tree = set.tree(tree).expect("the image set was checked");
                    let to = to.clone().unwrap_or_else(|| ".".into());
                    ops.extend(tree_ops(config, set, facts, tree, &to)?);
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
        deps.sort();
        deps.dedup();
        let reference = reference(config, image);
        let context = work.join("contexts").join(&image.name);
        let staged_dockerfile = context.with_extension("Dockerfile");
        let command = build_command(
            facts,
            options,
            image,
            &reference,
            &staged_dockerfile,
            &context,
            config,
        );
        let labels = labels(config, facts, image);
        let i = push(
            &mut plan,
            &format!("build-{}", image.name),
            format!("build {reference}"),
            deps,
            Action::Build(BuildStep {
                image: image.name.clone(),
                reference,
                dockerfile: config
                    .fate_root
                    .join(image.dockerfile_for(config.mirror == MirrorProfile::China)),
                staged_dockerfile,
                labels,
                parents: image
                    .parents
                    .iter()
                    .filter_map(|p| set.image(p))
                    .map(|p| self::reference(config, p))
                    .collect(),
                context,
                ops,
                command,
            }),
        );
        build_steps.insert(&image.name, i);
    }
    Ok(plan)
}

/// The operations that stage a module tree at `to` inside a context.
fn tree_ops(
    config: &Config,
    set: &ImageSet,
    facts: &Facts,
    tree: &crate::imageset::Tree,
    to: &str,
) -> anyhow::Result<Vec<StageOp>> {
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

fn push(plan: &mut Plan, id: &str, title: String, deps: Vec<usize>, action: Action) -> usize {
    plan.steps.push(Step {
        id: id.to_string(),
        title,
        deps,
        action,
    });
    plan.steps.len() - 1
}

/// The selection plus every ancestor not present locally, in build order.
fn with_missing_parents<'a>(
    config: &Config,
    set: &'a ImageSet,
    existing: &BTreeMap<String, ImageInfo>,
    selected: &[&'a Image],
) -> Vec<&'a Image> {
    let mut names: BTreeSet<&str> = selected.iter().map(|i| i.name.as_str()).collect();
    let mut pending: Vec<&Image> = selected.to_vec();
    while let Some(image) = pending.pop() {
        for parent in image.parents.iter().filter_map(|p| set.image(p)) {
            if !names.contains(parent.name.as_str())
                && !existing.contains_key(&reference(config, parent))
            {
                names.insert(&parent.name);
                pending.push(parent);
            }
        }
    }
    set.build_order()
        .into_iter()
        .filter(|i| names.contains(i.name.as_str()))
        .collect()
}

/// settings.xml mirroring Maven Central to the active profile's MAVEN_MIRROR_URL, if set.
pub fn maven_settings(config: &Config) -> Option<String> {
    let url = config.mirror_value("MAVEN_MIRROR_URL");
    if url.is_empty() {
        return None;
    }
    let profile = match config.mirror {
        MirrorProfile::Global => "global",
        MirrorProfile::China => "cn",
    };
    let url = url
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    Some(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by cargo xtask for this build only ({profile} mirror profile). -->
<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">
  <mirrors>
    <mirror>
      <id>fate-mirror</id>
      <mirrorOf>*</mirrorOf>
      <url>{url}</url>
    </mirror>
  </mirrors>
</settings>
"#
    ))
}

/// `mvn clean package` for one project, in a container or on the host.
fn maven_command(
    config: &Config,
    facts: &Facts,
    project: &str,
    siblings: &[String],
    settings: Option<&Path>,
) -> Command {
    let timestamp = format!("-Dproject.build.outputTimestamp={MAVEN_OUTPUT_TIMESTAMP}");
    let goals = [
        "-B",
        "-Dstyle.color=never",
        &timestamp,
        "clean",
        "package",
        "-DskipTests",
    ];
    match &config.maven {
        MavenMode::Host => {
            let mut args = vec![format!(
                "-Dmaven.repo.local={}",
                config.maven_cache.join("repository").display()
            )];
            if let Some(s) = settings {
                args.push("-s".into());
                args.push(s.display().to_string());
            }
            args.extend(goals.iter().map(|s| s.to_string()));
            let mut c = Command::new("mvn", args);
            c.cwd = Some(config.fate_root.join(project));
            c
        }
        MavenMode::Docker { image } => {
            let mut args: Vec<String> = vec![
                "run".into(),
                "--rm".into(),
                "--name".into(),
                format!("fate-xtask-{}-mvn-{project}", facts.run_id),
                "--label".into(),
                format!("{LABEL_TOOL}.run={}", facts.run_id),
                "--label".into(),
                format!("{LABEL_TOOL}.root={}", config.fate_root.display()),
                "--user".into(),
                facts.uid_gid.clone(),
                "--env".into(),
                format!("HOME={CONTAINER_MAVEN_HOME}"),
                "--volume".into(),
                format!(
                    "{}:{CONTAINER_MAVEN_HOME}/.m2",
                    config.maven_cache.display()
                ),
            ];
            for p in std::iter::once(project).chain(siblings.iter().map(String::as_str)) {
                args.push("--volume".into());
                args.push(format!(
                    "{}:{CONTAINER_FATE_ROOT}/{p}",
                    config.fate_root.join(p).display()
                ));
            }
            if let Some(s) = settings {
                args.push("--volume".into());
                args.push(format!(
                    "{}:{CONTAINER_MAVEN_HOME}/settings.xml:ro",
                    s.display()
                ));
            }
            args.extend([
                "--workdir".into(),
                format!("{CONTAINER_FATE_ROOT}/{project}"),
                image.clone(),
                "mvn".into(),
                format!("-Dmaven.repo.local={CONTAINER_MAVEN_HOME}/.m2/repository"),
                format!("-Duser.home={CONTAINER_MAVEN_HOME}"),
            ]);
            if settings.is_some() {
                args.push("-s".into());
                args.push(format!("{CONTAINER_MAVEN_HOME}/settings.xml"));
            }
            args.extend(goals.iter().map(|s| s.to_string()));
            Command::new("docker", args)
        }
    }
}

/// The labels every image gets.
fn labels(config: &Config, facts: &Facts, image: &Image) -> Vec<(String, String)> {
    [
        (
            "org.opencontainers.image.version",
            config.value(&image.tag_key),
        ),
        ("org.opencontainers.image.revision", &facts.revision),
        ("org.opencontainers.image.created", &facts.created),
        (
            "org.opencontainers.image.source",
            config.value("SOURCE_URL"),
        ),
        (&format!("{LABEL_TOOL}.image") as &str, &image.name),
        (LABEL_INPUTS, INPUTS_PLACEHOLDER),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `docker build` of one image: its tag and the build args its Dockerfile declares.
fn build_command(
    facts: &Facts,
    options: &Options,
    image: &Image,
    reference: &str,
    dockerfile: &Path,
    context: &Path,
    config: &Config,
) -> Command {
    let mut args: Vec<String> = match facts.builder {
        Builder::BuildKit => vec![
            "buildx".into(),
            "build".into(),
            "--load".into(),
            "--progress=plain".into(),
        ],
        // Also remove the container of a failed step, which --rm (the default) keeps.
        Builder::Legacy => vec!["build".into(), "--force-rm".into()],
    };
    args.extend([
        "--file".into(),
        dockerfile.display().to_string(),
        "--tag".into(),
        reference.to_string(),
    ]);
    for (name, value) in build_args(config, image, facts.dockerfile_args.get(&image.name)) {
        args.push("--build-arg".into());
        args.push(format!("{name}={value}"));
    }
    if options.no_cache {
        args.push("--no-cache".into());
    }
    args.push(context.display().to_string());
    let mut c = Command::new("docker", args);
    if facts.builder == Builder::Legacy {
        // Without buildx, say so explicitly rather than let the client guess.
        c.env.push(("DOCKER_BUILDKIT".into(), "0".into()));
    }
    c
}

/// Values for the ARGs a Dockerfile declares: image-set args, then `.env` image naming,
/// then the active mirror profile. Undeclared args are never passed.
pub fn build_args(
    config: &Config,
    image: &Image,
    declared: Option<&Vec<ArgDecl>>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for arg in declared.into_iter().flatten() {
        let name = arg.name.as_str();
        let value = if let Some(v) = image.args.get(name) {
            Some(v.as_str())
        } else if crate::config::REQUIRED_KEYS.contains(&name) {
            Some(config.value(name))
        } else if config.values.contains_key(name) {
            Some(config.mirror_value(name))
        } else {
            None
        };
        if let Some(v) = value {
            out.push((name.to_string(), v.to_string()));
        }
    }
    out
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
            match &step.action {
                Action::Run(c) => writeln!(f, "       $ {c}")?,
                Action::Maven(m) => writeln!(f, "       $ {}", m.command)?,
                Action::Push(p) => writeln!(f, "       $ {}", p.command)?,
                Action::Pull { reference, .. } => writeln!(f, "       $ docker pull {reference}")?,
                Action::WriteFile { path, .. } => writeln!(f, "       write {}", path.display())?,
                Action::SeedMavenRepo {
                    from_repo,
                    local_repo,
                } => writeln!(
                    f,
                    "       link plexus-utils 1.1 in {} to the 3.x jar of {}",
                    local_repo.display(),
                    from_repo.display()
                )?,
                Action::Build(b) => {
                    writeln!(
                        f,
                        "       {} = {} + LABEL {}",
                        b.staged_dockerfile.display(),
                        b.dockerfile.display(),
                        b.labels
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    )?;
                    writeln!(f, "       stage {}", b.context.display())?;
                    for op in &b.ops {
                        writeln!(f, "         {op}")?;
                    }
                    writeln!(f, "       $ {}", b.command)?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, resolve};
    use crate::imageset::tests::sample_set;

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

    fn facts() -> Facts {
        let module = pom::Module {
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
            existing: BTreeMap::new(),
            modules: [("egg".to_string(), module)].into(),
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
            engine_version: "20.10".into(),
        }
    }

    fn ids(plan: &Plan) -> Vec<&str> {
        plan.steps.iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn all_images_in_dependency_order() {
        let plan = images(
            &config(Overrides::default()),
            &sample_set(),
            &facts(),
            &Options::default(),
        )
        .unwrap();
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
        let ops: Vec<String> = egg.ops.iter().map(|o| o.to_string()).collect();
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
        let plan = images(
            &config(Overrides::default()),
            &sample_set(),
            &facts(),
            &Options::default(),
        )
        .unwrap();
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
                "/fate/target/xtask/contexts/egg"
            ]
        );
    }

    #[test]
    fn chinese_mirror_switches_dockerfile_args_and_maven_settings() {
        let plain = config(Overrides::default());
        assert_eq!(maven_settings(&plain), None);
        let cn = config(Overrides {
            chinese_mirror: true,
            ..Default::default()
        });
        let plan = images(&cn, &sample_set(), &facts(), &Options::default()).unwrap();
        assert_eq!(plan.steps[0].id, "maven-settings");
        let Action::WriteFile { contents, .. } = &plan.steps[0].action else {
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
            m.sources,
            [Path::new("/fate/fate-serving"), Path::new("/fate/arch")]
        );
        assert_eq!(
            m.outputs,
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
        f.existing
            .insert("fed/base-image:b1".into(), ImageInfo::default());
        let plan = images(&cfg, &sample_set(), &f, &only).unwrap();
        assert_eq!(plan.images, ["python"]);
        assert_eq!(ids(&plan), ["build-python"]);
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
        let Action::Run(c) = &plan.steps[0].action else {
            panic!()
        };
        assert_eq!(
            c.to_string(),
            "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends libmaven-jar-plugin-java"
        );
        assert_eq!(plan.steps[1].deps, vec![0]);
    }

    #[test]
    fn commands_render_shell_quoted() {
        let c = Command::new("docker", ["build", "--label", "a=b c", "it's"]);
        assert_eq!(c.to_string(), r"docker build --label 'a=b c' 'it'\''s'");
    }
}
