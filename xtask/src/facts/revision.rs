//! The commit a FATE root is checked out at, read from its repository's files as
//! `git rev-parse HEAD` reads them (no process on every run): the `.git` directory or file
//! of the root or the nearest directory above it, `HEAD`, and the ref it names, loose or
//! packed, in the worktree's common directory. Anything else (a `GIT_DIR`, the reftable
//! format, a ref that cannot be found, a ceiling on the search) is left to git itself.
//! A root no repository holds needs no git either: git would find none.

use std::path::{Path, PathBuf};

/// Whether any of `paths` (inside the repository of `root`) holds changes not committed:
/// modified, added, removed or untracked files (not ignored ones). One `git status`; a
/// root no repository holds has none.
#[must_use]
pub fn has_uncommitted(root: &Path, paths: &[PathBuf]) -> bool {
    let status = ["status", "--porcelain=v1", "-z", "--untracked-files=normal"];
    ask_about_paths(root, &status, paths).is_some_and(|out| !out.trim().is_empty())
}

/// The last commit that touched any of `paths` (relative to `root`, in its repository):
/// one `git log -1`; None where git cannot tell (no repository, paths never committed).
#[must_use]
pub fn last_commit(root: &Path, paths: &[PathBuf]) -> Option<String> {
    ask_about_paths(root, &["log", "-1", "--format=%H"], paths)
        .map(|out| out.trim().to_string())
        .filter(|commit| commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The output of `git -C root <command> -- <paths>`; None if git fails.
fn ask_about_paths(root: &Path, command: &[&str], paths: &[PathBuf]) -> Option<String> {
    let mut args = vec!["-C".to_string(), root.display().to_string()];
    args.extend(command.iter().map(ToString::to_string));
    args.push("--".into());
    args.extend(paths.iter().map(|p| p.display().to_string()));
    fate_bundle::process::query_anywhere(&fate_bundle::process::Command::new("git", args)).ok()
}

/// The commit `root` is checked out at: from its repository's files when they tell it
/// plainly, else from `git rev-parse HEAD`; `unknown` where no repository holds it.
pub fn head_commit(sh: &xshell::Shell, root: &Path) -> String {
    match read(root) {
        Head::Commit(commit) => commit,
        Head::NoRepository => "unknown".into(),
        Head::AskGit => {
            let root = root.display().to_string();
            let git = fate_bundle::process::Command::new("git", ["-C", &root, "rev-parse", "HEAD"]);
            fate_bundle::process::query(sh, &git).unwrap_or_else(|_| "unknown".into())
        }
    }
}

/// What a root's repository files say of the commit it is checked out at.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    Commit(String),
    /// No `.git` in the root or above it (nor a bare repository): git finds none either.
    NoRepository,
    /// Not told plainly: ask `git rev-parse HEAD`.
    AskGit,
}

/// The commit at `root`'s HEAD, when its repository's files tell it plainly.
pub fn read(root: &Path) -> Head {
    let set_by_env = ["GIT_DIR", "GIT_WORK_TREE", "GIT_CEILING_DIRECTORIES"];
    if set_by_env.iter().any(|v| std::env::var_os(v).is_some()) {
        return Head::AskGit;
    }
    let git_dir = match find_git_dir(root) {
        Found::GitDir(dir) => dir,
        Found::Nowhere => return Head::NoRepository,
        Found::Unclear => return Head::AskGit,
    };
    let common = match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(rel) => git_dir.join(rel.trim()),
        Err(_) => git_dir.clone(),
    };
    let config = std::fs::read_to_string(common.join("config")).unwrap_or_default();
    if config.contains("refstorage") || config.contains("refStorage") {
        return Head::AskGit;
    }
    std::fs::read_to_string(git_dir.join("HEAD"))
        .ok()
        .and_then(|head| resolve(head.trim(), &git_dir, &common, 0))
        .map_or(Head::AskGit, Head::Commit)
}

/// Where a root's repository is.
enum Found {
    GitDir(PathBuf),
    Nowhere,
    Unclear,
}

/// The repository of `root`: `.git` here or in the nearest directory above.
fn find_git_dir(root: &Path) -> Found {
    let Ok(root) = std::fs::canonicalize(root) else {
        return Found::Unclear;
    };
    for dir in root.ancestors() {
        let dot_git = dir.join(".git");
        let Ok(meta) = std::fs::metadata(&dot_git) else {
            // A bare repository is found by git as it is: left to it.
            if dir.join("HEAD").is_file() && dir.join("objects").is_dir() {
                return Found::Unclear;
            }
            continue;
        };
        if meta.is_dir() {
            return Found::GitDir(dot_git);
        }
        // A worktree or submodule: "gitdir: PATH", relative to the directory of the file.
        let Ok(text) = std::fs::read_to_string(&dot_git) else {
            return Found::Unclear;
        };
        return match text.trim().strip_prefix("gitdir:") {
            Some(target) => Found::GitDir(dir.join(target.trim())),
            None => Found::Unclear,
        };
    }
    Found::Nowhere
}

