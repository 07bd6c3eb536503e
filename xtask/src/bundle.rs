//! `cargo xtask bundle`: the offline bundle for air-gapped hosts (really compressed,
//! checksummed, with a manifest), and `cargo xtask bundle load` / `cargo xtask load`,
//! which verifies everything before loading anything.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Project;
use crate::cli::{self, Compression};
use crate::plan::{self, Command};
use crate::problems::Problems;
use crate::{docker, exec};

pub const MANIFEST: &str = "bundle.json";
const FORMAT: &str = "fate-xtask-bundle/1";

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub created: String,
    pub archives: Vec<Archive>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Archive {
    pub file: String,
    pub compression: Compression,
    pub size: u64,
    pub sha256: String,
    pub images: Vec<BundledImage>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BundledImage {
    pub reference: String,
    pub id: String,
}

impl cli::Bundle {
    pub fn run(self, project: &Project) -> Result<()> {
        if let Some(cli::BundleAction::Load(load)) = self.action {
            return load.run(project);
        }
        let Project { set, config, ui } = project;
        docker::check_engine()?;
        let out = self.out.clone().unwrap_or_else(|| default_dir(config));
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create {}", out.display()))?;

        let (third_party, fate) = archive_images(set, config);
        let mut present = docker::inspect_images(&[third_party.clone(), fate.clone()].concat());
        let mut missing = Problems::new("images to bundle are missing");
        let mut pulled = false;
        for r in &fate {
            if !present.contains_key(r) {
                missing.push(format!("{r} is not built; run: cargo xtask images"));
            }
        }
        for r in &third_party {
            if present.contains_key(r) {
                continue;
            }
            if self.no_pull {
                missing.push(format!(
                    "{r} is not present and --no-pull was given; pull or load it first"
                ));
                continue;
            }
            pulled = true;
            let line = ui.start(&format!("pull {r}"));
            let log = config.work_dir().join("logs").join("pull.log");
            match exec::run_logged(&Command::new("docker", ["pull", r.as_str()]), &log, &line) {
                Ok(()) => line.finish("done", ""),
                Err(e) => {
                    line.finish("FAILED", "");
                    missing.push(format!(
                        "cannot pull {r} (set REDIS_IMAGE/MYSQL_IMAGE in .env, or load it): {e:#}"
                    ));
                }
            }
        }
        missing.into_result()?;
        if pulled {
            present = docker::inspect_images(&[third_party.clone(), fate.clone()].concat());
        }

        // Everything is written under temporary names and renamed when all is complete.
        let mut written = PartialFiles::default();
        let mut manifest = Manifest {
            format: FORMAT.into(),
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            archives: Vec::new(),
        };
        for (name, refs) in [("third-party.images", &third_party), ("fate.images", &fate)] {
            let file = format!("{name}{}", self.compress.extension());
            let part = out.join(format!("{file}.part"));
            written.0.push(part.clone());
            let line = ui.start(&format!("save {file}"));
            let saved = save(
                refs,
                &part,
                self.compress,
                &config
                    .work_dir()
                    .join("logs")
                    .join(format!("save-{name}.log")),
            );
            let (size, sha256) = match saved {
                Ok(s) => {
                    line.finish("done", &format!(" {:.1} MB", s.0 as f64 / 1e6));
                    s
                }
                Err(e) => {
                    line.finish("FAILED", "");
                    return Err(e.context(format!("writing {}", out.join(&file).display())));
                }
            };
            manifest.archives.push(Archive {
                file,
                compression: self.compress,
                size,
                sha256,
                images: refs
                    .iter()
                    .map(|r| BundledImage {
                        reference: r.clone(),
                        id: present[r].id.clone(),
                    })
                    .collect(),
            });
        }
        let manifest_part = out.join(format!("{MANIFEST}.part"));
        written.0.push(manifest_part.clone());
        std::fs::write(
            &manifest_part,
            serde_json::to_string_pretty(&manifest)? + "\n",
        )
        .with_context(|| format!("cannot write {}", manifest_part.display()))?;
        for archive in &manifest.archives {
            let part = out.join(format!("{}.part", archive.file));
            std::fs::rename(&part, out.join(&archive.file))?;
        }
        std::fs::rename(&manifest_part, out.join(MANIFEST))?;
        written.0.clear();
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
}

/// The images of the two archives of the old recipe: the third-party ones `.env` names,
/// and the ones the image set marks for bundling (the modules).
pub fn archive_images(
    set: &crate::imageset::ImageSet,
    config: &crate::config::Config,
) -> (Vec<String>, Vec<String>) {
    let third_party = ["REDIS_IMAGE", "MYSQL_IMAGE"]
        .iter()
        .map(|k| config.value(k).to_string())
        .collect();
    let fate = set
        .build_order()
        .into_iter()
        .filter(|i| i.bundle)
        .map(|i| plan::reference(config, i))
        .collect();
    (third_party, fate)
}

/// Temporary files of an unfinished bundle, removed unless the bundle completes.
#[derive(Default)]
struct PartialFiles(Vec<PathBuf>);

impl Drop for PartialFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn default_dir(config: &crate::config::Config) -> PathBuf {
    config.work_dir().join("bundle")
}

/// Counts and hashes what passes through to the file.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// One `docker save` of `refs` (shared layers stored once), streamed through compression
/// into `path`. Returns the file's size and sha256.
fn save(
    refs: &[String],
    path: &Path,
    compression: Compression,
    log: &Path,
) -> Result<(u64, String)> {
    let mut args = vec!["save"];
    args.extend(refs.iter().map(String::as_str));
    let mut tar = exec::stream_stdout("docker", &args, log)?;
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let sink = HashingWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
        size: 0,
    };
    let disk = |e: std::io::Error| {
        anyhow::Error::new(e).context(format!(
            "cannot write {} (is the disk full?)",
            path.display()
        ))
    };
    let mut sink = match compression {
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(sink, flate2::Compression::new(3));
            copy(&mut tar, &mut enc, log)?;
            enc.finish().map_err(disk)?
        }
        Compression::Zstd => {
            let mut enc = zstd::Encoder::new(sink, 3)?;
            enc.multithread(std::thread::available_parallelism().map_or(1, |n| n.get() as u32))?;
            copy(&mut tar, &mut enc, log)?;
            enc.finish().map_err(disk)?
        }
        Compression::None => {
            let mut sink = sink;
            copy(&mut tar, &mut sink, log)?;
            sink
        }
    };
    sink.flush().map_err(disk)?;
    sink.inner.get_ref().sync_all().map_err(disk)?;
    Ok((sink.size, hex::encode(sink.hasher.finalize())))
}

