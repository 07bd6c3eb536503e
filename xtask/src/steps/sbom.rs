//! The files an image's SBOM lists, read from what was staged into its context: each
//! file once, with its checksums and the packages it is or lists.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fate_bundle::sbom::contents::{self, Coordinates};
use fate_bundle::sbom::{Holds, StagedFile};
use sha1::Digest;

use crate::stage::staging::Entries;

use crate::stage::staging::Source;

/// The staged files of `entries` that the image holds, by their paths in it, with their
/// checksums and packages: each file is read once. `in_image` are the context's
/// directories copied to the image's root (`<dir>/<path>` is `<path>` there; a file
/// elsewhere in the context is not in the image). `maven_jars` are the jars Maven built
/// for this context, with their modules' coordinates.
pub fn staged_files(
    entries: &Entries,
    in_image: &[String],
    maven_jars: &[(PathBuf, Coordinates)],
) -> Result<Vec<StagedFile>> {
    let mut files = Vec::new();
    for (staged, source) in entries {
        let Some(rel) = in_image
            .iter()
            .find_map(|dir| staged.strip_prefix(dir).ok())
        else {
            continue;
        };
        let bytes = match source {
            Source::File { from, .. } => {
                std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?
            }
            Source::Bytes { bytes, .. } => bytes.clone(),
            Source::Dir { .. } | Source::Symlink { .. } => continue,
        };
        let holds = holds(rel, source, &bytes, maven_jars);
        files.push(StagedFile {
            path: rel.to_string_lossy().into_owned(),
            sha1: hex::encode(sha1::Sha1::digest(&bytes)),
            sha256: hex::encode(sha2::Sha256::digest(&bytes)),
            holds,
        });
    }
    // By path in the image: the directories of several parts interleave there.
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// What the staged file at `rel` is, read from `bytes`.
fn holds(
    rel: &Path,
    source: &Source,
    bytes: &[u8],
    maven_jars: &[(PathBuf, Coordinates)],
) -> Holds {
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let extension = rel
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match extension.as_deref() {
        Some("jar") => {
            let built = match source {
                Source::File { from, .. } => maven_jars.iter().find(|(jar, _)| jar == from),
                _ => None,
            };
            Holds::Jar(match built {
                Some((_, coordinates)) => Some(coordinates.clone()),
                None => contents::jar_coordinates(std::io::Cursor::new(bytes), &name),
            })
        }
        Some("txt") if name.starts_with("requirements") => {
            Holds::Requirements(contents::requirements(&String::from_utf8_lossy(bytes)))
        }
        _ => Holds::Nothing,
    }
}
