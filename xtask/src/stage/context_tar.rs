//! A staged context as one tar with the Dockerfile at its root: how a context reaches a
//! BuildKit that cannot rewrite file times (before 0.13.2: the engine's own builder on
//! Docker 20.10). A directory sent as the context arrives there with every directory at
//! the time it arrived, so each build's layers differ; a tar's entries keep the times
//! written in it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::docker::argv::{DOCKERFILE_IN_TAR, SOURCE_DATE_EPOCH};
use crate::stage::entries::{Entries, Source};

/// Writes `entries` (staged under `context`) and `dockerfile` as the tar `dest`: entries
/// in path order, owned by root, with their staged modes and [`SOURCE_DATE_EPOCH`] as
/// their times, so the tar of one context is the same bytes on every machine. Written
/// beside `dest` and renamed into place.
pub fn write(dest: &Path, context: &Path, entries: &Entries, dockerfile: &str) -> Result<()> {
    if entries.contains_key(Path::new(DOCKERFILE_IN_TAR)) {
        bail!(
            "the context {} stages a file named {DOCKERFILE_IN_TAR} at its root, where its tar holds the Dockerfile; stage it under a directory (`to` in docker/images.toml)",
            context.display()
        );
    }
    let partial = dest.with_extension("tar.partial");
    let written = File::create(&partial)
        .map_err(anyhow::Error::from)
        .and_then(|file| {
            let mut tar = tar::Builder::new(BufWriter::new(file));
            let mut dockerfile = dockerfile.as_bytes();
            let header = header(tar::EntryType::Regular, 0o644, dockerfile.len());
            append(
                &mut tar,
                Path::new(DOCKERFILE_IN_TAR),
                header,
                &mut dockerfile,
            )?;
            for (rel, source) in entries
                .iter()
                .filter(|(rel, _)| !rel.as_os_str().is_empty())
            {
                append_entry(&mut tar, context, rel, source)?;
            }
            tar.into_inner()?.flush()?;
            Ok(())
        })
        .and_then(|()| std::fs::rename(&partial, dest).map_err(anyhow::Error::from));
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written.with_context(|| {
        format!(
            "cannot write the context {} as the tar {}",
            context.display(),
            dest.display()
        )
    })
}

type TarWriter = tar::Builder<BufWriter<File>>;

fn append_entry(tar: &mut TarWriter, context: &Path, rel: &Path, source: &Source) -> Result<()> {
    match source {
        Source::Dir { mode } => {
            let header = header(tar::EntryType::Directory, *mode, 0);
            append(tar, rel, header, &mut std::io::empty())
        }
        Source::Symlink { target } => {
            let mut header = header(tar::EntryType::Symlink, 0o777, 0);
            tar.append_link(&mut header, rel, target)
                .with_context(|| format!("cannot add the link {}", rel.display()))
        }
        Source::File { mode, .. } | Source::Bytes { mode, .. } => {
            let path = context.join(rel);
            let mut file =
                File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let size = usize::try_from(file.metadata()?.len())?;
            append(
                tar,
                rel,
                header(tar::EntryType::Regular, *mode, size),
                &mut file,
            )
        }
    }
}

fn append(
    tar: &mut TarWriter,
    rel: &Path,
    mut header: tar::Header,
    data: &mut dyn std::io::Read,
) -> Result<()> {
    tar.append_data(&mut header, rel, data)
        .with_context(|| format!("cannot add {}", rel.display()))
}

/// An entry's header: owned by root, the epoch as its time.
fn header(kind: tar::EntryType, mode: u32, size: usize) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size as u64);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(u64::try_from(SOURCE_DATE_EPOCH).expect("the epoch is not before 1970"));
    header
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::staging::{StageOp, collect, materialize};

    #[test]
    fn a_context_tar_holds_the_dockerfile_and_the_staged_entries_at_the_epoch() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join("conf")).unwrap();
        std::fs::write(src.join("conf/a.properties"), "a=1\n").unwrap();
        std::fs::write(src.join("service.sh"), "run\n").unwrap();
        std::os::unix::fs::symlink("service.sh", src.join("start.sh")).unwrap();
        let ops = [StageOp::Copy {
            from: src,
            to: "image/data/app".into(),
            exclude: vec![],
        }];
        let entries = collect(&ops, None).unwrap();
        let context = d.path().join("context");
        materialize(&context, &entries).unwrap();
        let tar_path = d.path().join("context.tar");
        let write_tar = || {
            write(
                &tar_path,
                &context,
                &entries,
                "FROM scratch\nCOPY image/ /\n",
            )
            .unwrap();
            std::fs::read(&tar_path).unwrap()
        };
        let bytes = write_tar();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let listed: Vec<(String, u32, u64, Option<String>)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    e.link_name().unwrap().map(|l| l.display().to_string()),
                )
            })
            .collect();
        let at = u64::try_from(SOURCE_DATE_EPOCH).unwrap();
        assert_eq!(
            listed,
            [
                ("Dockerfile".to_string(), 0o644, at, None),
                ("image".into(), 0o755, at, None),
                ("image/data".into(), 0o755, at, None),
                ("image/data/app".into(), 0o755, at, None),
                ("image/data/app/conf".into(), 0o755, at, None),
                ("image/data/app/conf/a.properties".into(), 0o644, at, None),
                ("image/data/app/service.sh".into(), 0o644, at, None),
                (
                    "image/data/app/start.sh".into(),
                    0o777,
                    at,
                    Some("service.sh".into())
                ),
            ]
        );
        // The same context gives the same bytes.
        assert_eq!(write_tar(), bytes);
        assert!(!d.path().join("context.tar.partial").exists());
    }

    #[test]
    fn a_staged_file_named_like_the_dockerfile_at_the_root_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut entries = Entries::new();
        entries.insert(
            "Dockerfile".into(),
            Source::Bytes {
                bytes: b"x".to_vec(),
                mode: 0o644,
            },
        );
        let e = write(
            &d.path().join("c.tar"),
            d.path(),
            &entries,
            "FROM scratch\n",
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("stages a file named Dockerfile"),
            "{e:#}"
        );
        assert!(!d.path().join("c.tar").exists());
    }
}