/// Copies the child's output, telling a failed child (with its message) from a failed write.
fn copy(from: &mut impl Read, to: &mut impl Write, log: &Path) -> Result<()> {
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = from.read(&mut buf).map_err(|e| {
            anyhow::anyhow!(
                "docker save failed: {e}\n{}",
                exec::tail(log, exec::TAIL_LINES)
            )
        })?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n]).map_err(|e| {
            anyhow::Error::new(e).context("cannot write the archive (is the disk full?)")
        })?;
    }
}

impl cli::BundleLoad {
    pub fn run(self, project: &Project) -> Result<()> {
        let Project { config, ui, .. } = project;
        let inputs = if self.paths.is_empty() {
            vec![default_dir(config)]
        } else {
            self.paths.clone()
        };
        // Everything is checked before anything is loaded.
        let mut chosen: Vec<(PathBuf, Archive)> = Vec::new();
        for input in &inputs {
            chosen.extend(archives_of(input)?);
        }
        let mut problems = Problems::new("the bundle is not intact; nothing was loaded");
        for (path, archive) in &chosen {
            let line = ui.start(&format!("verify {}", path.display()));
            match verify(path, archive) {
                Ok(()) => line.finish("ok", ""),
                Err(e) => {
                    line.finish("BAD", "");
                    problems.push(format!("{}: {e:#}", path.display()));
                }
            }
        }
        problems.into_result()?;
        docker::check_engine()?;
        for (path, archive) in &chosen {
            let line = ui.start(&format!("load {}", path.display()));
            let log = config
                .work_dir()
                .join("logs")
                .join(format!("load-{}.log", archive.file));
            let reader = decompressed(path, archive.compression)?;
            if let Err(e) = exec::pipe_into(&Command::new("docker", ["load"]), reader, &log) {
                line.finish("FAILED", "");
                return Err(e);
            }
            line.finish("done", "");
            let refs: Vec<String> = archive.images.iter().map(|i| i.reference.clone()).collect();
            let loaded = docker::inspect_images(&refs);
            for image in &archive.images {
                match loaded.get(&image.reference) {
                    Some(info) if info.id == image.id => {
                        println!("{}\t{}", image.reference, image.id)
                    }
                    Some(info) => bail!(
                        "{} loaded as {}, but the manifest says {}",
                        image.reference,
                        info.id,
                        image.id
                    ),
                    None => bail!(
                        "{} is not present after loading {}",
                        image.reference,
                        path.display()
                    ),
                }
            }
        }
        Ok(())
    }
}

