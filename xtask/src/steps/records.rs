//! The IDs of the images this tool built on a FATE root (`images.json` in its work
//! directory), per engine endpoint: only an image with the recorded ID is trusted as built
//! from its sources, by the builds, `push` and `bundle`. Kept per endpoint, so a tree
//! built on two engines (a `docker context` switched and back) trusts each engine's own.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use fate_bundle::ui::problems::Problems;
use serde::{Deserialize, Serialize};

use crate::docker::argv::ImageInfo;
use crate::docker::remembered_engine;

/// `images.json`: each endpoint's records (an older file of one flat map is the current
/// endpoint's).
#[derive(Default, Serialize, Deserialize)]
struct ByEngine {
    engines: BTreeMap<String, BTreeMap<String, String>>,
}

impl ByEngine {
    fn read(work: &Path) -> ByEngine {
        let Ok(text) = std::fs::read_to_string(work.join(Recorded::FILE)) else {
            return ByEngine::default();
        };
        if let Ok(by_engine) = serde_json::from_str::<ByEngine>(&text) {
            return by_engine;
        }
        let flat: BTreeMap<String, String> = serde_json::from_str(&text).unwrap_or_default();
        ByEngine {
            engines: BTreeMap::from([(remembered_engine::this_endpoint(), flat)]),
        }
    }
}

/// The IDs of the images this tool built on a FATE root, by reference: only an image
/// with the recorded ID is trusted as built from its sources.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Recorded(pub BTreeMap<String, String>);

impl Recorded {
    pub const FILE: &str = "images.json";

    /// The records of the engine this process talks to.
    #[must_use]
    pub fn read(work: &Path) -> Recorded {
        let mut by_engine = ByEngine::read(work);
        Recorded(
            by_engine
                .engines
                .remove(&remembered_engine::this_endpoint())
                .unwrap_or_default(),
        )
    }

    /// As this engine's records, the other engines' kept. Written whole (beside, then
    /// renamed): a record half written would read as empty, and nothing this tool built
    /// would be trusted.
    pub fn write(&self, work: &Path) -> Result<()> {
        let mut by_engine = ByEngine::read(work);
        by_engine
            .engines
            .insert(remembered_engine::this_endpoint(), self.0.clone());
        let text = serde_json::to_string_pretty(&by_engine).expect("records serialize");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_engine_keeps_its_own_records_and_an_old_file_is_this_engines() {
        let work = tempfile::tempdir().unwrap();
        let file = work.path().join(Recorded::FILE);
        // A file of the earlier form: one flat map, read as this engine's.
        std::fs::write(&file, r#"{"fed/egg:1": "sha256:aa"}"#).unwrap();
        assert_eq!(Recorded::read(work.path()).0["fed/egg:1"], "sha256:aa");
        // Another engine's records stay when this engine's are written.
        std::fs::write(
            &file,
            r#"{"engines": {"host unix:///other.sock": {"fed/egg:1": "sha256:bb"}}}"#,
        )
        .unwrap();
        assert!(Recorded::read(work.path()).0.is_empty());
        let mine = Recorded(BTreeMap::from([("fed/egg:1".into(), "sha256:cc".into())]));
        mine.write(work.path()).unwrap();
        assert_eq!(Recorded::read(work.path()).0["fed/egg:1"], "sha256:cc");
        let all: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(
            all["engines"]["host unix:///other.sock"]["fed/egg:1"],
            "sha256:bb"
        );
    }
}
