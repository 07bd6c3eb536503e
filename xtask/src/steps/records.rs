//! The IDs of the images this tool built on a FATE root (`images.json` in its work
//! directory): only an image with the recorded ID is trusted as built from its sources,
//! by the builds, `push` and `bundle`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use fate_bundle::ui::problems::Problems;
use serde::{Deserialize, Serialize};

use crate::docker::argv::ImageInfo;

/// The IDs of the images this tool built on a FATE root, by reference: only an image
/// with the recorded ID is trusted as built from its sources.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Recorded(pub BTreeMap<String, String>);

impl Recorded {
    pub const FILE: &str = "images.json";

    #[must_use]
    pub fn read(work: &Path) -> Recorded {
        std::fs::read_to_string(work.join(Self::FILE))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// Written whole (beside, then renamed): a record half written would read as empty,
    /// and nothing this tool built would be trusted.
    pub fn write(&self, work: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("records serialize");
        fate_bundle::fsx::write_whole(&work.join(Self::FILE), text.as_bytes())
    }

    /// Refuses local images that are not the ones this tool built, naming each and how
    /// to rebuild it.
    pub fn check<'a>(
        &self,
        images: impl IntoIterator<Item = (&'a str, &'a String, &'a ImageInfo)>,
        problems: &mut Problems,
    ) {
        for (name, reference, info) in images {
            if self.0.get(reference) != Some(&info.id) {
                let short: String = info
                    .id
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect();
                problems.push(format!(
                    "{reference} (image {short}) is not the image `cargo xtask images` built on this FATE root (changed outside the tool, or built elsewhere); rebuild it: cargo xtask images {name}"
                ));
            }
        }
    }
}