/// The archives a path names: every archive of a bundle directory, or one archive file
/// (with the manifest beside it).
fn archives_of(input: &Path) -> Result<Vec<(PathBuf, Archive)>> {
    let (dir, only) = if input.is_dir() {
        (input.to_path_buf(), None)
    } else {
        let dir = input
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| ".".into());
        (
            dir,
            input.file_name().map(|n| n.to_string_lossy().into_owned()),
        )
    };
    let manifest_path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&manifest_path).with_context(|| {
        format!(
            "cannot read {}: a bundle is loaded with the {MANIFEST} written beside its archives (cargo xtask bundle)",
            manifest_path.display()
        )
    })?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a bundle manifest", manifest_path.display()))?;
    if manifest.format != FORMAT {
        bail!(
            "{} has format {:?}; this tool reads {FORMAT}",
            manifest_path.display(),
            manifest.format
        );
    }
    let mut out = Vec::new();
    for archive in manifest.archives {
        if only.as_ref().is_none_or(|f| *f == archive.file) {
            out.push((dir.join(&archive.file), archive));
        }
    }
    if out.is_empty() {
        bail!(
            "{} lists no archive named {}",
            manifest_path.display(),
            only.unwrap_or_default()
        );
    }
    Ok(out)
}

/// Size and sha256 as the manifest says, and every image it names inside, with its ID.
fn verify(path: &Path, archive: &Archive) -> Result<()> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("{} is missing", path.display()))?
        .len();
    if size != archive.size {
        bail!(
            "size is {size} bytes, the manifest says {} (truncated or replaced)",
            archive.size
        );
    }
    let mut hasher = Sha256::new();
    let file = BufReader::with_capacity(1 << 20, File::open(path)?);
    let tee = TeeReader {
        inner: file,
        hasher: &mut hasher,
    };
    // One pass: hash the file while reading the image index inside it.
    let index = image_index(decoder(tee, archive.compression)?);
    let sha = hex::encode(hasher.finalize());
    if sha != archive.sha256 {
        bail!(
            "sha256 is {sha}, the manifest says {} (corrupted)",
            archive.sha256
        );
    }
    let index = index.context("the archive is not a docker save archive")?;
    for image in &archive.images {
        let id_hex = image.id.trim_start_matches("sha256:");
        let found = index
            .iter()
            .any(|(tags, config)| tags.contains(&image.reference) && config.contains(id_hex));
        if !found {
            bail!(
                "it does not hold {} with ID {} that the manifest names",
                image.reference,
                image.id
            );
        }
    }
    Ok(())
}

struct TeeReader<'a, R: Read> {
    inner: R,
    hasher: &'a mut Sha256,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// (RepoTags, Config) of each image in a `docker save` tar's manifest.json; reads the
/// stream to its end.
fn image_index(reader: impl Read) -> Result<Vec<(Vec<String>, String)>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        #[serde(default)]
        repo_tags: Option<Vec<String>>,
    }
    let mut tar = tar::Archive::new(reader);
    let mut index = None;
    for entry in tar.entries()? {
        let mut entry = entry?;
        if entry.path()?.as_os_str() == "manifest.json" {
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            let entries: Vec<Entry> = serde_json::from_str(&text)?;
            index = Some(
                entries
                    .into_iter()
                    .map(|e| (e.repo_tags.unwrap_or_default(), e.config))
                    .collect(),
            );
        }
    }
    let mut rest = tar.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink())?;
    index.context("no manifest.json inside")
}

fn decoder<'a>(reader: impl Read + 'a, compression: Compression) -> Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(reader)),
        Compression::Zstd => Box::new(zstd::Decoder::new(reader)?),
        Compression::None => Box::new(reader),
    })
}

fn decompressed(path: &Path, compression: Compression) -> Result<Box<dyn Read + Send>> {
    let file = BufReader::with_capacity(1 << 20, File::open(path)?);
    Ok(match compression {
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(file)),
        Compression::Zstd => Box::new(zstd::Decoder::new(file)?),
        Compression::None => Box::new(file),
    })
}
