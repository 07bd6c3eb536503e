//! The offline bundle's format: `bundle.json` (each archive's file, compression, size,
//! sha256 and images), the `SHA256SUMS` and `README` written beside it, and reading a
//! bundle back with every archive name confined to the bundle's directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::archive::index::ArchiveIndex;
use crate::archive::parts::Part;
use crate::archive::streams::Compression;
use crate::docker::images::ImageInfo;

pub const MANIFEST: &str = "bundle.json";
pub const SUMS: &str = "SHA256SUMS";
pub const README: &str = "README";
/// The loader a bundle carries: a static executable that checks, loads and pushes it.
pub const LOADER: &str = "fate-xtask";
const FORMAT: &str = "fate-xtask-bundle/1";

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub created: String,
    pub archives: Vec<Archive>,
    /// The SPDX SBOM of each module image the bundle holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sboms: Vec<BundledSbom>,
    /// In an update bundle (`bundle --since`): the bundle it updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updates: Option<Updates>,
    /// The loader the bundle carries ([`LOADER`]), its size and sha256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loader: Option<Part>,
    /// How its images were built: what rebuilding them to check them takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built: Option<Built>,
}

/// How a bundle's images were built (each image's commit is its `revision`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Built {
    /// The commit the tree was at when the bundle was written.
    pub commit: String,
    /// Whether every image was built from committed files (no revision ends with
    /// `-dirty`): only then can the bundle be rebuilt from its commits.
    pub clean: bool,
    /// The `SOURCE_DATE_EPOCH` the images were built with: their times.
    pub source_date_epoch: i64,
    /// The Docker Engine that built them, and its builder (BuildKit's version, or the
    /// legacy builder): which of them give the same image twice.
    pub engine: String,
    pub builder: String,
}

/// An SBOM in the bundle, and the image it describes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BundledSbom {
    pub image: String,
    #[serde(flatten)]
    pub file: Part,
}

/// What an update bundle records of the bundle it updates.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Updates {
    /// When that bundle was written, and the sha256 of its `bundle.json`.
    pub created: String,
    pub sha256: String,
    /// Its images that this bundle does not carry (unchanged since), as it holds them: a
    /// host that loaded it has them.
    pub unchanged: Vec<BundledImage>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Archive {
    pub file: String,
    pub compression: Compression,
    pub size: u64,
    pub sha256: String,
    pub images: Vec<BundledImage>,
    /// With `--split-size`: the files the archive is written as, in order (`file` names
    /// their concatenation, which is never written; `size` and `sha256` are its).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
}

impl Archive {
    /// The files the archive is on disk: its parts, or itself.
    #[must_use]
    pub fn files(&self) -> Vec<Part> {
        if self.parts.is_empty() {
            vec![Part {
                file: self.file.clone(),
                size: self.size,
                sha256: self.sha256.clone(),
            }]
        } else {
            self.parts.clone()
        }
    }

    /// How the README loads it by hand (`cat` of the parts: their names sort in order).
    fn by_hand(&self) -> String {
        let split = !self.parts.is_empty();
        match (self.compression, split) {
            (Compression::Zstd, false) => format!("zstd -dc {} | docker load", self.file),
            (Compression::Zstd, true) => format!("cat {}.* | zstd -dc | docker load", self.file),
            (_, false) => format!("docker load -i {}", self.file),
            (_, true) => format!("cat {}.* | docker load", self.file),
        }
    }
}

/// An image of an archive, by what identifies it on every image store.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BundledImage {
    pub reference: String,
    /// Its ID in the store it was bundled from: the config digest on a graph-driver
    /// engine, the manifest (or index) digest on the containerd image store.
    pub id: String,
    /// The digest of its config, which names it on every store: what the archive's
    /// `manifest.json` names, and its ID once loaded on a graph-driver engine.
    /// (Bundles written before it was recorded were made on graph-driver engines, where it
    /// is the ID.)
    #[serde(default)]
    pub config: String,
    /// `os/arch[/variant]` of the image (of the config the archive's `manifest.json` names).
    #[serde(default)]
    pub platform: String,
    /// Its layers' diff IDs, as every store reports them (`RootFS.Layers`): what identifies
    /// it on the containerd store when it was loaded from an archive without the store's
    /// own index (one made by Docker before 25 or on a graph-driver engine).
    #[serde(default)]
    pub layers: Vec<String>,
    /// The commit it was built from (its OCI revision label; `<commit>-dirty` for
    /// uncommitted files), when it says.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
    /// The platforms it was built for (its platforms label: `--platform`'s, or the
    /// engine's own), when it says: a rebuild for others is another image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub built_for: String,
}

