//! What a run remembers while it lasts, handed to whoever needs it (never process-wide):
//! the file digests kept across runs and the walks of source trees shared within it.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::stage::staging::SharedWalks;

use crate::stage::digest_cache::DigestCache;
use crate::stage::walk::WalkKey;

/// Where the contents' digests of the files runs read are remembered.
pub const DIGEST_CACHE: &str = "file-digests.bin";
/// Where the trees the last run walked are remembered, to walk them again early.
pub const WALKED_TREES: &str = "walked-trees.json";

pub struct Caches {
    pub digests: DigestCache,
    /// `None`: every collection walks its trees (e.g. while Maven may still write them).
    pub walks: Option<SharedWalks>,
    /// The trees the last run walked (none remembered: empty).
    pub walked_last: Vec<WalkKey>,
    walked_file: Option<PathBuf>,
}

impl Caches {
    /// A run's: the digests kept in its work directory, source trees walked once.
    #[must_use]
    pub fn for_run(work: &Path) -> Caches {
        let walked_file = work.join(WALKED_TREES);
        let walked_last = std::fs::read(&walked_file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Caches {
            digests: DigestCache::open(&work.join(DIGEST_CACHE)),
            walks: Some(SharedWalks::default()),
            walked_last,
            walked_file: Some(walked_file),
        }
    }

    /// Walks the trees the last run walked (the engine's answers take longer).
    pub fn prefetch(&self) {
        if let Some(walks) = &self.walks {
            walks.prefetch(&self.walked_last);
        }
    }

    /// Saves the digests, and which trees this run walked when that changed.
    pub fn save(&self) -> Result<()> {
        self.digests.save()?;
        let (Some(walks), Some(file)) = (&self.walks, &self.walked_file) else {
            return Ok(());
        };
        let walked = walks.keys();
        if walked.is_empty() || walked == self.walked_last {
            return Ok(());
        }
        fate_bundle::fsx::write_whole(file, &serde_json::to_vec(&walked)?)
    }

    /// Nothing remembered: every file read, every tree walked.
    #[cfg(test)]
    #[must_use]
    pub fn none() -> Caches {
        Caches {
            digests: DigestCache::none(),
            walks: None,
            walked_last: Vec::new(),
            walked_file: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::staging;
    use crate::stage::staging::StageOp;

    #[test]
    fn the_trees_a_run_walked_are_walked_early_by_the_next() {
        let d = tempfile::tempdir().unwrap();
        let (work, src, out) = (
            d.path().join("work"),
            d.path().join("src"),
            d.path().join("m/target/lib"),
        );
        for dir in [&work, &src, &out] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(src.join("a.py"), "a").unwrap();
        std::fs::write(out.join("dep.jar"), "jar").unwrap();
        let copy = |from: &Path| StageOp::Copy {
            from: from.to_path_buf(),
            to: "x".into(),
            exclude: vec!["*.pyc".into()],
        };
        let first = Caches::for_run(&work);
        assert!(first.walked_last.is_empty());
        staging::collect(&[copy(&src), copy(&out)], first.walks.as_ref()).unwrap();
        first.save().unwrap();

        let next = Caches::for_run(&work);
        assert_eq!(next.walked_last.len(), 2);
        next.prefetch();
        // The source tree is walked before any step asks; a Maven output is not (its
        // Maven step may still write it).
        let walked = next.walks.as_ref().unwrap().keys();
        assert_eq!(walked, vec![(src.clone(), vec!["*.pyc".to_string()])]);
        // What a step collects is what it would have walked itself.
        let early = staging::collect(&[copy(&src)], next.walks.as_ref()).unwrap();
        let fresh = staging::collect(&[copy(&src)], None).unwrap();
        assert_eq!(early, fresh);
    }
}
