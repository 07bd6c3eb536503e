//! What a selection of images needs: the images themselves plus every parent that is
//! not present locally (every parent, when several platforms are built: a parent present
//! for fewer platforms would give the others nothing to start from), the module trees of their contexts, and the Maven projects
//! those trees take jars from (with the projects those need).

use std::collections::BTreeSet;

use anyhow::Result;

use crate::config::Config;
use crate::imageset::{Image, ImageSet};
use fate_bundle::docker::images::LocalImages;

#[derive(Clone, Debug)]
pub struct Needs<'a> {
    /// In build order.
    pub images: Vec<&'a Image>,
    pub trees: BTreeSet<&'a str>,
    pub projects: BTreeSet<&'a str>,
}

/// What a run needs, by name: decided once, by preflight, for the whole run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needed {
    /// In build order.
    pub images: Vec<String>,
}

impl Needs<'_> {
    #[must_use]
    pub fn names(&self) -> Needed {
        Needed {
            images: self.images.iter().map(|i| i.name.clone()).collect(),
        }
    }
}

/// Resolves a selection against the image set and the images present locally; with
/// `every_parent`, every parent is needed even when present (a bake's builders start
/// with nothing).
pub fn needs<'a>(
    config: &Config,
    set: &'a ImageSet,
    local_images: &LocalImages,
    selection: &[String],
    every_parent: bool,
) -> Result<Needs<'a>> {
    let selected = set.select(selection)?;
    let images = with_missing_parents(config, set, local_images, &selected, every_parent);
    Ok(of_images(set, images))
}

/// What `needed` (decided by [`needs`]) comes to in the image set.
#[must_use]
pub fn resolve<'a>(set: &'a ImageSet, needed: &Needed) -> Needs<'a> {
    let images = needed
        .images
        .iter()
        .map(|n| set.image(n).expect("needed images are the image set's"))
        .collect();
    of_images(set, images)
}

/// The trees and Maven projects `images` need.
fn of_images<'a>(set: &'a ImageSet, images: Vec<&'a Image>) -> Needs<'a> {
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
    Needs {
        images,
        trees,
        projects,
    }
}

/// The selection plus every ancestor not present locally (every ancestor when several
/// platforms are built; its inputs digest, which covers the platforms, then decides
/// whether it is rebuilt), in build order.
fn with_missing_parents<'a>(
    config: &Config,
    set: &'a ImageSet,
    local_images: &LocalImages,
    selected: &[&'a Image],
    every_parent: bool,
) -> Vec<&'a Image> {
    let several_platforms = config.build.platforms.len() > 1;
    let mut names: BTreeSet<&str> = selected.iter().map(|i| i.name.as_str()).collect();
    let mut pending: Vec<&Image> = selected.to_vec();
    while let Some(image) = pending.pop() {
        for parent in image.parents.iter().filter_map(|p| set.image(p)) {
            if !names.contains(parent.name.as_str())
                && (every_parent
                    || several_platforms
                    || !local_images.contains_key(&config.reference(parent)))
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

/// What a run was asked to build, and how.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub selection: Vec<String>,
    /// Every parent is built, present or not (a bake's builders start with nothing).
    pub every_parent: bool,
    pub no_cache: bool,
}
