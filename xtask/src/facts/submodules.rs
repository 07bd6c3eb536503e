//! Git submodules inside what the images stage (FATE's storage service keeps its
//! third-party libraries as submodules): on a plain clone they are empty directories, and
//! a build would die deep inside a third-party `autogen.sh`. Found from `.gitmodules`,
//! checked before any work, initialised on request.

use std::path::{Path, PathBuf};

use fate_bundle::process::Command;

/// The submodule paths `.gitmodules` declares, relative to the repository root.
#[must_use]
pub fn declared(gitmodules: &str) -> Vec<PathBuf> {
    gitmodules
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "path").then(|| PathBuf::from(value.trim()))
        })
        .collect()
}

/// Declared submodules inside (or holding) one of `sources` that are not checked out:
/// missing, or an empty directory.
#[must_use]
pub fn not_checked_out(root: &Path, declared: &[PathBuf], sources: &[PathBuf]) -> Vec<PathBuf> {
    declared
        .iter()
        .filter(|sub| {
            sources
                .iter()
                .any(|src| sub.starts_with(src) || src.starts_with(sub))
        })
        .filter(|sub| {
            std::fs::read_dir(root.join(sub)).map_or(true, |mut entries| entries.next().is_none())
        })
        .cloned()
        .collect()
}

/// `git submodule update --init --recursive` of `paths`, in `root`.
#[must_use]
pub fn init(root: &Path, paths: &[PathBuf]) -> Command {
    let mut args = vec![
        "-C".to_string(),
        root.display().to_string(),
        "submodule".into(),
        "update".into(),
        "--init".into(),
        "--recursive".into(),
        "--".into(),
    ];
    args.extend(paths.iter().map(|p| p.display().to_string()));
    Command::new("git", args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_submodules_inside_staged_sources_are_found() {
        let text = "[submodule \"a/third_party/lmdb\"]\n\tpath = a/third_party/lmdb\n\turl = https://x/lmdb.git\n    branch = LMDB_0.9.23\n[submodule \"other/glog\"]\n\tpath = other/glog\n";
        let declared = declared(text);
        assert_eq!(
            declared,
            [Path::new("a/third_party/lmdb"), Path::new("other/glog")]
        );
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("a/third_party/lmdb")).unwrap();
        std::fs::create_dir_all(root.join("other/glog")).unwrap();
        let sources = [PathBuf::from("a")];
        assert_eq!(
            not_checked_out(root, &declared, &sources),
            [Path::new("a/third_party/lmdb")]
        );
        std::fs::write(root.join("a/third_party/lmdb/lmdb.h"), "").unwrap();
        assert!(not_checked_out(root, &declared, &sources).is_empty());
        assert_eq!(
            init(root, &[PathBuf::from("a/third_party/lmdb")]).args[2..],
            [
                "submodule",
                "update",
                "--init",
                "--recursive",
                "--",
                "a/third_party/lmdb"
            ]
        );
    }
}
