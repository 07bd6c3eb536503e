//! Every command-line definition, and the small methods that turn flags into decisions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Overrides;

/// Builds, pushes and bundles FATE's Docker images.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The FATE monorepo root holding docker/, example-tree-dir/, .env and the sources
    /// [default: the workspace root]
    #[arg(long, global = true, value_name = "DIR")]
    pub fate_root: Option<PathBuf>,
    /// The .env file to read [default: <fate-root>/.env]
    #[arg(long, global = true, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile with Maven, package the module trees and build the images.
    Images(Images),
    /// Check the configuration, the FATE tree, the host and the Docker engine.
    Doctor(Doctor),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MavenWhere {
    /// In a throwaway container of MAVEN_IMAGE, as the caller, with a persistent cache.
    Docker,
    /// The host's `mvn`.
    Host,
}

#[derive(Debug, Args)]
pub struct Images {
    /// Images or groups to build (base, builder, modules, all) [default: all]
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Fetch from the China mirror profile everywhere the build downloads.
    #[arg(long)]
    pub chinese_mirror: bool,
    /// Print the plan (every command line, in order) and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Build images without Docker's layer cache.
    #[arg(long)]
    pub no_cache: bool,
    /// After a failure, still build everything that does not depend on it.
    #[arg(long)]
    pub keep_going: bool,
    /// Where Maven runs [default: MAVEN_MODE of .env, else docker]
    #[arg(long, value_enum)]
    pub maven: Option<MavenWhere>,
    /// Run Maven and build images even when their inputs are unchanged.
    #[arg(long)]
    pub force: bool,
    /// Steps run at once (Maven projects, image builds) [default: CPU count]
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
}

impl Images {
    /// How many steps may run at once.
    pub fn jobs(&self) -> usize {
        self.jobs
            .map(usize::from)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

#[derive(Debug, Args)]
pub struct Doctor {
    /// Check with the China mirror profile.
    #[arg(long)]
    pub chinese_mirror: bool,
    /// Where Maven would run.
    #[arg(long, value_enum)]
    pub maven: Option<MavenWhere>,
}

impl MavenWhere {
    fn as_mode(self) -> String {
        match self {
            MavenWhere::Docker => "docker".into(),
            MavenWhere::Host => "host".into(),
        }
    }
}

impl Cli {
    /// Configuration choices the command line makes.
    pub fn overrides(&self) -> Overrides {
        let (chinese_mirror, maven) = match &self.command {
            Command::Images(a) => (a.chinese_mirror, a.maven),
            Command::Doctor(a) => (a.chinese_mirror, a.maven),
        };
        Overrides {
            env_file: self.global.env_file.clone(),
            chinese_mirror,
            maven: maven.map(MavenWhere::as_mode),
        }
    }
}
