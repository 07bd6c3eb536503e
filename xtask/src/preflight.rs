//! Preflight: before any work, check everything a run needs and gather the facts the
//! plan is computed from. Every problem says where, what, and how to fix it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Result;

use crate::config::{Config, MavenMode, MirrorProfile};
use crate::imageset::{ContextPart, ImageSet};
use crate::plan::{self, Builder, Facts};
use crate::problems::Problems;
use crate::{docker, dockerfile, exec, maven, pom};

/// Checks the FATE root, `.env`-derived config, host and Docker engine for `selection`.
pub fn check(config: &Config, set: &ImageSet, selection: &[String]) -> Result<Facts> {
    let mut p = Problems::new("preflight found problems; nothing was built");
    let root = canonical_root(config, &mut p);

    let engine = docker::check_engine();
    let engine_ok = engine.is_ok();
    let engine_version = match engine {
        Ok(v) => v,
        Err(e) => {
            p.push(format!("{e:#}"));
            String::new()
        }
    };
    let existing = if engine_ok {
        let references: Vec<String> = set
            .images
            .iter()
            .map(|i| plan::reference(config, i))
            .collect();
        docker::inspect_images(&references)
    } else {
        BTreeMap::new()
    };
    let needs = plan::needs(config, set, &existing, selection)?;
    let china = config.mirror == MirrorProfile::China;

    let mut dockerfile_args = BTreeMap::new();
    for image in &needs.images {
        let rel = image.dockerfile_for(china);
        let path = config.fate_root.join(rel);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                dockerfile_args.insert(image.name.clone(), dockerfile::declared_args(&text));
                for from in dockerfile::from_images(&text) {
                    let undeclared = set.images.iter().find(|other| {
                        other.name != image.name
                            && !image.parents.contains(&other.name)
                            && from.contains(&format!("/{}:", other.name))
                    });
                    if let Some(other) = undeclared {
                        p.push(format!(
                            "image {}: {} starts FROM {from}, but {} is not among its parents; add it to `parents` in docker/images.toml so it is built first",
                            image.name, path.display(), other.name
                        ));
                    }
                }
            }
            Err(_) => p.push(format!(
                "image {}: Dockerfile {} does not exist; create it or fix `dockerfile` in docker/images.toml",
                image.name,
                path.display()
            )),
        }
        check_inside(
            &root,
            &path,
            &format!("image {} Dockerfile", image.name),
            &mut p,
        );
        for part in &image.context {
            if let ContextPart::Source(c) = part {
                let what = format!("image {} context {}", image.name, c.from);
                check_exists(&root, &config.fate_root.join(&c.from), &what, &mut p);
            }
        }
    }

    let mut modules = BTreeMap::new();
    for tree in set
        .trees
        .iter()
        .filter(|t| needs.trees.contains(t.name.as_str()))
    {
        let skeleton = config
            .fate_root
            .join(&set.packaging.skeletons)
            .join(&tree.name);
        if tree.skeleton {
            check_exists(
                &root,
                &skeleton,
                &format!("tree {} skeleton", tree.name),
                &mut p,
            );
        }
        for c in &tree.copy {
            let what = format!("tree {} copy", tree.name);
            check_exists(&root, &config.fate_root.join(&c.from), &what, &mut p);
        }
        if let Some(java) = &tree.java {
            if tree.skeleton && skeleton.is_dir() && !skeleton.join("service.sh").is_file() {
                p.push(format!(
                    "tree {}: {} has no service.sh; a Java module skeleton needs one with a JAVA_HOME= line",
                    tree.name,
                    skeleton.display()
                ));
            }
            let project = config.fate_root.join(&java.maven);
            if project.join("pom.xml").is_file() {
                match pom::find_module(&project, &java.artifact) {
                    Ok(m) => {
                        modules.insert(tree.name.clone(), m);
                    }
                    Err(e) => p.push(format!("tree {}: {e:#}", tree.name)),
                }
            }
        }
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
    let missing_packages = if needs.projects.is_empty() {
        Vec::new()
    } else {
        missing_debian_packages(&set.maven_debian_packages)
    };
    let uid = exec::query("id", &["-u"])?;
    let can_install = uid == "0" && which::which("apt-get").is_ok();
    if !missing_packages.is_empty() && !can_install {
        p.push(format!(
            "docker/images.toml needs host packages that are missing; install them: sudo apt-get install -y {}",
            missing_packages.join(" ")
        ));
    }
    let mvn_coming = can_install && missing_packages.iter().any(|m| m == "maven");
    if !needs.projects.is_empty() {
        if config.maven == MavenMode::Host && which::which("mvn").is_err() && !mvn_coming {
            p.push("--maven host: `mvn` is not on PATH; install Maven (apt-get install maven) or use --maven docker");
        }
        if let Err(e) = std::fs::create_dir_all(config.maven_cache.join("repository")) {
            p.push(format!(
                "the Maven cache {} cannot be created ({e}); set MAVEN_CACHE_DIR in .env",
                config.maven_cache.display()
            ));
        }
    }

    let seed_from_repo = if needs.projects.is_empty() {
        None
    } else {
        maven::repo_needing_seed(config.mirror_value("MAVEN_MIRROR_URL"))
            .or_else(|| debian_repo_will_need_seed(config, &missing_packages))
    };
    p.into_result()?;

    Ok(Facts {
        uid_gid: format!("{uid}:{}", exec::query("id", &["-g"])?),
        revision: exec::query(
            "git",
            &[
                "-C",
                &config.fate_root.to_string_lossy(),
                "rev-parse",
                "HEAD",
            ],
        )
        .unwrap_or_else(|_| "unknown".into()),
        created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        builder: if engine_ok {
            docker::builder()
        } else {
            Builder::Legacy
        },
        existing,
        modules,
        dockerfile_args,
        missing_packages,
        run_id: format!("{}", std::process::id()),
        seed_from_repo,
        engine_version,
        maven_image_present: match &config.maven {
            MavenMode::Docker { image } if engine_ok && !needs.projects.is_empty() => {
                docker::inspect_images(std::slice::from_ref(image)).contains_key(image)
            }
            _ => true,
        },
    })
}

