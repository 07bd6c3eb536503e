//! Loading a bundle (`cargo xtask load`, and the loader carried in a bundle): on a host that has
//! nothing but the bundle: no FATE root, no `.env`, no image set. Every file's size is
//! checked against `bundle.json` first (and the small SBOMs whole); then all archives
//! load at once, each read once: its sha256 taken as it is decompressed straight into
//! `docker load`, its image index checked on the way. The end of every archive is held
//! back until every archive was read whole with the sha256 the manifest gives and every
//! index is as it says (a mismatch anywhere loads nothing, and the damaged files are
//! named), and the loaded IDs are checked after.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use xshell::Shell;

use crate::archive::members;
use crate::archive::parts::{self, Part};
use crate::archive::streams::{Compression, Tally};
use crate::archive::tar_pass::{self, PassError};
use crate::docker::platform::same_platform;
use crate::docker::{engine, images};
use crate::manifest::{self, Archive};
use crate::process;
use crate::signing;
use crate::ui::problems::Problems;
use crate::ui::{ByteProgress, Ui};
use crate::update;

mod gate;
mod partial;
mod turns;

use gate::Gate;
pub use partial::Partial;

/// Where a verifying key is named when `--verify-key` is not given.
pub const VERIFY_KEY_ENV: &str = "FATE_XTASK_VERIFY_KEY";

/// The key to check signatures with: the one named, else [`VERIFY_KEY_ENV`]'s.
#[must_use]
pub fn verify_key(named: Option<PathBuf>) -> Option<PathBuf> {
    named
        .or_else(|| std::env::var_os(VERIFY_KEY_ENV).map(PathBuf::from))
        .filter(|k| !k.as_os_str().is_empty())
}

/// Loads the bundles at `inputs` (each a bundle's directory or its `bundle.json`),
/// checked first against `verify_key` when one is given; prints `reference\tid` per image.
///
/// An update bundle whose base this host lacks loads nothing, naming the bundle to load
/// first; with `allow_partial`, what it carries loads and the load ends in [`Partial`].
pub fn load(
    ui: &Ui,
    sh: &Shell,
    inputs: &[PathBuf],
    verify_key: Option<&Path>,
    allow_partial: bool,
) -> Result<()> {
    let mut chosen: Vec<(PathBuf, Archive)> = Vec::new();
    let mut updates = Vec::new();
    let mut sboms = Vec::new();
    for input in inputs {
        check_signature(ui, input, verify_key)?;
        let read = manifest::archives_of(input)?;
        chosen.extend(read.archives);
        sboms.extend(read.sboms);
        updates.extend(read.updates);
    }
    // The engine is asked while the archives are read.
    let engine = std::thread::spawn(|| {
        Shell::new()
            .map_err(Into::into)
            .and_then(|sh| engine::check(&sh))
    });
    let mut problems = Problems::new("the bundle is not intact; nothing was loaded");
    for (path, archive) in &chosen {
        check_parts(path, archive, &mut problems);
    }
    // Archives are checked whole as they load (their ends held back until they
    // are); here only their sizes, and the small SBOMs whole.
    for (path, file) in chosen
        .iter()
        .flat_map(|(path, archive)| files_of(path, archive))
    {
        if let Err(e) = check_size(&path, &file) {
            problems.push(format!("{}: {e:#}", path.display()));
        }
    }
    for (path, file) in sboms {
        if let Err(e) = check_file(ui, &path, &file) {
            problems.push(format!("{}: {e:#}", path.display()));
        }
    }
    problems.into_result()?;
    let server = engine.join().expect("the engine check does not panic")?;
    let needed = update::still_needed(sh, &updates);
    if !needed.is_empty() && !allow_partial {
        bail!(
            "{}\nnothing was loaded: load that bundle first, then this one (or pass --allow-partial to load only what this one carries)",
            update::describe(&needed)
        );
    }
    warn_of_other_platforms(ui, &server, &chosen);
    // One load into an engine at a time: two loads of one image at once make the
    // containerd store refuse one of them ("already exists").
    let _lock = turns::lock_engine(ui)?;
    load_all(ui, &chosen)?;
    check_loaded(sh, &chosen)?;
    if !needed.is_empty() {
        return Err(Partial(format!(
            "{}\nwhat this bundle carries was loaded (--allow-partial), but this host does not hold the release: load that bundle, then this one again",
            update::describe(&needed)
        ))
        .into());
    }
    Ok(())
}

