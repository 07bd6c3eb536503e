//! What the bundle tests share: the bundled images of a fixture, removing them as on a
//! fresh host, and the bundle README's commands run as a person would.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Engine, Fixture};

/// The bundled images: the modules and the two third-party stand-ins.
pub fn bundled() -> impl Iterator<Item = &'static str> {
    super::MODULES.into_iter().chain(["redis", "mysql"])
}

/// The fixture's bundled images present on its engine, by reference, with their IDs.
pub fn ids(fx: &Fixture) -> BTreeMap<String, String> {
    fx.images()
        .into_iter()
        .filter(|(r, _)| bundled().any(|n| r.contains(&format!("/{n}:"))))
        .collect()
}

/// Removes the bundled images (not base and builder), as on a fresh host.
pub fn remove_bundled(fx: &Fixture) {
    let refs: Vec<String> = ids(fx).into_keys().collect();
    fx.remove_only(&refs);
    assert!(ids(fx).is_empty());
}

/// Runs the README's commands in the bundle directory, as a person would, on `engine`.
pub fn by_hand(engine: &Engine, dir: &Path, script: &str) {
    super::ensure_packages("zstd", &["zstd"]);
    let _shared = super::engine_shared();
    let mut sh = std::process::Command::new("sh");
    sh.args(["-ec", script]).current_dir(dir);
    engine.apply(&mut sh);
    let out = sh.output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The files of a whole bundle (gzip, not split), sorted: its archives, manifest, sums,
/// README and the SBOM of each module image.
pub fn bundle_files() -> Vec<String> {
    let mut files: Vec<String> = [
        "README",
        "SHA256SUMS",
        "bundle.json",
        "fate-xtask",
        "fate.images.tar.gz",
        "third-party.images.tar.gz",
    ]
    .map(String::from)
    .into_iter()
    .chain(super::MODULES.map(|m| format!("{m}.spdx.json")))
    .collect();
    files.sort();
    files
}
