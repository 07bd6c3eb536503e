//! Byte streams of bundles: a `docker save` tar passed through once (read for its image
//! index on the way, counted for progress, forwarded to compression or to `docker
//! load`), compression on every core, and sha256 + size of what is written.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::manifest::{self, Compression};
use crate::ui::ByteProgress;

/// The image index of a `docker save` archive: (RepoTags, Config) per image.
pub type Index = Vec<(Vec<String>, String)>;

/// Where a pass-through failed: reading the source or writing the sink.
pub enum PassError {
    Source(io::Error),
    Sink(io::Error),
    /// The index check refused the archive (the rest was not forwarded).
    Refused(anyhow::Error),
    NotAnArchive(anyhow::Error),
}

/// Reads `source` and writes every byte to `sink`, remembering a sink failure.
struct Tee<'a, R, W> {
    source: R,
    sink: W,
    progress: &'a ByteProgress,
    sink_error: Option<io::Error>,
}

impl<R: Read, W: Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.source.read(buf)?;
        if let Err(e) = self.sink.write_all(&buf[..n]) {
            let kind = e.kind();
            self.sink_error = Some(e);
            return Err(io::Error::new(kind, "the sink failed"));
        }
        self.progress.add(n as u64);
        Ok(n)
    }
}

/// Forwards a `docker save` tar from `source` to `sink` in one pass, reading its
/// `manifest.json` on the way; `check` sees the index before the archive's last bytes
/// are forwarded, so a refusal leaves the sink with an incomplete archive.
pub fn pass_tar(
    source: impl Read,
    sink: impl Write,
    progress: &ByteProgress,
    check: impl Fn(&Index) -> Result<()>,
) -> Result<Index, PassError> {
    let mut tee = Tee {
        source,
        sink,
        progress,
        sink_error: None,
    };
    let result = read_index(&mut tee, &check);
    match (result, tee.sink_error.take()) {
        (_, Some(e)) => Err(PassError::Sink(e)),
        (Err(e), None) => Err(e),
        (Ok(index), None) => {
            // The end-of-archive blocks and padding.
            match io::copy(&mut tee, &mut io::sink()) {
                Ok(_) => Ok(index),
                Err(e) => Err(tee
                    .sink_error
                    .take()
                    .map_or(PassError::Source(e), PassError::Sink)),
            }
        }
    }
}

fn read_index<R: Read>(
    reader: &mut R,
    check: &impl Fn(&Index) -> Result<()>,
) -> Result<Index, PassError> {
    let mut archive = tar::Archive::new(reader);
    let mut index = None;
    for entry in archive.entries().map_err(PassError::Source)? {
        let mut entry = entry.map_err(PassError::Source)?;
        let is_manifest = entry.path().is_ok_and(|p| p.as_os_str() == "manifest.json");
        if is_manifest {
            let mut text = String::new();
            entry.read_to_string(&mut text).map_err(PassError::Source)?;
            let parsed = manifest::image_index(&text).map_err(PassError::NotAnArchive)?;
            check(&parsed).map_err(PassError::Refused)?;
            index = Some(parsed);
        }
    }
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

/// gzip level chosen by measurement (BENCHMARKS.md): level 1 on every core keeps pace
/// with `docker save` and still halves a JDK-sized image.
pub const GZIP_LEVEL: u32 = 1;
pub const ZSTD_LEVEL: i32 = 3;

struct Gzip<W: Write + Send + 'static>(
    gzp::par::compress::ParCompress<'static, gzp::deflate::Gzip, W>,
);

impl<W: Write + Send + 'static> Write for Gzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write + Send + 'static> Finish for Gzip<W> {
    fn finish_stream(mut self: Box<Self>) -> io::Result<()> {
        let mut inner = gzp::ZWriter::finish(&mut self.0).map_err(io::Error::other)?;
        inner.flush()
    }
}

struct Zstd<W: Write + Send>(zstd::Encoder<'static, W>);

impl<W: Write + Send> Write for Zstd<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write + Send> Finish for Zstd<W> {
    fn finish_stream(self: Box<Self>) -> io::Result<()> {
        self.0.finish()?.flush()
    }
}

struct Plain<W: Write + Send>(W);

impl<W: Write + Send> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write + Send> Finish for Plain<W> {
    fn finish_stream(mut self: Box<Self>) -> io::Result<()> {
        self.0.flush()
    }
}

/// gzip at `level` on every core: one standard stream.
pub fn gzip_writer<W: Write + Send + 'static>(inner: W, level: u32) -> Result<Box<dyn Finish>> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let writer = gzp::par::compress::ParCompressBuilder::<gzp::deflate::Gzip>::new()
        .num_threads(threads)
        .map_err(|e| anyhow::anyhow!("gzip on {threads} threads: {e}"))?
        .compression_level(gzp::Compression::new(level))
        .from_writer(inner);
    Ok(Box::new(Gzip(writer)))
}

/// A writer compressing into `inner` on every core.
pub fn compressor<W: Write + Send + 'static>(
    compression: Compression,
    inner: W,
) -> Result<Box<dyn Finish>> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    Ok(match compression {
        Compression::Gzip => gzip_writer(inner, GZIP_LEVEL)?,
        Compression::Zstd => {
            let mut encoder = zstd::Encoder::new(inner, ZSTD_LEVEL)?;
            encoder
                .multithread(u32::try_from(threads).unwrap_or(1))
                .context("zstd without threads")?;
            Box::new(Zstd(encoder))
        }
        Compression::None => Box::new(Plain(inner)),
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
        add("manifest.json", manifest.as_bytes());
        add("repositories", b"{}");
        builder.into_inner().unwrap()
    }

    #[test]
    fn a_tar_passes_through_whole_with_its_index() {
        let tar = docker_like_tar(r#"[{"Config":"abc.json","RepoTags":["p/a:1"]}]"#);
        let ui = crate::ui::Ui::Plain;
        let progress = ui.bytes("t", Some(tar.len() as u64));
        let mut out = Vec::new();
        let index = pass_tar(&tar[..], &mut out, &progress, |_| Ok(()))
            .ok()
            .unwrap();
        assert_eq!(out, tar);
        assert_eq!(
            index,
            vec![(vec!["p/a:1".to_string()], "abc.json".to_string())]
        );
    }

    #[test]
    fn a_refused_index_stops_before_the_archive_ends() {
        let tar = docker_like_tar(r#"[{"Config":"abc.json","RepoTags":["p/a:1"]}]"#);
        let ui = crate::ui::Ui::Plain;
        let progress = ui.bytes("t", None);
        let mut out = Vec::new();
        let result = pass_tar(&tar[..], &mut out, &progress, |_| anyhow::bail!("no"));
        assert!(matches!(result, Err(PassError::Refused(_))));
        assert!(out.len() < tar.len());
    }

    #[test]
    fn gzip_on_every_core_is_one_readable_stream() {
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
        flate2::read::GzDecoder::new(&written[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data, "a single-member reader gets everything");
    }
}
