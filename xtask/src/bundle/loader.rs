//! The loader a bundle carries (`fate-xtask`, the `fate_bundle` library's own binary):
//! built here from this checkout as one statically linked executable, so the air-gapped
//! side needs nothing installed to check, load or push the bundle.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use fate_bundle::process::{self, Command};
use fate_bundle::ui::Ui;

/// The file name in the bundle: its README reads `./fate-xtask load .`.
pub const FILE: &str = "fate-xtask";
/// The only target it is built for: the hosts FATE runs on.
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The cargo command that builds it (a profile of its own: optimised, stripped), into a
/// target directory of its own so the static flags never rebuild the workspace's.
#[must_use]
pub fn build_command(workspace: &Path) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    Command::new(
        &cargo,
        [
            "build",
            "--profile",
            "loader",
            "--locked",
            "--target",
            TARGET,
            "--package",
            "fate-bundle",
            "--bin",
            FILE,
            "--features",
            "registry",
            "--target-dir",
            &workspace.join("target/loader").to_string_lossy(),
        ],
    )
    .env("RUSTFLAGS", "-C target-feature=+crt-static")
    .current_dir(workspace.to_path_buf())
}

/// Builds the loader (at once when it is up to date) and gives its path.
pub fn build(ui: &Ui, workspace: &Path, log: &Path) -> Result<PathBuf> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        bail!(
            "the bundle's loader is built for Linux x86_64, and this host is not one: pass --no-loader (load such a bundle with cargo xtask load)"
        );
    }
    let line = ui.start("build the loader (static fate-xtask)");
    match process::run_logged(&build_command(workspace), log, &line) {
        Ok(()) => line.finish("done", ""),
        Err(e) => {
            line.finish("FAILED", "");
            return Err(e.context(format!(
                "building the bundle's loader failed (log: {}); fix the build, or pass --no-loader to bundle without it",
                log.display()
            )));
        }
    }
    Ok(workspace
        .join("target/loader")
        .join(TARGET)
        .join("loader")
        .join(FILE))
}

/// The loader, unless `--split-size` is smaller than it: no file of a split bundle is
/// larger than the limit, and an executable in parts does not run (said, with how to
/// carry it apart).
pub fn fits(ui: &Ui, loader: PathBuf, split_size: Option<u64>) -> Result<Option<PathBuf>> {
    let size = std::fs::metadata(&loader)?.len();
    match split_size {
        Some(limit) if size > limit => {
            ui.note(&format!(
                "note: the loader ({}) is larger than --split-size ({}): the bundle is written without it; carry {} apart, or pass a larger --split-size",
                fate_bundle::ui::human_size(size),
                fate_bundle::ui::human_size(limit),
                loader.display()
            ));
            Ok(None)
        }
        _ => Ok(Some(loader)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loader_is_built_static_for_its_target_apart() {
        let c = build_command(Path::new("/w"));
        assert!(c.args.windows(2).any(|w| w == ["--target", TARGET]));
        assert!(
            c.args
                .windows(2)
                .any(|w| w == ["--target-dir", "/w/target/loader"])
        );
        assert!(c.args.windows(2).any(|w| w == ["--profile", "loader"]));
        assert_eq!(
            c.env,
            vec![(
                "RUSTFLAGS".to_string(),
                "-C target-feature=+crt-static".to_string()
            )]
        );
    }
}
