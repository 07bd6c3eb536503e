//! Checking a bundle before anything of it is used: its signature, its parts, each file's
//! size and sha256 against `bundle.json`, and an archive's decompressed stream, its
//! compressed bytes counted and hashed as they are read (so an archive is checked whole in
//! the same pass that uses it). Shared by `load` (into an engine) and `registry` (into a
//! registry).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::archive::index::ArchiveIndex;
use crate::archive::members;
use crate::archive::parts::{self, Part};
use crate::archive::streams::{Compression, Tally};
use crate::manifest::{self, Archive};
use crate::signing;
use crate::ui::problems::Problems;
use crate::ui::{ByteProgress, Ui};

/// Before any archive is read: no stray part beside a split archive, every file of the
/// size `bundle.json` gives, and the small SBOMs whole. Archives are checked whole as they
/// are read (see [`Counted`]).
pub fn check_before_reading(
    ui: &Ui,
    chosen: &[(PathBuf, Archive)],
    sboms: &[(PathBuf, Part)],
    what: &str,
) -> Result<()> {
    let mut problems = Problems::new(format!("the bundle is not intact; nothing was {what}"));
    for (path, archive) in chosen {
        check_parts(path, archive, &mut problems);
    }
    for (path, file) in chosen
        .iter()
        .flat_map(|(path, archive)| files_of(path, archive))
    {
        if let Err(e) = check_size(&path, &file) {
            problems.push(format!("{}: {e:#}", path.display()));
        }
    }
    for (path, file) in sboms {
        if let Err(e) = check_file(ui, path, file) {
            problems.push(format!("{}: {e:#}", path.display()));
        }
    }
    problems.into_result()
}

/// With a key, the bundle's `bundle.json` must carry a good signature by it, checked
/// before anything else of the bundle is read; without one, a signed bundle is loaded
/// with a note that its signature was not checked.
pub fn check_signature(ui: &Ui, input: &Path, key: Option<&Path>, what: &str) -> Result<()> {
    let manifest = manifest::bundle_dir(input).join(manifest::MANIFEST);
    if let Some(key) = key {
        return signing::verify(key, &manifest)
            .with_context(|| format!("the bundle's signature does not hold; nothing was {what}"));
    }
    if signing::signature_path(&manifest).is_file() {
        ui.note(&format!(
            "note: {} is signed, but its signature was not checked: pass --verify-key KEY.pub (or set FATE_XTASK_VERIFY_KEY) to check it",
            manifest.display()
        ));
    }
    Ok(())
}

/// The files of the archive at `path` (its parts beside it, or itself), with what the
/// manifest says of each.
#[must_use]
pub fn files_of(path: &Path, archive: &Archive) -> Vec<(PathBuf, Part)> {
    archive
        .files()
        .into_iter()
        .map(|file| (path.with_file_name(&file.file), file))
        .collect()
}

