//! `cargo xtask load` (also `bundle load`): loads an offline bundle on a host that has
//! nothing but the bundle: no FATE root, no `.env`, no image set. Every archive's size
//! and sha256 are checked against `bundle.json` before anything is loaded; each is then
//! decompressed once, straight into `docker load`, its image index checked on the way
//! (a mismatch stops the load before it completes), and the loaded IDs checked after.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use xshell::Shell;

use crate::manifest::{self, Archive, Compression};
use crate::problems::Problems;
use crate::streams::{self, PassError};
use crate::ui::{ByteProgress, Ui};
use crate::{cli, docker, engine, exec};

impl cli::BundleLoad {
    pub fn run(self, ui: &Ui, sh: &Shell) -> Result<()> {
        let inputs = if self.paths.is_empty() {
            vec![default_bundle()?]
        } else {
            self.paths.clone()
        };
        let mut chosen: Vec<(PathBuf, Archive)> = Vec::new();
        for input in &inputs {
            chosen.extend(manifest::archives_of(input)?);
        }
        let mut problems = Problems::new("the bundle is not intact; nothing was loaded");
        for (path, archive) in &chosen {
            if let Err(e) = check_file(ui, path, archive) {
                problems.push(format!("{}: {e:#}", path.display()));
            }
        }
        problems.into_result()?;
        engine::check(sh)?;
        let log_dir = std::env::temp_dir().join("fate-xtask-logs");
        for (path, archive) in &chosen {
            let log = log_dir.join(format!("load-{}.log", archive.file));
            load(ui, path, archive, &log).with_context(|| format!("loading {}", path.display()))?;
            check_loaded(sh, path, archive)?;
        }
        Ok(())
    }
}

/// A bundle in the working directory, else the one `cargo xtask bundle` writes here.
fn default_bundle() -> Result<PathBuf> {
    let here = PathBuf::from(".");
    if here.join(manifest::MANIFEST).is_file() {
        return Ok(here);
    }
    let built = crate::workspace_root().join("target/xtask/bundle");
    if built.join(manifest::MANIFEST).is_file() {
        return Ok(built);
    }
    bail!(
        "no bundle here: name its directory (the one holding {}), e.g. cargo xtask load /media/fate-bundle",
        manifest::MANIFEST
    )
}

/// Size and sha256 as the manifest says, read once, without decompressing.
fn check_file(ui: &Ui, path: &Path, archive: &Archive) -> Result<()> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("{} is missing", path.display()))?
        .len();
    if size != archive.size {
        bail!(
            "size is {size} bytes, the manifest says {} (truncated or replaced)",
            archive.size
        );
    }
    let progress = ui.bytes(&format!("check {}", archive.file), Some(size));
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        progress.add(n as u64);
    }
    let sha = hex::encode(hasher.finalize());
    if sha != archive.sha256 {
        progress.finish("BAD", "");
        bail!(
            "sha256 is {sha}, the manifest says {} (corrupted)",
            archive.sha256
        );
    }
    progress.finish("ok", "");
    Ok(())
}

/// Counts the compressed bytes read, for progress against the file's size.
struct Counted<R> {
    inner: R,
    progress: Arc<ByteProgress>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}

/// Whether a gzip file is a series of independent members with their sizes (as `bundle`
/// writes them), which decompress on every core.
fn is_gzip_members(path: &Path) -> Result<bool> {
    let mut head = [0u8; 14];
    let read = File::open(path)?.read(&mut head)?;
    Ok(read == head.len() && head[3] & 0x04 != 0 && &head[12..14] == b"IG")
}

/// The decompressed stream of an archive, its compressed bytes counted on `progress`.
fn decompressed(
    path: &Path,
    archive: &Archive,
    progress: Arc<ByteProgress>,
) -> Result<Box<dyn Read + Send>> {
    let file = BufReader::with_capacity(1 << 20, File::open(path)?);
    let counted = Counted {
        inner: file,
        progress,
    };
    if archive.compression == Compression::Gzip && is_gzip_members(path)? {
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let reader = gzp::par::decompress::ParDecompressBuilder::<gzp::deflate::Mgzip>::new()
            .num_threads(threads)
            .map_err(|e| anyhow::anyhow!("gzip on {threads} threads: {e}"))?
            .from_reader(counted);
        return Ok(Box::new(reader));
    }
    archive.compression.decoder(counted)
}

/// One pass: the file, decompressed, into `docker load`.
fn load(ui: &Ui, path: &Path, archive: &Archive, log: &Path) -> Result<()> {
    let progress = Arc::new(ui.bytes(&format!("load {}", archive.file), Some(archive.size)));
    let reader = decompressed(path, archive, progress.clone())?;
    let mut child = exec::spawn_piped(&docker::load(), log)?;
    // Progress is counted on the compressed side (`Counted`), not again here.
    let passed = streams::pass_tar(reader, &mut child.stdin, None, |index| {
        match manifest::missing_from(&archive.images, index).first() {
            Some(image) => bail!(
                "the bundle is not intact; nothing of it was loaded: it does not hold {} with ID {} that the manifest names",
                image.reference,
                image.id
            ),
            None => Ok(()),
        }
    });
    let progress = Arc::try_unwrap(progress).ok();
    let error = match passed {
        Ok(_) => match child.wait() {
            Ok(()) => {
                if let Some(progress) = progress {
                    progress.finish("done", "");
                }
                return Ok(());
            }
            Err(e) => e,
        },
        Err(e) => {
            child.abort();
            match e {
                PassError::Refused(e) | PassError::NotAnArchive(e) => e,
                PassError::Source(e) => anyhow::Error::new(e).context("cannot read the archive"),
                PassError::Sink(e) => anyhow::Error::new(e).context(format!(
                    "docker load stopped reading\n{}",
                    exec::tail(log, exec::TAIL_LINES)
                )),
            }
        }
    };
    if let Some(progress) = progress {
        progress.finish("FAILED", "");
    }
    Err(error)
}

/// Every image the manifest names is present with its ID; prints `reference\tid`.
fn check_loaded(sh: &Shell, path: &Path, archive: &Archive) -> Result<()> {
    let refs: Vec<String> = archive.images.iter().map(|i| i.reference.clone()).collect();
    let loaded = engine::inspect_images(sh, &refs);
    for image in &archive.images {
        match loaded.get(&image.reference) {
            Some(info) if info.id == image.id => println!("{}\t{}", image.reference, image.id),
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
    Ok(())
}
