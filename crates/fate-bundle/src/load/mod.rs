//! Loading a bundle (`cargo xtask load`, and the loader carried in a bundle): on a host that has
//! nothing but the bundle: no FATE root, no `.env`, no image set. Every file's size is
//! checked against `bundle.json` first (and the small SBOMs whole); then all archives
//! load at once, each read once: its sha256 taken as it is decompressed straight into
//! `docker load`, its image index checked on the way. The end of every archive is held
//! back until every archive was read whole with the sha256 the manifest gives and every
//! index is as it says (a mismatch anywhere loads nothing, and the damaged files are
//! named), and the loaded IDs are checked after.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use xshell::Shell;

use crate::archive::streams::Tally;
use crate::archive::tar_pass::{self, PassError};
use crate::check;
use crate::docker::platform::same_platform;
use crate::docker::{engine, images};
use crate::manifest::{self, Archive};
use crate::process;
use crate::ui::Ui;
use crate::ui::problems::Problems;
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
        check::check_signature(ui, input, verify_key, "loaded")?;
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
    check::check_before_reading(ui, &chosen, &sboms, "loaded")?;
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
            .map_err(|e| check::damaged_files(ui, path, archive).unwrap_or(e))
            .with_context(|| format!("loading {}", path.display()))
    })
    .map(|_| ())
}

/// One pass: the file, decompressed, into `docker load`.
fn load_archive(ui: &Ui, path: &Path, archive: &Archive, log: &Path, gate: &Gate) -> Result<()> {
    let progress = Arc::new(ui.bytes(&format!("load {}", archive.file), Some(archive.size)));
    let tally = Tally::default();
    let reader = check::decompressed(path, archive, progress.clone(), tally.clone())?;
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