impl BundledImage {
    /// The image `reference` as the engine lists it (`info`), with its config digest.
    #[must_use]
    pub fn of(reference: &str, info: &ImageInfo, config: String) -> BundledImage {
        BundledImage {
            reference: reference.to_string(),
            id: info.id.clone(),
            config,
            platform: info.platform.clone(),
            layers: info.layers.clone(),
            revision: info.revision.clone().unwrap_or_default(),
            built_for: info.built_for.clone().unwrap_or_default(),
        }
    }

    /// Whether the engine holds this image as `loaded`: by its config digest (a
    /// graph-driver engine), by the ID the containerd store gave it where it was made
    /// (loaded on that kind of store), or by its layers and config (a containerd store
    /// that converted an archive without its own index).
    #[must_use]
    pub fn is_loaded_as(&self, loaded: &ImageInfo) -> bool {
        loaded.id == self.config
            || loaded.id == self.id
            || (!self.layers.is_empty()
                && loaded.layers == self.layers
                && (self.platform.is_empty() || loaded.platform == self.platform))
    }
}

impl Manifest {
    #[must_use]
    pub fn new(archives: Vec<Archive>) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            archives,
            sboms: Vec::new(),
            updates: None,
            loader: None,
            built: None,
        }
    }

    /// Every image a host holds once it loaded this bundle (and, for an update, the
    /// bundle it updates).
    pub fn images(&self) -> impl Iterator<Item = &BundledImage> {
        self.archives
            .iter()
            .flat_map(|a| &a.images)
            .chain(self.updates.iter().flat_map(|u| &u.unchanged))
    }

    /// `sha256sum -c` input for every archive.
    pub fn sums(&self) -> String {
        self.archives
            .iter()
            .flat_map(Archive::files)
            .chain(self.sboms.iter().map(|s| s.file.clone()))
            .chain(self.loader.clone())
            .map(|f| format!("{}  {}\n", f.sha256, f.file))
            .collect()
    }

    /// How to check and run the loader the bundle carries, if it carries one.
    fn loader_readme(&self, signed: bool, check: &str) -> String {
        self.loader.as_ref().map_or_else(String::new, |_| {
            let verify = if signed { " --verify-key KEY.pub" } else { "" };
            format!(
                "With the loader it carries ({LOADER}: one static executable for Linux x86_64; \
                 nothing else to install), in this directory, checked first:\n\n{check}\n\n\
                 then, into this host's Docker engine:\n\n  ./{LOADER} load{verify} .\n\n\
                 or straight into a registry (Harbor, a docker registry), with no Docker at all:\n\n  \
                 ./{LOADER} load{verify} . --registry HOST[:PORT] --namespace PROJECT\n\n\
                 (credentials: docker login's config.json, or --user NAME with the password on stdin \
                 or in --password-env VAR; a private CA: --ca-file CA.crt). It checks every size and \
                 checksum before loading or pushing anything, pushes only what the registry lacks, \
                 resumes where a cut-off push stopped, and prints each image as \
                 HOST/PROJECT/NAME:TAG@sha256:... Without it, push by hand with skopeo, each image \
                 of an archive in turn, e.g.:\n\n  \
                 skopeo copy docker-archive:ARCHIVE.tar:NAME:TAG docker://HOST/PROJECT/NAME:TAG\n\n\
                 (skopeo reads an uncompressed archive: gunzip or zstd -d it first).\n\n"
            )
        })
    }

    /// How to load this bundle, with the tool and by hand.
    /// `signed`: `bundle.json` and `SHA256SUMS` carry minisign signatures, checked first.
    pub fn readme(&self, signed: bool) -> String {
        let by_hand: Vec<String> = self
            .archives
            .iter()
            .map(|a| format!("  {}", a.by_hand()))
            .collect();
        let images: Vec<String> = self
            .archives
            .iter()
            .flat_map(|a| {
                a.images
                    .iter()
                    .map(move |i| format!("  {} ({})", i.reference, a.file))
            })
            .collect();
        let (tool, check) = if signed {
            (
                "cargo xtask load --verify-key KEY.pub DIR".to_string(),
                format!(
                    "  minisign -Vm {MANIFEST} -p KEY.pub && minisign -Vm {SUMS} -p KEY.pub && sha256sum -c {SUMS}"
                ),
            )
        } else {
            (
                "cargo xtask load DIR".to_string(),
                format!("  sha256sum -c {SUMS}"),
            )
        };
        let signed_note = if signed {
            "The bundle is signed: KEY.pub is the public key of whoever made it, which you get \
             from them by another way than this bundle. Nothing is loaded unless the signature \
             holds.\n\n"
        } else {
            ""
        };
        let update_note = self.updates.as_ref().map_or_else(String::new, |u| {
            let unchanged: Vec<String> = u
                .unchanged
                .iter()
                .map(|i| format!("  {}\n", i.reference))
                .collect();
            format!(
                "This bundle updates the bundle written {} (the one whose {MANIFEST} has sha256 \
                 {}): it carries only the images that changed since. Load it on a host that \
                 holds that bundle's images; these it does not carry:\n\n{}\n",
                u.created,
                u.sha256,
                unchanged.concat()
            )
        });
        let sboms: Vec<String> = self
            .sboms
            .iter()
            .map(|s| format!("  {} ({})\n", s.file.file, s.image))
            .collect();
        let sbom_note = if sboms.is_empty() {
            String::new()
        } else {
            format!(
                "\nWhat each module image holds (SPDX 2.3 SBOMs, checked by the sums too):\n{}",
                sboms.concat()
            )
        };
        let loader_note = self.loader_readme(signed, &check);
        format!(
            "FATE images for a host without a registry (written {created}).\n\n{signed_note}{update_note}\
             {loader_note}\
             Load them with the tool, from a checkout of fate-xtask (it checks every size and \
             checksum before loading anything, then the image IDs), DIR being this directory:\n\n  \
             {tool}\n\n\
             or by hand, in this directory:\n\n{check}\n{}\n\n\
             Images:\n{}\n{sbom_note}",
            by_hand.join("\n"),
            images.join("\n"),
            created = self.created
        )
    }
}

