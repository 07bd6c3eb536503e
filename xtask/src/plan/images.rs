//! The planner: configuration + image set + facts -> the steps of `images`, each with
//! its exact command line or staging operations. It starts no process and reads no file:
//! what it needs of the machine and the tree, preflight gathered into [`Facts`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use crate::config::selection;
use crate::config::selection::Options;
use crate::config::{Config, MavenMode};
use crate::docker::argv;
use crate::facts::preflight::Facts;
use crate::imageset::{ContextPart, ImageSet, Tree};
use crate::maven;
use crate::plan::build;
use crate::plan::model::{Inputs, Plan};
use crate::stage::staging::StageOp;
use crate::steps::action::Action;
use crate::steps::host::{InstallPackages, Pull, SeedMavenRepo, WriteFile};
use crate::steps::maven::MavenStep;
use fate_bundle::process::Command;

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
        let step = build::step(inputs, image, ops, options.no_cache);
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
        Action::InstallPackages(InstallPackages(install)),
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
        let action = Action::WriteFile(WriteFile {
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
        let action = Action::Pull(Pull {
            command: argv::pull(image, None),
            hint,
        });
        let title = format!("pull the Maven image {image}");
        before.push(plan.push("maven-image", title, prelude.to_vec(), action));
    }
    if let Some(from_repo) = &facts.seed_from_repo {
        let action = Action::SeedMavenRepo(SeedMavenRepo {
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
