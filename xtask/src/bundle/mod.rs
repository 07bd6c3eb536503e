//! What `cargo xtask bundle` carries, chosen from the image set and `.env`: the two
//! archives of the old recipe and their images, FATE's own checked to be the ones built
//! from their sources, and their SBOMs. Writing and loading bundles is the
//! `fate_bundle` library's.

pub mod loader;
pub mod sboms;

use anyhow::Result;
use fate_bundle::docker::images::LocalImages;
use fate_bundle::ui::problems::Problems;

use crate::config::Config;
use crate::imageset::ImageSet;
use crate::steps::records::Recorded;

/// The archive of the third-party images `.env` names (redis, mysql).
pub const THIRD_PARTY: &str = "third-party.images";

/// The two archives of the old recipe and their images: the third-party ones `.env`
/// names, and the ones the image set marks for bundling (the modules).
#[must_use]
pub fn archive_images<'a>(set: &ImageSet, config: &Config) -> Vec<(&'a str, Vec<String>)> {
    let fate = set
        .build_order()
        .into_iter()
        .filter(|i| i.bundle)
        .map(|i| config.reference(i))
        .collect();
    vec![
        (
            THIRD_PARTY,
            vec![config.redis_image.clone(), config.mysql_image.clone()],
        ),
        ("fate.images", fate),
    ]
}

/// FATE's own images must be the ones this tool built from their sources.
pub fn check_fate_images(
    set: &ImageSet,
    config: &Config,
    local_images: &LocalImages,
) -> Result<()> {
    let mut problems = Problems::new("images to bundle are not the ones built from their sources");
    let recorded = Recorded::read(&config.work_dir());
    let fate: Vec<(String, String)> = set
        .build_order()
        .into_iter()
        .filter(|i| i.bundle)
        .map(|i| (i.name.clone(), config.reference(i)))
        .collect();
    let found = fate
        .iter()
        .filter_map(|(name, r)| local_images.get(r).map(|info| (name.as_str(), r, info)));
    recorded.check(found, &mut problems);
    problems.into_result()
}
