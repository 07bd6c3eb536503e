//! What the run will write or remove in the tree must be this user's to change: Maven's
//! `target/` directories (removed by `clean`) and the tool's own `target/`. FATE's old
//! script ran Maven in a root container, which left root-owned `target/` trees in every
//! checkout that used it; found here, before any step runs, with the command that mends
//! them. Root may change anything: nothing to look at.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Who this process is: its user and every group it is in.
pub struct Who {
    pub uid: u32,
    pub groups: Vec<u32>,
}

impl Who {
    /// From `/proc/self/status` (its `Gid:` and `Groups:` lines).
    #[must_use]
    pub fn current(uid: u32, gid: u32) -> Who {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let mut groups = vec![gid];
        for line in status.lines() {
            if let Some(list) = line.strip_prefix("Groups:") {
                groups.extend(
                    list.split_whitespace()
                        .filter_map(|g| g.parse::<u32>().ok()),
                );
            }
        }
        Who { uid, groups }
    }

    /// Whether this user may create and remove entries in a directory of this owner, group
    /// and mode.
    #[must_use]
    pub fn may_change(&self, owner: u32, group: u32, mode: u32) -> bool {
        self.uid == 0
            || (owner == self.uid && mode & 0o300 == 0o300)
            || (owner != self.uid && self.groups.contains(&group) && mode & 0o030 == 0o030)
            || (owner != self.uid && !self.groups.contains(&group) && mode & 0o003 == 0o003)
    }
}

/// The directories under `roots` (each included, if it exists) that `who` may not change,
/// outermost only: what `mvn clean` or the tool would fail to remove or write.
#[must_use]
pub fn unchangeable(roots: &[PathBuf], who: &Who) -> Vec<(PathBuf, u32)> {
    let mut found: Vec<(PathBuf, u32)> = Vec::new();
    if who.uid == 0 {
        return found;
    }
    for root in roots {
        let mut walk = walkdir::WalkDir::new(root).follow_links(false).into_iter();
        while let Some(Ok(entry)) = walk.next() {
            if !entry.file_type().is_dir() {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if !who.may_change(meta.uid(), meta.gid(), meta.mode()) {
                found.push((entry.path().to_path_buf(), meta.uid()));
                walk.skip_current_dir();
            }
        }
    }
    found
}

/// The message naming them, relative to the FATE root, with the command that mends them.
#[must_use]
pub fn problem(root: &Path, found: &[(PathBuf, u32)], who: &Who) -> String {
    let owners: Vec<String> = {
        let mut o: Vec<String> = found
            .iter()
            .map(|(_, uid)| {
                if *uid == 0 {
                    "root".into()
                } else {
                    format!("user {uid}")
                }
            })
            .collect();
        o.dedup();
        o
    };
    let paths: Vec<String> = found
        .iter()
        .map(|(p, _)| p.strip_prefix(root).unwrap_or(p).display().to_string())
        .collect();
    let quoted: Vec<String> = found
        .iter()
        .map(|(p, _)| fate_bundle::process::quote(&p.display().to_string()))
        .collect();
    format!(
        "{} {} owned by {} (left by an earlier build as root, e.g. the old script's Maven container), and you (user {}) cannot change {}: run sudo chown -R $(id -u):$(id -g) {}",
        paths.join(", "),
        if paths.len() == 1 { "is" } else { "are" },
        owners.join(" and "),
        who.uid,
        if paths.len() == 1 { "it" } else { "them" },
        quoted.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_may_change_a_directory() {
        let me = Who {
            uid: 1000,
            groups: vec![1000, 27],
        };
        assert!(me.may_change(1000, 1000, 0o755));
        assert!(!me.may_change(0, 0, 0o755), "root's");
        assert!(me.may_change(0, 27, 0o775), "a group of mine may write");
        assert!(!me.may_change(0, 5, 0o775));
        assert!(me.may_change(0, 5, 0o777));
        assert!(!me.may_change(1000, 1000, 0o555), "mine, but read-only");
        let root = Who {
            uid: 0,
            groups: vec![0],
        };
        assert!(root.may_change(1000, 1000, 0o500));
    }

    #[test]
    fn the_message_names_the_paths_and_the_mend() {
        let who = Who {
            uid: 1000,
            groups: vec![1000],
        };
        let found = vec![(PathBuf::from("/f/arch/core/target"), 0)];
        let text = problem(Path::new("/f"), &found, &who);
        assert!(
            text.starts_with("arch/core/target is owned by root (left by an earlier build as root"),
            "{text}"
        );
        assert!(
            text.ends_with("run sudo chown -R $(id -u):$(id -g) /f/arch/core/target"),
            "{text}"
        );
    }
}
