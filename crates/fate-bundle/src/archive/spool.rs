//! An archive read once into blobs a registry takes: each file of the tar written to a
//! private spool directory by its digest, its sha256 checked against its name where the
//! name is a digest; Docker 20.10's raw `layer.tar`s gzip-compressed on the way, the same
//! bytes every time (fixed level, no name, no time), so a bundle pushed twice gives the
//! same manifest digests.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::archive::streams::{self, Compression, Tally, TallyWriter};

/// The largest `manifest.json` or `index.json` read (an archive's own lists: kilobytes).
const INDEX_LIMIT: u64 = 16 << 20;
/// gzip's level for raw layers: libdeflate-class speed, half the raw size on jars.
const LAYER_GZIP_LEVEL: i32 = 1;

/// A blob on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub path: PathBuf,
    pub size: u64,
}

/// A raw layer, compressed: the blob a registry gets, and its diff ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compressed {
    pub blob: Blob,
    pub digest: String,
    pub diff_id: String,
}

/// What an archive holds, spooled.
#[derive(Debug, Default)]
pub struct Spooled {
    pub manifest_json: Vec<u8>,
    pub index_json: Option<Vec<u8>>,
    /// Files named by digest (`blobs/sha256/<hex>`, `<hex>.json`), checked against it.
    pub blobs: BTreeMap<String, Blob>,
    /// Raw layers by their path in the tar (`<id>/layer.tar`), compressed.
    pub layers: BTreeMap<String, Compressed>,
    /// Links in the tar (`<id>/layer.tar` -> `../<other>/layer.tar`), resolved.
    pub links: BTreeMap<String, String>,
}

impl Spooled {
    /// A small blob's bytes (a config or manifest), read whole up to `INDEX_LIMIT`.
    pub fn read_small(&self, digest: &str) -> Result<Vec<u8>> {
        let blob = self
            .blobs
            .get(digest)
            .with_context(|| format!("the archive lacks blob {digest}"))?;
        read_limited(File::open(&blob.path)?, INDEX_LIMIT)
            .with_context(|| format!("reading blob {digest}"))
    }

    /// The compressed layer the archive's `manifest.json` names by `path`.
    #[must_use]
    pub fn layer(&self, path: &str) -> Option<&Compressed> {
        let path = self.links.get(path).map_or(path, String::as_str);
        self.layers.get(path)
    }
}

