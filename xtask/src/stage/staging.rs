//! Staging in Rust (no tar, cp or sed children). A context is first *collected*: the
//! list of entries the staging operations produce, read from the FATE tree without
//! writing anything. That list has a digest (for incremental builds) and is then
//! *materialized* into a fresh directory. Tracked files are only ever read.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::docker::argv::SOURCE_DATE_EPOCH;
use crate::stage::digest_cache::DigestCache;
pub use crate::stage::entries::{Entries, Source, StageOp};
use crate::stage::entries::{add_dirs, digest_entries, normalize};
use crate::stage::restage;
pub use crate::stage::walk::SharedWalks;
use crate::stage::walk::tree;

use crate::maven::pom;

/// Lists what `ops` stage, in order; a later entry at the same path replaces an earlier one.
/// With `shared`, source trees are walked once per run (see [`SharedWalks`]).
pub fn collect(ops: &[StageOp], shared: Option<&SharedWalks>) -> Result<Entries> {
    let mut entries = Entries::new();
    for op in ops {
        match op {
            StageOp::Copy { from, to, exclude } => {
                add_tree(&mut entries, from, Path::new(to), exclude, shared)?;
            }
            StageOp::EmptyDir(d) => add_dirs(&mut entries, Path::new(d), 0o755),
            StageOp::Jar {
                module,
                to,
                link,
                lib,
                java_home,
            } => {
                let to = &normalize(Path::new(to));
                let jar = module.built_jar()?;
                let jar_name = jar
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // Maven's output is written during the run: never shared.
                add_tree(&mut entries, &jar, &to.join(&jar_name), &[], None)?;
                // A jar Maven already named `<artifact>.jar` needs no link.
                if *link != jar_name {
                    entries.insert(
                        to.join(link),
                        Source::Symlink {
                            target: PathBuf::from(&jar_name),
                        },
                    );
                }
                if *lib {
                    add_tree(&mut entries, &lib_dir(module)?, &to.join("lib"), &[], None)?;
                }
                set_java_home(&mut entries, &to.join("service.sh"), java_home)?;
            }
        }
    }
    Ok(entries)
}

/// Adds a file or directory tree at `to`. Symlinks are kept as links; `.git/` and Maven
/// `target/` directories (beside a `pom.xml`) are left out.
fn add_tree(
    entries: &mut Entries,
    from: &Path,
    to: &Path,
    exclude: &[String],
    shared: Option<&SharedWalks>,
) -> Result<()> {
    let walked = tree(from, exclude, shared)?;
    if let Some(parent) = to.parent() {
        add_dirs(entries, parent, 0o755);
    }
    // The walk is in path order, so the tree is built whole and merged in one pass (a
    // tree of 30,000 files inserted one by one costs most of a no-op's time).
    let to = normalize(to);
    let mut tree: Entries = walked
        .entries
        .iter()
        .map(|(rel, source)| {
            let path = if rel.as_os_str().is_empty() {
                to.clone()
            } else {
                to.join(rel)
            };
            (path, source.clone())
        })
        .collect();
    entries.append(&mut tree);
    Ok(())
}

/// Replaces the staged `service.sh` with a copy whose `JAVA_HOME=` is set.
fn set_java_home(entries: &mut Entries, service_sh: &Path, java_home: &str) -> Result<()> {
    let missing = || {
        format!(
            "{} is missing from the module's skeleton: every Java module needs a service.sh with a JAVA_HOME= line",
            service_sh.display()
        )
    };
    let (text, mode) = match entries.get(service_sh) {
        Some(Source::File { from, mode, .. }) => (fs::read_to_string(from)?, *mode),
        Some(Source::Bytes { bytes, mode }) => (String::from_utf8_lossy(bytes).into_owned(), *mode),
        _ => bail!(missing()),
    };
    let updated = with_java_home(&text, java_home)
        .with_context(|| format!("{} has no JAVA_HOME= line to set", service_sh.display()))?;
    entries.insert(
        service_sh.to_path_buf(),
        Source::Bytes {
            bytes: updated.into_bytes(),
            mode,
        },
    );
    Ok(())
}

