//! Maven's local repository: the one fix Debian's offline repository needs.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

const PLEXUS_UTILS: &str = "org/codehaus/plexus/plexus-utils";

/// The directory of a `file://` mirror URL that lacks plexus-utils 1.1 (Maven asks for it
/// for older plugins; Debian's packaged repository has only 3.x).
pub fn repo_needing_seed(mirror_url: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(mirror_url.strip_prefix("file://")?);
    let utils = dir.join(PLEXUS_UTILS);
    (utils.is_dir() && !utils.join("1.1").is_dir()).then_some(dir)
}

/// Puts plexus-utils 1.1 into `local_repo`, backed by the newest jar of `from_repo`.
pub fn seed_plexus_utils(from_repo: &Path, local_repo: &Path) -> Result<()> {
    let dest = local_repo.join(PLEXUS_UTILS).join("1.1");
    let jar = dest.join("plexus-utils-1.1.jar");
    if jar.is_file() {
        return Ok(());
    }
    let source = fs::read_dir(from_repo.join(PLEXUS_UTILS))?
        .filter_map(|e| e.ok())
        .flat_map(|v| {
            fs::read_dir(v.path())
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
        })
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jar"))
        .max()
        .with_context(|| format!("{} has no plexus-utils jar", from_repo.display()))?;
    fs::create_dir_all(&dest).with_context(|| format!("cannot create {}", dest.display()))?;
    fs::copy(&source, &jar).with_context(|| format!("cannot copy {}", source.display()))?;
    fs::write(
        dest.join("plexus-utils-1.1.pom"),
        "<project><modelVersion>4.0.0</modelVersion><groupId>org.codehaus.plexus</groupId>\
         <artifactId>plexus-utils</artifactId><version>1.1</version></project>\n",
    )?;
    Ok(())
}
