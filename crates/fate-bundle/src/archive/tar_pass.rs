//! A `docker save` tar passed through once, block by block (headers parsed by the `tar`
//! crate), on its way to compression (`bundle`) or to `docker load` (`load`): counted for
//! progress, its `index.json` and `manifest.json` read (Docker writes them after the
//! blobs) and checked before anything after them is forwarded, and, for `bundle
//! --platform`, rewritten to name that platform's image. Nothing else is held or re-read:
//! only small blobs (indexes, manifests, configs) are kept, to choose a platform by.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use anyhow::Result;

use crate::archive::index::{self, ArchiveIndex, Blobs, Chosen};
use crate::ui::ByteProgress;

/// Where a pass-through failed: reading the source or writing the sink.
pub enum PassError {
    Source(io::Error),
    Sink(io::Error),
    /// The index check refused the archive (the rest was not forwarded).
    Refused(anyhow::Error),
    NotAnArchive(anyhow::Error),
}

/// Blobs up to this size are kept: every index, manifest and config is far smaller.
const SMALL_BLOB: u64 = 256 * 1024;

/// Forwards a `docker save` tar from `source` to `sink` in one pass. `check` sees the
/// archive's index at the end of the source, before `manifest.json` or any byte after it
/// is forwarded, so a refusal leaves the sink with an incomplete archive (and a check of
/// the whole source, read by then, can refuse it too). With `platform`, every multi-platform
/// image becomes that platform's image in `index.json` and `manifest.json`.
pub fn pass_tar(
    mut source: impl Read,
    sink: impl Write,
    progress: Option<&ByteProgress>,
    platform: Option<&str>,
    check: impl Fn(&ArchiveIndex) -> Result<()>,
) -> Result<ArchiveIndex, PassError> {
    let mut pass = TarPass {
        sink,
        platform,
        header: Vec::with_capacity(512),
        data_left: 0,
        padding_left: 0,
        current: Current::Forward,
        blobs: Blobs::new(),
        kept_bytes: 0,
        blob_names: BTreeSet::new(),
        oci_index: None,
        chosen: BTreeMap::new(),
        index: None,
        tail: None,
        ended: false,
    };
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PassError::Source(e)),
        };
        pass.feed(&buf[..n])?;
        if let Some(progress) = progress {
            progress.add(n as u64);
        }
    }
    // The end: `manifest.json` and what follows it go on only once `check` agrees.
    let (Some(index), Some(tail)) = (pass.index, pass.tail) else {
        return Err(PassError::NotAnArchive(anyhow::anyhow!(
            "it has no manifest.json"
        )));
    };
    check(&index).map_err(PassError::Refused)?;
    pass.sink.write_all(&tail).map_err(PassError::Sink)?;
    pass.sink.flush().map_err(PassError::Sink)?;
    Ok(index)
}

/// What may follow `manifest.json` (Docker writes only `repositories` or `oci-layout`
/// and the end of the tar there): more is not an archive of `docker save`.
const MAX_TAIL: usize = 16 << 20;

/// The most an archive's `manifest.json` or `index.json` may hold (a real one is a few
/// KB a hundred images): more is not an archive of `docker save`, and is not read.
const MAX_HELD: u64 = 16 << 20;

/// The most the small blobs kept (manifests and configs, to choose a platform) may hold
/// together: a hostile archive of many small blobs costs no more memory than this.
const MAX_KEPT_BLOBS: usize = 64 << 20;

/// The two index files of an archive.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kept {
    Manifest,
    OciIndex,
}

/// What happens to the data of the entry being read.
enum Current {
    Forward,
    /// A small blob: forwarded and kept, by digest.
    Blob(String, Vec<u8>),
    /// `index.json` or `manifest.json`: held back, header and all, until complete.
    Held(Kept, Box<tar::Header>, Vec<u8>),
}

