//! A bundle pushed straight into a registry (`load --registry`), with no Docker engine:
//! the archives are read here, checked as `load` checks them (signature, sizes, sha256 of
//! every file, each image's config against `bundle.json`) before any manifest goes up,
//! and each image is read back from the registry afterwards.
//!
//! In order: the bundle's signature and sizes; the registry reached and logged in to;
//! each image asked for (one already there whole, with the bundle's config, is not sent
//! again, and its archive is only checked); the other archives spooled (decompressed,
//! raw layers compressed the same way every time, every blob checked); the blobs (each
//! once, asked first, mounted across repositories, in chunks with retries, several at
//! once); the manifests, only then; the tags read back. A line
//! `HOST/REPOSITORY:TAG@sha256:...` per image is the result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use oci_client::Client;

use crate::check;
use crate::manifest::{self, Archive, BundledImage};
use crate::ui::problems::Problems;
use crate::ui::{Ui, human_size};

pub mod access;
mod chunks;
pub mod images;
mod known;
pub mod target;
mod upload;

pub use access::Access;
pub use target::Target;
use upload::Pusher;

/// Where and how to push.
#[derive(Clone, Debug)]
pub struct Options {
    pub target: Target,
    pub access: Access,
    /// Only this platform of multi-platform images, tagged by itself.
    pub platform: Option<String>,
    /// Blobs sent at once.
    pub jobs: usize,
    /// Tries after the first for each blob.
    pub retries: u32,
}

/// Pushes the bundles at `inputs` (directories, or an archive beside its `bundle.json`)
/// into the registry `options` names; prints `HOST/REPOSITORY:TAG@DIGEST` per image.
pub fn push(
    ui: &Ui,
    inputs: &[PathBuf],
    verify_key: Option<&Path>,
    options: &Options,
) -> Result<()> {
    let mut chosen: Vec<(PathBuf, Archive)> = Vec::new();
    let mut sboms = Vec::new();
    let mut unchanged = Vec::new();
    for input in inputs {
        check::check_signature(ui, input, verify_key, "pushed")?;
        let read = manifest::archives_of(input)?;
        chosen.extend(read.archives);
        sboms.extend(read.sboms);
        unchanged.extend(read.updates.into_iter().flat_map(|u| u.unchanged));
    }
    if let Some(platform) = &options.platform {
        crate::docker::platform::check_platform(platform)
            .map_err(|why| anyhow::anyhow!("--platform {platform:?} {why}"))?;
    }
    let destinations = destinations(&options.target, &chosen)?;
    check::check_before_reading(ui, &chosen, &sboms, "pushed")?;
    let reached = access::reach(&options.target, &options.access)?;
    ui.note(&format!("pushing to {}", reached.how));
    let runtime = access::runtime()?;
    let pusher = Pusher {
        client: Client::new(reached.config),
        http: reached.http,
        base: reached.base,
        ui: ui.clone(),
        known: tokio::sync::Mutex::new(known::Known::open(&options.target.registry)),
        auth: reached.auth,
        registry: options.target.registry.clone(),
        jobs: options.jobs.max(1),
        retries: options.retries,
    };
    let mut repositories: Vec<&str> = destinations
        .iter()
        .map(|(_, d)| d.repository.as_str())
        .collect();
    repositories.sort_unstable();
    repositories.dedup();
    runtime.block_on(pusher.log_in(&repositories))?;
    check_base_is_there(ui, &runtime, &pusher, options, &unchanged)?;

    let present = runtime.block_on(present_images(
        &pusher,
        &destinations,
        options.platform.as_deref(),
    ));
    let spool_dir = access::private_temp_dir("fate-xtask-push-")?;
    let uploads = Problems::each_at_once(
        "the bundle is not intact; nothing was pushed",
        &chosen,
        |(path, archive)| uploads_of(ui, path, archive, &present, spool_dir.path(), options),
    )?
    .concat();

    let lines = runtime.block_on(send(ui, &pusher, &uploads));
    pusher.known.into_inner().save();
    let lines = lines?;
    let mut all: Vec<String> = present.into_values().chain(lines).collect();
    all.sort();
    for line in all {
        println!("{line}");
    }
    Ok(())
}

