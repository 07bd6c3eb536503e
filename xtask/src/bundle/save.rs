//! `cargo xtask bundle`: the offline bundle for air-gapped hosts. Each archive is one
//! `docker save` compressed on every core as it streams, all archives at once, each
//! checked to hold exactly the images (by ID) that its manifest names, and written beside
//! `bundle.json`, `SHA256SUMS` and a `README`, all renamed into place only when
//! everything is complete.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::bundle::archive_index::{ArchiveIndex, full_name};
use crate::bundle::bundle_json::{self, Archive, BundledImage, Manifest, Part};
use crate::bundle::streams::{self, Packing, Tally, TallyWriter};
use crate::bundle::tar_pass::{self, PassError};
use crate::bundle::{sboms, signing, split, update};
use crate::config::Config;
use crate::imageset::ImageSet;
use crate::plan::freshness::Recorded;
use crate::process::docker_argv::{self, LocalImages};
use crate::ui::Ui;
use crate::ui::problems::Problems;
use crate::{Project, cli, process, process::engine, run::lock};

impl cli::Bundle {
    pub fn run(self, project: &Project) -> Result<()> {
        let Project {
            set,
            config,
            ui,
            sh,
        } = project;
        // Images are not rebuilt while they are being bundled.
        // The key (and its password) first: a bundle that cannot be signed is not written.
        let signing_key = match &self.sign_key {
            Some(path) => Some(signing::secret_key(
                path,
                self.sign_password_env.as_deref(),
            )?),
            None => None,
        };
        let base = self.since.as_deref().map(update::Base::read).transpose()?;
        let _lock = lock::lock(&config.work_dir(), ui)?;
        engine::check(sh)?;
        let out = self.out.clone().unwrap_or_else(|| default_dir(config));
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        let groups = archive_images(set, config);
        let all: Vec<String> = groups.iter().flat_map(|(_, refs)| refs.clone()).collect();
        let mut local_images = engine::inspect_images(sh, &all);
        if self.pull_missing(project, &groups, &local_images)? {
            local_images = engine::inspect_images(sh, &all);
        }
        check_fate_images(project, &local_images)?;
        let groups = match &base {
            Some(base) => base.only_changed(ui, groups, &local_images),
            None => groups,
        };
        let carried: Vec<String> = groups.iter().flat_map(|(_, r)| r.clone()).collect();
        let sboms = sboms::of_images(set, config, &carried, &local_images)?;
        let mut partial = PartialFiles::default();
        let saves = self.archive_saves(&groups, config, &out, &mut partial)?;
        let packing = Packing::for_layers(
            self.compress,
            engine::image_store(sh)?.keeps_layers_compressed(),
        );
        let archives = save_all(
            ui,
            &saves,
            &local_images,
            self.platform.as_deref(),
            packing,
            &out,
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
        manifest.sboms = sboms.iter().map(|s| s.record.clone()).collect();
        if let Some(base) = &base {
            manifest.updates = Some(base.updates(&all, &carried));
        }
        write_bundle_files(&manifest, &sboms, signing_key.as_ref(), &out, &mut partial)?;
        partial.complete()?;
        remove_stale_files(&manifest, signing_key.is_some(), &out)?;
        for archive in &manifest.archives {
            println!(
                "{}\t{}\t{}",
                out.join(&archive.file).display(),
                archive.size,
                archive.sha256
            );
        }
        Ok(())
    }

    /// What each archive holds, and where it is written until the bundle is complete.
    fn archive_saves<'a>(
        &self,
        groups: &'a [(&str, Vec<String>)],
        config: &Config,
        out: &Path,
        partial: &mut PartialFiles,
    ) -> Result<Vec<ArchiveSave<'a>>> {
        groups
            .iter()
            .map(|(name, refs)| {
                let file = format!("{name}{}", self.compress.extension());
                let target = match self.split_size {
                    Some(limit) => Target::Parts {
                        dir: partial.add_dir(out, &format!(".{file}.parts"))?,
                        limit,
                    },
                    None => Target::File(partial.add(out, &file)),
                };
                Ok(ArchiveSave {
                    target,
                    log: config
                        .work_dir()
                        .join("logs")
                        .join(format!("save-{name}.log")),
                    file,
                    refs,
                })
            })
            .collect()
    }

    /// Builds missing third-party images the image set declares, pulls the others
    /// (unless `--no-pull`); FATE's own must be built. Returns whether anything was added.
    fn pull_missing(
        &self,
        project: &Project,
        groups: &[(&str, Vec<String>)],
        local_images: &LocalImages,
    ) -> Result<bool> {
        let mut missing = Problems::new("images to bundle are missing");
        let mut pulled = false;
        for (name, refs) in groups {
            for r in refs.iter().filter(|r| !local_images.contains_key(*r)) {
                if *name != THIRD_PARTY {
                    missing.push(format!("{r} is not built; run: cargo xtask images"));
                } else if let Some(image) = project
                    .set
                    .images
                    .iter()
                    .find(|i| project.config.reference(i) == **r)
                {
                    // The image set builds it (the example's stand-ins): build, not pull.
                    project.ui.note(&format!(
                        "{r} is not present; building it from the image set (image {})",
                        image.name
                    ));
                    // Its summary goes to stderr: stdout is for the archives.
                    cli::Images::of(vec![image.name.clone()])
                        .run_locked(project, &mut std::io::stderr())?;
                    pulled = true;
                } else if self.no_pull {
                    missing.push(format!(
                        "{r} is not present and --no-pull was given; pull or load it first"
                    ));
                } else {
                    pulled = true;
                    let line = project.ui.start(&format!("pull {r}"));
                    let log = project.config.work_dir().join("logs").join("pull.log");
                    match process::run_logged(&docker_argv::pull(r), &log, &line) {
                        Ok(()) => line.finish("done", ""),
                        Err(e) => {
                            line.finish("FAILED", "");
                            missing.push(format!(
                                "cannot pull {r} (set REDIS_IMAGE/MYSQL_IMAGE in .env, or load it): {e:#}"
                            ));
                        }
                    }
                }
            }
        }
        missing.into_result().map(|()| pulled)
    }
}

