//! Writing a bundle: each archive is one `docker save` compressed on every core as it
//! streams, all archives at once, each checked to hold exactly the images (by ID) that
//! its manifest names, and written beside `bundle.json`, `SHA256SUMS` and a `README`,
//! all renamed into place only when everything is complete.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::archive::index::{ArchiveIndex, full_name};
use crate::archive::parts::{self, Part};
use crate::archive::streams::{self, Packing, Tally, TallyWriter};
use crate::archive::tar_pass::{self, PassError};
use crate::docker::images::{self, LocalImages};
use crate::docker::platform::same_platform;
use crate::manifest::{self, Archive, Built, BundledImage, BundledSbom, Manifest, Updates};
use crate::process;
use crate::signing;
use crate::ui::problems::Problems;
use crate::ui::{ByteProgress, Ui};

/// A bundle to write into `out`.
pub struct Request<'a> {
    pub out: &'a Path,
    /// Each archive's name (without extension) and the images saved together into it.
    pub archives: &'a [(&'a str, Vec<String>)],
    pub packing: Packing,
    /// Archives written as numbered parts of at most this many bytes.
    pub split_size: Option<u64>,
    /// Only this platform of each image.
    pub platform: Option<&'a str>,
    /// Where each `docker save` logs.
    pub log_dir: &'a Path,
    pub sboms: &'a [Carried],
    pub signing_key: Option<&'a minisign::SecretKey>,
    /// For an update bundle: the bundle it updates and the images it does not carry.
    pub updates: Option<Updates>,
    /// The loader the bundle carries (a static executable), if any: asked for once the
    /// archives are written, so that building it overlaps writing them.
    pub loader: PendingLoader<'a>,
    /// How the images were built, recorded for whoever rebuilds them.
    pub built: Option<Built>,
}

/// Gives the path of the loader to carry (none: the bundle has none), waiting for its
/// build; its error fails the bundle.
pub type PendingLoader<'a> = Box<dyn FnOnce() -> Result<Option<PathBuf>> + 'a>;

/// An SBOM the bundle carries, as listed in `bundle.json`, with its bytes.
pub struct Carried {
    pub record: BundledSbom,
    pub text: Vec<u8>,
}

/// Writes the bundle: every archive at once, each checked to hold exactly the images
/// (by ID) `local_images` gives; the files are renamed into place only when all are
/// complete, and files an earlier bundle left there that this one has not are removed.
pub fn write(ui: &Ui, request: Request, local_images: &LocalImages) -> Result<Manifest> {
    let out = request.out;
    let mut partial = PartialFiles::default();
    let saves = archive_saves(&request, &mut partial)?;
    let archives = save_all(
        ui,
        &saves,
        local_images,
        request.platform,
        request.packing,
        out,
    )?;
    let archives = archives
        .into_iter()
        .map(|(archive, written)| {
            for (written, part) in written.iter().zip(&archive.parts) {
                partial.rename_later(&written.path, &out.join(&part.file));
            }
            archive
        })
        .collect();
    let mut manifest = Manifest::new(archives);
    manifest.sboms = request.sboms.iter().map(|s| s.record.clone()).collect();
    manifest.updates = request.updates;
    manifest.built = request.built;
    if let Some(loader) = (request.loader)()? {
        manifest.loader = Some(copy_loader(&loader, out, &mut partial)?);
    }
    write_bundle_files(
        &manifest,
        request.sboms,
        request.signing_key,
        out,
        &mut partial,
    )?;
    partial.complete()?;
    remove_stale_files(&manifest, request.signing_key.is_some(), out)?;
    Ok(manifest)
}

/// The loader copied beside the archives (as `.part` until the bundle is complete),
/// executable, with its size and sha256 for `bundle.json`.
fn copy_loader(loader: &Path, out: &Path, partial: &mut PartialFiles) -> Result<Part> {
    use std::os::unix::fs::PermissionsExt;
    let part = partial.add(out, manifest::LOADER);
    std::fs::copy(loader, &part).with_context(|| {
        format!(
            "cannot copy the loader {} into the bundle ({})",
            loader.display(),
            part.display()
        )
    })?;
    std::fs::set_permissions(&part, std::fs::Permissions::from_mode(0o755))?;
    let tally = Tally::default();
    let mut sink = TallyWriter {
        inner: std::io::sink(),
        tally: tally.clone(),
    };
    std::io::copy(&mut std::fs::File::open(&part)?, &mut sink)?;
    let (size, sha256) = tally.result();
    Ok(Part {
        file: manifest::LOADER.to_string(),
        size,
        sha256,
    })
}

