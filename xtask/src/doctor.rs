//! `cargo xtask doctor`: the preflight checks alone, with a short report.

use anyhow::Result;

use crate::Project;
use crate::cli;
use crate::config::MavenMode;
use crate::preflight;

impl cli::Doctor {
    pub fn run(self, project: &Project) -> Result<()> {
        let Project { set, config, .. } = project;
        let facts = preflight::check(config, set, &[])?;
        println!("FATE root      {}", config.fate_root.display());
        println!("env file       {}", config.env_file.display());
        println!(
            "docker engine  {} ({:?} builder)",
            facts.engine_version, facts.builder
        );
        match &config.maven {
            MavenMode::Docker { image } => println!("maven          in container {image}"),
            MavenMode::Host => println!("maven          host mvn"),
        }
        println!("maven cache    {}", config.maven_cache.display());
        println!("mirror profile {:?}", config.mirror);
        println!("images         {}", set.images.len());
        for image in set.build_order() {
            let reference = crate::plan::reference(config, image);
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
