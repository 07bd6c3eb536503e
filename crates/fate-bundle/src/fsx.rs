//! Files written whole: a reader sees the old file or the new one, never half of one
//! (a record half written would read as empty, and a run would trust nothing it built);
//! and the modes files are given whatever the checkout.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The mode git checks a file out with under the usual umask (git records only whether a
/// file is executable): 755 for a directory or an executable, else 644, whatever the
/// checkout's umask made it. Files staged or archived with it are alike in every checkout.
#[must_use]
pub fn git_mode(is_dir: bool, mode: u32) -> u32 {
    if is_dir || mode & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

/// Writes `bytes` to `path` whole or not at all: beside it, then renamed over it.
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = std::fs::write(&partial, bytes).and_then(|()| std::fs::rename(&partial, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}

/// [`write_whole`], creating the directories it goes in.
pub fn write_file(path: &Path, contents: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_whole(path, contents.as_bytes())
}

/// Removes a directory tree, if there is one.
pub fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => std::fs::remove_dir_all(path)
            .with_context(|| format!("cannot remove {}", path.display())),
        Err(_) => Ok(()),
    }
}

/// A directory made for what a command writes, with the parents it needed: removed again
/// (while empty) when dropped, unless kept, so a command that fails leaves no empty
/// directory behind.
pub struct NewDir {
    /// The directories this made, deepest first.
    made: Vec<PathBuf>,
}

impl NewDir {
    /// `path` and its missing parents.
    pub fn create(path: &Path) -> Result<NewDir> {
        let mut missing = Vec::new();
        let mut at = Some(path);
        while let Some(dir) = at.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            missing.push(dir.to_path_buf());
            at = dir.parent();
        }
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(NewDir { made: missing })
    }

    /// What was written there stays: the directories are no longer removed.
    pub fn keep(mut self) {
        self.made.clear();
    }
}

impl Drop for NewDir {
    fn drop(&mut self) {
        // remove_dir removes only empty directories: whatever holds a file stays.
        for dir in &self.made {
            if std::fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_made_and_not_kept_is_removed_with_the_parents_it_needed() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        drop(NewDir::create(&deep).unwrap());
        assert!(!dir.path().join("a").exists());
        NewDir::create(&deep).unwrap().keep();
        assert!(deep.is_dir());
        // A directory that holds something stays, and so do its parents.
        let other = dir.path().join("x/y");
        let made = NewDir::create(&other).unwrap();
        std::fs::write(other.join("f"), "f").unwrap();
        drop(made);
        assert!(other.join("f").is_file());
    }

    #[test]
    fn a_file_is_replaced_whole_and_nothing_is_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/record.json");
        write_file(&path, "one").unwrap();
        write_whole(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["record.json"]);
        // Into a directory that is not there: an error naming the file, nothing written.
        let error = write_whole(&dir.path().join("none/x"), b"x").unwrap_err();
        assert!(format!("{error:#}").contains("none/x"), "{error:#}");
        remove_if_present(&dir.path().join("a")).unwrap();
        remove_if_present(&dir.path().join("a")).unwrap();
        assert!(!dir.path().join("a").exists());
    }
}
