//! Preflight: before any work, check everything a run needs and gather the [`Facts`] the
//! plan is computed from. Every problem says where, what, and how to fix it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use xshell::Shell;

use crate::config::selection;
use crate::config::selection::Needs;
use crate::config::{Config, MavenMode};
use crate::docker::argv::{self, Builder, LocalImages};
use crate::docker::engine;
use crate::docker::remembered_engine;
use crate::facts::machine::Machine;
use crate::facts::machine::ask_machine;
use crate::facts::sources::check_images;
use crate::facts::sources::check_trees;
use crate::facts::submodules;
use crate::facts::writable;
use crate::imageset::{ContextPart, ImageSet};
use crate::maven;
use crate::maven::pom;
use crate::stage::dockerfile::ArgDecl;
use fate_bundle::process;
use fate_bundle::ui::problems::Problems;

/// What the machine and the FATE tree told preflight; the plan is a function of these.
#[derive(Clone, Debug)]
pub struct Facts {
    pub uid_gid: String,
    pub revision: String,
    pub builder: Builder,
    /// BuildKit's client, run as itself when its place is known (see
    /// [`engine::buildx_plugin`]); else builds go through `docker buildx`.
    pub buildx_plugin: Option<PathBuf>,
    /// Images of this set present locally, by reference.
    pub local_images: LocalImages,
    /// The images the run needs (its selection and the parents that come with it).
    pub needed: selection::Needed,
    /// Java tree name -> its Maven module.
    pub modules: BTreeMap<String, pom::Module>,
    /// Maven project -> its reactor's modules and what decides their builds.
    pub reactor_modules: BTreeMap<String, Vec<pom::ReactorModule>>,
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
    /// The Docker engine's version and platform (empty when a dry run goes on without
    /// it).
    pub engine: engine::Server,
    /// How the engine stores images; asked only when several platforms are to be built.
    pub image_store: Option<engine::ImageStore>,
    /// Why the engine does not answer, when a dry run goes on without it.
    pub engine_down: Option<String>,
}

/// Whether the run needs the Docker engine, or only prints what it would do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Run,
    /// A run that first checks out the git submodules its images stage
    /// (`--init-submodules`).
    RunWithSubmodules,
    /// A dry run: an engine that does not answer leaves decisions unknown.
    Preview,
    /// `doctor`: as a run, with the engine asked its version afresh.
    Report,
}

/// Checks the FATE root, `.env`-derived config, host and Docker engine for `selection`.
pub fn check(
    sh: &Shell,
    config: &Config,
    set: &ImageSet,
    options: &crate::config::selection::Options,
    purpose: Purpose,
) -> Result<Facts> {
    let mut p = Problems::new("preflight found problems; nothing was built");
    let root = canonical_root(config, &mut p);
    let (uid, gid) = process::private::uid_gid()?;
    let (machine, engine, engine_down) = ask_engine(config, set, purpose, &mut p);
    let builder = check_builder(sh, config, &machine, &mut p);
    let needs = selection::needs(
        config,
        set,
        &machine.local_images,
        &options.selection,
        options.every_parent,
    )?;
    check_submodules(config, set, &needs, purpose, &mut p);
    let dockerfile_args = check_images(config, set, &needs, &root, &mut p);
    let modules = check_trees(config, set, &needs, &root, &mut p);
    let missing_packages = check_maven(config, set, &needs, &machine.packages, uid, &mut p);
    let reactor_modules = reactor_modules(config, set, &needs, &mut p);
    check_writable(config, &reactor_modules, uid, gid, &mut p);
    check_path_for_maven(config, &needs, &mut p);
    let seed_from_repo = if needs.projects.is_empty() {
        None
    } else {
        maven::repo_needing_seed(config.location("MAVEN_MIRROR_URL"))
            .or_else(|| debian_repo_will_need_seed(config, &missing_packages))
    };
    p.into_result()?;
    let maven_image_present = match &config.maven {
        MavenMode::Docker { image } if engine.is_some() && !needs.projects.is_empty() => {
            engine::inspect_images(sh, std::slice::from_ref(image)).contains_key(image)
        }
        _ => true,
    };
    Ok(Facts {
        uid_gid: format!("{uid}:{gid}"),
        revision: machine.revision,
        buildx_plugin: (builder == Builder::BuildKit)
            .then(engine::buildx_plugin)
            .flatten(),
        builder,
        local_images: machine.local_images,
        needed: needs.names(),
        modules,
        reactor_modules,
        dockerfile_args,
        missing_packages,
        run_id: format!("{}", std::process::id()),
        seed_from_repo,
        maven_image_present,
        engine: engine.unwrap_or_default(),
        image_store: machine.image_store,
        engine_down,
    })
}

