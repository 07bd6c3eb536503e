//! The image-build scenarios: cold, no-op and one-file rebuilds by xtask, each beside
//! the old way (every Maven and `docker build` command of the old script, in sequence).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use xshell::Shell;

use crate::config::selection::Options;
use crate::docker::argv::{self, BuildSpec};
use crate::docker::engine;
use crate::facts::preflight;
use crate::plan;
use crate::stage::staging;
use crate::steps::action::Action;
use fate_bundle::process::{self};

use crate::bench::fixture::{clean, edit, grow_for_scale, shrink_from_scale};
use crate::bench::measure::{xtask, xtask_command, xtask_run};
use crate::bench::samples::{BENCH_PREFIX, OLD_PREFIX, Sample, Samples, Scenario, record};

/// Cold, no-op and one-file rebuilds, each followed by the old way.
pub(super) fn build_scenarios(
    sh: &Shell,
    samples: &mut Samples,
    ours: &Path,
    old: &Path,
    run: usize,
) -> Result<()> {
    // Cold: no images, no Maven output, and no layer cache to reuse.
    clean(sh, old, OLD_PREFIX).context("cleaning")?;
    record(
        samples,
        Scenario::ColdBaseline,
        baseline(sh, old, true).context("baseline")?,
    );
    clean(sh, ours, BENCH_PREFIX).context("cleaning")?;
    record(
        samples,
        Scenario::ColdJobs1,
        xtask(ours, &["images", "--jobs", "1", "--no-cache"])?,
    );
    clean(sh, ours, BENCH_PREFIX).context("cleaning")?;
    record(
        samples,
        Scenario::ColdJobs2,
        xtask(ours, &["images", "--jobs", "2", "--no-cache"])?,
    );
    // A comparison of builders, not of tools: the first run's figure says enough, and
    // the legacy builder's cold build is the bench's longest.
    if run == 0 && engine::builder(sh) == Ok(argv::Builder::BuildKit) {
        clean(sh, ours, BENCH_PREFIX).context("cleaning")?;
        let legacy = xtask_command(ours, &["images", "--jobs", "2", "--no-cache"])?
            .env("DOCKER_BUILDKIT", "0");
        record(samples, Scenario::ColdLegacy, xtask_run(ours, &legacy)?);
    }
    record(samples, Scenario::NoOp, xtask(ours, &["images"])?);
    record(
        samples,
        Scenario::NoOpBaseline,
        baseline(sh, old, false).context("baseline")?,
    );
    edit(ours, run)?;
    record(samples, Scenario::OneFile, xtask(ours, &["images"])?);
    edit(old, run)?;
    record(
        samples,
        Scenario::OneFileBaseline,
        baseline(sh, old, false).context("baseline")?,
    );
    Ok(())
}

/// The no-op on the tree grown by [`super::fixture::SCALE_FILES`] files (built once first, untimed); the
/// files are removed after.
pub(super) fn scale_scenario(samples: &mut Samples, ours: &Path) -> Result<()> {
    grow_for_scale(ours)?;
    // Files this new are read again on every run until their times settle (see
    // `DigestCache`): wait that out, as a developer's next runs would.
    std::thread::sleep(crate::stage::digest_cache::RACY + Duration::from_millis(500));
    let grown = xtask(ours, &["images"]).and_then(|_| xtask(ours, &["images"]));
    shrink_from_scale(ours)?;
    record(samples, Scenario::NoOpScaled, grown?);
    Ok(())
}

/// The old way: every Maven project, then every image, one command after another,
/// with the same command lines minus what the old script did not have (labels,
/// reproducible-jar timestamp). Packaging is included, as the old script did it too.
pub(super) fn baseline(sh: &Shell, root: &Path, no_cache: bool) -> Result<Sample> {
    let project = crate::bench::samples::project(root, sh)?;
    let (set, config) = (&project.set, &project.config);
    let facts = preflight::check(
        sh,
        config,
        set,
        &Options::default(),
        preflight::Purpose::Run,
    )?;
    let options = Options {
        no_cache,
        ..Options::default()
    };
    let plan = plan::images(config, set, &facts, &options)?;
    let started = Instant::now();
    let mut images_built = 0;
    for step in &plan.steps {
        let command = match &step.action {
            Action::Maven(m) => {
                let mut c = m.command.clone();
                c.args
                    .retain(|a| !a.starts_with("-Dproject.build.outputTimestamp"));
                c
            }
            Action::Build(b) => {
                staging::materialize(&b.context, &staging::collect(&b.ops, None)?)?;
                images_built += 1;
                // As the old script issued it: the image set's Dockerfile (no labels).
                argv::build(&BuildSpec {
                    builder: facts.builder,
                    dockerfile: b.dockerfile.clone(),
                    tag: b.reference.clone(),
                    build_args: b.build_args.clone(),
                    no_cache,
                    iidfile: None,
                    buildx_plugin: None,
                    context: b.context.clone(),
                    options: crate::config::BuildOptions::default(),
                    rewrite_timestamps: false,
                    context_tar: None,
                })
            }
            Action::WriteFile(file) => {
                fate_bundle::fsx::write_file(&file.path, &file.contents)?;
                continue;
            }
            // What the old script's machines had by hand: plexus-utils 1.1 in the local
            // repository (a fresh machine's Debian repository lacks it).
            Action::SeedMavenRepo(seed) => {
                seed.ensure()?;
                continue;
            }
            _ => continue,
        };
        process::run_captured(&command).context("the baseline failed")?;
    }
    Ok(Sample {
        wall: started.elapsed(),
        images_built,
        ..Sample::default()
    })
}
