//! Byte streams of bundles: compression on every core, and sha256 + size of what is
//! written. (The tar itself passes through [`super::tar_pass`].)

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

impl Compression {
    /// The archive's file extension (the old names for gzip).
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => ".tar.gz",
            Compression::Zstd => ".tar.zst",
            Compression::None => ".tar",
        }
    }

    /// As `--compress` names it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        }
    }

    /// A reader of the decompressed stream.
    pub fn decoder<'a>(self, reader: impl Read + Send + 'a) -> Result<Box<dyn Read + Send + 'a>> {
        Ok(match self {
            // Also reads the several members a parallel writer may produce.
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
            Compression::Zstd => Box::new(zstd::Decoder::new(reader)?),
            Compression::None => Box::new(reader),
        })
    }
}

/// sha256 and size of what passes through, readable after the writer is gone (the
/// parallel gzip writer keeps its inner writer on another thread).
#[derive(Clone, Default)]
pub struct Tally(Arc<Mutex<(Sha256, u64)>>);

impl Tally {
    /// Counts and hashes `bytes`.
    pub fn add(&self, bytes: &[u8]) {
        let mut state = self.0.lock().expect("no writer panics");
        state.0.update(bytes);
        state.1 += bytes.len() as u64;
    }

    /// (size, sha256 hex)
    #[must_use]
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
        self.tally.add(&buf[..n]);
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
/// binaries; zstd's level 1 is smaller than gzip's level 1 at half its time, and level 3,
/// 7% smaller, takes 1.6x as long: on two cores, beside the `docker save` it compresses,
/// that is the difference between writing the bundle as fast as `docker save -o` and not.
pub const GZIP_LEVEL: i32 = 1;
pub const ZSTD_LEVEL: i32 = 1;
const ZSTD_JOB_BYTES: u32 = 512 << 10;

/// How an archive is compressed: its format, and the level for what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packing {
    pub compression: Compression,
    pub level: i32,
}

impl Packing {
    /// The bundle's levels; gzip only stores (level 0: gzip's framing and CRC, no
    /// search) what a store that keeps its layers gzip-compressed saves: compressing
    /// them again gains 1% of the size for most of the bundle's time. (zstd passes
    /// incompressible data on quickly at its level.)
    #[must_use]
    pub fn for_layers(compression: Compression, layers_compressed: bool) -> Packing {
        let level = match compression {
            Compression::Gzip if layers_compressed => 0,
            Compression::Gzip => GZIP_LEVEL,
            Compression::Zstd => ZSTD_LEVEL,
            Compression::None => 0,
        };
        Packing { compression, level }
    }
}

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

#[cfg(test)]
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
            // Jobs of 512 KiB (zstd's least): its own choice held some 20 MB more (the
            // bench's peak memory) for no speed that shows beside `docker save`.
            encoder
                .set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_BYTES))
                .context("zstd job size")?;
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
    use std::io::Read;

    #[test]
    fn gzip_stores_layers_that_are_compressed_already() {
        assert_eq!(Packing::for_layers(Compression::Gzip, true).level, 0);
        assert_eq!(
            Packing::for_layers(Compression::Gzip, false).level,
            GZIP_LEVEL
        );
        assert_eq!(
            Packing::for_layers(Compression::Zstd, true).level,
            ZSTD_LEVEL
        );
        let data: Vec<u8> = (0..300_000u32).flat_map(u32::to_le_bytes).collect();
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut z = compressor_at(Compression::Gzip, 0, file.reopen().unwrap()).unwrap();
        z.write_all(&data).unwrap();
        z.finish_stream().unwrap();
        let written = std::fs::read(file.path()).unwrap();
        assert!(written.len() >= data.len(), "stored, not compressed");
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&written[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
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
