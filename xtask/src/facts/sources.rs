//! Preflight's checks of what the needed images stage from the FATE tree: Dockerfiles and
//! their FROM lines, context sources, module trees and their Java modules, every path
//! inside the root.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::selection::Needs;
use crate::config::{Config, MirrorProfile};
use crate::imageset::{ContextPart, IMAGE_SET_FILE, Image, ImageSet, check};
use crate::maven::pom;
use crate::stage::dockerfile;
use crate::stage::dockerfile::ArgDecl;
use fate_bundle::ui::problems::Problems;

/// Dockerfiles (present, inside the root, FROM only declared parents) and source
/// contexts; returns each needed image's declared ARGs.
pub(super) fn check_images(
    config: &Config,
    set: &ImageSet,
    needs: &Needs,
    root: &Path,
    p: &mut Problems,
) -> BTreeMap<String, Vec<ArgDecl>> {
    let china = config.mirror == MirrorProfile::China;
    let mut dockerfile_args = BTreeMap::new();
    for image in &needs.images {
        let path = config.fate_root.join(image.dockerfile_for(china));
        if let Ok(text) = std::fs::read_to_string(&path) {
            dockerfile_args.insert(image.name.clone(), dockerfile::declared_args(&text));
            check_from_lines(set, image, &path, &text, p);
            for copy in dockerfile::context_copies_off_root(&text) {
                p.push(format!(
                    "image {}: {} has `{copy}`, which makes directories at build time (with the build's time: two builds give other layers); stage the files at their image paths under one directory of the context (`to = \"image/<path in the image>\"` in docker/images.toml) and copy it with `COPY image/ /`",
                    image.name,
                    path.display()
                ));
            }
        } else {
            let set_file = config.fate_root.join(IMAGE_SET_FILE);
            let line = std::fs::read_to_string(&set_file)
                .ok()
                .and_then(|text| check::image_line(&text, &image.name))
                .map_or_else(String::new, |n| format!(":{n}"));
            p.push(format!(
                "image {}: Dockerfile {} does not exist; create it or fix `dockerfile` of the image declared at {}{line}",
                image.name,
                path.display(),
                set_file.display()
            ));
        }
        check_inside(root, &path, &format!("image {} Dockerfile", image.name), p);
        for part in &image.context {
            if let ContextPart::Source(c) = part {
                let what = format!("image {} context {}", image.name, c.from);
                check_exists(root, &config.fate_root.join(&c.from), &what, p);
            }
        }
    }
    dockerfile_args
}

/// An image built FROM another of the set must name it among its parents.
fn check_from_lines(set: &ImageSet, image: &Image, path: &Path, text: &str, p: &mut Problems) {
    for from in dockerfile::from_images(text) {
        let undeclared = set.images.iter().find(|other| {
            other.name != image.name
                && !image.parents.contains(&other.name)
                && from.contains(&format!("/{}:", other.name))
        });
        if let Some(other) = undeclared {
            p.push(format!(
                "image {}: {} starts FROM {from}, but {} is not among its parents; add it to `parents` in docker/images.toml so it is built first",
                image.name,
                path.display(),
                other.name
            ));
        }
    }
}

/// Skeletons, copied sources and Java modules of the needed trees, and of every tree
/// whose jar a needed Maven project builds (a Maven run records all its outputs, so a
/// run for one image does not make the others' jars look changed); returns each Java
/// tree's Maven module.
pub(super) fn check_trees(
    config: &Config,
    set: &ImageSet,
    needs: &Needs,
    root: &Path,
    p: &mut Problems,
) -> BTreeMap<String, pom::Module> {
    let mut modules = BTreeMap::new();
    for tree in set.trees.iter().filter(|t| {
        needs.trees.contains(t.name.as_str())
            || t.java
                .as_ref()
                .is_some_and(|j| needs.projects.contains(j.maven.as_str()))
    }) {
        let skeleton = config
            .fate_root
            .join(&set.packaging.skeletons)
            .join(&tree.name);
        if tree.skeleton {
            check_exists(root, &skeleton, &format!("tree {} skeleton", tree.name), p);
        }
        for c in &tree.copy {
            let what = format!("tree {} copy", tree.name);
            check_exists(root, &config.fate_root.join(&c.from), &what, p);
        }
        let Some(java) = &tree.java else { continue };
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
    modules
}

pub(super) fn check_exists(root: &Path, path: &Path, what: &str, p: &mut Problems) {
    if std::fs::symlink_metadata(path).is_err() {
        p.push(format!("{what}: {} does not exist", path.display()));
    } else {
        check_inside(root, path, what, p);
    }
}

/// A path (after following symlinks) must stay inside the FATE root.
pub(super) fn check_inside(root: &Path, path: &Path, what: &str, p: &mut Problems) {
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
