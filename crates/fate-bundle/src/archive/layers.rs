//! An image's layers in a `docker save` archive read whole (see [`super::spool`]), and
//! the files of one layer: what a verifier compares when two builds of one image differ.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::index::{Config, config_digest, full_name};
use super::spool::Spooled;
use super::streams::{Tally, TallyWriter};

/// One layer of an image: its diff ID (from the config) and the file holding it (raw,
/// gzip or zstd).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub diff_id: String,
    pub file: PathBuf,
}

/// The config digest and layers of the image tagged `reference` in `spooled`.
pub fn image_layers(spooled: &Spooled, reference: &str) -> Result<(String, Vec<Layer>)> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        #[serde(default)]
        repo_tags: Option<Vec<String>>,
        layers: Vec<String>,
    }
    let entries: Vec<Entry> = serde_json::from_slice(&spooled.manifest_json)
        .context("manifest.json of the archive is not valid")?;
    let wanted = full_name(reference);
    let entry = entries
        .iter()
        .find(|e| {
            e.repo_tags
                .iter()
                .flatten()
                .any(|t| t == reference || full_name(t) == wanted)
        })
        .with_context(|| format!("the archive holds no image tagged {reference}"))?;
    let config = config_digest(&entry.config);
    let diff_ids = diff_ids(spooled, &config, reference, entry.layers.len())?;
    let layers = entry
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(path, diff_id)| {
            let file = match spooled.layer(path) {
                Some(raw) => raw.blob.path.clone(),
                None => spooled
                    .blobs
                    .get(&config_digest(path))
                    .map(|b| b.path.clone())
                    .with_context(|| format!("the archive lacks layer {path} of {reference}"))?,
            };
            Ok(Layer { diff_id, file })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((config, layers))
}

