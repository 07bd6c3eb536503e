//! Staging in Rust (no tar, cp or sed children): fills a fresh directory with the
//! operations of a plan step. Tracked files are only ever read.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use walkdir::WalkDir;

use crate::plan::StageOp;

/// Builds `dest` from scratch: written beside it, then renamed into place, so a
/// failure never leaves a half-filled directory under the final name.
pub fn stage(dest: &Path, ops: &[StageOp]) -> Result<()> {
    let partial = dest.with_extension("partial");
    remove_if_present(&partial)?;
    fs::create_dir_all(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let filled = ops.iter().try_for_each(|op| apply(&partial, op));
    if let Err(e) = filled {
        let _ = fs::remove_dir_all(&partial);
        return Err(e);
    }
    remove_if_present(dest)?;
    fs::rename(&partial, dest)
        .with_context(|| format!("cannot move {} to {}", partial.display(), dest.display()))
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(_) => {
            fs::remove_dir_all(path).with_context(|| format!("cannot remove {}", path.display()))
        }
        Err(_) => Ok(()),
    }
}

fn apply(root: &Path, op: &StageOp) -> Result<()> {
    match op {
        StageOp::Copy { from, to } => copy_tree(from, &root.join(to), false),
        StageOp::Link { from, to } => copy_tree(from, &root.join(to), true),
        StageOp::EmptyDir(d) => {
            fs::create_dir_all(root.join(d)).with_context(|| format!("cannot create {d}"))
        }
        StageOp::Jar {
            module,
            link,
            lib,
            java_home,
        } => {
            let jar = module.jar();
            if !jar.is_file() {
                bail!(
                    "{} has no jar {}: Maven did not build module {} (look at its Maven log, or run the Maven step again)",
                    module.dir.display(),
                    jar.display(),
                    module.artifact_id
                );
            }
            let jar_name = format!("{}.jar", module.final_name);
            copy_file(&jar, &root.join(&jar_name))?;
            std::os::unix::fs::symlink(&jar_name, root.join(link))
                .with_context(|| format!("cannot link {link} -> {jar_name}"))?;
            if *lib {
                let libdir = module.target().join("lib");
                if !libdir.is_dir() {
                    bail!(
                        "{} is missing: module {} must copy its dependencies there (maven-dependency-plugin copy-dependencies)",
                        libdir.display(),
                        module.artifact_id
                    );
                }
                copy_tree(&libdir, &root.join("lib"), false)?;
            }
            set_java_home(&root.join("service.sh"), java_home)
        }
    }
}

/// Copies (or hard-links) a file or directory tree. Symlinks are recreated as they are;
/// `.git/` and Maven `target/` directories (beside a `pom.xml`) are left out.
fn copy_tree(from: &Path, to: &Path, hard_link: bool) -> Result<()> {
    let meta =
        fs::symlink_metadata(from).with_context(|| format!("{} does not exist", from.display()))?;
    if !meta.is_dir() {
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        return place(from, to, hard_link);
    }
    let walk = WalkDir::new(from).follow_links(false).into_iter();
    for entry in walk.filter_entry(|e| !is_excluded(e.path())) {
        let entry = entry.with_context(|| format!("cannot read {}", from.display()))?;
        let rel = entry
            .path()
            .strip_prefix(from)
            .expect("walk stays below its root");
        let target = to.join(rel);
        if entry.file_type().is_dir() {
            fs::create_dir_all(&target)
                .with_context(|| format!("cannot create {}", target.display()))?;
            fs::set_permissions(&target, entry.metadata()?.permissions())?;
        } else {
            place(entry.path(), &target, hard_link)?;
        }
    }
    Ok(())
}

fn is_excluded(path: &Path) -> bool {
    match path.file_name().and_then(|n| n.to_str()) {
        Some(".git") => true,
        Some("target") => path.parent().is_some_and(|p| p.join("pom.xml").is_file()),
        _ => false,
    }
}

/// One non-directory entry: symlink recreated, file linked or copied.
fn place(from: &Path, to: &Path, hard_link: bool) -> Result<()> {
    let meta = fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(from)?;
        return std::os::unix::fs::symlink(&target, to)
            .with_context(|| format!("cannot create the link {}", to.display()));
    }
    if hard_link && fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    copy_file(from, to)
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to)
        .map(|_| ())
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))
}