/// With a key, the bundle's `bundle.json` must carry a good signature by it, checked
/// before anything else of the bundle is read; without one, a signed bundle is loaded
/// with a note that its signature was not checked.
fn check_signature(ui: &Ui, input: &Path, key: Option<&Path>) -> Result<()> {
    let manifest = manifest::bundle_dir(input).join(manifest::MANIFEST);
    if let Some(key) = key {
        return signing::verify(key, &manifest)
            .context("the bundle's signature does not hold; nothing was loaded");
    }
    if signing::signature_path(&manifest).is_file() {
        ui.note(&format!(
            "note: {} is signed, but its signature was not checked: pass --verify-key KEY.pub (or set FATE_XTASK_VERIFY_KEY) to check it",
            manifest.display()
        ));
    }
    Ok(())
}

/// Loads every archive at once: `docker load` reads its input quickly, then works alone
/// on it, so one archive's decompression overlaps another's load. Every failure is
/// reported, not only the first.
fn load_all(ui: &Ui, chosen: &[(PathBuf, Archive)]) -> Result<()> {
    // No FATE root to log under: this user's own state directory.
    let (log_dir, instead) = process::private::state_dir("logs")?;
    if let Some(why) = instead {
        ui.note(&format!("logs go to {} ({why})", log_dir.display()));
    }
    let gate = &Gate::new(chosen.len());
    Problems::each_at_once("loading the bundle failed", chosen, |(path, archive)| {
        let log = log_dir.join(format!("load-{}.log", archive.file));
        let loaded = load_archive(ui, path, archive, &log, gate);
        if loaded.is_err() {
            // The others stop at the gate, if they have not passed it.
            gate.refuse();
        }
        loaded
            .map_err(|e| damaged_files(ui, path, archive).unwrap_or(e))
            .with_context(|| format!("loading {}", path.display()))
    })
    .map(|_| ())
}

/// The files of the archive at `path` (its parts beside it, or itself), with what the
/// manifest says of each.
fn files_of(path: &Path, archive: &Archive) -> Vec<(PathBuf, Part)> {
    archive
        .files()
        .into_iter()
        .map(|file| (path.with_file_name(&file.file), file))
        .collect()
}

/// A split archive's directory holds no numbered part the manifest does not list (a
/// part added, or left from another bundle: `cat NAME.*` would read it too).
fn check_parts(path: &Path, archive: &Archive, problems: &mut Problems) {
    if archive.parts.is_empty() {
        return;
    }
    let dir = manifest::bundle_dir(path);
    match parts::strays(&dir, &archive.file, &archive.parts) {
        Ok(strays) => {
            for stray in strays {
                problems.push(format!(
                    "{}: not a part of this bundle ({} lists {} parts of {}, {} to {}): remove it, or copy the bundle again",
                    dir.join(&stray).display(),
                    manifest::MANIFEST,
                    archive.parts.len(),
                    archive.file,
                    archive.parts[0].file,
                    archive.parts[archive.parts.len() - 1].file,
                ));
            }
        }
        Err(e) => problems.push(format!("cannot list {}: {e}", dir.display())),
    }
}

/// After a failed load: which files of the archive are not as the manifest says, if
/// any (the failure then was theirs), each named with what is wrong.
fn damaged_files(ui: &Ui, path: &Path, archive: &Archive) -> Option<anyhow::Error> {
    let damaged: Vec<String> = files_of(path, archive)
        .into_iter()
        .filter_map(|(path, file)| {
            check_file(ui, &path, &file)
                .err()
                .map(|e| format!("{}: {e:#}", path.display()))
        })
        .collect();
    (!damaged.is_empty()).then(|| {
        anyhow::anyhow!(
            "the bundle is not intact; nothing was loaded:\n  {}",
            damaged.join("\n  ")
        )
    })
}

/// The size the manifest says.
fn check_size(path: &Path, file: &Part) -> Result<u64> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("{} is missing", path.display()))?
        .len();
    if size != file.size {
        bail!(
            "size is {size} bytes, the manifest says {} (truncated or replaced)",
            file.size
        );
    }
    Ok(size)
}

/// Size and sha256 as the manifest says, read once, without decompressing.
fn check_file(ui: &Ui, path: &Path, archive: &Part) -> Result<()> {
    let size = check_size(path, archive)?;
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

/// Counts and hashes the compressed bytes read: progress against the file's size, and
/// its size and sha256 once read whole.
struct Counted<R> {
    inner: R,
    progress: Arc<ByteProgress>,
    tally: Tally,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        self.tally.add(&buf[..n]);
        Ok(n)
    }
}

/// Whether a gzip file is a series of members that record their sizes (as `bundle`
/// writes them), which decompress on every core.
fn is_gzip_members(path: &Path) -> Result<bool> {
    let mut head = [0u8; 14];
    let read = File::open(path)?.read(&mut head)?;
    Ok(read == head.len() && head[3] & 0x04 != 0 && &head[12..14] == b"IG")
}

