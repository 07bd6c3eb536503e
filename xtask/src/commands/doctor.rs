//! `cargo xtask doctor`: the preflight checks alone, with a short report in words.

use anyhow::Result;

use crate::config::MavenMode;
use crate::docker::Builder;
use crate::{Project, cli, preflight};

impl cli::Doctor {
    #[allow(
        clippy::unused_self,
        reason = "every command runs as `args.run(..)`; doctor's flags act through the configuration"
    )]
    pub fn run(self, project: &Project) -> Result<()> {
        let Project {
            set, config, sh, ..
        } = project;
        let facts = preflight::check(sh, config, set, &[])?;
        println!("FATE root      {}", config.fate_root.display());
        println!("env file       {}", config.env_file.display());
        println!(
            "docker engine  {}, building with {}",
            facts.engine_version,
            facts.builder.describe()
        );
        if facts.builder == Builder::Legacy {
            println!(
                "               BuildKit is faster: install the buildx plugin (Debian: the docker-buildx package)"
            );
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