/// Reads the tar `stream` into `dir`, every blob checked against its digest.
pub fn spool(stream: impl Read, dir: &Path) -> Result<Spooled> {
    let mut archive = tar::Archive::new(stream);
    let mut spooled = Spooled::default();
    let mut manifest = None;
    for (n, entry) in archive.entries().context("not a tar archive")?.enumerate() {
        let mut entry = entry.context("reading the archive's tar")?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            if let Some(target) = entry.link_name()? {
                let target = resolve_link(&path, &target.to_string_lossy());
                spooled.links.insert(path, target);
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        match classify(&path) {
            Member::Manifest => manifest = Some(read_limited(&mut entry, INDEX_LIMIT)?),
            Member::Index => spooled.index_json = Some(read_limited(&mut entry, INDEX_LIMIT)?),
            Member::Blob(digest) => {
                let file = dir.join(format!("blob-{n}"));
                let (sha, size) = copy_hashed(&mut entry, &file)?;
                if sha != digest {
                    bail!("{path} in the archive has sha256 {sha}: it is damaged");
                }
                spooled.blobs.insert(digest, Blob { path: file, size });
            }
            Member::RawLayer => {
                let file = dir.join(format!("layer-{n}.gz"));
                let compressed = compress_layer(&mut entry, &file)?;
                spooled.layers.insert(path, compressed);
            }
            Member::Other => {}
        }
    }
    spooled.manifest_json =
        manifest.context("the archive has no manifest.json: it was not written by docker save")?;
    Ok(spooled)
}

enum Member {
    Manifest,
    Index,
    Blob(String),
    RawLayer,
    Other,
}

fn classify(path: &str) -> Member {
    let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if path == "manifest.json" {
        return Member::Manifest;
    }
    if path == "index.json" {
        return Member::Index;
    }
    if let Some(h) = path.strip_prefix("blobs/sha256/").filter(|h| hex(h)) {
        return Member::Blob(format!("sha256:{h}"));
    }
    if let Some(h) = path.strip_suffix(".json").filter(|h| hex(h)) {
        return Member::Blob(format!("sha256:{h}"));
    }
    if path.strip_suffix("/layer.tar").is_some_and(hex) {
        return Member::RawLayer;
    }
    Member::Other
}

/// A link's target as a path from the tar's root (`a/layer.tar` -> `../b/layer.tar` is
/// `b/layer.tar`).
fn resolve_link(path: &str, target: &str) -> String {
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            ".." => {
                parts.pop();
            }
            "." | "" => {}
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn read_limited(reader: impl Read, limit: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        bail!("it is over {limit} bytes: not one docker save writes");
    }
    Ok(bytes)
}

/// Copies `reader` to a new file: its sha256 (`sha256:<hex>`) and size.
fn copy_hashed(reader: &mut impl Read, file: &Path) -> Result<(String, u64)> {
    let mut out = Hashing::new(BufWriter::with_capacity(1 << 20, create(file)?));
    io::copy(reader, &mut out)?;
    let (inner, sha, size) = out.finish();
    inner.into_inner().map_err(io::IntoInnerError::into_error)?;
    Ok((sha, size))
}

/// Compresses a raw layer into `file` on every core: the same bytes for the same layer,
/// always (gzip members of a fixed input size, each compressed alone at a fixed level,
/// with no name or time), which every gzip reader Docker and containerd use reads.
fn compress_layer(reader: &mut impl Read, file: &Path) -> Result<Compressed> {
    let tally = Tally::default();
    let out = TallyWriter {
        inner: BufWriter::with_capacity(1 << 20, create(file)?),
        tally: tally.clone(),
    };
    let gz = streams::compressor_at(Compression::Gzip, LAYER_GZIP_LEVEL, out)?;
    let mut raw = Hashing::new(gz);
    io::copy(reader, &mut raw)?;
    let (gz, diff_id, _) = raw.finish();
    gz.finish_stream()?;
    let (size, sha) = tally.result();
    Ok(Compressed {
        blob: Blob {
            path: file.to_path_buf(),
            size,
        },
        digest: format!("sha256:{sha}"),
        diff_id,
    })
}

fn create(file: &Path) -> Result<File> {
    File::create(file).with_context(|| {
        format!(
            "cannot write {} (the spool of blobs to push: set TMPDIR to a directory with room for the bundle's layers)",
            file.display()
        )
    })
}

/// A writer that hashes and counts what passes.
struct Hashing<W> {
    inner: W,
    sha: Sha256,
    size: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            sha: Sha256::new(),
            size: 0,
        }
    }

    fn finish(self) -> (W, String, u64) {
        let sha = format!("sha256:{}", hex::encode(self.sha.finalize()));
        (self.inner, sha, self.size)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A signal stops the spool between writes (the push then ends, its spool removed).
        if crate::process::interrupted() {
            return Err(io::Error::other(format!(
                "stopped by {}",
                crate::process::signal_name()
            )));
        }
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])], links: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, bytes) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, path, *bytes).unwrap();
        }
        for (path, target) in links {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, path, target).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[test]
    fn layers_compress_the_same_every_time_and_blobs_are_checked() {
        let config = br#"{"rootfs":{}}"#;
        let layer = tar_of(&[("etc/hello", b"hello")], &[]);
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let files: Vec<(String, Vec<u8>)> = vec![
            ("manifest.json".into(), b"[]".to_vec()),
            (format!("{}.json", sha(config)), config.to_vec()),
            (format!("{a}/layer.tar"), layer.clone()),
        ];
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_slice()))
            .collect();
        let link = format!("../{a}/layer.tar");
        let archive = tar_of(&refs, &[(&format!("{b}/layer.tar"), &link)]);
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        let first = spool(archive.as_slice(), one.path()).unwrap();
        let second = spool(archive.as_slice(), two.path()).unwrap();
        let layer_a = first.layer(&format!("{a}/layer.tar")).unwrap();
        assert_eq!(layer_a.diff_id, format!("sha256:{}", sha(&layer)));
        assert_eq!(
            layer_a.digest,
            second.layer(&format!("{a}/layer.tar")).unwrap().digest
        );
        assert_eq!(first.layer(&format!("{b}/layer.tar")), Some(layer_a));
        let gz = std::fs::read(&layer_a.blob.path).unwrap();
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut raw)
            .unwrap();
        assert_eq!(raw, layer);
        assert_eq!(
            first
                .read_small(&format!("sha256:{}", sha(config)))
                .unwrap(),
            config
        );

        let bad = tar_of(
            &[
                ("manifest.json", b"[]"),
                (&format!("{}.json", "c".repeat(64)), config),
            ],
            &[],
        );
        let err = spool(bad.as_slice(), one.path()).unwrap_err();
        assert!(format!("{err:#}").contains("damaged"), "{err:#}");
    }

    #[test]
    fn links_resolve_from_the_root() {
        assert_eq!(resolve_link("a/layer.tar", "../b/layer.tar"), "b/layer.tar");
        assert_eq!(resolve_link("a/layer.tar", "./x"), "a/x");
    }
}