/// What each archive holds, and where it is written until the bundle is complete.
fn archive_saves<'a>(
    request: &Request<'a>,
    partial: &mut PartialFiles,
) -> Result<Vec<ArchiveSave<'a>>> {
    request
        .archives
        .iter()
        .map(|(name, refs)| {
            let file = format!("{name}{}", request.packing.compression.extension());
            let target = match request.split_size {
                Some(limit) => Target::Parts {
                    dir: partial.add_dir(request.out, &format!(".{file}.parts"))?,
                    limit,
                },
                None => Target::File(partial.add(request.out, &file)),
            };
            Ok(ArchiveSave {
                target,
                log: request.log_dir.join(format!("save-{name}.log")),
                file,
                refs,
            })
        })
        .collect()
}

/// `bundle.json`, `SHA256SUMS` and the `README` (and, with a key, the signatures of the
/// first two), each written as `.part` beside the archives.
fn write_bundle_files(
    manifest: &Manifest,
    sboms: &[Carried],
    signing_key: Option<&minisign::SecretKey>,
    out: &Path,
    partial: &mut PartialFiles,
) -> Result<()> {
    let json = serde_json::to_string_pretty(manifest)? + "\n";
    let sums = manifest.sums();
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (manifest::MANIFEST.to_string(), json.clone().into_bytes()),
        (manifest::SUMS.to_string(), sums.clone().into_bytes()),
        (
            manifest::README.to_string(),
            manifest.readme(signing_key.is_some()).into_bytes(),
        ),
    ];
    files.extend(
        sboms
            .iter()
            .map(|s| (s.record.file.file.clone(), s.text.clone())),
    );
    if let Some(key) = signing_key {
        let comment = format!("fate-xtask bundle written {}", manifest.created);
        for (file, text) in [(manifest::MANIFEST, &json), (manifest::SUMS, &sums)] {
            files.push((
                format!("{file}.minisig"),
                signing::sign(key, text.as_bytes(), &comment)?.into_bytes(),
            ));
        }
    }
    for (file, text) in files {
        let part = partial.add(out, &file);
        std::fs::write(&part, text)
            .with_context(|| format!("cannot write {} (is the disk full?)", part.display()))?;
    }
    Ok(())
}

/// Files of an unfinished bundle: written as `.part` (split archives' parts in a
/// directory of their own), removed unless all complete.
#[derive(Default)]
struct PartialFiles {
    renames: Vec<(PathBuf, PathBuf)>,
    dirs: Vec<PathBuf>,
}

impl PartialFiles {
    /// Registers `dir/file` and returns the `.part` path to write it under.
    fn add(&mut self, dir: &Path, file: &str) -> PathBuf {
        let part = dir.join(format!("{file}.part"));
        self.rename_later(&part, &dir.join(file));
        part
    }

    /// Registers a file written elsewhere (in a directory of [`PartialFiles::add_dir`]).
    fn rename_later(&mut self, from: &Path, to: &Path) {
        self.renames.push((from.to_path_buf(), to.to_path_buf()));
    }

    /// Creates the empty directory `dir/name`, removed with what it holds at the end.
    fn add_dir(&mut self, dir: &Path, name: &str) -> Result<PathBuf> {
        let path = dir.join(name);
        crate::fsx::remove_if_present(&path)?;
        std::fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        self.dirs.push(path.clone());
        Ok(path)
    }

    /// Renames every file into place.
    fn complete(mut self) -> Result<()> {
        for (part, done) in std::mem::take(&mut self.renames) {
            std::fs::rename(&part, &done).with_context(|| {
                format!("cannot rename {} to {}", part.display(), done.display())
            })?;
        }
        Ok(())
    }
}