/// The bundle directory a path names: itself, or the directory of an archive file.
pub fn bundle_dir(input: &Path) -> PathBuf {
    if input.is_dir() {
        input.to_path_buf()
    } else {
        input
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }
}

/// A bundle's manifest, read from its directory, with the sha256 of its text.
pub fn read_manifest(dir: &Path) -> Result<(Manifest, String)> {
    let manifest_path = dir.join(MANIFEST);
    let text = read_bounded(&manifest_path)?;
    let mut manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a bundle manifest ({e}): it is damaged or another file; copy the bundle again from its source",
            manifest_path.display()
        )
    })?;
    for image in manifest
        .archives
        .iter_mut()
        .flat_map(|a| a.images.iter_mut())
    {
        if image.config.is_empty() {
            image.config.clone_from(&image.id);
        }
    }
    if manifest.format != FORMAT {
        bail!(
            "{} has format {:?}; this tool reads {FORMAT}",
            manifest_path.display(),
            manifest.format
        );
    }
    let files = manifest
        .archives
        .iter()
        .flat_map(|a| std::iter::once(&a.file).chain(a.parts.iter().map(|p| &p.file)))
        .chain(manifest.sboms.iter().map(|s| &s.file.file));
    for name in files {
        check_file_name(name)
            .with_context(|| format!("{} names file {name:?}", manifest_path.display()))?;
    }
    Ok((manifest, hex::encode(sha2::Sha256::digest(text.as_bytes()))))
}

