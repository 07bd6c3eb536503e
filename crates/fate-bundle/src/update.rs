//! Update bundles (`bundle --since OLD`): only the images whose IDs differ from those of
//! an earlier bundle are written, and the update records which bundle it updates and
//! the images it does not carry, so that `load` can say what a host still needs.

use std::path::Path;

use anyhow::{Context, Result};
use xshell::Shell;

use crate::docker::engine;
use crate::docker::images::{ImageInfo, LocalImages};
use crate::manifest::{self, BundledImage, Updates};
use crate::ui::Ui;

/// The bundle an update is made against: every image a host holds once it loaded it.
pub struct Base {
    created: String,
    sha256: String,
    images: Vec<BundledImage>,
}

impl Base {
    /// The bundle at `path`: its directory or its `bundle.json`.
    pub fn read(path: &Path) -> Result<Base> {
        let dir = manifest::bundle_dir(path);
        let (manifest, sha256) = manifest::read_manifest(&dir)
            .with_context(|| format!("--since {}: not a bundle", path.display()))?;
        Ok(Base {
            images: manifest.images().cloned().collect(),
            created: manifest.created,
            sha256,
        })
    }

    /// Whether a host that loaded the base holds `reference` as the engine holds it now.
    /// (By ID: the same store's ID, or the config digest that a graph-driver engine uses
    /// as its ID. An image bundled from another kind of store is carried again.)
    fn holds(&self, reference: &str, now: &ImageInfo) -> bool {
        self.images
            .iter()
            .any(|i| i.reference == reference && (i.id == now.id || i.config == now.id))
    }

    /// The archives' images (`(archive, references)`) that a host of the base does not
    /// hold as the engine holds them now; archives left with none are left out.
    #[must_use]
    pub fn only_changed<'a>(
        &self,
        ui: &Ui,
        groups: Vec<(&'a str, Vec<String>)>,
        local_images: &LocalImages,
    ) -> Vec<(&'a str, Vec<String>)> {
        let changed: Vec<(&str, Vec<String>)> = groups
            .into_iter()
            .map(|(name, refs)| {
                let changed = refs
                    .into_iter()
                    .filter(|r| !self.holds(r, &local_images[r]))
                    .collect();
                (name, changed)
            })
            .filter(|(_, refs): &(&str, Vec<String>)| !refs.is_empty())
            .collect();
        if changed.is_empty() {
            ui.note("no image changed since that bundle: the update carries no archive");
        }
        changed
    }

    /// What the update records: the base, and the images of `all` that it does not carry
    /// (as the base holds them).
    #[must_use]
    pub fn updates(&self, all: &[String], carried: &[String]) -> Updates {
        let unchanged = all
            .iter()
            .filter(|r| !carried.contains(r))
            .filter_map(|r| self.images.iter().find(|i| i.reference == *r).cloned())
            .collect();
        Updates {
            created: self.created.clone(),
            sha256: self.sha256.clone(),
            unchanged,
        }
    }
}

/// What an update loaded here leaves missing: the images of the bundle it updates that
/// it does not carry and this host does not hold as that bundle holds them.
pub struct StillNeeded<'a> {
    pub update: &'a Updates,
    /// Each such image, with what this host has under its reference.
    pub images: Vec<String>,
}

/// For each update among `updates`, the images this host still needs of the bundle it
/// updates (updates that need none are left out).
pub fn still_needed<'a>(sh: &Shell, updates: &'a [Updates]) -> Vec<StillNeeded<'a>> {
    let refs: Vec<String> = updates
        .iter()
        .flat_map(|u| u.unchanged.iter().map(|i| i.reference.clone()))
        .collect();
    if refs.is_empty() {
        return Vec::new();
    }
    let present = engine::inspect_images(sh, &refs);
    updates
        .iter()
        .map(|update| StillNeeded {
            update,
            images: update
                .unchanged
                .iter()
                .filter_map(|image| match present.get(&image.reference) {
                    Some(info) if image.is_loaded_as(info) => None,
                    Some(info) => Some(format!(
                        "{} (here it is {}, not {})",
                        image.reference, info.id, image.config
                    )),
                    None => Some(format!("{} (not present)", image.reference)),
                })
                .collect(),
        })
        .filter(|needed| !needed.images.is_empty())
        .collect()
}

/// The words for what `needed` says: the bundle to load first, and its images.
#[must_use]
pub fn describe(needed: &[StillNeeded]) -> String {
    needed
        .iter()
        .map(|n| {
            format!(
                "this bundle updates the bundle written {} ({} sha256 {}) and carries only what changed since; this host lacks these images of that bundle:\n  {}",
                n.update.created,
                manifest::MANIFEST,
                n.update.sha256,
                n.images.join("\n  ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
