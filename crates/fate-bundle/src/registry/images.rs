//! What goes up for each bundled image: its blobs and its manifests, children first, the
//! last one tagged. Where the archive holds the image's manifest (or index) as the store
//! built it (the OCI layout of Docker 25 and later), those bytes go up unchanged, so the
//! registry's digest is the store's; from Docker 20.10's archives (raw layers, no
//! manifest) a Docker v2 manifest is written over the compressed layers.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::target::Destination;
use crate::archive::index::full_name;
use crate::archive::spool::Spooled;
use crate::manifest::BundledImage;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// A blob one of the image's manifests names, and where its bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRef {
    pub digest: String,
    pub size: u64,
    pub path: std::path::PathBuf,
}

/// A manifest or index as it goes up: its exact bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawManifest {
    pub digest: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// One image to push.
#[derive(Clone, Debug)]
pub struct Upload {
    pub bundled: BundledImage,
    pub destination: Destination,
    pub blobs: Vec<BlobRef>,
    /// Children first; the last is the one the tag names.
    pub manifests: Vec<RawManifest>,
    /// The config digests the pushed image must have: one per platform.
    pub configs: Vec<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ImageManifest {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct ImageIndex {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct SavedEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// The image `bundled` of the archive `spooled`, for `destination`; with `platform`, only
/// that platform's manifest (tagged by itself).
pub fn upload_of(
    spooled: &Spooled,
    bundled: &BundledImage,
    destination: Destination,
    platform: Option<&str>,
) -> Result<Upload> {
    let mut upload = Upload {
        bundled: bundled.clone(),
        destination,
        blobs: Vec::new(),
        manifests: Vec::new(),
        configs: Vec::new(),
    };
    match stored_digest(spooled, &bundled.reference)? {
        Some(digest) => as_stored(spooled, &digest, platform, &mut upload)?,
        None => from_docker_save(spooled, &mut upload)?,
    }
    Ok(upload)
}

/// The digest the archive's `index.json` gives the image, if it has one.
fn stored_digest(spooled: &Spooled, reference: &str) -> Result<Option<String>> {
    #[derive(Deserialize)]
    struct Entry {
        digest: String,
        #[serde(default)]
        annotations: std::collections::BTreeMap<String, String>,
    }
    #[derive(Deserialize)]
    struct Index {
        manifests: Vec<Entry>,
    }
    let Some(json) = &spooled.index_json else {
        return Ok(None);
    };
    let index: Index = serde_json::from_slice(json).context("the archive's index.json")?;
    let full = full_name(reference);
    Ok(index
        .manifests
        .into_iter()
        .find(|e| e.annotations.get("io.containerd.image.name") == Some(&full))
        .map(|e| e.digest))
}

/// A manifest or index as the store built it, with its children whose blobs the archive
/// holds (a store keeps only the platforms it pulled or built).
fn as_stored(
    spooled: &Spooled,
    digest: &str,
    platform: Option<&str>,
    upload: &mut Upload,
) -> Result<()> {
    let bytes = spooled.read_small(digest)?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("blob {digest} is not JSON"))?;
    if value.get("manifests").is_none() {
        let media_type = media_type_of(&value, OCI_MANIFEST);
        add_manifest(spooled, digest, bytes, &media_type, upload)?;
        return Ok(());
    }
    let index: ImageIndex =
        serde_json::from_slice(&bytes).with_context(|| format!("index {digest}"))?;
    let mut present = Vec::new();
    for child in &index.manifests {
        let wanted = platform.is_none_or(|p| platform_name(child.platform.as_ref()) == p);
        if wanted && has_whole(spooled, &child.digest) {
            present.push(child.clone());
        }
    }
    if present.is_empty() {
        bail!(
            "the archive holds no whole image of {} for {}",
            upload.bundled.reference,
            platform.unwrap_or("any platform")
        );
    }
    for child in &present {
        let child_bytes = spooled.read_small(&child.digest)?;
        add_manifest(
            spooled,
            &child.digest,
            child_bytes,
            &child.media_type,
            upload,
        )?;
    }
    if platform.is_some() {
        // The one platform's manifest is what the tag names.
        return Ok(());
    }
    let top = if present.len() == index.manifests.len() {
        RawManifest {
            digest: digest.to_string(),
            media_type: media_type_of(&value, OCI_INDEX),
            bytes,
        }
    } else {
        // Only some platforms are here: an index of those (a new digest).
        let media_type = if index.media_type.is_empty() {
            OCI_INDEX.to_string()
        } else {
            index.media_type.clone()
        };
        let bytes = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": present,
        }))?;
        RawManifest {
            digest: sha256_of(&bytes),
            media_type,
            bytes,
        }
    };
    upload.manifests.push(top);
    Ok(())
}

