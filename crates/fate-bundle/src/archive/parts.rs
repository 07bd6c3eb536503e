//! Archives split for removable media (`bundle --split-size`): an archive's compressed
//! stream is written as numbered parts of at most SIZE bytes (`fate.images.tar.gz.001`,
//! `.002`, ...: names that sort in order, so `cat fate.images.tar.gz.* | docker load`
//! reads them whole), each with its own size and sha256 in `bundle.json` and
//! `SHA256SUMS`; `load` reads them back in order as one stream, never reassembled on disk.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use serde::{Deserialize, Serialize};

/// A file of the bundle with its size and sha256: a numbered part of a split archive,
/// or a small file the manifest lists (an SBOM).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Part {
    pub file: String,
    pub size: u64,
    pub sha256: String,
}

/// The smallest part: smaller ones only make thousands of files.
pub const MIN_SPLIT: u64 = 1 << 20;

/// A size as people write it: `4GiB`, `700MB`, `1MiB`, `4G` (binary, as `split -b`
/// reads it), or plain bytes; at least [`MIN_SPLIT`].
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let unit_bytes: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000_u64.pow(2),
        "gb" => 1000_u64.pow(3),
        "tb" => 1000_u64.pow(4),
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?}; write a size such as 4GiB, 700MB or 1MiB"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size; write one such as 4GiB, 700MB or 1MiB"))?;
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "sizes far below 2^52 bytes; the fraction of a byte is dropped"
    )]
    let bytes = (value * unit_bytes as f64).floor() as u64;
    if bytes < MIN_SPLIT {
        return Err(format!(
            "{text:?} is {bytes} bytes; parts must be at least 1MiB"
        ));
    }
    Ok(bytes)
}

/// The name of part `index` (from 1) of `count` parts of `file`: numbered with at least
/// three digits, all of one width, so that they sort in order.
#[must_use]
pub fn part_name(file: &str, index: usize, count: usize) -> String {
    let width = count.to_string().len().max(3);
    format!("{file}.{index:0width$}")
}

/// Whether `name` is a numbered part of `file` (whatever its number).
#[must_use]
pub fn is_part_of(name: &str, file: &str) -> bool {
    name.strip_prefix(file)
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Numbered parts of `file` in `dir` that `listed` does not name: left from another
/// bundle, or added.
pub fn strays(dir: &Path, file: &str, listed: &[Part]) -> io::Result<Vec<String>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if is_part_of(&name, file) && !listed.iter().any(|p| p.file == name) {
            found.push(name);
        }
    }
    found.sort();
    Ok(found)
}

/// A part written so far: its file (under its temporary name) and tally.
#[derive(Clone)]
pub struct Written {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

/// Writes a stream as parts of at most `limit` bytes in `dir` (a private directory,
/// removed by the caller if the bundle is not completed), named `1`, `2`, ... until they
/// are counted and renamed. What is written is readable through [`SplitWriter::written`]
/// once flushed, also after the writer went to another thread.
pub struct SplitWriter {
    dir: PathBuf,
    limit: u64,
    current: Option<(BufWriter<File>, Sha256, u64)>,
    written: Arc<Mutex<Vec<Written>>>,
}

impl SplitWriter {
    #[must_use]
    pub fn new(dir: &Path, limit: u64) -> SplitWriter {
        SplitWriter {
            dir: dir.to_path_buf(),
            limit,
            current: None,
            written: Arc::default(),
        }
    }

    /// The parts as of the last flush.
    #[must_use]
    pub fn written(&self) -> Arc<Mutex<Vec<Written>>> {
        self.written.clone()
    }

    /// Records the current part's size and sha256 so far (the last entry).
    fn record(&mut self) -> io::Result<()> {
        if let Some((out, hasher, size)) = &mut self.current {
            out.flush()?;
            let mut written = self.written.lock().expect("no writer panics");
            let last = written.last_mut().expect("a part is open");
            last.size = *size;
            last.sha256 = hex::encode(hasher.clone().finalize());
        }
        Ok(())
    }

    fn open_next(&mut self) -> io::Result<()> {
        self.record()?;
        let mut written = self.written.lock().expect("no writer panics");
        let path = self.dir.join((written.len() + 1).to_string());
        let file = File::create(&path)?;
        written.push(Written {
            path,
            size: 0,
            sha256: String::new(),
        });
        self.current = Some((BufWriter::with_capacity(1 << 20, file), Sha256::new(), 0));
        Ok(())
    }
}

impl Write for SplitWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.current.as_ref().is_none_or(|c| c.2 >= self.limit) {
            self.open_next()?;
        }
        let (out, hasher, size) = self.current.as_mut().expect("a part is open");
        let room = usize::try_from(self.limit - *size).unwrap_or(usize::MAX);
        let n = out.write(&buf[..buf.len().min(room)])?;
        hasher.update(&buf[..n]);
        *size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.record()
    }
}

/// The files of an archive read one after another as one stream.
pub struct Concatenated {
    rest: std::vec::IntoIter<PathBuf>,
    current: Option<File>,
}

impl Concatenated {
    #[must_use]
    pub fn open(files: Vec<PathBuf>) -> Concatenated {
        Concatenated {
            rest: files.into_iter(),
            current: None,
        }
    }
}

impl Read for Concatenated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.current.is_none() {
                let Some(next) = self.rest.next() else {
                    return Ok(0);
                };
                self.current = Some(File::open(&next).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot open {}: {e}", next.display()))
                })?);
            }
            let n = self.current.as_mut().expect("opened").read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.current = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("700MB"), Ok(700_000_000));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_size("2097152"), Ok(2 << 20));
        for bad in ["", "MiB", "4 parsecs", "-1MiB", "1KiB", "0"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn part_names_sort_in_order() {
        assert_eq!(part_name("a.tar.gz", 1, 3), "a.tar.gz.001");
        assert_eq!(part_name("a.tar.gz", 12, 1500), "a.tar.gz.0012");
        let mut names: Vec<String> = (1..=1200).map(|i| part_name("a", i, 1200)).collect();
        let in_order = names.clone();
        names.sort();
        assert_eq!(names, in_order);
        assert!(is_part_of("a.tar.gz.001", "a.tar.gz"));
        assert!(!is_part_of("a.tar.gz.minisig", "a.tar.gz"));
        assert!(!is_part_of("a.tar.gz", "a.tar.gz"));
        assert!(!is_part_of("a.tar.gz.", "a.tar.gz"));
    }

    #[test]
    fn parts_hold_the_stream_in_order_none_over_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..(5 * MIN_SPLIT / 2)).map(|i| (i % 253) as u8).collect();
        let mut writer = SplitWriter::new(dir.path(), MIN_SPLIT);
        for chunk in data.chunks(300_000) {
            writer.write_all(chunk).unwrap();
        }
        writer.flush().unwrap();
        let written = writer.written().lock().unwrap().clone();
        drop(writer);
        let sizes: Vec<u64> = written.iter().map(|w| w.size).collect();
        assert_eq!(sizes, [MIN_SPLIT, MIN_SPLIT, MIN_SPLIT / 2]);
        for w in &written {
            let bytes = std::fs::read(&w.path).unwrap();
            assert_eq!(bytes.len() as u64, w.size);
            assert_eq!(hex::encode(Sha256::digest(&bytes)), w.sha256);
        }
        let mut back = Vec::new();
        Concatenated::open(written.iter().map(|w| w.path.clone()).collect())
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }
}