/// Debian's repository is being installed by this run: it will lack plexus-utils 1.1 too.
fn debian_repo_will_need_seed(config: &Config, missing: &[String]) -> Option<PathBuf> {
    let url = config.mirror_value("MAVEN_MIRROR_URL");
    let dir = url.strip_prefix("file://")?;
    (!missing.is_empty()
        && !Path::new(dir)
            .join("org/codehaus/plexus/plexus-utils/1.1")
            .exists())
    .then(|| PathBuf::from(dir))
}

fn canonical_root(config: &Config, p: &mut Problems) -> PathBuf {
    match config.fate_root.canonicalize() {
        Ok(r) => r,
        Err(e) => {
            p.push(format!(
                "the FATE root {} cannot be read: {e}",
                config.fate_root.display()
            ));
            config.fate_root.clone()
        }
    }
}

fn check_exists(root: &Path, path: &Path, what: &str, p: &mut Problems) {
    if std::fs::symlink_metadata(path).is_err() {
        p.push(format!("{what}: {} does not exist", path.display()));
    } else {
        check_inside(root, path, what, p);
    }
}

/// A path (after following symlinks) must stay inside the FATE root.
fn check_inside(root: &Path, path: &Path, what: &str, p: &mut Problems) {
    if let Ok(real) = path.canonicalize()
        && !real.starts_with(root)
    {
        p.push(format!(
            "{what}: {} resolves to {}, outside the FATE root {}; replace the symlink with the files",
            path.display(),
            real.display(),
            root.display()
        ));
    }
}

fn missing_debian_packages(packages: &[String]) -> Vec<String> {
    if which::which("dpkg-query").is_err() {
        return Vec::new(); // not a Debian host: nothing to tell
    }
    packages
        .iter()
        .filter(|pkg| {
            !exec::query("dpkg-query", &["-W", "-f", "${Status}", pkg])
                .is_ok_and(|s| s.ends_with("installed"))
        })
        .cloned()
        .collect()
}
