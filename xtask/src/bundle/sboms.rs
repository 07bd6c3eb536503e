//! The SBOMs a bundle carries: one per module image it holds, as `cargo xtask images`
//! wrote it when it built the image, refused unless it describes the very image bundled.
//! Listed in `bundle.json` with their sizes and sha256 (so a signature covers them).

use anyhow::Result;
use sha2::Digest;

use fate_bundle::archive::parts::Part;
use fate_bundle::docker::images::LocalImages;
use fate_bundle::manifest::BundledSbom;
use fate_bundle::sbom;
use fate_bundle::ui::problems::Problems;
use fate_bundle::write::Carried;

use crate::config::Config;
use crate::imageset::ImageSet;

/// The SBOMs of the module images among `refs`, each checked to describe the image
/// `local_images` holds under that reference.
pub fn of_images(
    set: &ImageSet,
    config: &Config,
    refs: &[String],
    local_images: &LocalImages,
) -> Result<Vec<Carried>> {
    let mut problems = Problems::new("the bundle's SBOMs are not those of its images");
    let mut carried = Vec::new();
    for image in set.build_order().into_iter().filter(|i| i.bundle) {
        let reference = config.reference(image);
        let Some(info) = refs
            .contains(&reference)
            .then(|| local_images.get(&reference))
            .flatten()
        else {
            continue;
        };
        let path = sbom::path(&config.work_dir(), &image.name);
        let read = sbom::read_with_text(&path)
            .map(|(doc, text)| (sbom::image_id(&doc).map(str::to_string), text));
        match read {
            Err(_) => problems.push(format!(
                "{reference} has no SBOM at {}: run cargo xtask images (it writes the SBOM of every image it builds or finds built)",
                path.display()
            )),
            Ok((id, _)) if id.as_deref() != Some(info.id.as_str()) => problems.push(format!(
                "{} describes image {}, but {reference} is {}: remove it and run cargo xtask images, which writes it again",
                path.display(),
                id.unwrap_or_default(),
                info.id
            )),
            Ok((_, text)) => {
                carried.push(Carried {
                    record: BundledSbom {
                        image: reference.clone(),
                        file: Part {
                            file: format!("{}.spdx.json", image.name),
                            size: text.len() as u64,
                            sha256: hex::encode(sha2::Sha256::digest(&text)),
                        },
                    },
                    text,
                });
            }
        }
    }
    problems.into_result().map(|()| carried)
}