/// The config digest and layers of the `platform` (`os/arch[/variant]`) variant of an
/// image an OCI archive's `index.json` reaches through an image index: Docker 26's
/// containerd store saves a multi-platform image whole, and its `manifest.json` names the
/// engine's own platform only. None where no index names that platform.
pub fn platform_variant(spooled: &Spooled, platform: &str) -> Result<Option<(String, Vec<Layer>)>> {
    let Some(index) = &spooled.index_json else {
        return Ok(None);
    };
    let index: Index =
        serde_json::from_slice(index).context("index.json of the archive is not valid")?;
    let Some(manifest) = find_platform(spooled, &index, platform, 0)? else {
        return Ok(None);
    };
    let manifest: Manifest = serde_json::from_slice(&spooled.read_small(&manifest)?)
        .with_context(|| format!("the {platform} manifest of the archive is not valid"))?;
    let what = format!("the {platform} image of the archive");
    let diff_ids = diff_ids(
        spooled,
        &manifest.config.digest,
        &what,
        manifest.layers.len(),
    )?;
    let layers = manifest
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(layer, diff_id)| {
            let blob = spooled.blobs.get(&layer.digest).with_context(|| {
                format!(
                    "the archive lacks layer {} of its {platform} image",
                    layer.digest
                )
            })?;
            Ok(Layer {
                diff_id,
                file: blob.path.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some((manifest.config.digest, layers)))
}

/// The diff IDs the config `digest` of `image` lists, which must be `layers` many.
fn diff_ids(spooled: &Spooled, digest: &str, image: &str, layers: usize) -> Result<Vec<String>> {
    let config: Config = serde_json::from_slice(&spooled.read_small(digest)?)
        .with_context(|| format!("the config of {image} is not valid"))?;
    if config.rootfs.diff_ids.len() != layers {
        bail!(
            "{image}: its config lists {} layers, the archive {layers}",
            config.rootfs.diff_ids.len()
        );
    }
    Ok(config.rootfs.diff_ids)
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

/// The digest of the image manifest for `platform` among `index`'s manifests, looking
/// into nested indexes (a few levels: an archive's own lists).
fn find_platform(
    spooled: &Spooled,
    index: &Index,
    platform: &str,
    depth: u8,
) -> Result<Option<String>> {
    let wanted: Vec<&str> = platform.split('/').collect();
    for descriptor in &index.manifests {
        let nested =
            descriptor.media_type.contains("index") || descriptor.media_type.contains("list");
        if !spooled.blobs.contains_key(&descriptor.digest) {
            continue;
        }
        if !nested {
            let matches = descriptor.platform.as_ref().is_some_and(|p| {
                wanted.first() == Some(&p.os.as_str())
                    && wanted.get(1) == Some(&p.architecture.as_str())
                    && match (p.variant.as_deref(), wanted.get(2)) {
                        (Some(a), Some(b)) => a == *b,
                        _ => true,
                    }
            });
            if matches {
                return Ok(Some(descriptor.digest.clone()));
            }
        } else if depth < 4 {
            let inner: Index = serde_json::from_slice(&spooled.read_small(&descriptor.digest)?)
                .with_context(|| {
                    format!(
                        "the image index {} of the archive is not valid",
                        descriptor.digest
                    )
                })?;
            if let Some(found) = find_platform(spooled, &inner, platform, depth + 1)? {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

/// What a layer says of one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `file`, `dir`, `symlink`, `hardlink` or another tar type.
    pub kind: String,
    pub mode: u32,
    pub owner: (u64, u64),
    pub size: u64,
    pub mtime: u64,
    /// The sha256 of a file's contents; a link's target.
    pub content: String,
}

/// A layer's files, by path (`./` and a leading `/` taken off).
pub type Listing = BTreeMap<String, Entry>;

/// The files of the layer in `file` (a tar, raw, gzip or zstd), each file's contents
/// hashed as it streams.
pub fn list(file: &Path) -> Result<Listing> {
    let mut opened = BufReader::new(
        File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    );
    let magic = {
        use std::io::BufRead;
        opened
            .fill_buf()?
            .get(..4)
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    };
    let reader: Box<dyn Read> = match magic.as_slice() {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(opened)),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(zstd::Decoder::with_buffer(opened)?),
        _ => Box::new(opened),
    };
    let mut archive = tar::Archive::new(reader);
    let mut listing = Listing::new();
    for entry in archive
        .entries()
        .with_context(|| format!("{} is not a tar", file.display()))?
    {
        let mut entry = entry.with_context(|| format!("reading the layer {}", file.display()))?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let path = path.trim_start_matches("./").trim_start_matches('/');
        let path = path.trim_end_matches('/').to_string();
        let header = entry.header();
        let kind = header.entry_type();
        let (kind, content) = if kind.is_file() {
            let tally = Tally::default();
            let mut hashed = TallyWriter {
                inner: std::io::sink(),
                tally: tally.clone(),
            };
            std::io::copy(&mut entry, &mut hashed)?;
            ("file".to_string(), tally.result().1)
        } else {
            let link = entry
                .link_name()?
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = match kind {
                tar::EntryType::Directory => "dir".to_string(),
                tar::EntryType::Symlink => "symlink".to_string(),
                tar::EntryType::Link => "hardlink".to_string(),
                other => format!("{other:?}").to_lowercase(),
            };
            (name, link)
        };
        let header = entry.header();
        listing.insert(
            path,
            Entry {
                kind,
                mode: header.mode()?,
                owner: (header.uid()?, header.gid()?),
                size: header.size()?,
                mtime: header.mtime()?,
                content,
            },
        );
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn the_variant_of_a_platform_is_found_through_the_saved_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut spooled = Spooled::default();
        let mut blob = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, &text).unwrap();
            let digest = format!("sha256:{name}");
            spooled.blobs.insert(
                digest.clone(),
                super::super::spool::Blob {
                    path,
                    size: text.len() as u64,
                },
            );
            digest
        };
        let mut variant = |arch: &str| {
            let layer = blob(&format!("layer-{arch}"), format!("{arch} layer"));
            let config = blob(
                &format!("config-{arch}"),
                format!(
                    r#"{{"architecture":"{arch}","rootfs":{{"diff_ids":["sha256:diff-{arch}"]}}}}"#
                ),
            );
            let manifest = blob(
                &format!("manifest-{arch}"),
                format!(
                    r#"{{"config":{{"digest":"{config}"}},"layers":[{{"digest":"{layer}"}}]}}"#
                ),
            );
            (manifest, config, layer)
        };
        let (amd64, _, _) = variant("amd64");
        let (arm64, arm64_config, arm64_layer) = variant("arm64");
        let manifest = "application/vnd.oci.image.manifest.v1+json";
        let index = blob(
            "index",
            format!(
                r#"{{"manifests":[{{"mediaType":"{manifest}","digest":"{amd64}","platform":{{"os":"linux","architecture":"amd64"}}}},{{"mediaType":"{manifest}","digest":"{arm64}","platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}]}}"#
            ),
        );
        spooled.index_json = Some(
            format!(
                r#"{{"manifests":[{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{index}"}}]}}"#
            )
            .into_bytes(),
        );
        let (config, layers) = platform_variant(&spooled, "linux/arm64").unwrap().unwrap();
        assert_eq!(config, arm64_config);
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0].diff_id, "sha256:diff-arm64");
        assert_eq!(layers[0].file, spooled.blobs[&arm64_layer].path);
        assert!(platform_variant(&spooled, "linux/s390x").unwrap().is_none());
        // An archive without an index (Docker 20.10's): none.
        spooled.index_json = None;
        assert!(platform_variant(&spooled, "linux/arm64").unwrap().is_none());
    }

    #[test]
    fn a_gzip_layer_lists_its_files_with_their_contents_digest() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        header.set_mtime(7);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, "./app/hello", &b"hello"[..])
            .unwrap();
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        link.set_mode(0o777);
        link.set_uid(0);
        link.set_gid(0);
        link.set_mtime(7);
        builder.append_link(&mut link, "app/link", "hello").unwrap();
        let tar = builder.into_inner().unwrap();
        let file = dir.path().join("layer.gz");
        let mut gz = flate2::write::GzEncoder::new(
            File::create(&file).unwrap(),
            flate2::Compression::fast(),
        );
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap();
        let listing = list(&file).unwrap();
        let hello = &listing["app/hello"];
        assert_eq!(
            (hello.kind.as_str(), hello.mode, hello.mtime, hello.size),
            ("file", 0o644, 7, 5)
        );
        assert_eq!(hello.content, hex::encode(Sha256::digest(b"hello")));
        assert_eq!(listing["app/link"].kind, "symlink");
        assert_eq!(listing["app/link"].content, "hello");
    }
}
