//! Where this user last put each blob in a registry: a repository to mount it from when
//! another push (another namespace, a Harbor project per release) needs it, as Docker
//! remembers a layer's source. Kept in this user's state directory, one file per registry,
//! read bounded; a record that is missing or damaged only means uploads.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use crate::fsx;
use crate::process::private;

/// The largest record read, and the most blobs it keeps (the newest).
const LIMIT_BYTES: u64 = 16 << 20;
const LIMIT_BLOBS: usize = 50_000;

#[derive(Default)]
pub struct Known {
    path: Option<PathBuf>,
    /// Digest -> repository, with the order they were recorded in.
    blobs: BTreeMap<String, (u64, String)>,
    next: u64,
}

impl Known {
    /// The record for `registry` (empty when there is none, or it cannot be read).
    #[must_use]
    pub fn open(registry: &str) -> Known {
        let Ok((dir, None)) = private::state_dir("registries") else {
            return Known::default();
        };
        let name: String = registry
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{name}.json"));
        let mut text = String::new();
        let blobs: BTreeMap<String, (u64, String)> = std::fs::File::open(&path)
            .and_then(|f| f.take(LIMIT_BYTES).read_to_string(&mut text))
            .ok()
            .and_then(|_| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let next = blobs.values().map(|(n, _)| n + 1).max().unwrap_or(0);
        Known {
            path: Some(path),
            blobs,
            next,
        }
    }

    /// A repository that held `digest` when last seen.
    #[must_use]
    pub fn source_of(&self, digest: &str) -> Option<&str> {
        self.blobs.get(digest).map(|(_, r)| r.as_str())
    }

    pub fn record(&mut self, digest: &str, repository: &str) {
        self.blobs
            .insert(digest.to_string(), (self.next, repository.to_string()));
        self.next += 1;
    }

    /// Written whole; the oldest entries dropped past the limit. A failure only loses
    /// the record.
    pub fn save(mut self) {
        let Some(path) = self.path.take() else {
            return;
        };
        if self.blobs.len() > LIMIT_BLOBS {
            let mut order: Vec<u64> = self.blobs.values().map(|(n, _)| *n).collect();
            order.sort_unstable();
            let cut = order[self.blobs.len() - LIMIT_BLOBS];
            self.blobs.retain(|_, (n, _)| *n >= cut);
        }
        if let Ok(json) = serde_json::to_vec(&self.blobs) {
            let _ = fsx::write_whole(&path, &json);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_are_kept() {
        let mut known = Known::default();
        for i in 0..LIMIT_BLOBS + 10 {
            known.record(&format!("sha256:{i}"), "r");
        }
        known.record("sha256:0", "again");
        assert_eq!(known.source_of("sha256:0"), Some("again"));
        let dir = tempfile::tempdir().unwrap();
        known.path = Some(dir.path().join("k.json"));
        known.save();
        let text = std::fs::read_to_string(dir.path().join("k.json")).unwrap();
        let kept: BTreeMap<String, (u64, String)> = serde_json::from_str(&text).unwrap();
        assert_eq!(kept.len(), LIMIT_BLOBS);
        assert!(kept.contains_key("sha256:0"), "re-recorded: new");
        assert!(!kept.contains_key("sha256:1"), "the oldest go");
    }
}