/// What goes up from one archive: nothing when the registry holds all its images already
/// (the archive is only checked), else its images the registry lacks, spooled.
fn uploads_of(
    ui: &Ui,
    path: &Path,
    archive: &Archive,
    present: &BTreeMap<String, String>,
    spool_dir: &Path,
    options: &Options,
) -> Result<Vec<images::Upload>> {
    let lacking: Vec<&BundledImage> = archive
        .images
        .iter()
        .filter(|image| !present.contains_key(&image.reference))
        .collect();
    if lacking.is_empty() {
        for (file_path, file) in check::files_of(path, archive) {
            check::check_file(ui, &file_path, &file)
                .with_context(|| file_path.display().to_string())?;
        }
        return Ok(Vec::new());
    }
    let dir = tempfile::Builder::new()
        .prefix("archive-")
        .tempdir_in(spool_dir)?;
    let spooled = check::spool_archive(ui, path, archive, dir.path())?;
    let uploads = lacking
        .into_iter()
        .map(|image| {
            let destination = options.target.destination(&image.reference)?;
            images::upload_of(&spooled, image, destination, options.platform.as_deref())
        })
        .collect::<Result<Vec<_>>>()?;
    // The spooled files stay until the push ends (the spool directory's lifetime).
    let _ = dir.keep();
    Ok(uploads)
}

/// Where each bundled image goes, checked before any work (two images to one place is a
/// `--namespace` that folds distinct paths together).
fn destinations(
    target: &Target,
    chosen: &[(PathBuf, Archive)],
) -> Result<Vec<(BundledImage, target::Destination)>> {
    let mut out: Vec<(BundledImage, target::Destination)> = Vec::new();
    for image in chosen.iter().flat_map(|(_, a)| &a.images) {
        let destination = target.destination(&image.reference)?;
        if let Some((other, _)) = out.iter().find(|(_, d)| *d == destination) {
            bail!(
                "{} and {} would both be pushed as {}: push them under their own paths (without --namespace), or in two runs",
                other.reference,
                image.reference,
                target.display(&destination)
            );
        }
        out.push((image.clone(), destination));
    }
    Ok(out)
}

/// An update bundle pushes only after the registry holds what it updates.
fn check_base_is_there(
    ui: &Ui,
    runtime: &tokio::runtime::Runtime,
    pusher: &Pusher,
    options: &Options,
    unchanged: &[BundledImage],
) -> Result<()> {
    if unchanged.is_empty() {
        return Ok(());
    }
    let base: Vec<(BundledImage, target::Destination)> = unchanged
        .iter()
        .map(|i| Ok((i.clone(), options.target.destination(&i.reference)?)))
        .collect::<Result<_>>()?;
    let there = runtime.block_on(present_images(pusher, &base, options.platform.as_deref()));
    let missing: Vec<String> = base
        .iter()
        .filter(|(i, _)| !there.contains_key(&i.reference))
        .map(|(i, d)| format!("{} (config {})", options.target.display(d), i.config))
        .collect();
    if missing.is_empty() {
        ui.note(&format!(
            "the registry holds the {} images this update leaves unchanged",
            base.len()
        ));
        return Ok(());
    }
    bail!(
        "this is an update bundle, and the registry lacks images of the bundle it updates:\n  {}\nnothing was pushed: push that bundle first (with the same --registry and --namespace), then this one",
        missing.join("\n  ")
    );
}

/// The images the registry holds whole as the bundle does, with their result lines.
async fn present_images(
    pusher: &Pusher,
    destinations: &[(BundledImage, target::Destination)],
    platform: Option<&str>,
) -> BTreeMap<String, String> {
    use futures_util::StreamExt;
    futures_util::stream::iter(destinations)
        .map(|(image, destination)| async move {
            pusher
                .holds(image, destination, platform)
                .await
                .map(|line| (image.reference.clone(), line))
        })
        .buffer_unordered(pusher.jobs)
        .filter_map(|found| async move { found })
        .collect()
        .await
}

/// Blobs, then manifests, then each tag read back.
async fn send(ui: &Ui, pusher: &Pusher, uploads: &[images::Upload]) -> Result<Vec<String>> {
    if uploads.is_empty() {
        ui.note("the registry holds every image of the bundle already: nothing was sent");
        return Ok(Vec::new());
    }
    let mut total = 0;
    let mut seen = std::collections::BTreeSet::new();
    for blob in uploads.iter().flat_map(|u| &u.blobs) {
        if seen.insert(&blob.digest) {
            total += blob.size;
        }
    }
    let progress = Arc::new(ui.bytes(&format!("push to {}", pusher.registry), Some(total)));
    let sent = pusher.send_blobs(uploads, progress.clone()).await;
    let status = if sent.is_ok() { "done" } else { "FAILED" };
    let sent = sent?;
    if let Ok(progress) = Arc::try_unwrap(progress) {
        progress.finish(
            status,
            &format!(
                ": {} blobs uploaded ({}), {} mounted, {} already there ({})",
                sent.uploaded.0,
                human_size(sent.uploaded.1),
                sent.mounted,
                sent.present.0,
                human_size(sent.present.1)
            ),
        );
    }
    for upload in uploads {
        pusher.send_manifests(upload).await?;
    }
    let mut lines = Vec::new();
    for upload in uploads {
        lines.push(pusher.read_back(upload).await?);
    }
    Ok(lines)
}