/// The decompressed stream of an archive (its parts one after another), its compressed
/// bytes counted on `progress`.
fn decompressed(
    path: &Path,
    archive: &Archive,
    progress: Arc<ByteProgress>,
    tally: Tally,
) -> Result<Box<dyn Read + Send>> {
    let files: Vec<PathBuf> = files_of(path, archive)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let first = files[0].clone();
    let file = BufReader::with_capacity(1 << 20, parts::Concatenated::open(files));
    let counted = Counted {
        inner: file,
        progress,
        tally,
    };
    if archive.compression == Compression::Gzip && is_gzip_members(&first)? {
        return Ok(Box::new(members::Members::new(counted)));
    }
    archive.compression.decoder(counted)
}

/// One pass: the file, decompressed, into `docker load`.
fn load_archive(ui: &Ui, path: &Path, archive: &Archive, log: &Path, gate: &Gate) -> Result<()> {
    let progress = Arc::new(ui.bytes(&format!("load {}", archive.file), Some(archive.size)));
    let tally = Tally::default();
    let reader = decompressed(path, archive, progress.clone(), tally.clone())?;
    let mut child = process::spawn_piped(&images::load(), log)?;
    // Progress is counted on the compressed side (`Counted`), not again here. At the end
    // of the stream, the file read whole must be the one the manifest names.
    let passed = tar_pass::pass_tar(reader, &mut child.stdin, None, None, |index| {
        if let Some(image) = manifest::missing_from(&archive.images, index).first() {
            // The caller refuses the gate for the others.
            bail!(
                "the bundle is not intact; nothing of it was loaded: it does not hold {} with config {} that the manifest names",
                image.reference,
                image.config
            );
        }
        let (size, sha256) = tally.result();
        if size != archive.size || sha256 != archive.sha256 {
            bail!(
                "the bundle is not intact; nothing of it was loaded: its {size} bytes have sha256 {sha256}, the manifest says {} bytes with {} (corrupted)",
                archive.size,
                archive.sha256
            );
        }
        gate.pass()
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
                _ if process::interrupted() => anyhow::anyhow!(
                    "stopped by {} before the archive was loaded whole (docker load loads nothing of an archive it did not read to its end)",
                    process::signal_name()
                ),
                PassError::Refused(e) | PassError::NotAnArchive(e) => e,
                PassError::Source(e) => anyhow::Error::new(e).context("cannot read the archive"),
                PassError::Sink(e) => anyhow::anyhow!(
                    "docker load stopped reading its input ({e}); its log ends:\n{}",
                    process::tail(log, process::TAIL_LINES)
                ),
            }
        }
    };
    if let Some(progress) = progress {
        progress.finish("FAILED", "");
    }
    Err(error)
}

/// Images for another platform than the engine's load all the same (this host may only
/// pass them on to a registry), with a warning naming both.
fn warn_of_other_platforms(ui: &Ui, server: &engine::Server, chosen: &[(PathBuf, Archive)]) {
    let mut others: Vec<&str> = chosen
        .iter()
        .flat_map(|(_, archive)| &archive.images)
        .map(|image| image.platform.as_str())
        .filter(|p| {
            !p.is_empty() && !server.platform.is_empty() && !same_platform(p, &server.platform)
        })
        .collect();
    others.sort_unstable();
    others.dedup();
    if !others.is_empty() {
        ui.note(&format!(
            "warning: the bundle holds images for {}, and this engine runs {}: they load, but run here only under emulation (push them on to a registry, or load them on a {} host)",
            others.join(", "),
            server.platform,
            others.join("/")
        ));
    }
}

/// Every image the manifest names is present as the image of the archive (see
/// [`BundledImage::is_loaded_as`]); prints `reference\tid` with the ID this engine gave it.
fn check_loaded(sh: &Shell, chosen: &[(PathBuf, Archive)]) -> Result<()> {
    let refs: Vec<String> = chosen
        .iter()
        .flat_map(|(_, archive)| archive.images.iter().map(|i| i.reference.clone()))
        .collect();
    let loaded = engine::inspect_images(sh, &refs);
    let mut problems = Problems::new("the images loaded are not the bundle's");
    let mut lines = Vec::new();
    for (path, archive) in chosen {
        for image in &archive.images {
            match loaded.get(&image.reference) {
                Some(info) if image.is_loaded_as(info) => {
                    lines.push(format!("{}\t{}", image.reference, info.id));
                }
                Some(info) => problems.push(format!(
                    "{} is {} here (layers {}), but the bundle holds config {} (layers {}): was it retagged while loading? load the bundle again",
                    image.reference,
                    info.id,
                    info.layers.join(","),
                    image.config,
                    image.layers.join(",")
                )),
                None => problems.push(format!(
                    "{} is not present after loading {}",
                    image.reference,
                    path.display()
                )),
            }
        }
    }
    problems.into_result()?;
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
