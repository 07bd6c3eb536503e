//! The uploads: each blob once (asked first, `HEAD`, and skipped when the registry has
//! it; mounted from another repository of the registry that has it; else sent in chunks,
//! retried with backoff), a bounded number at once; then each image's manifests, children
//! first and the tag last, only once all its blobs are in; then each image read back.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use super::chunks;
use super::images::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Upload, sha256_of};
use super::known::Known;
use super::target::Destination;
use crate::manifest::BundledImage;
use crate::ui::ByteProgress;

/// The digest of no bytes: a blob to ask for that tells whether asking is allowed.
const EMPTY_DIGEST: &str =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const ACCEPTED: [&str; 4] = [DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX];

pub struct Pusher {
    pub client: Client,
    /// The chunked uploads' HTTP client, and the registry's `SCHEME://HOST[:PORT]`.
    pub http: reqwest::Client,
    pub base: String,
    pub ui: crate::ui::Ui,
    /// Where blobs were last seen in this registry (to mount from).
    pub known: tokio::sync::Mutex<Known>,
    pub auth: RegistryAuth,
    pub registry: String,
    pub jobs: usize,
    pub retries: u32,
}

/// What the blob uploads did.
#[derive(Default, Debug)]
pub struct Sent {
    pub uploaded: (usize, u64),
    pub mounted: usize,
    /// Blobs every repository had, and their bytes.
    pub present: (usize, u64),
}

/// One blob, and the repositories that need it.
struct Wanted {
    digest: String,
    size: u64,
    path: PathBuf,
    repositories: Vec<String>,
}

impl Pusher {
    fn reference(&self, repository: &str, tag: &str) -> Reference {
        Reference::with_tag(
            self.registry.clone(),
            repository.to_string(),
            tag.to_string(),
        )
    }

    fn by_digest(&self, repository: &str, digest: &str) -> Reference {
        Reference::with_digest(
            self.registry.clone(),
            repository.to_string(),
            digest.to_string(),
        )
    }

    /// Logs in for pushing to every repository first, and asks each for a blob: a
    /// refused login, or a registry that wants one, is named before anything is sent.
    pub async fn log_in(&self, repositories: &[&str]) -> Result<()> {
        for repository in repositories {
            let reference = self.reference(repository, "latest");
            let refused = |e: &dyn std::fmt::Display| {
                let who = match &self.auth {
                    RegistryAuth::Anonymous => "anonymously: pass --user NAME (the password on stdin or in --password-env VAR), or docker login".to_string(),
                    RegistryAuth::Basic(user, _) => format!("as {user}: check the user and password, and that {user} may push to {repository}"),
                    RegistryAuth::Bearer(_) => "with the stored token: log in again (docker login)".to_string(),
                };
                anyhow::anyhow!(
                    "the registry {} refused push access to {repository} ({e}) {who}",
                    self.registry
                )
            };
            self.client
                .auth(&reference, &self.auth, RegistryOperation::Push)
                .await
                .map_err(|e| refused(&e))?;
            let probe = self.by_digest(repository, EMPTY_DIGEST);
            self.client
                .blob_exists(&probe, EMPTY_DIGEST)
                .await
                .map_err(|e| refused(&e))?;
        }
        Ok(())
    }

    /// Whether the registry holds the image as the bundle does, whole: its tag names a
    /// manifest with the bundle's config (or an index with the bundle's digest, or with
    /// the platform's manifest), and every blob of it is there. Its result line if so.
    pub async fn holds(
        &self,
        image: &BundledImage,
        destination: &Destination,
        platform: Option<&str>,
    ) -> Option<String> {
        let tagged = self.reference(&destination.repository, &destination.tag);
        let (bytes, digest) = self
            .client
            .pull_manifest_raw(&tagged, &self.auth, &ACCEPTED)
            .await
            .ok()?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let manifests: Vec<serde_json::Value> = if let Some(children) = value.get("manifests") {
            if platform.is_some() || digest != image.id {
                return None;
            }
            let mut manifests = Vec::new();
            for child in children.as_array()? {
                let child_digest = child.get("digest")?.as_str()?;
                let reference = self.by_digest(&destination.repository, child_digest);
                let (child_bytes, _) = self
                    .client
                    .pull_manifest_raw(&reference, &self.auth, &ACCEPTED)
                    .await
                    .ok()?;
                manifests.push(serde_json::from_slice(&child_bytes).ok()?);
            }
            manifests
        } else {
            let config = value.pointer("/config/digest")?.as_str()?;
            let same_platform =
                platform.is_none_or(|p| image.platform.is_empty() || image.platform == p);
            if config != image.config || !same_platform {
                return None;
            }
            vec![value]
        };
        for manifest in &manifests {
            let config = manifest.pointer("/config/digest").and_then(|c| c.as_str());
            let layers = manifest.get("layers").and_then(|l| l.as_array())?;
            let digests = config
                .into_iter()
                .chain(layers.iter().filter_map(|l| l.get("digest")?.as_str()));
            for blob in digests {
                let reference = self.by_digest(&destination.repository, blob);
                if !matches!(self.client.blob_exists(&reference, blob).await, Ok(true)) {
                    return None;
                }
            }
        }
        Some(format!(
            "{}/{}:{}@{digest}",
            self.registry, destination.repository, destination.tag
        ))
    }