/// A HEAD or ref file's text: a commit, or `ref: NAME` followed (at most 5 deep).
fn resolve(text: &str, git_dir: &Path, common: &Path, depth: u8) -> Option<String> {
    let Some(name) = text.strip_prefix("ref:") else {
        return is_commit(text).then(|| text.to_string());
    };
    let name = name.trim();
    if depth > 5 || name.contains("..") || !name.starts_with("refs/") {
        return None;
    }
    // Per-worktree refs live in the worktree's own directory; the rest in the common one.
    let per_worktree = name.starts_with("refs/worktree/") || name.starts_with("refs/bisect/");
    let dir = if per_worktree { git_dir } else { common };
    if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
        resolve(text.trim(), git_dir, common, depth + 1)
    } else {
        let packed = std::fs::read_to_string(common.join("packed-refs")).ok()?;
        packed_ref(&packed, name)
    }
}

/// A ref's commit in a `packed-refs` file.
fn packed_ref(packed: &str, name: &str) -> Option<String> {
    packed
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('^'))
        .find_map(|l| {
            let (commit, refname) = l.split_once(' ')?;
            (refname.trim() == name && is_commit(commit)).then(|| commit.to_string())
        })
}

/// 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
fn is_commit(text: &str) -> bool {
    matches!(text.len(), 40 | 64)
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.org")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.org")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn reads_the_commit_git_itself_reports() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path().join("repo");
        std::fs::create_dir_all(repo.join("sub/dir")).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("f"), "1").unwrap();
        git(&repo, &["add", "f"]);
        git(&repo, &["commit", "-qm", "one"]);
        let head = || git(&repo, &["rev-parse", "HEAD"]);
        // A loose branch ref, from the root and from a directory below it.
        assert_eq!(read(&repo), Head::Commit(head()));
        assert_eq!(read(&repo.join("sub/dir")), Head::Commit(head()));
        // Packed refs only.
        git(&repo, &["pack-refs", "--all", "--prune"]);
        assert!(!repo.join(".git/refs/heads/main").exists());
        assert_eq!(read(&repo), Head::Commit(head()));
        // A detached HEAD.
        std::fs::write(repo.join("f"), "2").unwrap();
        git(&repo, &["commit", "-qam", "two"]);
        let second = head();
        git(&repo, &["checkout", "-q", "--detach", "HEAD~1"]);
        assert_eq!(read(&repo), Head::Commit(head()));
        assert_ne!(head(), second);
        // A linked worktree: `.git` is a file, its refs in the common directory.
        git(&repo, &["checkout", "-q", "main"]);
        let tree = d.path().join("tree");
        git(
            &repo,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "side",
                tree.to_str().unwrap(),
            ],
        );
        assert_eq!(
            read(&tree),
            Head::Commit(git(&tree, &["rev-parse", "HEAD"]))
        );
        // No repository at all: git says so too.
        let none = tempfile::tempdir().unwrap();
        assert_eq!(read(none.path()), Head::NoRepository);
        let asked = Command::new("git")
            .arg("-C")
            .arg(none.path())
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap();
        assert!(!asked.status.success());
        // Inside a bare repository, or with a `.git` file that names nothing: git's to say.
        let bare = d.path().join("bare.git");
        git(d.path(), &["init", "-q", "--bare", bare.to_str().unwrap()]);
        std::fs::create_dir_all(bare.join("x")).unwrap();
        assert_eq!(read(&bare.join("x")), Head::AskGit);
        let odd = d.path().join("odd");
        std::fs::create_dir_all(&odd).unwrap();
        std::fs::write(odd.join(".git"), "not a pointer").unwrap();
        assert_eq!(read(&odd), Head::AskGit);
    }

    #[test]
    fn refs_it_cannot_read_plainly_are_left_to_git() {
        let packed = "# pack-refs with: peeled fully-peeled sorted\n\
                      1111111111111111111111111111111111111111 refs/heads/main\n\
                      ^2222222222222222222222222222222222222222\n";
        assert_eq!(
            packed_ref(packed, "refs/heads/main").as_deref(),
            Some("1111111111111111111111111111111111111111")
        );
        assert_eq!(packed_ref(packed, "refs/heads/other"), None);
        assert!(!is_commit("HEAD"));
        assert!(!is_commit(&"A".repeat(40)));
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve("ref: ../../etc/passwd", d.path(), d.path(), 0),
            None
        );
    }
}