struct TarPass<'a, W> {
    sink: W,
    platform: Option<&'a str>,
    header: Vec<u8>,
    /// Bytes of the current entry's data still to come, then its padding.
    data_left: u64,
    padding_left: u64,
    current: Current,
    blobs: Blobs,
    /// What `blobs` holds, in bytes.
    kept_bytes: usize,
    /// Every blob of the archive, by digest.
    blob_names: BTreeSet<String>,
    /// `index.json` as docker wrote it.
    oci_index: Option<Vec<u8>>,
    chosen: BTreeMap<String, Chosen>,
    index: Option<ArchiveIndex>,
    /// From `manifest.json` on, what is held back until the end of the stream.
    tail: Option<Vec<u8>>,
    ended: bool,
}

fn at_most(left: u64, available: usize) -> usize {
    usize::try_from(left).map_or(available, |left| left.min(available))
}

impl<W: Write> TarPass<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), PassError> {
        match &mut self.tail {
            Some(tail) if tail.len() + bytes.len() > MAX_TAIL => Err(PassError::NotAnArchive(
                anyhow::anyhow!("more than {} MiB follow its manifest.json", MAX_TAIL >> 20),
            )),
            Some(tail) => {
                tail.extend_from_slice(bytes);
                Ok(())
            }
            None => self.sink.write_all(bytes).map_err(PassError::Sink),
        }
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<(), PassError> {
        let mut at = 0;
        while at < chunk.len() {
            let rest = &chunk[at..];
            if self.ended {
                return self.write(rest);
            }
            if self.data_left > 0 {
                let n = at_most(self.data_left, rest.len());
                let part = &rest[..n];
                match &mut self.current {
                    Current::Forward => self.write(part)?,
                    Current::Blob(_, content) => {
                        content.extend_from_slice(part);
                        let part = part.to_vec();
                        self.write(&part)?;
                    }
                    Current::Held(_, _, content) => content.extend_from_slice(part),
                }
                self.data_left -= n as u64;
                at += n;
                if self.data_left == 0 {
                    if let Current::Blob(..) = self.current
                        && let Current::Blob(digest, content) =
                            std::mem::replace(&mut self.current, Current::Forward)
                    {
                        self.kept_bytes += content.len();
                        self.blobs.insert(digest, content);
                    }
                    self.finish_held()?;
                }
            } else if self.padding_left > 0 {
                let n = at_most(self.padding_left, rest.len());
                if !matches!(self.current, Current::Held(..)) {
                    self.write(&rest[..n])?;
                }
                self.padding_left -= n as u64;
                at += n;
                self.finish_held()?;
            } else {
                let n = rest.len().min(512 - self.header.len());
                self.header.extend_from_slice(&rest[..n]);
                at += n;
                if self.header.len() == 512 {
                    self.start_entry()?;
                }
            }
        }
        Ok(())
    }

    fn start_entry(&mut self) -> Result<(), PassError> {
        let block = std::mem::take(&mut self.header);
        if block.iter().all(|b| *b == 0) {
            self.ended = true;
            return self.write(&block);
        }
        let header = tar::Header::from_byte_slice(&block).clone();
        let size = header.entry_size().map_err(|e| {
            PassError::NotAnArchive(anyhow::Error::new(e).context("a bad tar header"))
        })?;
        self.data_left = size;
        self.padding_left = padding(size);
        let path = header
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let kept = match path.as_str() {
            "manifest.json" => Some(Kept::Manifest),
            "index.json" => Some(Kept::OciIndex),
            _ => None,
        };
        self.current = if let Some(kept) = kept {
            if size == 0 {
                return Err(PassError::NotAnArchive(anyhow::anyhow!(
                    "its {path} is empty"
                )));
            }
            if size > MAX_HELD {
                return Err(PassError::NotAnArchive(anyhow::anyhow!(
                    "its {path} is {size} bytes, more than {} MiB: not an archive docker save wrote",
                    MAX_HELD >> 20
                )));
            }
            Current::Held(kept, Box::new(header), Vec::new())
        } else if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            let digest = format!("sha256:{hex}");
            self.blob_names.insert(digest.clone());
            if size <= SMALL_BLOB && self.kept_bytes < MAX_KEPT_BLOBS {
                Current::Blob(digest, Vec::new())
            } else {
                Current::Forward
            }
        } else {
            Current::Forward
        };
        if !matches!(self.current, Current::Held(..)) {
            self.write(&block)?;
        }
        Ok(())
    }

    /// Once a held entry is complete: reads it, possibly rewrites it, and forwards it;
    /// from `manifest.json` on (the index read), into the tail held until the end.
    fn finish_held(&mut self) -> Result<(), PassError> {
        if self.data_left > 0 || self.padding_left > 0 {
            return Ok(());
        }
        let Current::Held(kept, mut header, content) =
            std::mem::replace(&mut self.current, Current::Forward)
        else {
            return Ok(());
        };
        let content = match kept {
            Kept::OciIndex => {
                self.oci_index = Some(content.clone());
                match self.platform {
                    Some(platform) => {
                        let (rewritten, chosen) =
                            index::choose_platform(&content, &self.blobs, platform)
                                .map_err(PassError::Refused)?;
                        self.chosen = chosen;
                        rewritten
                    }
                    None => content,
                }
            }
            Kept::Manifest => {
                let content = if self.chosen.is_empty() {
                    content
                } else {
                    let names = &self.blob_names;
                    index::rewrite_manifest(&content, &self.chosen, |d| names.contains(d))
                        .map_err(PassError::Refused)?
                };
                let mut index = ArchiveIndex::parse(&content, self.oci_index.as_deref())
                    .map_err(PassError::NotAnArchive)?;
                index.chosen = std::mem::take(&mut self.chosen);
                self.index = Some(index);
                self.tail = Some(Vec::new());
                content
            }
        };
        header.set_size(content.len() as u64);
        header.set_cksum();
        self.write(header.as_bytes())?;
        self.write(&content)?;
        let zeros = [0u8; 512];
        let pad = usize::try_from(padding(content.len() as u64)).unwrap_or(0);
        self.write(&zeros[..pad])
    }
}