/// Pure: `text` with every `JAVA_HOME=...` assignment set to `java_home`; None if there is none.
#[must_use]
pub fn with_java_home(text: &str, java_home: &str) -> Option<String> {
    let mut found = false;
    let lines: Vec<String> = text
        .split_inclusive('\n')
        .map(|line| {
            let indent = &line[..line.len() - line.trim_start().len()];
            let body = line.trim_start();
            let (export, rest) = match body.strip_prefix("export ") {
                Some(r) => ("export ", r.trim_start()),
                None => ("", body),
            };
            if rest.starts_with("JAVA_HOME=") {
                found = true;
                let eol = if line.ends_with('\n') { "\n" } else { "" };
                format!("{indent}{export}JAVA_HOME={java_home}{eol}")
            } else {
                line.to_string()
            }
        })
        .collect();
    found.then(|| lines.concat())
}

/// sha256 over every entry's path, kind, mode and content.
pub fn digest(entries: &Entries, hasher: &mut Sha256, digests: &DigestCache) -> Result<()> {
    digest_entries(entries.iter(), hasher, digests)
}

/// sha256 of what `ops` stage, op by op: each operation's parameters, and each tree it
/// copies by the digest of its walk (so a tree two images stage is hashed once, and a
/// run that builds nothing lists no context). What is staged follows from these alone:
/// equal digests, equal contexts. The checks of [`collect`] are made when it runs.
pub fn ops_digest(
    ops: &[StageOp],
    shared: Option<&SharedWalks>,
    hasher: &mut Sha256,
    digests: &DigestCache,
) -> Result<()> {
    let tree_digest = |from: &Path, exclude: &[String], shared: Option<&SharedWalks>| {
        tree(from, exclude, shared).and_then(|t| t.digest(digests))
    };
    for op in ops {
        match op {
            StageOp::Copy { from, to, exclude } => {
                let to = normalize(Path::new(to));
                hasher.update(format!("copy\0{}\0{}\0", to.display(), exclude.join("\0")));
                hasher.update(tree_digest(from, exclude, shared)?);
            }
            StageOp::EmptyDir(d) => hasher.update(format!("mkdir\0{d}\0")),
            StageOp::Jar { module, lib, .. } => {
                let jar = module.built_jar()?;
                hasher.update(jar_placement(op, &jar));
                // Maven's output is written during the run: never shared.
                hasher.update(tree_digest(&jar, &[], None)?);
                if *lib {
                    hasher.update(tree_digest(&lib_dir(module)?, &[], None)?);
                }
            }
        }
    }
    Ok(())
}

/// What installing `jar` decides besides its bytes: where, under which names, with which
/// `JAVA_HOME` (not where the module's sources are: a checkout moved stages the same).
fn jar_placement(op: &StageOp, jar: &Path) -> String {
    let StageOp::Jar {
        to,
        link,
        lib,
        java_home,
        ..
    } = op
    else {
        return String::new();
    };
    let name = jar.file_name().unwrap_or_default().to_string_lossy();
    let to = normalize(Path::new(to));
    format!(
        "jar\0{}\0{name}\0{link}\0{lib}\0{java_home}\0",
        to.display()
    )
}

/// The `lib/` a module's jar is staged with.
fn lib_dir(module: &pom::Module) -> Result<PathBuf> {
    let libdir = module.target().join("lib");
    if !libdir.is_dir() {
        bail!(
            "{} is missing: module {} must copy its dependencies there (maven-dependency-plugin copy-dependencies)",
            libdir.display(),
            module.artifact_id
        );
    }
    Ok(libdir)
}

/// Writes `entries` into `dest`: over its last staging, writing only what changed, when
/// that staging completed (see [`restage`]); else built beside it and renamed into place.
/// Either way a failure never leaves a half-filled directory under the final name.
pub fn materialize(dest: &Path, entries: &Entries) -> Result<()> {
    if let Some(last) = restage::read_record(dest)
        && dest.is_dir()
    {
        restage::forget(dest)?;
        let updated = restage::update(dest, entries, &last, write_entry)
            .and_then(|record| settle_dirs(dest, entries).map(|()| record));
        return match updated {
            Ok(record) => restage::write_record(dest, &record),
            Err(e) => {
                let _ = fs::remove_dir_all(dest);
                Err(e)
            }
        };
    }
    restage::forget(dest)?;
    let partial = dest.with_extension("partial");
    fate_bundle::fsx::remove_if_present(&partial)?;
    fs::create_dir_all(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    if let Err(e) = write_entries(&partial, entries) {
        let _ = fs::remove_dir_all(&partial);
        return Err(e);
    }
    fate_bundle::fsx::remove_if_present(dest)?;
    fs::rename(&partial, dest)
        .with_context(|| format!("cannot move {} to {}", partial.display(), dest.display()))?;
    let record = entries
        .iter()
        .map(|(rel, source)| Ok((rel.clone(), restage::staged(&dest.join(rel), source)?)))
        .collect::<Result<restage::Record>>()?;
    restage::write_record(dest, &record)
}

/// Writes one entry at `path`, where nothing is: with its checkout mode and, but for a
/// directory (whose time its entries change: see [`settle_dirs`]), the build's epoch as
/// its times, so that the layers a `COPY` makes of it do not depend on this checkout.
fn write_entry(path: &Path, source: &Source) -> std::io::Result<()> {
    let epoch = || filetime::FileTime::from_unix_time(SOURCE_DATE_EPOCH, 0);
    match source {
        Source::Dir { .. } => fs::create_dir_all(path),
        Source::File { from, mode, .. } => fs::copy(from, path)
            .and_then(|_| fs::set_permissions(path, fs::Permissions::from_mode(*mode)))
            .and_then(|()| filetime::set_file_times(path, epoch(), epoch())),
        Source::Symlink { target } => std::os::unix::fs::symlink(target, path)
            .and_then(|()| filetime::set_symlink_file_times(path, epoch(), epoch())),
        Source::Bytes { bytes, mode } => fs::write(path, bytes)
            .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(*mode)))
            .and_then(|()| filetime::set_file_times(path, epoch(), epoch())),
    }
}