    /// Every blob of `uploads` into every repository that needs it.
    pub async fn send_blobs(
        &self,
        uploads: &[Upload],
        progress: Arc<ByteProgress>,
    ) -> Result<Sent> {
        let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
        for upload in uploads {
            for blob in &upload.blobs {
                let entry = wanted.entry(blob.digest.clone()).or_insert_with(|| Wanted {
                    digest: blob.digest.clone(),
                    size: blob.size,
                    path: blob.path.clone(),
                    repositories: Vec::new(),
                });
                if !entry.repositories.contains(&upload.destination.repository) {
                    entry
                        .repositories
                        .push(upload.destination.repository.clone());
                }
            }
        }
        // The largest first: the long uploads start at once, the small fill the gaps.
        let mut wanted: Vec<Wanted> = wanted.into_values().collect();
        wanted.sort_by_key(|w| std::cmp::Reverse(w.size));
        let results: Vec<Placed> = stream::iter(wanted.iter())
            .map(|w| self.place(w, progress.clone()))
            .buffer_unordered(self.jobs)
            .try_collect()
            .await?;
        let mut sent = Sent::default();
        for placed in results {
            if placed.present {
                sent.present.0 += 1;
                sent.present.1 += placed.size;
            }
            sent.mounted += placed.mounted;
            if placed.uploaded > 0 {
                sent.uploaded.0 += 1;
                sent.uploaded.1 += placed.uploaded;
            }
        }
        Ok(sent)
    }

    /// One blob into each of its repositories.
    async fn place(&self, wanted: &Wanted, progress: Arc<ByteProgress>) -> Result<Placed> {
        let mut placed = Placed {
            size: wanted.size,
            ..Placed::default()
        };
        let mut missing = Vec::new();
        let mut source = None;
        for repository in &wanted.repositories {
            let reference = self.by_digest(repository, &wanted.digest);
            let there = self
                .client
                .blob_exists(&reference, &wanted.digest)
                .await
                .with_context(|| {
                    format!(
                        "asking the registry {} for blob {} in {repository}",
                        self.registry, wanted.digest
                    )
                })?;
            if there {
                source.get_or_insert_with(|| repository.clone());
            } else {
                missing.push(repository.clone());
            }
        }
        placed.present = missing.is_empty();
        if source.is_none() && !missing.is_empty() {
            source = self.known_source(&wanted.digest).await;
        }
        if source.is_some() {
            progress.add(wanted.size);
        }
        for repository in missing {
            if let Some(from) = &source {
                let target = self.by_digest(&repository, &wanted.digest);
                let from_ref = self.by_digest(from, &wanted.digest);
                if self
                    .client
                    .mount_blob(&target, &from_ref, &wanted.digest)
                    .await
                    .is_ok()
                {
                    placed.mounted += 1;
                    continue;
                }
            }
            self.upload(wanted, &repository, &progress).await?;
            placed.uploaded += wanted.size;
            source.get_or_insert(repository);
        }
        if let Some(repository) = &source {
            self.known.lock().await.record(&wanted.digest, repository);
        }
        Ok(placed)
    }

    /// A repository where this user put the blob before, if the registry still has it
    /// there.
    async fn known_source(&self, digest: &str) -> Option<String> {
        let repository = self.known.lock().await.source_of(digest)?.to_string();
        let reference = self.by_digest(&repository, digest);
        matches!(self.client.blob_exists(&reference, digest).await, Ok(true)).then_some(repository)
    }

