//! What a `docker save` tar says it holds, read from the tar itself: its `manifest.json`
//! (every Docker writes it: tags and config per image, the part Docker 20.10 loads) and,
//! from Docker 25 on, its OCI `index.json` (the image store's own ID per tag on the
//! containerd image store: a manifest or index digest).
//!
//! An image has two identities: its store's ID (the config digest on a graph-driver
//! engine, the manifest or index digest on the containerd store) and its config digest,
//! which names the same image on every store and is what `docker load` of the tar's
//! `manifest.json` gives on Docker 20.10.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};

use crate::docker::reference;
use serde::{Deserialize, Serialize};

/// One image of `manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedImage {
    pub tags: Vec<String>,
    /// `sha256:<hex>` of its config.
    pub config: String,
}

/// One tagged entry of the OCI `index.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciEntry {
    /// The full name the store gave it, e.g. `docker.io/fate/egg:1.0`.
    pub name: String,
    pub digest: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchiveIndex {
    pub images: Vec<SavedImage>,
    /// Empty in archives of Docker before 25.
    pub oci: Vec<OciEntry>,
    /// Where one platform was chosen out of multi-platform images (`bundle --platform`):
    /// what each such image became, by its full name.
    pub chosen: BTreeMap<String, Chosen>,
}

/// One platform's image chosen out of an image index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    /// Its manifest's digest: its ID once loaded on the containerd store.
    pub manifest: String,
    /// Its config's digest.
    pub config: String,
    /// Its layers' diff IDs (from its config).
    pub diff_ids: Vec<String>,
    layer_blobs: Vec<String>,
}

/// The small JSON blobs of an archive (indexes, manifests, configs), by digest.
pub type Blobs = BTreeMap<String, Vec<u8>>;

#[derive(Deserialize, Serialize, Clone)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<Platform>,
}

#[derive(Deserialize, Serialize, Clone)]
struct Platform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
}

impl Platform {
    /// Whether this is `wanted` (`os/arch[/variant]`); no variant asked matches any.
    fn is(&self, wanted: &str) -> bool {
        let mut parts = wanted.split('/');
        let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
        os == Some(self.os.as_str())
            && arch == Some(self.architecture.as_str())
            && variant.is_none_or(|v| self.variant.as_deref() == Some(v))
    }

    fn name(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

fn blob_json<T: serde::de::DeserializeOwned>(blobs: &Blobs, digest: &str) -> Result<T> {
    let bytes = blobs
        .get(digest)
        .with_context(|| format!("the archive lacks blob {digest}"))?;
    serde_json::from_slice(bytes).with_context(|| format!("blob {digest} is not valid JSON"))
}

/// The archive's `index.json` with each multi-platform image replaced by its `platform`
/// image, and what each became. An image that is one platform's already stays as it is
/// (the caller checks its platform).
pub fn choose_platform(
    index_json: &[u8],
    blobs: &Blobs,
    platform: &str,
) -> Result<(Vec<u8>, BTreeMap<String, Chosen>)> {
    #[derive(Deserialize, Serialize)]
    struct Index {
        #[serde(flatten)]
        rest: BTreeMap<String, serde_json::Value>,
        manifests: Vec<Descriptor>,
    }
    #[derive(Deserialize)]
    struct Manifest {
        config: Descriptor,
        layers: Vec<Descriptor>,
    }
    let mut index: Index =
        serde_json::from_slice(index_json).context("index.json of the archive is not valid")?;
    let mut chosen = BTreeMap::new();
    for entry in &mut index.manifests {
        if !INDEX_TYPES.contains(&entry.media_type.as_str()) {
            continue;
        }
        let name = entry
            .annotations
            .get("io.containerd.image.name")
            .cloned()
            .unwrap_or_else(|| entry.digest.clone());
        let inner: Index = blob_json(blobs, &entry.digest)?;
        let Some(one) = inner
            .manifests
            .iter()
            .find(|m| m.platform.as_ref().is_some_and(|p| p.is(platform)))
        else {
            let held: Vec<String> = inner
                .manifests
                .iter()
                .filter_map(|m| m.platform.as_ref().map(Platform::name))
                .filter(|p| p != "unknown/unknown")
                .collect();
            bail!(
                "{name} holds no {platform} image (it holds {}): build it with cargo xtask images --platform {},{platform}",
                held.join(", "),
                held.join(",")
            );
        };
        let manifest: Manifest = blob_json(blobs, &one.digest)?;
        let config: Config = blob_json(blobs, &manifest.config.digest)?;
        chosen.insert(
            name,
            Chosen {
                manifest: one.digest.clone(),
                config: manifest.config.digest.clone(),
                diff_ids: config.rootfs.diff_ids,
                layer_blobs: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
            },
        );
        entry.media_type.clone_from(&one.media_type);
        entry.digest.clone_from(&one.digest);
        entry.size = one.size;
    }
    let text = serde_json::to_vec(&index).context("index.json")?;
    Ok((text, chosen))
}

/// The archive's `manifest.json` naming, for each chosen image, its platform's config and
/// layers (the part Docker 20.10 loads); every layer must be in the archive.
pub fn rewrite_manifest(
    manifest_json: &[u8],
    chosen: &BTreeMap<String, Chosen>,
    has_blob: impl Fn(&str) -> bool,
) -> Result<Vec<u8>> {
    let mut entries: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_slice(manifest_json)
            .context("manifest.json of the archive is not valid")?;
    let path = |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    for entry in &mut entries {
        let tags: Vec<String> = entry
            .get("RepoTags")
            .and_then(|t| serde_json::from_value(t.clone()).ok())
            .unwrap_or_default();
        let Some(one) = tags.iter().find_map(|t| chosen.get(&full_name(t))) else {
            continue;
        };
        if let Some(missing) = one.layer_blobs.iter().find(|l| !has_blob(l)) {
            bail!(
                "docker save left out layer {missing} of {}; the engine may not hold that platform's content: rebuild it with cargo xtask images --platform",
                tags.join(", ")
            );
        }
        entry.insert("Config".into(), path(&one.config).into());
        entry.insert(
            "Layers".into(),
            one.layer_blobs
                .iter()
                .map(|l| path(l))
                .collect::<Vec<_>>()
                .into(),
        );
    }
    serde_json::to_vec(&entries).context("manifest.json")
}

impl ArchiveIndex {
    /// Parses the two index files of a `docker save` tar.
    pub fn parse(manifest_json: &[u8], index_json: Option<&[u8]>) -> Result<ArchiveIndex> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
        }
        #[derive(Deserialize)]
        struct Index {
            #[serde(default)]
            manifests: Vec<Descriptor>,
        }
        #[derive(Deserialize)]
        struct Descriptor {
            digest: String,
            #[serde(default)]
            annotations: std::collections::BTreeMap<String, String>,
        }
        let entries: Vec<Entry> = serde_json::from_slice(manifest_json)
            .context("manifest.json of the archive is not valid")?;
        let images = entries
            .into_iter()
            .map(|e| SavedImage {
                tags: e.repo_tags.unwrap_or_default(),
                config: config_digest(&e.config),
            })
            .collect();
        let oci = match index_json {
            None => Vec::new(),
            Some(text) => {
                let index: Index = serde_json::from_slice(text)
                    .context("index.json of the archive is not valid")?;
                index
                    .manifests
                    .into_iter()
                    .filter_map(|d| {
                        let name = d.annotations.get("io.containerd.image.name")?.clone();
                        Some(OciEntry {
                            name,
                            digest: d.digest,
                        })
                    })
                    .collect()
            }
        };
        Ok(ArchiveIndex {
            images,
            oci,
            chosen: BTreeMap::new(),
        })
    }