const THIRD_PARTY: &str = "third-party.images";

/// FATE's own images must be the ones this tool built from their sources.
fn check_fate_images(project: &Project, local_images: &LocalImages) -> Result<()> {
    let mut problems = Problems::new("images to bundle are not the ones built from their sources");
    let recorded = Recorded::read(&project.config.work_dir());
    let fate: Vec<(String, String)> = project
        .set
        .build_order()
        .into_iter()
        .filter(|i| i.bundle)
        .map(|i| (i.name.clone(), project.config.reference(i)))
        .collect();
    let found = fate
        .iter()
        .filter_map(|(name, r)| local_images.get(r).map(|info| (name.as_str(), r, info)));
    recorded.check(found, &mut problems);
    problems.into_result()
}

/// The two archives of the old recipe and their images: the third-party ones `.env`
/// names, and the ones the image set marks for bundling (the modules).
pub fn archive_images<'a>(set: &ImageSet, config: &Config) -> Vec<(&'a str, Vec<String>)> {
    let fate = set
        .build_order()
        .into_iter()
        .filter(|i| i.bundle)
        .map(|i| config.reference(i))
        .collect();
    vec![
        (
            THIRD_PARTY,
            vec![config.redis_image.clone(), config.mysql_image.clone()],
        ),
        ("fate.images", fate),
    ]
}

/// `bundle.json`, `SHA256SUMS` and the `README` (and, with a key, the signatures of the
/// first two), each written as `.part` beside the archives.
fn write_bundle_files(
    manifest: &Manifest,
    sboms: &[sboms::Carried],
    signing_key: Option<&minisign::SecretKey>,
    out: &Path,
    partial: &mut PartialFiles,
) -> Result<()> {
    let json = serde_json::to_string_pretty(manifest)? + "\n";
    let sums = manifest.sums();
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (bundle_json::MANIFEST.to_string(), json.clone().into_bytes()),
        (bundle_json::SUMS.to_string(), sums.clone().into_bytes()),
        (
            bundle_json::README.to_string(),
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
        for (file, text) in [(bundle_json::MANIFEST, &json), (bundle_json::SUMS, &sums)] {
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
        crate::image::staging::remove_if_present(&path)?;
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
            split::strays(out, &archive.file, &archive.parts)
                .with_context(|| format!("cannot list {}", out.display()))?,
        );
        if !archive.parts.is_empty() {
            stale.push(archive.file.clone());
        }
    }
    if !signed {
        for file in [bundle_json::MANIFEST, bundle_json::SUMS] {
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
type WrittenParts = Option<std::sync::Arc<std::sync::Mutex<Vec<split::Written>>>>;

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
                let parts = split::SplitWriter::new(dir, *limit);
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
) -> Result<Vec<(Archive, Vec<split::Written>)>> {
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
                        file: split::part_name(&s.file, i + 1, written.len()),
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

fn default_dir(config: &Config) -> PathBuf {
    config.work_dir().join("bundle")
}

/// One `docker save` of `refs` (shared layers stored once) compressed into `path` as it
/// streams, refused unless it holds each image with the ID `local_images` gives.
/// Where one archive is written, how, and the log of its `docker save`.
struct Destination<'a> {
    target: &'a Target,
    packing: Packing,
    log: &'a Path,
}

fn save(
    ui: &Ui,
    refs: &[String],
    local_images: &LocalImages,
    platform: Option<&str>,
    to: &Destination,
) -> Result<(Archive, Vec<split::Written>)> {
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
    let source = process::stream_stdout(&docker_argv::save(refs), log)?;
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
    let failed = |progress: crate::ui::ByteProgress| progress.finish("FAILED", "");
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
            let image = match index.chosen.get(&full_name(r)) {
                Some(chosen) => BundledImage {
                    reference: r.clone(),
                    id: chosen.manifest.clone(),
                    config,
                    platform: platform.unwrap_or_default().to_string(),
                    layers: chosen.diff_ids.clone(),
                },
                None => BundledImage {
                    reference: r.clone(),
                    id: info.id.clone(),
                    config,
                    platform: info.platform.clone(),
                    layers: info.layers.clone(),
                },
            };
            if let Some(wanted) = platform
                && !crate::config::same_platform(&image.platform, wanted)
            {
                bail!(
                    "{r} is built for {} only, not {wanted}: build it for {wanted} (cargo xtask images --platform {wanted}, or on the containerd image store --platform {},{wanted}) and bundle again",
                    image.platform,
                    image.platform
                );
            }
            Ok(image)
        })
        .collect()
}
