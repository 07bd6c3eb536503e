//! `cargo xtask doctor`: the preflight checks alone, with a short report in words.

use anyhow::Result;

use crate::config::MavenMode;
use crate::process::docker_argv::{self, Builder};
use crate::{Project, cli, plan::preflight};

impl cli::Doctor {
    #[allow(
        clippy::unused_self,
        reason = "every command runs as `args.run(..)`; doctor's flags act through the configuration"
    )]
    pub fn run(self, project: &Project) -> Result<()> {
        let Project {
            set, config, sh, ..
        } = project;
        let facts = preflight::check(sh, config, set, &[], preflight::Purpose::Run)?;
        println!("FATE root      {}", config.fate_root.display());
        println!("env file       {}", config.env_file.display());
        println!(
            "docker engine  {}, building with {}",
            facts.engine_version,
            facts.builder.describe()
        );
        match facts.builder {
            Builder::Legacy => println!(
                "               (deprecated by Docker) BuildKit is faster: {}",
                docker_argv::GET_BUILDKIT
            ),
            Builder::BuildKit => {
                let b = &config.build;
                println!(
                    "buildx builder {}",
                    b.builder
                        .as_deref()
                        .unwrap_or("the current one (docker buildx ls)")
                );
                if !b.cache_from.is_empty() || !b.cache_to.is_empty() {
                    println!(
                        "build cache    from {} to {}",
                        or_none(&b.cache_from),
                        or_none(&b.cache_to)
                    );
                }
            }
        }
        if !config.build.platforms.is_empty() {
            println!("platform       {}", config.build.platforms.join(","));
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
            let state = if facts.existing.contains_key(&reference) {
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

fn or_none(specs: &[String]) -> String {
    if specs.is_empty() {
        "none".into()
    } else {
        specs.join(" ")
    }
}