/// Rewrites the `JAVA_HOME=` line of a staged `service.sh` (a fresh copy, never the skeleton).
fn set_java_home(service_sh: &Path, java_home: &str) -> Result<()> {
    let text = fs::read_to_string(service_sh).with_context(|| {
        format!(
            "{} is missing: every Java module skeleton needs a service.sh with a JAVA_HOME= line",
            service_sh.display()
        )
    })?;
    let updated = with_java_home(&text, java_home)
        .with_context(|| format!("{} has no JAVA_HOME= line to set", service_sh.display()))?;
    let perms = fs::metadata(service_sh)?.permissions();
    // Replace rather than write through: the staged file may share an inode.
    let tmp = service_sh.with_extension("sh.tmp");
    fs::write(&tmp, updated)?;
    fs::set_permissions(&tmp, perms)?;
    fs::rename(&tmp, service_sh)?;
    Ok(())
}

/// Pure: `text` with every `JAVA_HOME=...` assignment set to `java_home`; None if there is none.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pom::Module;

    #[test]
    fn java_home_lines_are_set() {
        let text = "#!/bin/bash\nJAVA_HOME=\n  export JAVA_HOME=/old\nJAVA=$JAVA_HOME/bin/java\n";
        assert_eq!(
            with_java_home(text, "/opt/jdk").unwrap(),
            "#!/bin/bash\nJAVA_HOME=/opt/jdk\n  export JAVA_HOME=/opt/jdk\nJAVA=$JAVA_HOME/bin/java\n"
        );
        assert_eq!(with_java_home("echo hi\n", "/x"), None);
    }

    #[test]
    fn stage_installs_jar_lib_link_and_leaves_skeleton_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let skel = d.join("skel");
        fs::create_dir_all(skel.join("conf")).unwrap();
        fs::write(skel.join("service.sh"), "JAVA_HOME=\n").unwrap();
        fs::write(skel.join("conf/x.properties"), "a=1\n").unwrap();
        let module_dir = d.join("arch/roll");
        fs::create_dir_all(module_dir.join("target/lib")).unwrap();
        fs::create_dir_all(module_dir.join("target/classes")).unwrap();
        fs::write(module_dir.join("pom.xml"), "<project/>").unwrap();
        fs::write(module_dir.join("target/fate-roll-0.3.jar"), "jar").unwrap();
        fs::write(module_dir.join("target/lib/dep.jar"), "dep").unwrap();
        let module = Module {
            dir: module_dir.clone(),
            artifact_id: "fate-roll".into(),
            version: "0.3".into(),
            final_name: "fate-roll-0.3".into(),
        };
        let dest = d.join("out/roll");
        let ops = vec![
            StageOp::Copy {
                from: skel.clone(),
                to: ".".into(),
            },
            StageOp::Jar {
                module,
                link: "fate-roll.jar".into(),
                lib: true,
                java_home: "/jdk".into(),
            },
            StageOp::Copy {
                from: d.join("arch"),
                to: "src".into(),
            },
            StageOp::EmptyDir("logs".into()),
        ];
        stage(&dest, &ops).unwrap();
        assert_eq!(
            fs::read_to_string(dest.join("service.sh")).unwrap(),
            "JAVA_HOME=/jdk\n"
        );
        assert_eq!(
            fs::read_to_string(skel.join("service.sh")).unwrap(),
            "JAVA_HOME=\n"
        );
        assert_eq!(
            fs::read_link(dest.join("fate-roll.jar")).unwrap(),
            Path::new("fate-roll-0.3.jar")
        );
        assert_eq!(fs::read_to_string(dest.join("lib/dep.jar")).unwrap(), "dep");
        assert!(dest.join("src/roll/pom.xml").is_file());
        assert!(
            !dest.join("src/roll/target").exists(),
            "Maven output is not source"
        );
        assert!(dest.join("logs").is_dir());
        assert!(!dest.with_extension("partial").exists());
    }

    #[test]
    fn missing_jar_fails_and_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let module = Module {
            dir: tmp.path().join("arch/proxy"),
            artifact_id: "fate-proxy".into(),
            version: "0.3".into(),
            final_name: "fate-proxy-0.3".into(),
        };
        let dest = tmp.path().join("out/proxy");
        let e = stage(
            &dest,
            &[StageOp::Jar {
                module,
                link: "fate-proxy.jar".into(),
                lib: true,
                java_home: "/j".into(),
            }],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("Maven did not build module fate-proxy"), "{e}");
        assert!(!dest.exists() && !dest.with_extension("partial").exists());
    }
}