/// What the machine says, with the engine that answered; a dry run goes on without one
/// (saying why), a run does not.
fn ask_engine(
    config: &Config,
    set: &ImageSet,
    purpose: Purpose,
    p: &mut Problems,
) -> (Machine, Option<engine::Server>, Option<String>) {
    // Runs take the engine's platform from the last run at this endpoint; dry runs and
    // doctor print its version, so they ask it.
    let work = config.work_dir();
    let recalled = match purpose {
        Purpose::Run | Purpose::RunWithSubmodules => remembered_engine::recall(&work),
        Purpose::Preview | Purpose::Report => None,
    };
    let machine = ask_machine(config, set, recalled.as_ref());
    if let Ok(server) = &machine.engine
        && purpose != Purpose::Preview
        && recalled.as_ref() != Some(server)
    {
        remembered_engine::remember(&work, server);
    }
    let mut engine_down = None;
    let engine = match &machine.engine {
        Ok(server) => Some(server.clone()),
        Err(e) if purpose == Purpose::Preview => {
            engine_down = Some(format!("{e:#}"));
            None
        }
        Err(e) => {
            p.push(format!("{e:#}"));
            None
        }
    };
    (machine, engine, engine_down)
}

/// The paths of the FATE root that the needed images stage.
fn staged_sources(set: &ImageSet, needs: &Needs) -> Vec<PathBuf> {
    let mut sources = Vec::new();
    for image in &needs.images {
        for part in &image.context {
            match part {
                ContextPart::Source(c) => sources.push(PathBuf::from(&c.from)),
                ContextPart::Tree { tree, .. } => {
                    let Some(tree) = set.tree(tree) else { continue };
                    sources.push(Path::new(&set.packaging.skeletons).join(&tree.name));
                    sources.extend(tree.copy.iter().map(|c| PathBuf::from(&c.from)));
                }
            }
        }
    }
    sources
}

/// Submodules the needed images stage must be checked out; `--init-submodules` does it.
fn check_submodules(
    config: &Config,
    set: &ImageSet,
    needs: &Needs,
    purpose: Purpose,
    p: &mut Problems,
) {
    let root = &config.fate_root;
    let Ok(text) = std::fs::read_to_string(root.join(".gitmodules")) else {
        return;
    };
    let declared = submodules::declared(&text);
    let sources = staged_sources(set, needs);
    let mut empty = submodules::not_checked_out(root, &declared, &sources);
    if empty.is_empty() {
        return;
    }
    let init = submodules::init(root, &empty);
    if purpose == Purpose::RunWithSubmodules {
        if let Err(e) = process::run_captured(&init) {
            p.push(format!(
                "checking out the git submodules failed: {e:#}\ncheck the network and the URLs in {}",
                root.join(".gitmodules").display()
            ));
            return;
        }
        empty = submodules::not_checked_out(root, &declared, &sources);
        if empty.is_empty() {
            return;
        }
    }
    let paths: Vec<String> = empty.iter().map(|e| e.display().to_string()).collect();
    p.push(format!(
        "{} git submodule(s) that the images stage are not checked out (empty): {}; the build would fail inside them. Run: {init}  (or add --init-submodules)",
        empty.len(),
        paths.join(", ")
    ));
}

/// The builder that runs, and whether it can do what the build options ask.
fn check_builder(sh: &Shell, config: &Config, machine: &Machine, p: &mut Problems) -> Builder {
    let builder = match &machine.builder {
        Ok(b) => *b,
        Err(why) => {
            p.push(why.clone());
            Builder::Legacy
        }
    };
    let options = &config.build;
    match builder {
        Builder::Legacy => {
            let needs = options.buildkit_only();
            if !needs.is_empty() && machine.engine.is_ok() {
                p.push(format!(
                    "{} need BuildKit, but this run uses the legacy builder (DOCKER_BUILDKIT=0, or no buildx plugin): {}; or drop them",
                    needs.join(", "),
                    argv::GET_BUILDKIT
                ));
            }
        }
        Builder::BuildKit => {
            if let Some(name) = &options.builder
                && machine.engine.is_ok()
                && process::query(sh, &argv::buildx_inspect(Some(name))).is_err()
            {
                p.push(format!(
                    "buildx builder {name:?} does not exist: `docker buildx ls` lists the builders, `docker buildx create --name {name} ...` makes one"
                ));
            }
        }
    }
    builder
}

/// Maven projects, host packages, `mvn` and the cache; returns the packages to install.
fn check_maven(
    config: &Config,
    set: &ImageSet,
    needs: &Needs,
    dpkg_listing: &str,
    uid: u32,
    p: &mut Problems,
) -> Vec<String> {
    if needs.projects.is_empty() {
        return Vec::new();
    }
    for project in &needs.projects {
        let dir = config.fate_root.join(project);
        if !dir.join("pom.xml").is_file() {
            p.push(format!(
                "Maven project {project}: {} has no pom.xml; is {} a FATE root? (--fate-root)",
                dir.display(),
                config.fate_root.display()
            ));
        }
    }
    let missing = missing_debian_packages(&set.maven_debian_packages, dpkg_listing);
    let can_install = uid == 0 && which::which("apt-get").is_ok();
    if !missing.is_empty() && !can_install {
        p.push(format!(
            "docker/images.toml needs host packages that are missing; install them: sudo apt-get install -y {}",
            missing.join(" ")
        ));
    }
    let mvn_coming = can_install && missing.iter().any(|m| m == "maven");
    if config.maven == MavenMode::Host && which::which("mvn").is_err() && !mvn_coming {
        p.push("--maven host: `mvn` is not on PATH; install Maven (apt-get install maven) or use --maven docker");
    }
    if let Err(e) = std::fs::create_dir_all(config.maven_cache.join("repository")) {
        p.push(format!(
            "the Maven cache {} cannot be created ({e}); set MAVEN_CACHE_DIR in .env",
            config.maven_cache.display()
        ));
    }
    missing
}

