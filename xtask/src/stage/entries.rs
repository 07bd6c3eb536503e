//! What a build context holds before it is written: the staging operations, and the
//! entries they produce (each a file, bytes, a directory or a symlink) by path.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::maven::pom;
use anyhow::Result;
use sha2::{Digest, Sha256};

use crate::stage::digest_cache::{self, DigestCache};

/// One staging operation into a build context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageOp {
    /// Copy a file or directory tree to `to` (symlinks kept; `target/` beside a pom,
    /// `.git/` and paths matching `exclude` left out).
    Copy {
        from: PathBuf,
        to: String,
        exclude: Vec<String>,
    },
    /// Install a Maven-built jar at `to`, with its `lib/`, a stable-named symlink and
    /// `JAVA_HOME=` set in the `service.sh` staged there before.
    Jar {
        module: pom::Module,
        to: String,
        link: String,
        lib: bool,
        java_home: String,
    },
    EmptyDir(String),
}

impl fmt::Display for StageOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StageOp::Copy { from, to, exclude } => {
                write!(f, "copy {} -> {to}", from.display())?;
                if !exclude.is_empty() {
                    write!(f, " (without {})", exclude.join(", "))?;
                }
                Ok(())
            }
            StageOp::Jar {
                module,
                to,
                link,
                lib,
                java_home,
            } => write!(
                f,
                "jar {}{} -> {to}, link {link} -> {}.jar, service.sh JAVA_HOME={java_home}",
                module.jar().display(),
                if *lib { " + lib/" } else { "" },
                module.final_name
            ),
            StageOp::EmptyDir(d) => write!(f, "mkdir {d}"),
        }
    }
}

/// Where an entry's content comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Dir {
        mode: u32,
    },
    File {
        from: PathBuf,
        mode: u32,
        /// Its metadata when listed: the contents' digest is known from it while the
        /// file is unchanged.
        stamp: digest_cache::Stamp,
    },
    Symlink {
        target: PathBuf,
    },
    /// Generated content (a `service.sh` with JAVA_HOME set).
    Bytes {
        bytes: Vec<u8>,
        mode: u32,
    },
}

/// The entries of a staged directory, by relative path (sorted, so digests are stable).
pub type Entries = BTreeMap<PathBuf, Source>;

/// `a/./b` -> `a/b`, `.` -> `` (the root of the staged directory).
#[must_use]
pub fn normalize(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

pub fn add_dirs(entries: &mut Entries, dir: &Path, mode: u32) {
    let dir = normalize(dir);
    for ancestor in dir.ancestors() {
        entries
            .entry(ancestor.to_path_buf())
            .or_insert(Source::Dir { mode });
    }
}

pub fn digest_entries<'a>(
    entries: impl Iterator<Item = (&'a PathBuf, &'a Source)>,
    hasher: &mut Sha256,
    digests: &DigestCache,
) -> Result<()> {
    use std::fmt::Write as _;
    let mut line = String::new();
    for (path, source) in entries {
        hasher.update(path.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        line.clear();
        match source {
            Source::Dir { mode } => {
                write!(line, "d{mode:o}\0").expect("a string takes it");
                hasher.update(&line);
            }
            Source::Symlink { target } => {
                hasher.update(b"l");
                hasher.update(target.as_os_str().as_encoded_bytes());
                hasher.update([0]);
            }
            Source::Bytes { bytes, mode } => {
                hasher.update(format!("f{mode:o}:{}\0", bytes.len()));
                hasher.update(bytes);
            }
            Source::File { from, mode, stamp } => {
                // The contents' own digest, remembered across runs while the file is unchanged.
                write!(line, "f{mode:o}:{}\0", stamp.size).expect("a string takes it");
                hasher.update(&line);
                hasher.update(digests.sha256_stamped(from, *stamp)?);
            }
        }
    }
    Ok(())
}