/// The zeros after an entry's data, up to the next 512-byte block.
fn padding(size: u64) -> u64 {
    (512 - size % 512) % 512
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn tar_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, &data[..]).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn docker_like_tar(manifest: &str) -> Vec<u8> {
        tar_of(&[
            ("layer/layer.tar", vec![7u8; 5000]),
            (
                "index.json",
                br#"{"manifests":[{"digest":"sha256:iii","annotations":{"io.containerd.image.name":"docker.io/p/b:1"}}]}"#.to_vec(),
            ),
            ("manifest.json", manifest.as_bytes().to_vec()),
            ("repositories", b"{}".to_vec()),
        ])
    }

    #[test]
    fn a_tar_passes_through_whole_with_its_index() {
        let tar = docker_like_tar(r#"[{"Config":"abc.json","RepoTags":["p/a:1"]}]"#);
        let ui = crate::ui::Ui::plain();
        let progress = ui.bytes("t", Some(tar.len() as u64));
        let mut out = Vec::new();
        let index = pass_tar(&tar[..], &mut out, Some(&progress), None, |_| Ok(()))
            .ok()
            .unwrap();
        assert_eq!(out, tar, "byte for byte");
        assert_eq!(index.config_of("p/a:1"), Some("sha256:abc"));
        assert_eq!(
            index.oci[0].name, "docker.io/p/b:1",
            "index.json is read on the way"
        );
    }

    #[test]
    fn a_refused_index_stops_before_manifest_json() {
        let tar = docker_like_tar(r#"[{"Config":"abc.json","RepoTags":["p/a:1"]}]"#);
        let ui = crate::ui::Ui::plain();
        let progress = ui.bytes("t", None);
        let mut out = Vec::new();
        let result = pass_tar(&tar[..], &mut out, Some(&progress), None, |_| {
            anyhow::bail!("no")
        });
        assert!(matches!(result, Err(PassError::Refused(_))));
        assert!(out.len() < tar.len());
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("RepoTags"), "manifest.json was held back");
    }

    #[test]
    fn an_index_larger_than_any_archive_has_is_not_read() {
        // A header that claims a 1 GiB manifest.json, and no data: refused at the header.
        let mut header = tar::Header::new_gnu();
        header.set_path("manifest.json").unwrap();
        header.set_size(1 << 30);
        header.set_mode(0o644);
        header.set_cksum();
        let mut tar = header.as_bytes().to_vec();
        tar.extend_from_slice(&[0u8; 1024]);
        let mut out = Vec::new();
        let result = pass_tar(&tar[..], &mut out, None, None, |_| Ok(()));
        let Err(PassError::NotAnArchive(e)) = result else {
            panic!("a 1 GiB manifest.json was read");
        };
        assert!(e.to_string().contains("more than 16 MiB"), "{e}");
    }

    fn digest(bytes: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
    }

    fn blob(bytes: &[u8]) -> (String, Vec<u8>) {
        (
            format!(
                "blobs/sha256/{}",
                digest(bytes).trim_start_matches("sha256:")
            ),
            bytes.to_vec(),
        )
    }

    /// An archive as Docker 26 writes a two-platform image on the containerd store.
    fn two_platform_tar() -> (Vec<u8>, String, String) {
        let layer = |arch: &str| format!("layer of {arch}").into_bytes();
        let config = |arch: &str| {
            format!(
                r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":["sha256:diff-{arch}"]}}}}"#
            )
            .into_bytes()
        };
        let manifest = |arch: &str| {
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":1}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":1}}]}}"#,
                digest(&config(arch)),
                digest(&layer(arch))
            )
            .into_bytes()
        };
        let image_index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"platform":{{"architecture":"arm64","os":"linux"}}}}]}}"#,
            digest(&manifest("amd64")),
            manifest("amd64").len(),
            digest(&manifest("arm64")),
            manifest("arm64").len()
        )
        .into_bytes();
        let id = digest(&image_index);
        let mut entries: Vec<(String, Vec<u8>)> = ["amd64", "arm64"]
            .iter()
            .flat_map(|a| [blob(&layer(a)), blob(&config(a)), blob(&manifest(a))])
            .collect();
        entries.push(blob(&image_index));
        entries.push((
            "index.json".into(),
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{id}","size":{},"annotations":{{"io.containerd.image.name":"docker.io/p/a:1"}}}}]}}"#,
                image_index.len()
            )
            .into_bytes(),
        ));
        entries.push((
            "manifest.json".into(),
            format!(
                r#"[{{"Config":"blobs/sha256/{}","RepoTags":["p/a:1"],"Layers":["blobs/sha256/{}"]}}]"#,
                digest(&config("amd64")).trim_start_matches("sha256:"),
                digest(&layer("amd64")).trim_start_matches("sha256:")
            )
            .into_bytes(),
        ));
        let borrowed: Vec<(&str, Vec<u8>)> = entries
            .iter()
            .map(|(n, d)| (n.as_str(), d.clone()))
            .collect();
        (tar_of(&borrowed), id, digest(&manifest("arm64")))
    }

    #[test]
    fn one_platform_is_chosen_out_of_an_image_index() {
        let (tar, id, arm_manifest) = two_platform_tar();
        let mut out = Vec::new();
        let index = pass_tar(&tar[..], &mut out, None, Some("linux/arm64"), |index| {
            // Identified by the store's ID as it was saved.
            assert!(index.identify("p/a:1", &id).is_some());
            Ok(())
        })
        .ok()
        .unwrap();
        let chosen = &index.chosen["docker.io/p/a:1"];
        assert_eq!(chosen.manifest, arm_manifest);
        assert_eq!(chosen.diff_ids, ["sha256:diff-arm64"]);
        // What was written names arm64's image in both index files.
        let mut archive = tar::Archive::new(&out[..]);
        let files: BTreeMap<String, String> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().into_owned();
                let mut text = String::new();
                e.read_to_string(&mut text).unwrap_or_default();
                (name, text)
            })
            .collect();
        assert!(
            files["index.json"].contains(&arm_manifest),
            "{}",
            files["index.json"]
        );
        assert!(!files["index.json"].contains(&id));
        assert!(files["manifest.json"].contains(chosen.config.trim_start_matches("sha256:")));
        assert_eq!(index.config_of("p/a:1"), Some(chosen.config.as_str()));

        let refused = pass_tar(&tar[..], &mut Vec::new(), None, Some("linux/s390x"), |_| {
            Ok(())
        });
        let Err(PassError::Refused(e)) = refused else {
            panic!("a platform the image lacks is refused")
        };
        let e = format!("{e:#}");
        assert!(
            e.contains("holds no linux/s390x image (it holds linux/amd64, linux/arm64)"),
            "{e}"
        );
    }
}