/// The reactor modules of every needed Maven project (what decides each build).
fn reactor_modules(
    config: &Config,
    set: &ImageSet,
    needs: &Needs,
    p: &mut Problems,
) -> BTreeMap<String, Vec<pom::ReactorModule>> {
    let mut inputs = BTreeMap::new();
    for project in set
        .maven
        .iter()
        .filter(|m| needs.projects.contains(m.name.as_str()))
    {
        let dir = config.fate_root.join(&project.name);
        if !dir.join("pom.xml").is_file() {
            continue;
        }
        match pom::reactor_modules(&dir, &config.fate_root) {
            Ok(found) => {
                inputs.insert(project.name.clone(), found);
            }
            Err(e) => p.push(format!("Maven project {}: {e:#}", project.name)),
        }
    }
    inputs
}

/// Maven's `target/` directories of the projects to build and the tool's own `target/`
/// must be this user's to change (see [`writable`]).
fn check_writable(
    config: &Config,
    reactor_modules: &BTreeMap<String, Vec<pom::ReactorModule>>,
    uid: u32,
    gid: u32,
    p: &mut Problems,
) {
    if uid == 0 {
        return;
    }
    let mut roots = vec![config.fate_root.join("target")];
    for (project, modules) in reactor_modules {
        let dir = config.fate_root.join(project);
        roots.extend(modules.iter().map(|m| dir.join(&m.path).join("target")));
    }
    roots.retain(|r| r.is_dir());
    let who = writable::Who::current(uid, gid);
    let found = writable::unchangeable(&roots, &who);
    if !found.is_empty() {
        p.push(writable::problem(&config.fate_root, &found, &who));
    }
}

/// Java's classpath (host Maven) and docker's `--volume` (container Maven) both split
/// paths at `:`: a FATE root or Maven cache with one in its path fails far from the cause.
/// (Other characters, `,` `=` `%` `#` among them, pass through: argv is never split.)
fn check_path_for_maven(config: &Config, needs: &Needs, p: &mut Problems) {
    if needs.projects.is_empty() {
        return;
    }
    let mounted = matches!(config.maven, MavenMode::Docker { .. });
    let paths = [
        ("the FATE root", &config.fate_root, true),
        (
            "the Maven cache (MAVEN_CACHE_DIR)",
            &config.maven_cache,
            mounted,
        ),
    ];
    for (what, path, used) in paths {
        let shown = path.display().to_string();
        if used && shown.contains(':') {
            p.push(format!(
                "{what} {shown} has a ':' in its path, where Java's classpath and docker's --volume split paths, so Maven cannot build there: move it, or link it from a path without ':' and use that (ln -s {} ~/fate && cargo xtask --fate-root ~/fate ..., or MAVEN_CACHE_DIR=...)",
                process::quote(&shown)
            ));
        }
    }
}

/// Debian's repository is being installed by this run: it will lack plexus-utils 1.1 too.
fn debian_repo_will_need_seed(config: &Config, missing: &[String]) -> Option<PathBuf> {
    let dir = config
        .location("MAVEN_MIRROR_URL")
        .strip_prefix("file://")?;
    (!missing.is_empty()
        && !Path::new(dir)
            .join("org/codehaus/plexus/plexus-utils/1.1")
            .exists())
    .then(|| PathBuf::from(dir))
}

fn canonical_root(config: &Config, p: &mut Problems) -> PathBuf {
    config.fate_root.canonicalize().unwrap_or_else(|e| {
        p.push(format!(
            "the FATE root {} cannot be read: {e}",
            config.fate_root.display()
        ));
        config.fate_root.clone()
    })
}

/// The packages the listing does not show installed (none off Debian).
fn missing_debian_packages(packages: &[String], listed: &str) -> Vec<String> {
    if which::which("dpkg-query").is_err() {
        return Vec::new(); // not a Debian host: nothing to tell
    }
    packages
        .iter()
        .filter(|pkg| {
            !listed.lines().any(|l| {
                l.split_once(' ').is_some_and(|(name, status)| {
                    name.split(':').next() == Some(pkg.as_str()) && status.ends_with("installed")
                })
            })
        })
        .cloned()
        .collect()
}