    /// Sends a blob in chunks, each retried (see [`chunks`]); a blob the registry holds
    /// once the upload failed (the failure was in the answer) counts as sent.
    async fn upload(
        &self,
        wanted: &Wanted,
        repository: &str,
        progress: &Arc<ByteProgress>,
    ) -> Result<()> {
        let reference = self.by_digest(repository, &wanted.digest);
        let uploader = chunks::Uploader {
            client: &self.client,
            http: &self.http,
            auth: &self.auth,
            base: &self.base,
            retries: self.retries,
            ui: &self.ui,
        };
        let blob = chunks::Blob {
            reference: &reference,
            repository,
            digest: &wanted.digest,
            size: wanted.size,
            path: &wanted.path,
        };
        let Err(error) = uploader.send(&blob, progress).await else {
            return Ok(());
        };
        if matches!(
            self.client.blob_exists(&reference, &wanted.digest).await,
            Ok(true)
        ) {
            return Ok(());
        }
        bail!(
            "uploading blob {} ({} bytes) to {}/{repository} failed: {error:#}; run the same command again: what is in the registry is not sent again",
            wanted.digest,
            wanted.size,
            self.registry
        );
    }

    /// The image's manifests, children first, the tag last.
    pub async fn send_manifests(&self, upload: &Upload) -> Result<()> {
        let d = &upload.destination;
        let count = upload.manifests.len();
        for (i, manifest) in upload.manifests.iter().enumerate() {
            let reference = if i + 1 == count {
                self.reference(&d.repository, &d.tag)
            } else {
                self.by_digest(&d.repository, &manifest.digest)
            };
            let content_type = manifest
                .media_type
                .parse()
                .context("a manifest's media type")?;
            self.client
                .push_manifest_raw(&reference, manifest.bytes.clone(), content_type)
                .await
                .with_context(|| {
                    format!(
                        "pushing the manifest of {}/{}:{} ({})",
                        self.registry, d.repository, d.tag, manifest.digest
                    )
                })?;
        }
        Ok(())
    }

    /// Reads the tag back: the digest pushed, and each platform's config the bundle's.
    pub async fn read_back(&self, upload: &Upload) -> Result<String> {
        let d = &upload.destination;
        let tagged = self.reference(&d.repository, &d.tag);
        let (bytes, digest) = self
            .client
            .pull_manifest_raw(&tagged, &self.auth, &ACCEPTED)
            .await
            .with_context(|| {
                format!("reading back {}/{}:{}", self.registry, d.repository, d.tag)
            })?;
        let expected = upload
            .manifests
            .last()
            .map(|m| m.digest.clone())
            .unwrap_or_default();
        if digest != expected || sha256_of(&bytes) != expected {
            bail!(
                "{}/{}:{} reads back as {digest}, not the {expected} pushed: another push to that tag ran at the same time? push again",
                self.registry,
                d.repository,
                d.tag
            );
        }
        let mut configs = Vec::new();
        for manifest in &upload.manifests {
            let value: serde_json::Value = serde_json::from_slice(&manifest.bytes)?;
            if let Some(config) = value.pointer("/config/digest").and_then(|c| c.as_str()) {
                let child = self.by_digest(&d.repository, &manifest.digest);
                let (child_bytes, _) = self
                    .client
                    .pull_manifest_raw(&child, &self.auth, &ACCEPTED)
                    .await
                    .with_context(|| format!("reading back manifest {}", manifest.digest))?;
                if sha256_of(&child_bytes) != manifest.digest {
                    bail!("manifest {} reads back changed", manifest.digest);
                }
                configs.push(config.to_string());
            }
        }
        if configs != upload.configs {
            bail!(
                "{}/{}:{} reads back with configs {configs:?}, not the bundle's {:?}",
                self.registry,
                d.repository,
                d.tag,
                upload.configs
            );
        }
        Ok(format!(
            "{}/{}:{}@{digest}",
            self.registry, d.repository, d.tag
        ))
    }
}

#[derive(Default)]
struct Placed {
    size: u64,
    uploaded: u64,
    mounted: usize,
    /// Already in every repository that needs it.
    present: bool,
}
