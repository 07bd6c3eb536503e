//! `cargo xtask doctor`: the preflight checks alone, with a short report in words.

use anyhow::Result;

use crate::cli;
use crate::config::project::Project;
use crate::config::{MavenMode, MirrorProfile};
use crate::docker::argv::{self, Builder};
use crate::docker::emulation::{self, Emulation};
use crate::docker::engine;
use crate::facts::preflight;
use crate::stage::dockerfile;
use fate_bundle::process;

impl cli::Doctor {
    #[allow(
        clippy::unused_self,
        reason = "every command runs as `args.run(..)`; doctor's flags act through the configuration"
    )]
    pub fn run(self, project: &Project) -> Result<()> {
        let Project {
            set, config, sh, ..
        } = project;
        let facts = preflight::check(
            sh,
            config,
            set,
            &crate::config::selection::Options::default(),
            preflight::Purpose::Report,
        )?;
        println!("FATE root      {}", config.fate_root.display());
        println!("env file       {}", config.env_file.display());
        print_engine(project, &facts);
        if !config.build.platforms.is_empty() {
            println!("platform       {}", config.build.platforms.join(","));
            print_emulation(project, &facts.engine.platform);
        }
        match &config.maven {
            MavenMode::Docker { image } => println!("maven          in a container of {image}"),
            MavenMode::Host => println!("maven          the host's mvn"),
        }
        println!("maven cache    {}", config.maven_cache.display());
        println!("mirror profile {}", config.mirror.name());
        println!("images         {}", set.images.len());
        for image in set.build_order() {
            let reference = config.reference(image);
            let state = if facts.local_images.contains_key(&reference) {
                "present"
            } else {
                "not built"
            };
            println!("  {reference:<50} {state}");
        }
        if !facts.missing_packages.is_empty() {
            println!(
                "host packages to install: {}",
                facts.missing_packages.join(" ")
            );
        }
        println!("ok: preflight passed");
        Ok(())
    }
}

/// The engine, its image store, and the builder with what it builds.
fn print_engine(project: &Project, facts: &preflight::Facts) {
    let Project { config, sh, .. } = project;
    println!(
        "docker engine  {} ({}), building with {}",
        facts.engine.version,
        facts.engine.platform,
        facts.builder.describe()
    );
    match engine::image_store(sh) {
        Ok(store) if store.holds_several_platforms() => println!(
            "image store    {}: several platforms per tag",
            store.describe()
        ),
        Ok(store) => println!(
            "image store    {}: one platform per tag (several need the containerd image store, or cargo xtask bake)",
            store.describe()
        ),
        Err(e) => println!("image store    unknown: {e:#}"),
    }
    println!("reproducible   {}", reproducibility(facts, &config.build));
    match facts.builder {
        Builder::Legacy => println!(
            "               (deprecated by Docker) BuildKit is faster: {}",
            argv::GET_BUILDKIT
        ),
        Builder::BuildKit => {
            let b = &config.build;
            println!(
                "buildx builder {}",
                b.builder
                    .as_deref()
                    .unwrap_or("the current one (docker buildx ls)")
            );
            match process::query(sh, &argv::buildx_inspect(b.builder.as_deref())) {
                Ok(text) => println!("builds for     {}", builder_platforms(&text)),
                Err(e) => println!("builds for     unknown: {e:#}"),
            }
            if !b.cache_from.is_empty() || !b.cache_to.is_empty() {
                println!(
                    "build cache    from {} to {}",
                    or_none(&b.cache_from),
                    or_none(&b.cache_to)
                );
            }
        }
    }
}

/// What two builds of one commit give alike on this engine and builder.
fn reproducibility(facts: &preflight::Facts, build: &crate::config::BuildOptions) -> String {
    if argv::rewrites_timestamps(facts.builder, &facts.engine.version, build) {
        "the same image IDs: BuildKit sets every file time to SOURCE_DATE_EPOCH (cargo xtask verify checks a bundle by ID)".to_string()
    } else {
        "the same layers (diff IDs), not the same image IDs: this builder writes the build's time into each config, and into the directories RUN steps and COPY --from make (Docker Engine 26.1.1+ with BuildKit gives the same IDs; cargo xtask verify compares layers here)".to_string()
    }
}

/// The `Platforms:` line(s) of `docker buildx inspect`.
fn builder_platforms(inspect: &str) -> String {
    let platforms: Vec<&str> = inspect
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Platforms:"))
        .map(str::trim)
        .collect();
    if platforms.is_empty() {
        "unknown (docker buildx inspect names none)".into()
    } else {
        platforms.join("; ")
    }
}

/// For each platform to build that is not the engine's own: whether its `RUN` steps can
/// run here (QEMU in binfmt_misc), and which images need that.
fn print_emulation(project: &Project, engine_platform: &str) {
    let Project { set, config, .. } = project;
    let with_run: Vec<&str> = set
        .build_order()
        .into_iter()
        .filter(|image| {
            let path = config
                .fate_root
                .join(image.dockerfile_for(config.mirror == MirrorProfile::China));
            std::fs::read_to_string(path).is_ok_and(|text| dockerfile::runs_commands(&text))
        })
        .map(|image| image.name.as_str())
        .collect();
    let binfmt = std::path::Path::new("/proc/sys/fs/binfmt_misc");
    for platform in &config.build.platforms {
        match emulation::emulation(platform, engine_platform, binfmt) {
            Emulation::Native => {}
            Emulation::Registered(entry) => {
                println!("emulation      {platform}: QEMU registered ({entry})");
            }
            Emulation::Missing(how) if with_run.is_empty() => println!(
                "emulation      {platform}: none here, and none needed: no Dockerfile of the image set has RUN ({how})"
            ),
            Emulation::Missing(how) => println!(
                "emulation      {platform}: NOT AVAILABLE, needed by the RUN steps of {}: {how}",
                with_run.join(", ")
            ),
        }
    }
}

fn or_none(specs: &[String]) -> String {
    if specs.is_empty() {
        "none".into()
    } else {
        specs.join(" ")
    }
}