    /// The config digest of the image tagged `reference`.
    #[must_use]
    pub fn config_of(&self, reference: &str) -> Option<&str> {
        self.images
            .iter()
            .find(|i| i.tags.iter().any(|t| t == reference))
            .map(|i| i.config.as_str())
    }

    /// The config digest of `reference` if the archive holds it as the image whose store
    /// ID is `id`: on a graph-driver engine the ID is the config digest, on the containerd
    /// store the digest `index.json` gives the tag.
    #[must_use]
    pub fn identify(&self, reference: &str, id: &str) -> Option<String> {
        let config = self.config_of(reference)?;
        let full = full_name(reference);
        let by_store = self.oci.iter().any(|e| e.name == full && e.digest == id);
        (config == id || by_store).then(|| config.to_string())
    }
}

/// What an image config says of its layers: their diff IDs, in order.
#[derive(Deserialize)]
pub(super) struct Config {
    pub(super) rootfs: RootFs,
}

#[derive(Deserialize)]
pub(super) struct RootFs {
    pub(super) diff_ids: Vec<String>,
}

/// `blobs/sha256/<hex>` (OCI layout) or `<hex>.json` (Docker's own) as `sha256:<hex>`.
pub(super) fn config_digest(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    format!("sha256:{}", name.trim_end_matches(".json"))
}

/// A reference as the containerd store names it: Docker Hub's domain and `library/`
/// added where the reference leaves them out.
#[must_use]
pub fn full_name(reference: &str) -> String {
    match reference::split_host(reference) {
        (Some(_), _) => reference.to_string(),
        (None, path) if path.contains('/') => format!("docker.io/{reference}"),
        (None, _) => format!("docker.io/library/{reference}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEGACY: &str =
        r#"[{"Config":"aaaa.json","RepoTags":["p/a:1"],"Layers":["x/layer.tar"]}]"#;
    const OCI_MANIFEST: &str =
        r#"[{"Config":"blobs/sha256/cccc","RepoTags":["p/a:1"],"Layers":["blobs/sha256/x"]}]"#;
    const OCI_INDEX: &str = r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:iiii","size":1,"annotations":{"io.containerd.image.name":"docker.io/p/a:1","org.opencontainers.image.ref.name":"1"}}]}"#;

    #[test]
    fn a_graph_driver_archive_names_images_by_config() {
        let index = ArchiveIndex::parse(LEGACY.as_bytes(), None).unwrap();
        assert_eq!(index.config_of("p/a:1"), Some("sha256:aaaa"));
        assert_eq!(
            index.identify("p/a:1", "sha256:aaaa").as_deref(),
            Some("sha256:aaaa")
        );
        assert_eq!(index.identify("p/a:1", "sha256:bbbb"), None);
        assert_eq!(index.identify("p/b:1", "sha256:aaaa"), None);
    }

    #[test]
    fn a_containerd_store_archive_names_images_by_their_store_id_too() {
        let index =
            ArchiveIndex::parse(OCI_MANIFEST.as_bytes(), Some(OCI_INDEX.as_bytes())).unwrap();
        assert_eq!(
            index.identify("p/a:1", "sha256:iiii").as_deref(),
            Some("sha256:cccc"),
            "the store's ID identifies it, the config digest is what it records"
        );
        assert_eq!(index.identify("p/a:1", "sha256:other"), None);
    }

    #[test]
    fn references_get_the_names_the_containerd_store_gives_them() {
        assert_eq!(full_name("redis:5"), "docker.io/library/redis:5");
        assert_eq!(full_name("fate/egg:1"), "docker.io/fate/egg:1");
        assert_eq!(full_name("r.io:5000/fate/egg:1"), "r.io:5000/fate/egg:1");
        assert_eq!(full_name("localhost/egg:1"), "localhost/egg:1");
    }
}
