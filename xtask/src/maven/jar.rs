//! The modes inside the jars Maven builds. Maven's archiver stores each entry with the
//! mode of the file it read, so a checkout made under umask 077 gives `pom.xml` (copied to
//! `META-INF/maven/`) mode 600, and a jar, hence an image, unlike everyone else's. Every
//! jar Maven builds (and every copy of it another module takes) is rewritten once with
//! git's two modes (644, and 755 where any execute bit is set; 755 for directories),
//! entries copied as stored (nothing is recompressed), so it depends on the commit alone.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use zip::{ZipArchive, ZipWriter};

use crate::maven::pom::ReactorModule;
use fate_bundle::fsx::git_mode;

/// The archive comment of a jar whose modes are settled: Maven writes none, so a jar
/// that has it was rewritten here, and is not rewritten again.
const SETTLED: &[u8] = b"fate-xtask: entry modes 644/755";

/// Settles the jars a run of the reactor at `project` built: each module's own
/// (`target/*.jar`) and the copies of them that modules took into `target/lib/` (copied
/// before they were settled). Other jars in `lib/` (from the Maven repository) are left
/// as published.
pub fn settle_reactor(project: &Path, modules: &[ReactorModule]) -> Result<()> {
    let targets: Vec<PathBuf> = modules
        .iter()
        .map(|m| project.join(&m.path).join("target"))
        .collect();
    let own: Vec<PathBuf> = targets.iter().flat_map(|t| jars_in(t)).collect();
    let names: BTreeSet<&OsStr> = own.iter().filter_map(|j| j.file_name()).collect();
    let copies = targets
        .iter()
        .flat_map(|t| jars_in(&t.join("lib")))
        .filter(|j| j.file_name().is_some_and(|n| names.contains(n)));
    for jar in own.iter().cloned().chain(copies) {
        settle_modes(&jar)?;
    }
    Ok(())
}

/// The jars directly in `dir` (none when it is missing), sorted.
fn jars_in(dir: &Path) -> Vec<PathBuf> {
    let mut jars: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jar") && p.is_file())
        .collect();
    jars.sort();
    jars
}

/// Rewrites `jar` with git's modes for its entries, unless that was done already; the
/// jar is replaced whole (a failure leaves Maven's jar as it was).
pub fn settle_modes(jar: &Path) -> Result<()> {
    let failed = || format!("cannot set the modes of the entries of {}", jar.display());
    let file = File::open(jar).with_context(failed)?;
    let mut archive = ZipArchive::new(BufReader::new(file))
        .with_context(|| format!("{} is not a jar Maven could have built", jar.display()))?;
    if archive.comment() == SETTLED {
        return Ok(());
    }
    let dir = jar.parent().unwrap_or(Path::new("."));
    let out = tempfile::NamedTempFile::new_in(dir).with_context(failed)?;
    let mut writer = ZipWriter::new(BufWriter::new(out.as_file()));
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).with_context(failed)?;
        let mode = entry.unix_mode().map(|m| git_mode(entry.is_dir(), m));
        let time = entry.last_modified().unwrap_or_default();
        writer
            .raw_copy_file_touch(entry, time, mode)
            .with_context(failed)?;
    }
    writer
        .set_raw_comment(SETTLED.into())
        .with_context(failed)?;
    writer
        .finish()
        .and_then(|w| w.into_inner().map_err(|e| e.into_error().into()))
        .with_context(failed)?;
    // As Maven leaves it for everyone (the temporary file is private).
    out.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .and_then(|()| out.as_file().sync_all())
        .with_context(failed)?;
    out.persist(jar).with_context(failed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    /// A jar as Maven's archiver writes it, its pom with `pom_mode`.
    fn jar(path: &Path, pom_mode: u32) {
        let mut w = ZipWriter::new(File::create(path).unwrap());
        let at = zip::DateTime::from_date_and_time(2000, 1, 1, 0, 0, 0).unwrap();
        let options = SimpleFileOptions::default().last_modified_time(at);
        w.add_directory("META-INF/", options.unix_permissions(0o700))
            .unwrap();
        w.start_file("META-INF/maven/pom.xml", options.unix_permissions(pom_mode))
            .unwrap();
        w.write_all(b"<project/>").unwrap();
        w.start_file("bin/run.sh", options.unix_permissions(0o700))
            .unwrap();
        w.write_all(b"#!/bin/sh\n").unwrap();
        w.finish().unwrap();
    }

    fn modes(path: &Path) -> Vec<(String, u32)> {
        let mut archive = ZipArchive::new(File::open(path).unwrap()).unwrap();
        (0..archive.len())
            .map(|i| {
                let entry = archive.by_index(i).unwrap();
                (
                    entry.name().unwrap().to_string(),
                    entry.unix_mode().unwrap() & 0o7777,
                )
            })
            .collect()
    }

    #[test]
    fn jars_from_checkouts_of_any_umask_come_out_alike_and_are_rewritten_once() {
        let d = tempfile::tempdir().unwrap();
        let (private, shared) = (d.path().join("private.jar"), d.path().join("shared.jar"));
        jar(&private, 0o600);
        jar(&shared, 0o644);
        assert_ne!(
            std::fs::read(&private).unwrap(),
            std::fs::read(&shared).unwrap()
        );
        settle_modes(&private).unwrap();
        settle_modes(&shared).unwrap();
        let settled = std::fs::read(&private).unwrap();
        assert_eq!(settled, std::fs::read(&shared).unwrap());
        assert_eq!(
            modes(&private),
            [
                ("META-INF/".to_string(), 0o755),
                ("META-INF/maven/pom.xml".to_string(), 0o644),
                ("bin/run.sh".to_string(), 0o755),
            ]
        );
        let mut archive = ZipArchive::new(File::open(&private).unwrap()).unwrap();
        let mut pom = String::new();
        std::io::Read::read_to_string(
            &mut archive.by_name("META-INF/maven/pom.xml").unwrap(),
            &mut pom,
        )
        .unwrap();
        assert_eq!(pom, "<project/>");
        settle_modes(&private).unwrap();
        assert_eq!(std::fs::read(&private).unwrap(), settled, "rewritten twice");
    }

    #[test]
    fn a_reactor_settles_its_jars_and_their_copies_but_not_jars_from_the_repository() {
        let d = tempfile::tempdir().unwrap();
        let module = |path: &str| ReactorModule {
            path: path.into(),
            inputs: Vec::new(),
            aggregates: false,
            uses: Vec::new(),
            artifact_id: path.into(),
            depends_on: Vec::new(),
        };
        for dir in ["core/target", "roll/target/lib"] {
            std::fs::create_dir_all(d.path().join(dir)).unwrap();
        }
        let own = d.path().join("core/target/fate-core-0.3.jar");
        let copy = d.path().join("roll/target/lib/fate-core-0.3.jar");
        let published = d.path().join("roll/target/lib/commons-lang3-3.12.0.jar");
        for jar_path in [&own, &copy, &published] {
            jar(jar_path, 0o600);
        }
        let as_published = std::fs::read(&published).unwrap();
        settle_reactor(d.path(), &[module("."), module("core"), module("roll")]).unwrap();
        assert_eq!(modes(&own)[1].1, 0o644);
        assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&own).unwrap());
        assert_eq!(std::fs::read(&published).unwrap(), as_published);
    }

    #[test]
    fn a_file_that_is_no_jar_is_named() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("broken.jar");
        std::fs::write(&path, "not a zip").unwrap();
        let e = format!("{:#}", settle_modes(&path).unwrap_err());
        assert!(e.contains("broken.jar is not a jar"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"not a zip");
    }
}
