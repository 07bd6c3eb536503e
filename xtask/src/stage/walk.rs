//! Source trees walked into entries: each directory read once, `.git/` and Maven's
//! `target/` left out, and a tree several images stage walked (and hashed) once a run.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use globset::{Glob, GlobSet, GlobSetBuilder};

use std::os::unix::fs::PermissionsExt;

use sha2::{Digest, Sha256};

use crate::stage::digest_cache::{self, DigestCache};
use crate::stage::entries::{Source, digest_entries};
use fate_bundle::fsx::git_mode;
use std::collections::BTreeMap;

/// A tree's entries by path relative to its root.
type Walked = Vec<(PathBuf, Source)>;

/// A walked tree, and the digest of its entries once asked: a tree several images stage
/// is hashed once.
pub struct Tree {
    pub entries: Walked,
    digest: std::sync::OnceLock<Result<[u8; 32], String>>,
}

impl Tree {
    fn new(entries: Walked) -> Tree {
        Tree {
            entries,
            digest: std::sync::OnceLock::new(),
        }
    }

    /// sha256 over every entry's relative path, file_type, mode and content (see [`digest`]).
    pub fn digest(&self, digests: &DigestCache) -> Result<[u8; 32]> {
        self.digest
            .get_or_init(|| {
                let mut hasher = Sha256::new();
                digest_entries(
                    self.entries.iter().map(|(p, s)| (p, s)),
                    &mut hasher,
                    digests,
                )
                .map(|()| hasher.finalize().into())
                .map_err(|e| format!("{e:#}"))
            })
            .clone()
            .map_err(anyhow::Error::msg)
    }
}

/// Walks of source trees shared within one run, by tree and exclusions: the first
/// caller walks, the others wait for it. A tree staged by several images (python and egg
/// both stage the python tree) is walked once. For one run only: Maven does not write
/// into source trees (its `target/` directories are left out), so they hold still while
/// it lasts.
#[derive(Default)]
pub struct SharedWalks(
    #[allow(
        clippy::type_complexity,
        reason = "a memo table: key, then a slot filled once"
    )]
    std::sync::Mutex<
        BTreeMap<
            (PathBuf, Vec<String>),
            std::sync::Arc<std::sync::OnceLock<Result<std::sync::Arc<Tree>, String>>>,
        >,
    >,
);

/// A walk's key: the tree, and what it leaves out.
pub type WalkKey = (PathBuf, Vec<String>);

impl SharedWalks {
    /// The trees walked so far.
    pub fn keys(&self) -> Vec<WalkKey> {
        self.0
            .lock()
            .expect("no walk panics")
            .keys()
            .cloned()
            .collect()
    }

    /// Walks `keys` now (e.g. while the engine is asked its questions), so the steps find
    /// them walked. Only source trees: a tree under a `target/` directory is left to be
    /// walked when its step runs, after the Maven step that writes it. A tree that cannot
    /// be walked keeps its error for the step that stages it.
    pub fn prefetch(&self, keys: &[WalkKey]) {
        for (from, exclude) in keys {
            if from.components().any(|c| c.as_os_str() == "target") {
                continue;
            }
            let _ = self.walked(from, exclude);
        }
    }

    /// The walk of `from` less `exclude`: walked by the first caller, the others wait.
    fn walked(&self, from: &Path, exclude: &[String]) -> Result<std::sync::Arc<Tree>> {
        let slot = self
            .0
            .lock()
            .expect("no walk panics")
            .entry((from.to_path_buf(), exclude.to_vec()))
            .or_default()
            .clone();
        slot.get_or_init(|| {
            walk(from, exclude)
                .map(|entries| std::sync::Arc::new(Tree::new(entries)))
                .map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(anyhow::Error::msg)
    }
}

/// The tree at `from` less `exclude`: walked once per run with `shared`, else now.
pub fn tree(
    from: &Path,
    exclude: &[String],
    shared: Option<&SharedWalks>,
) -> Result<std::sync::Arc<Tree>> {
    match shared {
        Some(shared) => shared.walked(from, exclude),
        None => Ok(std::sync::Arc::new(Tree::new(walk(from, exclude)?))),
    }
}

/// The entries of the tree at `from`, relative to it, in order (each directory before
/// its entries, names compared as bytes: the order of [`Entries`]).
pub fn walk(from: &Path, exclude: &[String]) -> Result<Walked> {
    let meta =
        fs::symlink_metadata(from).with_context(|| format!("{} does not exist", from.display()))?;
    let exclude = globs(exclude)?;
    let mut out = Vec::new();
    let root = PathBuf::new();
    if !is_excluded(from) && !exclude.is_match(&root) {
        walk_entry(from, root, &meta, &exclude, &mut out)?;
    }
    Ok(out)
}

/// Lists `path` (at `rel`, with metadata `meta`) and, for a directory, what it holds.
/// Each directory is read once and sorted by name; only entries are `stat`ed.
fn walk_entry(
    path: &Path,
    rel: PathBuf,
    meta: &fs::Metadata,
    exclude: &GlobSet,
    out: &mut Walked,
) -> Result<()> {
    let file_type = meta.file_type();
    let mode = git_mode(file_type.is_dir(), meta.permissions().mode());
    let source = if file_type.is_dir() {
        Source::Dir { mode }
    } else if file_type.is_symlink() {
        Source::Symlink {
            target: fs::read_link(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        }
    } else if file_type.is_file() {
        Source::File {
            from: path.to_path_buf(),
            mode,
            stamp: digest_cache::Stamp::of(meta),
        }
    } else {
        // Never opened: reading a FIFO blocks until a writer appears.
        bail!(
            "{} is a {} (not a file, directory or link): remove it, or leave it out with `exclude` in docker/images.toml",
            path.display(),
            special_file(file_type)
        );
    };
    out.push((rel.clone(), source));
    if !file_type.is_dir() {
        return Ok(());
    }
    let cannot = || format!("cannot read {}", path.display());
    let mut children = fs::read_dir(path)
        .with_context(cannot)?
        .map(|e| e.map(|e| (e.file_name(), e)))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(cannot)?;
    children.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (name, entry) in children {
        let child = entry.path();
        let child_rel = rel.join(&name);
        if is_excluded(&child) || exclude.is_match(&child_rel) {
            continue;
        }
        let meta = entry
            .metadata()
            .with_context(|| format!("cannot read {}", child.display()))?;
        walk_entry(&child, child_rel, &meta, exclude, out)?;
    }
    Ok(())
}

fn special_file(file_type: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

fn globs(patterns: &[String]) -> Result<GlobSet> {
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        set.add(Glob::new(p).with_context(|| format!("bad exclude pattern {p:?}"))?);
    }
    Ok(set.build()?)
}

fn is_excluded(path: &Path) -> bool {
    match path.file_name().and_then(|n| n.to_str()) {
        Some(".git") => true,
        Some("target") => path.parent().is_some_and(|p| p.join("pom.xml").is_file()),
        _ => false,
    }
}