fn write_entries(root: &Path, entries: &Entries) -> Result<()> {
    for (rel, source) in entries {
        let path = root.join(rel);
        write_entry(&path, source).map_err(|e| {
            let full = e.kind() == std::io::ErrorKind::StorageFull;
            let hint = if full { " (the disk is full)" } else { "" };
            anyhow::Error::new(e).context(format!("cannot stage {}{hint}", path.display()))
        })?;
    }
    settle_dirs(root, entries)
}

/// Directory modes and times last, deepest first: a read-only directory would refuse
/// its own entries, and writing an entry sets its directory's time. The context's root
/// gets them too (`COPY . DEST` gives DEST its metadata).
fn settle_dirs(root: &Path, entries: &Entries) -> Result<()> {
    let epoch = filetime::FileTime::from_unix_time(SOURCE_DATE_EPOCH, 0);
    let dirs = entries
        .iter()
        .rev()
        .filter_map(|(rel, source)| match source {
            Source::Dir { mode } => Some((root.join(rel), *mode)),
            _ => None,
        })
        .chain(std::iter::once((root.to_path_buf(), 0o755)));
    for (dir, mode) in dirs {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
            .and_then(|()| filetime::set_file_times(&dir, epoch, epoch))
            .with_context(|| format!("cannot set the mode and times of {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maven::pom::Module;

    #[test]
    fn a_context_has_git_modes_and_the_epoch_as_times_whatever_the_checkout() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(src.join("private")).unwrap();
        fs::write(src.join("private/a.py"), "a").unwrap();
        fs::write(src.join("run.sh"), "r").unwrap();
        std::os::unix::fs::symlink("run.sh", src.join("link")).unwrap();
        // As a checkout made under umask 077 has them.
        for (path, mode) in [
            ("private/a.py", 0o600),
            ("run.sh", 0o700),
            ("private", 0o700),
        ] {
            fs::set_permissions(src.join(path), fs::Permissions::from_mode(mode)).unwrap();
        }
        let ops = [StageOp::Copy {
            from: src.clone(),
            to: "app".into(),
            exclude: vec![],
        }];
        let context = d.path().join("context");
        materialize(&context, &collect(&ops, None).unwrap()).unwrap();
        for (path, mode) in [
            ("", 0o755),
            ("app", 0o755),
            ("app/private", 0o755),
            ("app/private/a.py", 0o644),
            ("app/run.sh", 0o755),
        ] {
            let meta = fs::metadata(context.join(path)).unwrap();
            assert_eq!(meta.mode() & 0o7777, mode, "{path}");
            assert_eq!(meta.mtime(), SOURCE_DATE_EPOCH, "{path}");
        }
        let link = fs::symlink_metadata(context.join("app/link")).unwrap();
        assert_eq!(link.mtime(), SOURCE_DATE_EPOCH);
    }

    #[test]
    fn java_home_lines_are_set() {
        let text = "#!/bin/bash\nJAVA_HOME=\n  export JAVA_HOME=/old\nJAVA=$JAVA_HOME/bin/java\n";
        assert_eq!(
            with_java_home(text, "/opt/jdk").unwrap(),
            "#!/bin/bash\nJAVA_HOME=/opt/jdk\n  export JAVA_HOME=/opt/jdk\nJAVA=$JAVA_HOME/bin/java\n"
        );
        assert_eq!(with_java_home("echo hi\n", "/x"), None);
    }

    fn fixture(d: &Path) -> (PathBuf, Module) {
        let skel = d.join("skel");
        fs::create_dir_all(skel.join("conf")).unwrap();
        fs::write(skel.join("service.sh"), "JAVA_HOME=\n").unwrap();
        fs::write(skel.join("conf/x.properties"), "a=1\n").unwrap();
        let module_dir = d.join("arch/roll");
        fs::create_dir_all(module_dir.join("target/lib")).unwrap();
        fs::write(module_dir.join("pom.xml"), "<project/>").unwrap();
        fs::write(module_dir.join("Roll.java"), "class Roll {}").unwrap();
        fs::write(module_dir.join("target/fate-roll-0.3.jar"), "jar").unwrap();
        fs::write(module_dir.join("target/lib/dep.jar"), "dep").unwrap();
        let module = Module {
            group_id: "org.example".into(),
            dir: module_dir,
            artifact_id: "fate-roll".into(),
            version: "0.3".into(),
            final_name: "fate-roll-0.3".into(),
        };
        (skel, module)
    }

    fn ops(d: &Path, skel: &Path, module: &Module, to: &str) -> Vec<StageOp> {
        vec![
            StageOp::Copy {
                from: skel.to_path_buf(),
                to: to.into(),
                exclude: vec![],
            },
            StageOp::Jar {
                module: module.clone(),
                to: to.into(),
                link: "fate-roll.jar".into(),
                lib: true,
                java_home: "/jdk".into(),
            },
            StageOp::Copy {
                from: d.join("arch"),
                to: "src".into(),
                exclude: vec!["**/*.java".into()],
            },
            StageOp::EmptyDir("logs".into()),
        ]
    }

    #[test]
    fn stage_installs_jar_lib_link_and_leaves_skeleton_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let (skel, module) = fixture(d);
        let dest = d.join("out/roll");
        materialize(
            &dest,
            &collect(&ops(d, &skel, &module, "svc"), None).unwrap(),
        )
        .unwrap();
        let svc = dest.join("svc");
        assert_eq!(
            fs::read_to_string(svc.join("service.sh")).unwrap(),
            "JAVA_HOME=/jdk\n"
        );
        assert_eq!(
            fs::read_to_string(skel.join("service.sh")).unwrap(),
            "JAVA_HOME=\n"
        );
        assert_eq!(
            fs::read_link(svc.join("fate-roll.jar")).unwrap(),
            Path::new("fate-roll-0.3.jar")
        );
        assert_eq!(fs::read_to_string(svc.join("lib/dep.jar")).unwrap(), "dep");
        assert!(dest.join("src/roll/pom.xml").is_file());
        assert!(!dest.join("src/roll/Roll.java").exists(), "excluded");
        assert!(
            !dest.join("src/roll/target").exists(),
            "Maven output is not source"
        );
        assert!(dest.join("logs").is_dir());
        assert!(!dest.with_extension("partial").exists());
    }

    #[test]
    fn special_files_are_refused_with_their_path_never_opened() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("src")).unwrap();
        let fifo = d.path().join("src/pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let op = StageOp::Copy {
            from: d.path().join("src"),
            to: ".".into(),
            exclude: vec![],
        };
        let e = format!("{:#}", collect(&[op], None).unwrap_err());
        assert!(e.contains(&format!("{} is a FIFO", fifo.display())), "{e}");
    }

    #[test]
    fn digest_follows_content_modes_and_ops_not_times() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let (skel, module) = fixture(d);
        let sum_of = |ops: &[StageOp], shared: Option<&SharedWalks>| {
            let mut h = Sha256::new();
            ops_digest(ops, shared, &mut h, &DigestCache::none()).unwrap();
            hex::encode(h.finalize())
        };
        let sum = || sum_of(&ops(d, &skel, &module, "."), None);
        let first = sum();
        // Walked once and shared, or walked by each: the same digest.
        let shared = SharedWalks::default();
        assert_eq!(sum_of(&ops(d, &skel, &module, "."), Some(&shared)), first);
        assert_eq!(sum_of(&ops(d, &skel, &module, "."), Some(&shared)), first);
        fs::write(skel.join("conf/x.properties"), "a=1\n").unwrap();
        assert_eq!(sum(), first, "rewriting the same bytes changes nothing");
        fs::write(skel.join("conf/x.properties"), "a=2\n").unwrap();
        let second = sum();
        assert_ne!(second, first);
        // A mode another umask gives (git's 644 staged either way) does not count;
        // being executable does.
        let mode = |m| {
            fs::set_permissions(
                skel.join("conf/x.properties"),
                fs::Permissions::from_mode(m),
            )
            .unwrap();
        };
        mode(0o600);
        assert_eq!(sum(), second, "an umask's mode does not count");
        mode(0o700);
        let third = sum();
        assert_ne!(third, second, "the executable bit counts");
        // Where things go and how the jar is installed count too.
        assert_ne!(sum_of(&ops(d, &skel, &module, "svc"), None), third);
        let mut other_home = ops(d, &skel, &module, ".");
        if let StageOp::Jar { java_home, .. } = &mut other_home[1] {
            *java_home = "/other".into();
        }
        assert_ne!(sum_of(&other_home, None), third);
        fs::write(module.target().join("lib/dep.jar"), "dep 2").unwrap();
        let fourth = sum();
        assert_ne!(fourth, third, "a dependency in lib/ counts");
        fs::write(module.target().join("fate-roll-0.3.jar"), "jar 2").unwrap();
        assert_ne!(sum(), fourth, "the jar counts");
        // What the digest leaves to staging is still checked there, with its path.
        fs::remove_file(skel.join("service.sh")).unwrap();
        let e = format!(
            "{:#}",
            collect(&ops(d, &skel, &module, "."), None).unwrap_err()
        );
        assert!(e.contains("service.sh is missing"), "{e}");
    }

    #[test]
    fn a_walk_lists_entries_in_their_staged_order_whatever_their_names() {
        use std::os::unix::ffi::OsStrExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("t");
        for dir in ["a/b", "a.d", "B", "a-"] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        for file in ["a/b/z", "a/1", "a.txt", "Z", "a-/x", "a.d/y"] {
            fs::write(root.join(file), file).unwrap();
        }
        // Not UTF-8: a name a tree may hold, and the digest cache must keep.
        let odd = root.join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
        fs::write(&odd, "odd").unwrap();
        let walked = crate::stage::walk::walk(&root, &[]).unwrap();
        let order: Vec<&PathBuf> = walked.iter().map(|(rel, _)| rel).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "a walk is in the order of Entries");
        assert_eq!(order.len(), 1 + 5 + 7, "the root, 5 directories, 7 files");
        let cache_file = tmp.path().join("digests.bin");
        let cache = DigestCache::open(&cache_file);
        let old = std::time::SystemTime::now() - std::time::Duration::from_mins(1);
        fs::File::options()
            .write(true)
            .open(&odd)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let digest = cache.file_sha256(&odd).unwrap();
        cache.save().unwrap();
        assert_eq!(
            DigestCache::open(&cache_file).file_sha256(&odd).unwrap(),
            digest
        );
    }

    #[test]
    fn missing_jar_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let module = Module {
            group_id: "org.example".into(),
            dir: tmp.path().join("arch/proxy"),
            artifact_id: "fate-proxy".into(),
            version: "0.3".into(),
            final_name: "fate-proxy-0.3".into(),
        };
        let op = StageOp::Jar {
            module,
            to: ".".into(),
            link: "fate-proxy.jar".into(),
            lib: true,
            java_home: "/j".into(),
        };
        let e = collect(std::slice::from_ref(&op), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Maven built no single jar for module fate-proxy")
                && e.contains("expected fate-proxy-0.3.jar; it holds no jar"),
            "{e}"
        );
        // Maven decides the name: a jar named otherwise is found by its artifactId, and
        // one already named `<artifact>.jar` gets no link to itself.
        let target = tmp.path().join("arch/proxy/target");
        std::fs::create_dir_all(target.join("lib")).unwrap();
        std::fs::write(target.join("fate-proxy.jar"), "jar").unwrap();
        std::fs::write(tmp.path().join("service.sh"), "JAVA_HOME=x\n").unwrap();
        let skeleton = StageOp::Copy {
            from: tmp.path().join("service.sh"),
            to: "service.sh".into(),
            exclude: vec![],
        };
        let entries = collect(&[skeleton, op.clone()], None).unwrap();
        assert!(matches!(
            entries[Path::new("fate-proxy.jar")],
            Source::File { .. }
        ));
        std::fs::write(target.join("other.jar"), "jar").unwrap();
        std::fs::write(target.join("fate-proxy-0.9.jar"), "jar").unwrap();
        let e = collect(&[op], None).unwrap_err().to_string();
        assert!(
            e.contains("it holds fate-proxy-0.9.jar, fate-proxy.jar, other.jar"),
            "{e}"
        );
    }
}
