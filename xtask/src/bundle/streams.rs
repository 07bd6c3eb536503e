//! Byte streams of bundles: a `docker save` tar passed through once (read for its image
//! index on the way, counted for progress, forwarded to compression or to `docker
//! load`), compression on every core, and sha256 + size of what is written.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::bundle::archive_index::ArchiveIndex;
use crate::bundle::bundle_json::Compression;
use crate::ui::ByteProgress;

/// Where a pass-through failed: reading the source or writing the sink.
pub enum PassError {
    Source(io::Error),
    Sink(io::Error),
    /// The index check refused the archive (the rest was not forwarded).
    Refused(anyhow::Error),
    NotAnArchive(anyhow::Error),
}

/// Follows a tar stream block by block (headers parsed by the `tar` crate) and keeps the
/// content of `index.json` and `manifest.json` (Docker writes them in that order, after
/// the blobs), without holding or re-reading anything else.
#[derive(Default)]
struct TarScan {
    header: Vec<u8>,
    /// Bytes of the current entry's data still to come, then its padding.
    data_left: u64,
    padding_left: u64,
    /// The entry being kept, and its content so far.
    keeping: Option<(Kept, Vec<u8>)>,
    oci_index: Option<Vec<u8>>,
    ended: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kept {
    Manifest,
    OciIndex,
}

/// What a chunk fed to [`TarScan`] completed.
enum Fed {
    More,
    /// `manifest.json` ended after this many bytes of the chunk.
    Manifest(usize, Vec<u8>),
}

fn at_most(left: u64, available: usize) -> usize {
    usize::try_from(left).map_or(available, |left| left.min(available))
}

impl TarScan {
    fn feed(&mut self, chunk: &[u8]) -> Result<Fed, PassError> {
        let mut at = 0;
        while at < chunk.len() && !self.ended {
            let rest = &chunk[at..];
            if self.data_left > 0 {
                let n = at_most(self.data_left, rest.len());
                self.data_left -= n as u64;
                at += n;
                if let Some((_, content)) = &mut self.keeping {
                    content.extend_from_slice(&rest[..n]);
                }
                if self.data_left == 0 {
                    match self.keeping.take() {
                        Some((Kept::Manifest, content)) => return Ok(Fed::Manifest(at, content)),
                        Some((Kept::OciIndex, content)) => self.oci_index = Some(content),
                        None => {}
                    }
                }
            } else if self.padding_left > 0 {
                let n = at_most(self.padding_left, rest.len());
                self.padding_left -= n as u64;
                at += n;
            } else {
                let n = rest.len().min(512 - self.header.len());
                self.header.extend_from_slice(&rest[..n]);
                at += n;
                if self.header.len() == 512 {
                    self.start_entry()?;
                }
            }
        }
        Ok(Fed::More)
    }

    fn start_entry(&mut self) -> Result<(), PassError> {
        let block = std::mem::take(&mut self.header);
        if block.iter().all(|b| *b == 0) {
            self.ended = true;
            return Ok(());
        }
        let header = tar::Header::from_byte_slice(&block);
        let size = header.entry_size().map_err(|e| {
            PassError::NotAnArchive(anyhow::Error::new(e).context("a bad tar header"))
        })?;
        self.data_left = size;
        self.padding_left = (512 - size % 512) % 512;
        let kept = match header.path() {
            Ok(p) if p.as_os_str() == "manifest.json" => Some(Kept::Manifest),
            Ok(p) if p.as_os_str() == "index.json" => Some(Kept::OciIndex),
            _ => None,
        };
        if let Some(kept) = kept {
            if size == 0 {
                return Err(PassError::NotAnArchive(anyhow::anyhow!(
                    "its {} is empty",
                    if kept == Kept::Manifest {
                        "manifest.json"
                    } else {
                        "index.json"
                    }
                )));
            }
            self.keeping = Some((kept, Vec::new()));
        }
        Ok(())
    }
}

/// Forwards a `docker save` tar from `source` to `sink` in one pass, reading its
/// `index.json` and `manifest.json` on the way; `check` sees the index before any byte
/// after `manifest.json` is forwarded, so a refusal leaves the sink with an incomplete
/// archive.
pub fn pass_tar(
    mut source: impl Read,
    mut sink: impl Write,
    progress: Option<&ByteProgress>,
    check: impl Fn(&ArchiveIndex) -> Result<()>,
) -> Result<ArchiveIndex, PassError> {
    let mut scan = TarScan::default();
    let mut index = None;
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PassError::Source(e)),
        };
        let chunk = &buf[..n];
        let mut rest = chunk;
        if let Fed::Manifest(end, content) = scan.feed(chunk)? {
            sink.write_all(&chunk[..end]).map_err(PassError::Sink)?;
            rest = &chunk[end..];
            let parsed = ArchiveIndex::parse(&content, scan.oci_index.as_deref())
                .map_err(PassError::NotAnArchive)?;
            check(&parsed).map_err(PassError::Refused)?;
            index = Some(parsed);
            scan.feed(rest)?;
        }
        sink.write_all(rest).map_err(PassError::Sink)?;
        if let Some(progress) = progress {
            progress.add(n as u64);
        }
    }
    sink.flush().map_err(PassError::Sink)?;
    index.ok_or_else(|| PassError::NotAnArchive(anyhow::anyhow!("it has no manifest.json")))
}

/// sha256 and size of what passes through, readable after the writer is gone (the
/// parallel gzip writer keeps its inner writer on another thread).
#[derive(Clone, Default)]
pub struct Tally(Arc<Mutex<(Sha256, u64)>>);

impl Tally {
    /// (size, sha256 hex)
    pub fn result(&self) -> (u64, String) {
        let state = self.0.lock().expect("no writer panics");
        (state.1, hex::encode(state.0.clone().finalize()))
    }
}