impl Drop for PartialFiles {
    fn drop(&mut self) {
        for (part, _) in &self.renames {
            let _ = std::fs::remove_file(part);
        }
        for dir in &self.dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Files an earlier bundle left in `out` that this one does not have: parts of an
/// archive now written whole or in fewer parts (`cat NAME.*` would read them), the
/// archive whole where it is now split, and signatures of a bundle now unsigned.
fn remove_stale_files(manifest: &Manifest, signed: bool, out: &Path) -> Result<()> {
    let mut stale = Vec::new();
    for archive in &manifest.archives {
        stale.extend(
            parts::strays(out, &archive.file, &archive.parts)
                .with_context(|| format!("cannot list {}", out.display()))?,
        );
        if !archive.parts.is_empty() {
            stale.push(archive.file.clone());
        }
    }
    if manifest.loader.is_none() {
        stale.push(manifest::LOADER.to_string());
    }
    if !signed {
        for file in [manifest::MANIFEST, manifest::SUMS] {
            stale.push(format!("{file}.minisig"));
        }
    }
    for entry in std::fs::read_dir(out).with_context(|| format!("cannot list {}", out.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".spdx.json") && !manifest.sboms.iter().any(|s| s.file.file == name) {
            stale.push(name);
        }
    }
    for file in stale {
        let path = out.join(file);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(anyhow::Error::new(e).context(format!(
                    "cannot remove {}, left from an earlier bundle: remove it by hand",
                    path.display()
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Where an archive is written until the bundle is complete: one file, or a directory
/// of parts of at most `limit` bytes.
enum Target {
    File(PathBuf),
    Parts { dir: PathBuf, limit: u64 },
}

/// The parts a split archive's writer wrote, readable once it is flushed.
type WrittenParts = Option<std::sync::Arc<std::sync::Mutex<Vec<parts::Written>>>>;

impl Target {
    fn path(&self) -> &Path {
        match self {
            Target::File(path) | Target::Parts { dir: path, .. } => path,
        }
    }

    /// The writer of the compressed stream.
    fn writer(&self) -> Result<(Box<dyn std::io::Write + Send>, WrittenParts)> {
        Ok(match self {
            Target::File(path) => {
                let file = File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                (Box::new(BufWriter::with_capacity(1 << 20, file)), None)
            }
            Target::Parts { dir, limit } => {
                let parts = parts::SplitWriter::new(dir, *limit);
                let written = parts.written();
                (Box::new(parts), Some(written))
            }
        })
    }
}

/// One archive to write: its images, its file name and where it is written until complete.
struct ArchiveSave<'a> {
    file: String,
    target: Target,
    log: PathBuf,
    refs: &'a [String],
}

/// Writes every archive at once: `docker save` exports all the layers before its first
/// byte (one core's work in the daemon), so one archive's export overlaps another's
/// compression. Every failure is reported, not only the first.
fn save_all(
    ui: &Ui,
    saves: &[ArchiveSave],
    local_images: &LocalImages,
    platform: Option<&str>,
    packing: Packing,
    out: &Path,
) -> Result<Vec<(Archive, Vec<parts::Written>)>> {
    Problems::each_at_once("the bundle was not written", saves, |s| {
        let to = Destination {
            target: &s.target,
            packing,
            log: &s.log,
        };
        save(ui, s.refs, local_images, platform, &to)
            .map(|(archive, written)| {
                let parts = written
                    .iter()
                    .enumerate()
                    .map(|(i, w)| Part {
                        file: parts::part_name(&s.file, i + 1, written.len()),
                        size: w.size,
                        sha256: w.sha256.clone(),
                    })
                    .collect();
                let archive = Archive {
                    file: s.file.clone(),
                    parts,
                    ..archive
                };
                (archive, written)
            })
            .with_context(|| format!("writing {}", out.join(&s.file).display()))
    })
}

/// Where one archive is written, how, and the log of its `docker save`.
struct Destination<'a> {
    target: &'a Target,
    packing: Packing,
    log: &'a Path,
}

/// One `docker save` of `refs` (shared layers stored once) compressed into the target as
/// it streams, refused unless it holds each image with the ID `local_images` gives.
fn save(
    ui: &Ui,
    refs: &[String],
    local_images: &LocalImages,
    platform: Option<&str>,
    to: &Destination,
) -> Result<(Archive, Vec<parts::Written>)> {
    let Destination {
        target,
        packing,
        log,
    } = *to;
    let compression = packing.compression;
    let path = target.path();
    let disk = |e: std::io::Error| {
        anyhow::Error::new(e).context(format!(
            "cannot write {} (is the disk full?)",
            path.display()
        ))
    };
    let (inner, written) = target.writer()?;
    let tally = Tally::default();
    let writer = TallyWriter {
        inner,
        tally: tally.clone(),
    };
    let mut sink = streams::compressor_at(compression, packing.level, writer)?;
    let source = process::stream_stdout(&images::save(refs), log)?;
    let total = refs.iter().map(|r| local_images[r].size).sum();
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let name = name.trim_end_matches(".part").trim_end_matches(".parts");
    let progress = ui.bytes(
        &format!("save {}", name.trim_start_matches('.')),
        Some(total),
    );
    let passed = tar_pass::pass_tar(&source, &mut sink, Some(&progress), platform, |index| {
        bundled_images(refs, local_images, platform, index).map(|_| ())
    });
    let failed = |progress: ByteProgress| progress.finish("FAILED", "");
    let images = match passed {
        Ok(index) => bundled_images(refs, local_images, platform, &index)?,
        Err(e) => {
            failed(progress);
            return Err(match e {
                _ if process::interrupted() => anyhow::anyhow!(
                    "stopped by {}; the bundle was not written",
                    process::signal_name()
                ),
                PassError::Sink(e) => disk(e),
                PassError::Refused(e) | PassError::NotAnArchive(e) => e,
                PassError::Source(e) => anyhow::anyhow!(
                    "docker save failed: {e}\n{}",
                    process::tail(log, process::TAIL_LINES)
                ),
            });
        }
    };
    drop(source);
    sink.finish_stream().map_err(disk)?;
    let (size, sha256) = tally.result();
    progress.finish("done", &format!(" {}", crate::ui::human_size(size)));
    let written = written.map_or_else(Vec::new, |w| w.lock().expect("no writer panics").clone());
    Ok((
        Archive {
            file: String::new(),
            compression,
            size,
            sha256,
            images,
            parts: Vec::new(),
        },
        written,
    ))
}

/// Each image of `refs` as the archive holds it, identified by the ID the engine gave
/// it before the save (so an image rebuilt or retagged meanwhile is refused), with the
/// config digest that names it on every store; with `platform`, the image of that
/// platform (chosen out of a multi-platform image, or the image itself if it is that
/// platform's).
fn bundled_images(
    refs: &[String],
    local_images: &LocalImages,
    platform: Option<&str>,
    index: &ArchiveIndex,
) -> Result<Vec<BundledImage>> {
    refs.iter()
        .map(|r| {
            let info = &local_images[r];
            let Some(config) = index.identify(r, &info.id) else {
                bail!(
                    "docker save did not give {r} with ID {} (was it rebuilt or retagged meanwhile?); run the bundle again",
                    info.id
                );
            };
            let mut image = BundledImage::of(r, info, config);
            if let Some(chosen) = index.chosen.get(&full_name(r)) {
                image.id.clone_from(&chosen.manifest);
                image.platform = platform.unwrap_or_default().to_string();
                image.layers.clone_from(&chosen.diff_ids);
            }
            if let Some(wanted) = platform
                && !same_platform(&image.platform, wanted)
            {
                // The image set's name of an image is its repository's last part.
                let name = r.rsplit('/').next().unwrap_or(r);
                let name = name.split(':').next().unwrap_or(name);
                bail!(
                    "{r} is built for {} only, not {wanted}: build it for {wanted} (cargo xtask images {name} --platform {wanted}, or on the containerd image store --platform {},{wanted}; an image the image set does not build: docker pull --platform {wanted} {r}) and bundle again",
                    image.platform,
                    image.platform
                );
            }
            Ok(image)
        })
        .collect()
}