/// A split archive's directory holds no numbered part the manifest does not list (a
/// part added, or left from another bundle: `cat NAME.*` would read it too).
pub fn check_parts(path: &Path, archive: &Archive, problems: &mut Problems) {
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
#[must_use]
pub fn damaged_files(ui: &Ui, path: &Path, archive: &Archive) -> Option<anyhow::Error> {
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
pub fn check_size(path: &Path, file: &Part) -> Result<u64> {
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
pub fn check_file(ui: &Ui, path: &Path, archive: &Part) -> Result<()> {
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
pub struct Counted<R> {
    pub inner: R,
    pub progress: Arc<ByteProgress>,
    pub tally: Tally,
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
pub fn is_gzip_members(path: &Path) -> Result<bool> {
    let mut head = [0u8; 14];
    let read = File::open(path)?.read(&mut head)?;
    Ok(read == head.len() && head[3] & 0x04 != 0 && &head[12..14] == b"IG")
}

/// The decompressed stream of an archive (its parts one after another), its compressed
/// bytes counted on `progress`.
pub fn decompressed(
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

/// The most that may follow the end of an archive's tar once decompressed: the rest of
/// the tar's end (zeros) and no more. (A tar reader stops at the first of its two zero
/// blocks; the compression's own end, such as the empty gzip member that ends a stream
/// whose data filled its last member, gives no bytes.)
const AFTER_THE_END: u64 = 64 << 10;

/// Reads `reader` to its end after its tar ended, so that the whole file is counted and
/// hashed: the archive's bytes are the manifest's only if all of them are.
fn read_past_the_end(reader: &mut impl Read) -> Result<()> {
    let mut rest = Vec::new();
    reader
        .take(AFTER_THE_END + 1)
        .read_to_end(&mut rest)
        .context("reading the end of the archive")?;
    if rest.len() as u64 > AFTER_THE_END || rest.iter().any(|&b| b != 0) {
        bail!("it holds data after the end of its tar: it is not an archive bundle wrote");
    }
    Ok(())
}

/// One archive read whole into `dir`: checked as it streams (its sha256 and size, its
/// index against `bundle.json`).
pub fn spool_archive(
    ui: &Ui,
    path: &Path,
    archive: &Archive,
    dir: &Path,
) -> Result<crate::archive::spool::Spooled> {
    let progress = Arc::new(ui.bytes(&format!("read {}", archive.file), Some(archive.size)));
    let tally = Tally::default();
    let mut reader = decompressed(path, archive, progress.clone(), tally.clone())?;
    let spooled = crate::archive::spool::spool(&mut reader, dir)
        .and_then(|spooled| read_past_the_end(&mut reader).map(|()| spooled))
        .map_err(|e| damaged_files(ui, path, archive).unwrap_or(e))
        .with_context(|| format!("reading {}", path.display()))?;
    let (size, sha256) = tally.result();
    if size != archive.size || sha256 != archive.sha256 {
        bail!(
            "{}: its {size} bytes have sha256 {sha256}, the manifest says {} bytes with {} (corrupted)",
            path.display(),
            archive.size,
            archive.sha256
        );
    }
    let index = ArchiveIndex::parse(&spooled.manifest_json, spooled.index_json.as_deref())?;
    if let Some(image) = manifest::missing_from(&archive.images, &index).first() {
        bail!(
            "{}: it does not hold {} with config {} that the manifest names",
            path.display(),
            image.reference,
            image.config
        );
    }
    if let Ok(progress) = Arc::try_unwrap(progress) {
        progress.finish("checked", "");
    }
    Ok(spooled)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `docker save` archive of no image, uncompressed, as `--compress none` writes it:
    /// a tar ends with two zero blocks, and a tar reader stops at the first.
    #[test]
    fn an_archive_is_counted_to_its_last_byte_and_nothing_may_follow_its_end() {
        let d = tempfile::tempdir().unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        let manifest = b"[]";
        let mut header = tar::Header::new_gnu();
        header.set_size(manifest.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "manifest.json", &manifest[..])
            .unwrap();
        let tar = builder.into_inner().unwrap();
        let ui = Ui::new(crate::ui::Progress::Plain, true, false);
        let archive_of = |bytes: &[u8]| {
            let path = d.path().join("fate.images.tar");
            std::fs::write(&path, bytes).unwrap();
            let archive = Archive {
                file: "fate.images.tar".into(),
                compression: Compression::None,
                size: bytes.len() as u64,
                sha256: hex::encode(Sha256::digest(bytes)),
                images: Vec::new(),
                parts: Vec::new(),
            };
            let spool = d.path().join("spool");
            std::fs::create_dir_all(&spool).unwrap();
            spool_archive(&ui, &path, &archive, &spool).map(|_| ())
        };
        archive_of(&tar).unwrap();
        let mut more = tar.clone();
        more.extend_from_slice(b"appended");
        let e = format!("{:#}", archive_of(&more).unwrap_err());
        assert!(e.contains("data after the end of its tar"), "{e}");
    }
}
