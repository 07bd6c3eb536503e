//! A temporary git worktree of the FATE root's repository, in a private directory under
//! the root's work directory: the user's tree, index and branches are never touched.
//! Removed (`git worktree remove`) when dropped, also after a failure.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fate_bundle::process::{self, Command};

pub struct Worktree {
    /// The repository's top level, whose `.git` knows the worktree.
    repository: PathBuf,
    dir: tempfile::TempDir,
    /// The FATE root inside the worktree (the root may be below the repository's top).
    pub fate_root: PathBuf,
}

/// `git ARGS` under the usual umask (022), so that a checkout's modes are git's own
/// (644 and 755) whatever this user's umask is.
fn git(args: &[&str]) -> Command {
    let mut argv = vec!["-c", r#"umask 022 && exec git "$@""#, "git"];
    argv.extend_from_slice(args);
    Command::new("sh", argv)
}

impl Worktree {
    /// A worktree of the repository holding `fate_root`, checked out at `commit`, in a
    /// new private directory under `under`.
    pub fn add(fate_root: &Path, under: &Path, commit: &str) -> Result<Worktree> {
        let root = fate_root.display().to_string();
        let top = process::run_captured(&Command::new(
            "git",
            ["-C", &root, "rev-parse", "--show-toplevel"],
        ))
        .with_context(|| format!("{} is not in a git repository", fate_root.display()))?;
        let prefix = process::run_captured(&Command::new(
            "git",
            ["-C", &root, "rev-parse", "--show-prefix"],
        ))?;
        let repository = PathBuf::from(top.trim());
        std::fs::create_dir_all(under)
            .with_context(|| format!("cannot create {}", under.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("verify-")
            .tempdir_in(under)
            .with_context(|| format!("cannot make a directory in {}", under.display()))?;
        let path = dir.path().join("tree");
        let repo = repository.display().to_string();
        let at = path.display().to_string();
        process::run_captured(&git(&[
            "-C", &repo, "worktree", "add", "--quiet", "--detach", &at, commit,
        ]))
        .with_context(|| format!("cannot check out commit {commit} of {repo}"))?;
        Ok(Worktree {
            fate_root: path.join(prefix.trim()),
            repository,
            dir,
        })
    }

    /// Checks out `commit` (detached), discarding what a build left in the tree.
    pub fn checkout(&self, commit: &str) -> Result<()> {
        let at = self.dir.path().join("tree").display().to_string();
        process::run_captured(&git(&[
            "-C", &at, "checkout", "--quiet", "--detach", commit,
        ]))
        .with_context(|| format!("cannot check out commit {commit}"))?;
        Ok(())
    }
}

impl Drop for Worktree {
    fn drop(&mut self) {
        let repo = self.repository.display().to_string();
        let at = self.dir.path().join("tree").display().to_string();
        let remove = Command::new("git", ["-C", &repo, "worktree", "remove", "--force", &at]);
        if process::run_captured(&remove).is_err() {
            // Half made, or changed by hand: the directory goes, then git's record of it.
            let _ = std::fs::remove_dir_all(&at);
            let _ = process::run_captured(&Command::new("git", ["-C", &repo, "worktree", "prune"]));
        }
    }
}