/// Counts and hashes what it writes to `inner`.
pub struct TallyWriter<W: Write> {
    pub inner: W,
    pub tally: Tally,
}

impl<W: Write> Write for TallyWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let mut state = self.tally.0.lock().expect("no writer panics");
        state.0.update(&buf[..n]);
        state.1 += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A compressing writer that must be finished to complete its stream.
pub trait Finish: Write + Send {
    fn finish_stream(self: Box<Self>) -> io::Result<()>;
}

/// Levels chosen by measurement (BENCHMARKS.md, `cargo xtask bench --only bundle`):
/// libdeflate's level 1 already writes under half the raw size, and each higher level
/// costs far more time than the 1-2% it saves on images that are mostly jars and
/// binaries; zstd's level 3 is smaller than any gzip level at a third of gzip's time,
/// while level 6 doubles the time for 3% less.
pub const GZIP_LEVEL: i32 = 1;
pub const ZSTD_LEVEL: i32 = 3;

/// A compressing writer and how to complete its stream.
struct Finishing<W> {
    writer: W,
    finish: fn(W) -> io::Result<()>,
}

impl<W: Write> Write for Finishing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

impl<W: Write + Send> Finish for Finishing<W> {
    fn finish_stream(self: Box<Self>) -> io::Result<()> {
        (self.finish)(self.writer)
    }
}

/// A writer compressing into `inner` on every core, at the level chosen for bundles.
pub fn compressor<W: Write + Send + 'static>(
    compression: Compression,
    inner: W,
) -> Result<Box<dyn Finish>> {
    let level = match compression {
        Compression::Gzip => GZIP_LEVEL,
        Compression::Zstd => ZSTD_LEVEL,
        Compression::None => 0,
    };
    compressor_at(compression, level, inner)
}

/// A writer compressing into `inner` at `level` on every core: gzip as a series of
/// standard gzip members (libdeflate), as `gunzip`, `docker load` and every multi-member
/// gzip reader read them; zstd as one frame.
pub fn compressor_at<W: Write + Send + 'static>(
    compression: Compression,
    level: i32,
    inner: W,
) -> Result<Box<dyn Finish>> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    Ok(match compression {
        Compression::Gzip => {
            let level = u32::try_from(level).context("gzip levels are 0 to 12")?;
            let writer = gzp::par::compress::ParCompressBuilder::<gzp::deflate::Mgzip>::new()
                .num_threads(threads)
                .map_err(|e| anyhow::anyhow!("gzip on {threads} threads: {e}"))?
                .compression_level(gzp::Compression::new(level))
                .from_writer(inner);
            Box::new(Finishing {
                writer,
                finish: |mut writer| {
                    let mut inner = gzp::ZWriter::finish(&mut writer).map_err(io::Error::other)?;
                    inner.flush()
                },
            })
        }
        Compression::Zstd => {
            let mut encoder = zstd::Encoder::new(inner, level)?;
            encoder
                .multithread(u32::try_from(threads).unwrap_or(1))
                .context("zstd without threads")?;
            Box::new(Finishing {
                writer: encoder,
                finish: |encoder| encoder.finish()?.flush(),
            })
        }
        Compression::None => Box::new(Finishing {
            writer: inner,
            finish: |mut inner| inner.flush(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker_like_tar(manifest: &str) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, data).unwrap();
        };
        add("layer/layer.tar", &[7u8; 5000]);
        add(
            "index.json",
            br#"{"manifests":[{"digest":"sha256:iii","annotations":{"io.containerd.image.name":"docker.io/p/b:1"}}]}"#,
        );
        add("manifest.json", manifest.as_bytes());
        add("repositories", b"{}");
        builder.into_inner().unwrap()
    }

    #[test]
    fn a_tar_passes_through_whole_with_its_index() {
        let tar = docker_like_tar(r#"[{"Config":"abc.json","RepoTags":["p/a:1"]}]"#);
        let ui = crate::ui::Ui::plain();
        let progress = ui.bytes("t", Some(tar.len() as u64));
        let mut out = Vec::new();
        let index = pass_tar(&tar[..], &mut out, Some(&progress), |_| Ok(()))
            .ok()
            .unwrap();
        assert_eq!(out, tar);
        assert_eq!(index.config_of("p/a:1"), Some("sha256:abc"));
        assert_eq!(
            index.oci[0].name, "docker.io/p/b:1",
            "index.json is read on the way"
        );
    }

    #[test]
    fn a_refused_index_stops_before_the_archive_ends() {
        let tar = docker_like_tar(r#"[{"Config":"abc.json","RepoTags":["p/a:1"]}]"#);
        let ui = crate::ui::Ui::plain();
        let progress = ui.bytes("t", None);
        let mut out = Vec::new();
        let result = pass_tar(&tar[..], &mut out, Some(&progress), |_| anyhow::bail!("no"));
        assert!(matches!(result, Err(PassError::Refused(_))));
        assert!(out.len() < tar.len());
    }

    #[test]
    fn gzip_on_every_core_reads_back_as_written() {
        let data: Vec<u8> = (0..3_000_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let tally = Tally::default();
        let file = tempfile::NamedTempFile::new().unwrap();
        let writer = TallyWriter {
            inner: file.reopen().unwrap(),
            tally: tally.clone(),
        };
        let mut z = compressor(Compression::Gzip, writer).unwrap();
        z.write_all(&data).unwrap();
        z.finish_stream().unwrap();
        let written = std::fs::read(file.path()).unwrap();
        assert_eq!(tally.result().0, written.len() as u64);
        assert!(written.len() < data.len() / 2);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&written[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }
}
