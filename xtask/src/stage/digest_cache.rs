//! The sha256 of files' contents, remembered by size, times and inode: on a tree of
//! thousands of files, a no-op run reads their metadata, not their bytes. A file whose
//! modification time is too recent to tell apart from a later edit in the same tick is
//! not remembered (it is read again next time).

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What identifies a file's contents without reading them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    inode: u64,
}

impl Stamp {
    #[must_use]
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            inode: meta.ino(),
        }
    }
}

/// By path (its bytes: any file name a tree holds), kept as postcard: a cache of 30,000
/// files reads in a few milliseconds.
#[derive(Default, Serialize, Deserialize)]
struct Known {
    files: HashMap<Vec<u8>, (Stamp, [u8; 32])>,
}

/// The file digests of one run: read from where it was opened, saved there at the end.
/// Without a file (tests, the bench's own copies), every file is read every time.
pub struct DigestCache {
    file: Option<PathBuf>,
    state: Mutex<(Known, bool)>,
}

/// Edits closer to "now" than this may share a timestamp with the remembered state.
pub const RACY: Duration = Duration::from_secs(2);

impl DigestCache {
    /// Uses (and later [`DigestCache::save`]s) the cache kept in `file`. A missing or
    /// unreadable cache is an empty one.
    #[must_use]
    pub fn open(file: &Path) -> DigestCache {
        let known = std::fs::read(file)
            .ok()
            .and_then(|bytes| postcard::from_bytes(&bytes).ok())
            .unwrap_or_default();
        DigestCache {
            file: Some(file.to_path_buf()),
            state: Mutex::new((known, false)),
        }
    }

    /// Remembers nothing: every file is read.
    #[cfg(test)]
    #[must_use]
    pub fn none() -> DigestCache {
        DigestCache {
            file: None,
            state: Mutex::new((Known::default(), false)),
        }
    }

    /// Writes what this run learned (whole or not at all). Entries of files that are gone
    /// stay: they are few, and never match a new file (its inode and times differ).
    pub fn save(&self) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let mut state = self.state.lock().expect("no digest panics");
        if !state.1 {
            return Ok(());
        }
        let bytes = postcard::to_stdvec(&state.0).expect("the cache serializes");
        fate_bundle::fsx::write_whole(file, &bytes)?;
        state.1 = false;
        Ok(())
    }

    /// The sha256 (hex) of a file's contents.
    pub fn file_sha256(&self, path: &Path) -> Result<String> {
        self.sized_sha256(path)
            .map(|(_, digest)| hex::encode(digest))
    }

    /// A file's size and the sha256 (hex) of its contents: one `stat` when the file is
    /// unchanged.
    pub fn sized_sha256(&self, path: &Path) -> Result<(u64, [u8; 32])> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        let stamp = Stamp::of(&meta);
        Ok((stamp.size, self.sha256_stamped(path, stamp)?))
    }

    /// The sha256 of the contents of a file whose metadata the caller just read.
    pub fn sha256_stamped(&self, path: &Path, stamp: Stamp) -> Result<[u8; 32]> {
        let key = path.as_os_str().as_encoded_bytes();
        if self.file.is_some()
            && let Some((known, digest)) = self
                .state
                .lock()
                .expect("no digest panics")
                .0
                .files
                .get(key)
            && *known == stamp
        {
            return Ok(*digest);
        }
        let digest = read_sha256(path)?;
        let now_ns = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let settled = now_ns - stamp.mtime_ns > i64::try_from(RACY.as_nanos()).unwrap_or(0);
        if settled && self.file.is_some() {
            let mut state = self.state.lock().expect("no digest panics");
            state.0.files.insert(key.to_vec(), (stamp, digest));
            state.1 = true;
        }
        Ok(digest)
    }
}

fn read_sha256(path: &Path) -> Result<[u8; 32]> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_read_again_and_a_fresh_one_is_not_remembered() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("a");
        std::fs::write(&f, "one").unwrap();
        // Old enough to be remembered.
        let old = SystemTime::now() - Duration::from_mins(1);
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let cache = DigestCache::open(&tmp.path().join("cache.bin"));
        let file_sha256 = |p: &Path| cache.file_sha256(p);
        let first = file_sha256(&f).unwrap();
        assert_eq!(first, hex::encode(read_sha256(&f).unwrap()));
        cache.save().unwrap();
        let saved: Known =
            postcard::from_bytes(&std::fs::read(tmp.path().join("cache.bin")).unwrap()).unwrap();
        assert!(saved.files.contains_key(f.as_os_str().as_encoded_bytes()));
        // Same size, new contents, new times: the stamp differs, the file is read.
        std::fs::write(&f, "two").unwrap();
        let second = file_sha256(&f).unwrap();
        assert_ne!(first, second);
        assert_eq!(second, hex::encode(read_sha256(&f).unwrap()));
        // Just written: not remembered, so a same-tick edit cannot hide.
        assert_eq!(
            hex::encode(cache.state.lock().unwrap().0.files[f.as_os_str().as_encoded_bytes()].1),
            first
        );
        // Same size and the old modification time put back: the change time still tells.
        let g = tmp.path().join("g");
        std::fs::write(&g, "abc").unwrap();
        let set_old = |p: &Path| {
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        };
        set_old(&g);
        let before = file_sha256(&g).unwrap();
        std::fs::write(&g, "xyz").unwrap();
        set_old(&g);
        assert_ne!(file_sha256(&g).unwrap(), before);
    }
}
