//! Files the tool writes: never in a predictable shared place, never through a link that
//! someone else could have planted. What has no FATE root to write under (the logs of
//! `load`) goes to this user's state directory, made private.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The user and group this process runs as (the owner of `/proc/self`).
pub fn uid_gid() -> Result<(u32, u32)> {
    let me = std::fs::metadata("/proc/self").context("cannot read /proc/self")?;
    Ok((me.uid(), me.gid()))
}

/// This user's directory for the tool's state under `sub` (e.g. `logs`):
/// `$XDG_STATE_HOME/fate-xtask/<sub>`, else `~/.local/state/fate-xtask/<sub>`, made with
/// mode 0700. A path there that is not a directory of this user's (a link, another
/// user's directory) is not used: a fresh private temporary directory is, and said.
pub fn state_dir(sub: &str) -> Result<(PathBuf, Option<String>)> {
    let base = match (std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME")) {
        (Some(xdg), _) if !xdg.is_empty() => Some(PathBuf::from(xdg)),
        (_, Some(home)) if !home.is_empty() => Some(Path::new(&home).join(".local/state")),
        _ => None,
    };
    let why = match base {
        Some(base) => {
            let dir = base.join("fate-xtask").join(sub);
            match private_dir(&dir) {
                Ok(()) => return Ok((dir, None)),
                Err(e) => format!("{e:#}"),
            }
        }
        None => "neither XDG_STATE_HOME nor HOME is set".into(),
    };
    let fresh = tempfile::Builder::new()
        .prefix("fate-xtask-")
        .tempdir()
        .context("cannot create a private temporary directory")?
        .keep();
    Ok((fresh, Some(why)))
}

/// Makes `dir` (and its parents) and checks that it is a real directory owned by this
/// user, with no access for others.
fn private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let meta =
        std::fs::symlink_metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let (uid, _) = uid_gid()?;
    if !meta.file_type().is_dir() {
        bail!("{} is not a directory (a link?)", dir.display());
    }
    if meta.uid() != uid {
        bail!(
            "{} belongs to user {}, not to you",
            dir.display(),
            meta.uid()
        );
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", dir.display()))?;
    }
    Ok(())
}

/// Creates (or empties) `path` for writing without following a link at its end: a link
/// planted there is removed (not followed) and a new file made in its place, mode 0600.
pub fn create_file(path: &Path) -> io::Result<File> {
    let open = || {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
    };
    match open() {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            std::fs::remove_file(path)?;
            open()
        }
        result => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_link_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let log = dir.path().join("load.log");
        std::os::unix::fs::symlink(&victim, &log).unwrap();
        std::io::Write::write_all(&mut create_file(&log).unwrap(), b"log").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "log");
        assert!(
            !std::fs::symlink_metadata(&log)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn a_state_directory_is_private_and_a_link_there_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join("mine/fate-xtask/logs");
        private_dir(&mine).unwrap();
        let mode = std::fs::metadata(&mine).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        let linked = dir.path().join("linked");
        std::fs::create_dir_all(linked.join("fate-xtask")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, linked.join("fate-xtask/logs")).unwrap();
        let e = private_dir(&linked.join("fate-xtask/logs")).unwrap_err();
        assert!(format!("{e:#}").contains("not a directory"), "{e:#}");
    }
}
