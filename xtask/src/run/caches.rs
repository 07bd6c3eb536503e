//! What a run remembers while it lasts, handed to whoever needs it (never process-wide):
//! the file digests kept across runs and the walks of source trees shared within it.

use std::path::Path;

use crate::image::staging::SharedWalks;
use crate::run::digest_cache::DigestCache;

/// Where the contents' digests of the files runs read are remembered.
pub const DIGEST_CACHE: &str = "file-digests.json";

pub struct Caches {
    pub digests: DigestCache,
    /// `None`: every collection walks its trees (e.g. while Maven may still write them).
    pub walks: Option<SharedWalks>,
}

impl Caches {
    /// A run's: the digests kept in its work directory, source trees walked once.
    pub fn for_run(work: &Path) -> Caches {
        Caches {
            digests: DigestCache::open(&work.join(DIGEST_CACHE)),
            walks: Some(SharedWalks::default()),
        }
    }

    /// Nothing remembered: every file read, every tree walked.
    #[cfg(test)]
    pub fn none() -> Caches {
        Caches {
            digests: DigestCache::none(),
            walks: None,
        }
    }
}
