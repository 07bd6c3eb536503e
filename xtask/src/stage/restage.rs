//! Staging again over the last staging of a context: a record beside the context says
//! what each staged entry came from and what its copy looked like, so only what changed
//! is written. Creating files is the cost of staging (on ext4, new inodes after a tree
//! was just removed cost most of a cold build's own time), and most of a context is the
//! same from one build to the next.
//!
//! The record is removed before the context is touched and written back after it is
//! whole: a context without its record (staging failed or was cut short) is staged
//! afresh. A staged copy changed since (its size, times or inode differ) is written again.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::stage::digest_cache::Stamp;
use crate::stage::entries::{Entries, Source};

/// What was staged at a path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Staged {
    Dir {
        mode: u32,
    },
    File {
        from: PathBuf,
        source: Stamp,
        copy: Stamp,
    },
    Symlink {
        target: PathBuf,
    },
    Bytes {
        sha256: String,
        mode: u32,
        copy: Stamp,
    },
}

pub(super) type Record = BTreeMap<PathBuf, Staged>;

/// The record of the context at `dest`.
pub(super) fn record_file(dest: &Path) -> PathBuf {
    dest.with_extension("staged.json")
}

/// The last staging's record, if it completed.
pub(super) fn read_record(dest: &Path) -> Option<Record> {
    let bytes = fs::read(record_file(dest)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub(super) fn write_record(dest: &Path, record: &Record) -> Result<()> {
    fate_bundle::fsx::write_whole(&record_file(dest), &serde_json::to_vec(record)?)
}

/// Removes the record: from now on the context is not known whole.
pub(super) fn forget(dest: &Path) -> Result<()> {
    match fs::remove_file(record_file(dest)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", record_file(dest).display()))
        }
        _ => Ok(()),
    }
}

fn stamp_of(path: &Path) -> Option<Stamp> {
    fs::symlink_metadata(path).ok().map(|m| Stamp::of(&m))
}

/// What `source`, staged at `path`, is recorded as (its copy's metadata read now).
pub(super) fn staged(path: &Path, source: &Source) -> Result<Staged> {
    let copy = || stamp_of(path).with_context(|| format!("{} is gone", path.display()));
    Ok(match source {
        Source::Dir { mode } => Staged::Dir { mode: *mode },
        Source::File { from, stamp, .. } => Staged::File {
            from: from.clone(),
            source: *stamp,
            copy: copy()?,
        },
        Source::Symlink { target } => Staged::Symlink {
            target: target.clone(),
        },
        Source::Bytes { bytes, mode } => Staged::Bytes {
            sha256: hex::encode(Sha256::digest(bytes)),
            mode: *mode,
            copy: copy()?,
        },
    })
}

/// Whether the entry staged last time at `path` still stands for `source`.
fn still_staged(path: &Path, source: &Source, last: &Staged) -> bool {
    match (source, last) {
        (Source::Dir { .. }, Staged::Dir { .. }) => {
            fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
        }
        (
            Source::File { from, stamp, .. },
            Staged::File {
                from: f,
                source,
                copy,
            },
        ) => from == f && stamp == source && stamp_of(path).as_ref() == Some(copy),
        (Source::Symlink { target }, Staged::Symlink { target: t }) => {
            target == t && fs::read_link(path).is_ok_and(|now| &now == target)
        }
        (
            Source::Bytes { bytes, mode },
            Staged::Bytes {
                sha256,
                mode: m,
                copy,
            },
        ) => {
            mode == m
                && stamp_of(path).as_ref() == Some(copy)
                && hex::encode(Sha256::digest(bytes)) == *sha256
        }
        _ => false,
    }
}

/// Brings the context at `dest`, staged as `last` says, to `entries`: entries gone or of
/// another kind are removed, changed ones written again; returns the new record.
pub(super) fn update(
    dest: &Path,
    entries: &Entries,
    last: &Record,
    write: impl Fn(&Path, &Source) -> std::io::Result<()>,
) -> Result<Record> {
    // Directories staged read-only would refuse the changes.
    for (rel, staged) in last {
        if let Staged::Dir { mode } = staged
            && mode & 0o200 == 0
        {
            let _ = fs::set_permissions(dest.join(rel), fs::Permissions::from_mode(mode | 0o700));
        }
    }
    // Whatever is in the context and not to be staged there as the same kind goes, also
    // what the record does not know (put there by hand): deepest first.
    for found in walkdir::WalkDir::new(dest)
        .min_depth(1)
        .contents_first(true)
    {
        let found = found.with_context(|| format!("cannot read {}", dest.display()))?;
        let rel = found.path().strip_prefix(dest).expect("below its root");
        let file_type = found.file_type();
        let keep = entries.get(rel).is_some_and(|source| match source {
            Source::Dir { .. } => file_type.is_dir(),
            Source::File { .. } | Source::Bytes { .. } => file_type.is_file(),
            Source::Symlink { .. } => file_type.is_symlink(),
        });
        if !keep {
            remove(found.path())?;
        }
    }
    let mut record = Record::new();
    for (rel, source) in entries {
        let path = dest.join(rel);
        let unchanged = last
            .get(rel)
            .is_some_and(|staged| still_staged(&path, source, staged));
        if !unchanged {
            if !matches!(source, Source::Dir { .. }) {
                remove(&path)?;
            }
            write(&path, source).map_err(|e| {
                anyhow::Error::new(e).context(format!("cannot stage {}", path.display()))
            })?;
        }
        record.insert(rel.clone(), staged(&path, source)?);
    }
    Ok(record)
}

/// Removes a file, link or directory tree at `path`, if there is one.
fn remove(path: &Path) -> Result<()> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(());
    };
    if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
    .with_context(|| format!("cannot remove {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::stage::staging;
    use crate::stage::staging::StageOp;

    /// Every entry below `root`: path, kind, mode and contents.
    fn listing(root: &Path) -> Vec<(PathBuf, u32, Vec<u8>)> {
        walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let meta = e.path().symlink_metadata().unwrap();
                let body = if meta.is_file() {
                    fs::read(e.path()).unwrap()
                } else if meta.is_symlink() {
                    fs::read_link(e.path())
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes()
                } else {
                    Vec::new()
                };
                (
                    e.path().strip_prefix(root).unwrap().to_path_buf(),
                    meta.mode(),
                    body,
                )
            })
            .collect()
    }

    #[test]
    fn staging_again_writes_what_changed_and_ends_as_a_fresh_staging() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(src.join("pkg/gone")).unwrap();
        for (name, text) in [
            ("a.py", "a"),
            ("pkg/b.py", "b"),
            ("pkg/gone/c.py", "c"),
            ("kept.py", "k"),
        ] {
            fs::write(src.join(name), text).unwrap();
        }
        std::os::unix::fs::symlink("a.py", src.join("link")).unwrap();
        let ops = [StageOp::Copy {
            from: src.clone(),
            to: "app".into(),
            exclude: vec![],
        }];
        let (context, fresh) = (d.path().join("context"), d.path().join("fresh"));
        staging::materialize(&context, &staging::collect(&ops, None).unwrap()).unwrap();
        assert!(read_record(&context).is_some());

        // Edits of every kind: changed, added, removed (a file and a directory), a file
        // turned into a directory, a link retargeted, and a staged copy altered by hand.
        fs::write(src.join("a.py"), "a, edited").unwrap();
        fs::write(src.join("new.py"), "n").unwrap();
        fs::remove_dir_all(src.join("pkg/gone")).unwrap();
        fs::remove_file(src.join("pkg/b.py")).unwrap();
        fs::create_dir_all(src.join("pkg/b.py")).unwrap();
        fs::write(src.join("pkg/b.py/inner.py"), "i").unwrap();
        fs::remove_file(src.join("link")).unwrap();
        std::os::unix::fs::symlink("new.py", src.join("link")).unwrap();
        fs::set_permissions(src.join("new.py"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(context.join("app/kept.py"), "tampered").unwrap();

        let entries = staging::collect(&ops, None).unwrap();
        staging::materialize(&context, &entries).unwrap();
        staging::materialize(&fresh, &entries).unwrap();
        assert_eq!(listing(&context), listing(&fresh));
        assert_eq!(
            fs::read_to_string(context.join("app/kept.py")).unwrap(),
            "k"
        );

        // Nothing changed: nothing is written (every copy keeps its inode).
        let inodes = |root: &Path| -> Vec<u64> {
            listing(root)
                .iter()
                .map(|(p, ..)| fs::symlink_metadata(root.join(p)).unwrap().ino())
                .collect()
        };
        let before = inodes(&context);
        staging::materialize(&context, &entries).unwrap();
        assert_eq!(inodes(&context), before);

        // What was put in by hand, which no record knows, goes.
        fs::write(context.join("app/stray.py"), "s").unwrap();
        fs::create_dir_all(context.join("app/stray/dir")).unwrap();
        staging::materialize(&context, &entries).unwrap();
        assert_eq!(listing(&context), listing(&fresh));

        // A staging cut short leaves no record: the next one starts afresh.
        forget(&context).unwrap();
        fs::write(context.join("app/kept.py"), "half-written").unwrap();
        staging::materialize(&context, &entries).unwrap();
        assert!(read_record(&context).is_some());
        assert_eq!(listing(&context), listing(&fresh));
    }
}