/// The most a `bundle.json` may hold: the manifest of a bundle of a hundred images in
/// thousands of parts is well under 1 MiB; more is not a manifest this tool wrote, and
/// is refused before it is read whole.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// The text of the manifest at `path`, read no further than [`MAX_MANIFEST_BYTES`].
fn read_bounded(path: &Path) -> Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).with_context(|| {
        format!(
            "cannot read {}: a bundle is loaded with the {MANIFEST} written beside its archives (cargo xtask bundle)",
            path.display()
        )
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        bail!(
            "{} is larger than {} MiB, far more than any bundle's manifest: it is not one this tool wrote; copy the bundle again from its source",
            path.display(),
            MAX_MANIFEST_BYTES >> 20
        );
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not text (the byte at offset {} is not UTF-8), so not a bundle manifest: it is damaged or another file; copy the bundle again from its source",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// What `load` reads of a bundle: the archives a path names, by their paths, and what
/// an update bundle records of the bundle it updates.
pub struct Chosen {
    pub archives: Vec<(PathBuf, Archive)>,
    /// The bundle's SBOMs, by their paths (all of them, whichever archives are chosen).
    pub sboms: Vec<(PathBuf, Part)>,
    pub updates: Option<Updates>,
}

/// The archives a path names: every archive of a bundle directory (none in an update
/// that carries nothing), or one archive file (with the manifest beside it).
pub fn archives_of(input: &Path) -> Result<Chosen> {
    let dir = bundle_dir(input);
    let only = (!input.is_dir())
        .then(|| input.file_name().map(|n| n.to_string_lossy().into_owned()))
        .flatten();
    let (manifest, _) = read_manifest(&dir)?;
    let mut archives = Vec::new();
    for archive in manifest.archives {
        let named = |f: &String| *f == archive.file || archive.parts.iter().any(|p| p.file == *f);
        if only.as_ref().is_none_or(named) {
            archives.push((dir.join(&archive.file), archive));
        }
    }
    if let Some(only) = only
        && archives.is_empty()
    {
        bail!(
            "{} lists no archive named {only}",
            dir.join(MANIFEST).display()
        );
    }
    Ok(Chosen {
        archives,
        sboms: manifest
            .sboms
            .into_iter()
            .map(|s| (dir.join(&s.file.file), s.file))
            .collect(),
        updates: manifest.updates,
    })
}

/// An archive name must be a plain file name in the bundle's directory.
fn check_file_name(name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\\')
        && !name.contains('\0');
    if !plain {
        bail!(
            "an archive must be a plain file name in the bundle's directory; refusing to open it"
        );
    }
    Ok(())
}

/// The images the manifest names that the archive's index does not hold with their
/// config.
#[must_use]
pub fn missing_from<'a>(images: &'a [BundledImage], index: &ArchiveIndex) -> Vec<&'a BundledImage> {
    images
        .iter()
        .filter(|image| index.config_of(&image.reference) != Some(image.config.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_stay_in_the_bundle_directory() {
        for bad in ["../x.tar.gz", "/etc/passwd", "a/b.tar", "..", "", "x\0y"] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
        check_file_name("fate.images.tar.gz").unwrap();
    }

    #[test]
    fn the_index_must_hold_each_image_with_its_id() {
        let index = ArchiveIndex::parse(
            br#"[{"Config":"blobs/sha256/aaaa","RepoTags":["p/a:1"]},{"Config":"bbbb.json","RepoTags":null}]"#,
            None,
        )
        .unwrap();
        let images = [
            BundledImage {
                reference: "p/a:1".into(),
                id: "sha256:iiii".into(),
                config: "sha256:aaaa".into(),
                ..BundledImage::default()
            },
            BundledImage {
                reference: "p/b:1".into(),
                id: "sha256:bbbb".into(),
                config: "sha256:bbbb".into(),
                ..BundledImage::default()
            },
        ];
        let missing = missing_from(&images, &index);
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].reference, "p/b:1");
    }

    #[test]
    fn sums_and_readme_name_every_archive() {
        let m = Manifest::new(vec![Archive {
            file: "fate.images.tar.zst".into(),
            compression: Compression::Zstd,
            size: 3,
            sha256: "ab".into(),
            images: vec![],
            parts: vec![],
        }]);
        assert_eq!(m.sums(), "ab  fate.images.tar.zst\n");
        assert!(
            m.readme(false)
                .contains("zstd -dc fate.images.tar.zst | docker load")
        );
        assert!(m.readme(false).contains("sha256sum -c SHA256SUMS"));
    }

    #[test]
    fn a_split_archive_is_summed_and_loaded_by_its_parts() {
        let part = |n: u32| Part {
            file: format!("fate.images.tar.gz.00{n}"),
            size: 2,
            sha256: format!("{n}{n}"),
        };
        let m = Manifest::new(vec![Archive {
            file: "fate.images.tar.gz".into(),
            compression: Compression::Gzip,
            size: 4,
            sha256: "ab".into(),
            images: vec![],
            parts: vec![part(1), part(2)],
        }]);
        assert_eq!(
            m.sums(),
            "11  fate.images.tar.gz.001\n22  fate.images.tar.gz.002\n"
        );
        assert!(
            m.readme(false)
                .contains("  sha256sum -c SHA256SUMS\n  cat fate.images.tar.gz.* | docker load\n"),
            "{}",
            m.readme(false)
        );
    }
}