/// Whether the archive holds the manifest `digest`, its config and every layer.
fn has_whole(spooled: &Spooled, digest: &str) -> bool {
    let Ok(bytes) = spooled.read_small(digest) else {
        return false;
    };
    let Ok(manifest) = serde_json::from_slice::<ImageManifest>(&bytes) else {
        return false;
    };
    std::iter::once(&manifest.config)
        .chain(&manifest.layers)
        .all(|d| spooled.blobs.contains_key(&d.digest))
}

fn add_manifest(
    spooled: &Spooled,
    digest: &str,
    bytes: Vec<u8>,
    media_type: &str,
    upload: &mut Upload,
) -> Result<()> {
    let manifest: ImageManifest = serde_json::from_slice(&bytes)
        .with_context(|| format!("manifest {digest} is not an image manifest"))?;
    for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
        let blob = spooled.blobs.get(&d.digest).with_context(|| {
            format!(
                "the archive lacks blob {} of {}",
                d.digest, upload.bundled.reference
            )
        })?;
        push_blob(upload, &d.digest, blob.size, &blob.path);
    }
    upload.configs.push(manifest.config.digest.clone());
    let media_type = if media_type.is_empty() {
        if manifest.media_type.is_empty() {
            OCI_MANIFEST.to_string()
        } else {
            manifest.media_type
        }
    } else {
        media_type.to_string()
    };
    upload.manifests.push(RawManifest {
        digest: digest.to_string(),
        media_type,
        bytes,
    });
    Ok(())
}

/// Docker 20.10's archive: the config and raw layers its `manifest.json` names, under a
/// Docker v2 manifest written here over the compressed layers.
fn from_docker_save(spooled: &Spooled, upload: &mut Upload) -> Result<()> {
    let entries: Vec<SavedEntry> =
        serde_json::from_slice(&spooled.manifest_json).context("the archive's manifest.json")?;
    let reference = &upload.bundled.reference.clone();
    let entry = entries
        .iter()
        .find(|e| e.repo_tags.iter().any(|t| t == reference))
        .with_context(|| format!("the archive's manifest.json does not name {reference}"))?;
    let config_digest = format!(
        "sha256:{}",
        entry
            .config
            .rsplit('/')
            .next()
            .unwrap_or(&entry.config)
            .trim_end_matches(".json")
    );
    let config = spooled
        .blobs
        .get(&config_digest)
        .with_context(|| format!("the archive lacks the config of {reference}"))?
        .clone();
    let mut layers = Vec::new();
    for path in &entry.layers {
        let layer = spooled.layer(path).with_context(|| {
            format!("the archive lacks layer {path} of {reference}, or holds it compressed")
        })?;
        layers.push(serde_json::json!({
            "mediaType": DOCKER_LAYER,
            "size": layer.blob.size,
            "digest": layer.digest,
        }));
        push_blob(upload, &layer.digest, layer.blob.size, &layer.blob.path);
    }
    push_blob(upload, &config_digest, config.size, &config.path);
    let bytes = serde_json::to_vec_pretty(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": config.size, "digest": config_digest},
        "layers": layers,
    }))?;
    upload.configs.push(config_digest);
    upload.manifests.push(RawManifest {
        digest: sha256_of(&bytes),
        media_type: DOCKER_MANIFEST.to_string(),
        bytes,
    });
    Ok(())
}

fn push_blob(upload: &mut Upload, digest: &str, size: u64, path: &std::path::Path) {
    if !upload.blobs.iter().any(|b| b.digest == digest) {
        upload.blobs.push(BlobRef {
            digest: digest.to_string(),
            size,
            path: path.to_path_buf(),
        });
    }
}

fn media_type_of(value: &serde_json::Value, default: &str) -> String {
    value
        .get("mediaType")
        .and_then(|m| m.as_str())
        .unwrap_or(default)
        .to_string()
}

