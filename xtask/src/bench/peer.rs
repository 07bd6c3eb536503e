//! The peer a FATE developer would pick instead: `docker buildx bake`, fed by the bake
//! file `cargo xtask bake` writes for the same tree, on the same engine and builder. Three
//! pairs: the builds alone from cold (`--no-cache` on both sides, Maven done, contexts
//! staged), nothing changed, and a one-file Java edit (Maven the same way on both sides,
//! then the builds).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use xshell::Shell;

use crate::docker::{argv, engine};
use fate_bundle::process::{self, Command};

use crate::bench::fixture::{clean_images, edit};
use crate::bench::measure::{xtask, xtask_command};
use crate::bench::samples::{BAKE_PREFIX, BENCH_PREFIX, Sample, Samples, Scenario, record};

/// How the peer's builds run on this engine: one bake of every target, tied by named
/// contexts (BuildKit 0.10 and later, in Docker Engine 23 and later), or its stage
/// groups one after the other (the BuildKit of Docker Engine 20.10 has no named contexts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum BakeRun {
    NamedContexts,
    Stages(Vec<String>),
}

impl BakeRun {
    /// The argv of each `docker buildx bake`, in order.
    pub(super) fn commands(&self, file: &Path, no_cache: bool) -> Vec<Command> {
        match self {
            BakeRun::NamedContexts => vec![argv::bake(file, &[], no_cache)],
            BakeRun::Stages(groups) => groups
                .iter()
                .map(|g| argv::bake(file, std::slice::from_ref(g), no_cache))
                .collect(),
        }
    }
}

/// Named contexts from Docker Engine 23 on (its BuildKit is 0.11 or later).
pub(super) fn has_named_contexts(engine_version: &str) -> bool {
    engine_version
        .split('.')
        .next()
        .and_then(|major| major.parse::<u32>().ok())
        .is_some_and(|major| major >= 23)
}

/// The peer's tree, its bake file, and how it runs here.
pub(super) struct Peer {
    pub(super) root: PathBuf,
    file: PathBuf,
    run: BakeRun,
}

impl Peer {
    /// Writes the peer tree's bake file (Maven and staging, untimed) with what this
    /// engine's BuildKit takes.
    pub(super) fn prepare(sh: &Shell, root: &Path) -> Result<Peer> {
        let named = has_named_contexts(&engine::check(sh)?.version);
        let mut peer = Peer {
            root: root.to_path_buf(),
            file: root.join("target/xtask/docker-bake.json"),
            run: if named {
                BakeRun::NamedContexts
            } else {
                BakeRun::Stages(Vec::new())
            },
        };
        peer.write_bake_file()?;
        if !named {
            peer.run = BakeRun::Stages(stage_groups(&peer.file)?);
        }
        Ok(peer)
    }

    /// `cargo xtask bake`: Maven for what changed, contexts staged, the bake file.
    fn write_bake_file(&self) -> Result<()> {
        let mut args = vec!["bake"];
        if self.run != BakeRun::NamedContexts {
            args.push("--no-named-contexts");
        }
        process::run_captured(&xtask_command(&self.root, &args)?)
            .context("cargo xtask bake for the peer")?;
        Ok(())
    }

    /// The peer's builds, timed.
    fn bake(&self, no_cache: bool) -> Result<Sample> {
        let started = Instant::now();
        for command in self.run.commands(&self.file, no_cache) {
            process::run_captured(&command).context("docker buildx bake")?;
        }
        Ok(Sample {
            wall: started.elapsed(),
            ..Sample::default()
        })
    }
}

/// The stage groups of a bake file written without named contexts, in order.
fn stage_groups(file: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let bake: serde_json::Value = serde_json::from_str(&text)?;
    let mut stages: Vec<(u32, String)> = bake["group"]
        .as_object()
        .context("a bake file has groups")?
        .keys()
        .filter_map(|g| Some((g.strip_prefix("stage-")?.parse().ok()?, g.clone())))
        .collect();
    stages.sort();
    Ok(stages.into_iter().map(|(_, g)| g).collect())
}

/// Cold builds alone, nothing changed, and a one-file edit: xtask beside bake. Runs after
/// the build scenarios, which leave `ours` built with Maven's output in place.
pub(super) fn peer_scenarios(
    sh: &Shell,
    samples: &mut Samples,
    ours: &Path,
    peer: &Peer,
    run: usize,
) -> Result<()> {
    // Cold, the builds alone: no images and no build cache on either side, Maven's output
    // and the staged contexts in place.
    clean_images(sh, BENCH_PREFIX)?;
    record(
        samples,
        Scenario::ColdBuildsXtask,
        xtask(ours, &["images", "--no-cache"])?,
    );
    clean_images(sh, BAKE_PREFIX)?;
    record(samples, Scenario::ColdBuildsBake, peer.bake(true)?);
    // Nothing changed: bake's cache answers every step, and it exports every image.
    record(samples, Scenario::NoOpPeer, xtask(ours, &["images"])?);
    record(samples, Scenario::NoOpBake, peer.bake(false)?);
    // A one-file Java edit, on both sides: Maven for what changed, then the builds.
    edit(ours, 100 + run)?;
    record(samples, Scenario::OneFilePeer, xtask(ours, &["images"])?);
    edit(&peer.root, 100 + run)?;
    let started = Instant::now();
    peer.write_bake_file()?;
    let built = peer.bake(false)?;
    record(
        samples,
        Scenario::OneFileBake,
        Sample {
            wall: started.elapsed(),
            ..built
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_contexts_from_engine_23_on() {
        assert!(!has_named_contexts("20.10.24+dfsg1"));
        assert!(has_named_contexts("23.0.0"));
        assert!(has_named_contexts("26.1.5+dfsg1"));
        assert!(!has_named_contexts("unknown"));
    }

    #[test]
    fn stage_groups_bake_one_after_another() {
        let run = BakeRun::Stages(vec!["stage-1".into(), "stage-2".into()]);
        let argv: Vec<String> = run
            .commands(Path::new("/t/docker-bake.json"), true)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            argv,
            [
                "docker buildx bake --progress plain -f /t/docker-bake.json --load --no-cache stage-1",
                "docker buildx bake --progress plain -f /t/docker-bake.json --load --no-cache stage-2",
            ]
        );
        let one = BakeRun::NamedContexts.commands(Path::new("/t/b.json"), false);
        assert_eq!(
            one[0].to_string(),
            "docker buildx bake --progress plain -f /t/b.json --load"
        );
    }
}
