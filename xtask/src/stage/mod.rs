//! Build contexts and what they are made of: staging a context from the FATE tree and
//! Maven's jars, the record of the last staging, tree walks shared within a run, the
//! file digests remembered across runs, and the rules over Dockerfile text.

pub mod caches;
pub mod context_tar;
pub mod digest_cache;
pub mod dockerfile;
pub mod entries;
pub mod restage;
pub mod staging;
pub mod walk;