/// `os/arch[/variant]` of an index entry's platform.
fn platform_name(platform: Option<&serde_json::Value>) -> String {
    let field = |k: &str| {
        platform
            .and_then(|p| p.get(k))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let variant = field("variant");
    let base = format!("{}/{}", field("os"), field("architecture"));
    if variant.is_empty() {
        base
    } else {
        format!("{base}/{variant}")
    }
}

#[must_use]
pub fn sha256_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::spool::Blob;

    /// A spooled archive holding `blobs` (digest -> bytes) and an `index.json` naming
    /// `top` as `docker.io/p/a:1`.
    fn archive(dir: &std::path::Path, blobs: &[&[u8]], top: &str) -> Spooled {
        let mut spooled = Spooled {
            manifest_json: b"[]".to_vec(),
            index_json: Some(
                format!(
                    r#"{{"manifests":[{{"digest":"{top}","annotations":{{"io.containerd.image.name":"docker.io/p/a:1"}}}}]}}"#
                )
                .into_bytes(),
            ),
            ..Spooled::default()
        };
        for (i, bytes) in blobs.iter().enumerate() {
            let path = dir.join(format!("b{i}"));
            std::fs::write(&path, bytes).unwrap();
            spooled.blobs.insert(
                sha256_of(bytes),
                Blob {
                    path,
                    size: bytes.len() as u64,
                },
            );
        }
        spooled
    }

    fn manifest(config: &[u8], layer: &[u8]) -> Vec<u8> {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"c","digest":"{}","size":{}}},"layers":[{{"mediaType":"l","digest":"{}","size":{}}}]}}"#,
            sha256_of(config),
            config.len(),
            sha256_of(layer),
            layer.len()
        )
        .into_bytes()
    }

    fn image() -> BundledImage {
        BundledImage {
            reference: "p/a:1".into(),
            ..BundledImage::default()
        }
    }

    fn destination() -> Destination {
        Destination {
            repository: "fate/a".into(),
            tag: "1".into(),
        }
    }

    #[test]
    fn an_index_goes_up_as_built_or_with_the_platforms_the_archive_holds() {
        let dir = tempfile::tempdir().unwrap();
        let (amd_config, amd_layer) = (b"amd config".as_slice(), b"amd layer".as_slice());
        let (arm_config, arm_layer) = (b"arm config".as_slice(), b"arm layer".as_slice());
        let amd = manifest(amd_config, amd_layer);
        let arm = manifest(arm_config, arm_layer);
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{},"platform":{{"os":"linux","architecture":"amd64"}}}},{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{},"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#,
            sha256_of(&amd),
            amd.len(),
            sha256_of(&arm),
            arm.len()
        )
        .into_bytes();
        let top = sha256_of(&index);

        // Every platform here: the index as built, its digest kept.
        let whole = archive(
            dir.path(),
            &[
                &index, &amd, &arm, amd_config, amd_layer, arm_config, arm_layer,
            ],
            &top,
        );
        let up = upload_of(&whole, &image(), destination(), None).unwrap();
        assert_eq!(up.manifests.last().unwrap().digest, top);
        assert_eq!(up.manifests.len(), 3, "two manifests, then the index");
        assert_eq!(up.configs, [sha256_of(amd_config), sha256_of(arm_config)]);
        assert_eq!(up.blobs.len(), 4);

        // One platform asked: its manifest alone is tagged.
        let one = upload_of(&whole, &image(), destination(), Some("linux/arm64")).unwrap();
        assert_eq!(one.manifests.len(), 1);
        assert_eq!(one.manifests[0].digest, sha256_of(&arm));

        // The store lacks arm64's layer: an index of what is here (a new digest).
        let partial = archive(
            dir.path(),
            &[&index, &amd, &arm, amd_config, amd_layer, arm_config],
            &top,
        );
        let up = upload_of(&partial, &image(), destination(), None).unwrap();
        let last = up.manifests.last().unwrap();
        assert_ne!(last.digest, top);
        assert_eq!(last.digest, sha256_of(&last.bytes));
        assert_eq!(up.configs, [sha256_of(amd_config)]);
        assert!(upload_of(&partial, &image(), destination(), Some("linux/arm64")).is_err());
    }
}
