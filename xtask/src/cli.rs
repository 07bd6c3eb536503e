//! Every command-line definition, and the small methods that turn flags into decisions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{BuildOverrides, MavenWhere, Overrides};
use crate::scheduler::Jobs;
use fate_bundle::archive::streams::Compression;
use fate_bundle::ui::Progress;

/// Builds, pushes and bundles FATE's Docker images.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about)]
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
    /// How progress is shown: bars on a terminal (auto), bars (tty) or plain lines.
    #[arg(long, global = true, value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,
    /// Print only warnings, errors and results.
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print each command line as its step starts.
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile with Maven, package the module trees and build the images.
    Images(Images),
    /// Run Maven and stage every context, then write a docker-bake.json for the builds,
    /// to hand them to a BuildKit fleet (`docker buildx bake -f FILE`).
    Bake(Bake),
    /// Check the configuration, the FATE tree, the host and the Docker engine.
    Doctor(Doctor),
    /// Push the images marked for pushing (modules), or those named, to a registry.
    Push(Push),
    /// Write the offline bundle (third-party and FATE images, compressed, with a manifest);
    /// `bundle load` loads one.
    Bundle(Bundle),
    /// Verify and load an offline bundle (the same as `bundle load`).
    Load(BundleLoad),
    /// Rebuild the images a bundle carries from the commits it records, in a temporary
    /// worktree, and compare each with the bundle's: exit 0 only if all are reproduced.
    Verify(Verify),
    /// Make a key pair to sign bundles with (minisign's format).
    Keygen(Keygen),
    /// Print a completion script for a shell (e.g. `cargo xtask completions bash >
    /// ~/.local/share/bash-completion/completions/cargo-xtask`).
    Completions(Completions),
    /// Measure cold, no-op and one-file rebuilds against the old way
    /// [default FATE root: examples/mini-fate].
    Bench(Bench),
}

#[derive(Debug, Args)]
pub struct Push {
    /// Images or groups to push [default: those the image set marks for pushing]
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Push every image, base and builder too (so other hosts can rebuild modules).
    #[arg(long, conflicts_with = "images")]
    pub all: bool,
    /// Push as HOST[:PORT]/${PREFIX}/<name>:<tag> [default: REGISTRY of .env, else PREFIX as is]
    #[arg(long, value_name = "HOST[:PORT]")]
    pub registry: Option<String>,
    /// Pushes at once.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Log in first (docker login --password-stdin).
    #[arg(long)]
    pub login: bool,
    /// The registry user [default: REGISTRY_USER of .env]
    #[arg(long, requires = "login")]
    pub user: Option<String>,
    /// Read the password from this environment variable instead of stdin.
    #[arg(long, value_name = "VAR", requires = "login")]
    pub password_env: Option<String>,
    /// Retries of a push that failed for a transient reason.
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// Seconds one push attempt may take before it is stopped and retried.
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Bundle {
    #[command(subcommand)]
    pub action: Option<BundleAction>,
    /// Directory the archives and bundle.json are written to [default: <fate-root>/target/xtask/bundle]
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
    /// Compression of the archives; gzip loads with a plain `docker load -i` anywhere.
    #[arg(long, value_enum, default_value_t = Compression::Gzip)]
    pub compress: Compression,
    /// Fail instead of pulling third-party images that are missing.
    #[arg(long)]
    pub no_pull: bool,
    /// Bundle this platform's image of every image (os/arch[/variant], e.g. linux/arm64),
    /// for hosts of that platform: multi-platform images (containerd image store) give
    /// that platform's, one-platform images must be that platform's.
    #[arg(long, value_name = "OS/ARCH", value_parser = parse_platform)]
    pub platform: Option<String>,
    /// Sign bundle.json and SHA256SUMS with this minisign secret key (cargo xtask keygen,
    /// or minisign -G); a host verifies with the public key (load --verify-key KEY.pub).
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<std::path::PathBuf>,
    /// The environment variable that holds the secret key's password (else it is asked
    /// on the terminal; never given in argv).
    #[arg(long, value_name = "VAR", requires = "sign_key")]
    pub sign_password_env: Option<String>,
    /// Write no file over SIZE (4GiB for FAT32, 700MB for a CD, 1MiB at least): each
    /// archive as numbered parts, each part's size and sha256 in bundle.json.
    #[arg(long, value_name = "SIZE", value_parser = fate_bundle::archive::parts::parse_size)]
    pub split_size: Option<u64>,
    /// An update: only the images whose IDs differ from those of the bundle OLD (its
    /// directory or bundle.json), for hosts that loaded it.
    #[arg(long, value_name = "OLD")]
    pub since: Option<std::path::PathBuf>,
    /// Leave out the loader (the static `fate-xtask` executable that checks, loads and
    /// pushes the bundle where neither Rust nor this checkout is).
    #[arg(long)]
    pub no_loader: bool,
}

fn parse_platform(p: &str) -> Result<String, String> {
    fate_bundle::docker::platform::check_platform(p)
        .map(|()| p.to_string())
        .map_err(|why| format!("{p:?} {why}"))
}

#[derive(Debug, Subcommand)]
pub enum BundleAction {
    /// Verify a bundle's checksums and contents, then load it.
    Load(BundleLoad),
}

#[derive(Debug, Args)]
pub struct BundleLoad {
    #[command(flatten)]
    pub load: fate_bundle::loader::LoadArgs,
}

#[derive(Debug, Args)]
pub struct Verify {
    /// The bundle's directory (holding bundle.json) [default: the one `cargo xtask bundle`
    /// writes]
    #[arg(value_name = "DIR")]
    pub bundle: Option<std::path::PathBuf>,
    /// Check the bundle's signature with this minisign public key first.
    #[arg(long, value_name = "KEY.pub")]
    pub verify_key: Option<std::path::PathBuf>,
    /// Rebuild with the China mirror profile (as the bundle's images were built).
    #[arg(long)]
    pub chinese_mirror: bool,
}

#[derive(Debug, Args)]
pub struct Keygen {
    /// Where `fate-bundle.key` (secret) and `fate-bundle.pub` are written.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: std::path::PathBuf,
    /// The environment variable holding the password to protect the secret key with
    /// (without it, the key has none).
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
}

#[derive(Debug, Args)]
pub struct Completions {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct Bench {
    /// Runs of each scenario; medians are reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    pub runs: u16,
    /// Also write the report to this file (e.g. BENCHMARKS.md).
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// Run only the image-build scenarios or only the bundle/load ones [default: both]
    #[arg(long, value_enum)]
    pub only: Option<crate::bench::run::Part>,
}

#[derive(Debug, Args)]
pub struct Images {
    /// Images or groups to build (base, builder, modules, all) [default: all]
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    #[command(flatten)]
    pub config: ConfigFlags,
    /// Print the plan (every command line, in order) and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How --dry-run prints the plan: text, or JSON for programs.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text, requires = "dry_run")]
    pub format: PlanFormat,
    /// Build images without Docker's layer cache.
    #[arg(long)]
    pub no_cache: bool,
    /// After a failure, still build everything that does not depend on it.
    #[arg(long)]
    pub keep_going: bool,
    /// Run Maven and build images even when their inputs are unchanged.
    #[arg(long)]
    pub force: bool,
    /// Steps run at once, of every kind (Maven projects, image builds) [default: CPU count,
    /// and twice that for image builds, whose work is the engine's]
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Check out the git submodules the images stage when they are empty (git submodule
    /// update --init --recursive).
    #[arg(long)]
    pub init_submodules: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct Bake {
    /// Images or groups to include (base, builder, modules, all) [default: all]
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    #[command(flatten)]
    pub config: ConfigFlags,
    /// Where the bake file is written [default: <fate-root>/target/xtask/docker-bake.json]
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Leave out the `contexts` that tie each target to the targets it starts from, for
    /// BuildKit before 0.10 (Docker Engine 20.10's own): then bake the groups stage-1,
    /// stage-2, ... one after the other.
    #[arg(long)]
    pub no_named_contexts: bool,
}

impl Images {
    /// How many steps may run at once.
    pub fn jobs(&self) -> Jobs {
        self.jobs
            .map_or_else(Jobs::for_this_host, |n| Jobs::exactly(usize::from(n)))
    }
}

#[derive(Debug, Args)]
pub struct Doctor {
    #[command(flatten)]
    pub config: ConfigFlags,
}

/// Flags that choose configuration, shared by the commands that build.
#[derive(Debug, Default, Args)]
pub struct ConfigFlags {
    /// Fetch from the China mirror profile everywhere the build downloads.
    #[arg(long)]
    pub chinese_mirror: bool,
    /// Where Maven runs [default: MAVEN_MODE of .env, else docker]
    #[arg(long, value_enum)]
    pub maven: Option<MavenWhere>,
    #[command(flatten)]
    pub build: BuildFlags,
}

/// How images are built: BuildKit's builder, cache, pull and platform.
#[derive(Clone, Debug, Default, Args)]
pub struct BuildFlags {
    /// The buildx builder to use; a remote, kubernetes or docker-container builder spreads
    /// builds over other machines [default: BUILDX_BUILDER of .env, else the current one]
    #[arg(long, value_name = "NAME")]
    pub builder: Option<String>,
    /// Import build cache, e.g. type=registry,ref=HOST/fate/{image}:cache, where {image} is
    /// the image's name; repeatable [default: BUILD_CACHE_FROM of .env]
    #[arg(long, value_name = "SPEC")]
    pub cache_from: Vec<String>,
    /// Export build cache, e.g. type=inline or type=registry,ref=HOST/fate/{image}:cache;
    /// repeatable [default: BUILD_CACHE_TO of .env]
    #[arg(long, value_name = "SPEC")]
    pub cache_to: Vec<String>,
    /// Look for newer versions of the external images builds start from (rebuilds the
    /// images that start from one).
    #[arg(long)]
    pub pull: bool,
    /// The platform to build for, e.g. linux/arm64 [default: BUILD_PLATFORM of .env, else
    /// the engine's]
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
}

impl ConfigFlags {
    /// The configuration choices these flags make.
    #[must_use]
    pub fn overrides(&self, global: &Global) -> Overrides {
        Overrides {
            env_file: global.env_file.clone(),
            chinese_mirror: self.chinese_mirror,
            maven: self.maven,
            build: BuildOverrides {
                builder: self.build.builder.clone(),
                cache_from: self.build.cache_from.clone(),
                cache_to: self.build.cache_to.clone(),
                pull: self.build.pull,
                platform: self.build.platform.clone(),
            },
        }
    }
}

impl Global {
    /// The configuration choices of a command without configuration flags of its own.
    #[must_use]
    pub fn overrides(&self) -> Overrides {
        Overrides {
            env_file: self.env_file.clone(),
            ..Overrides::default()
        }
    }
}

/// The command line, with `images --help` listing the images and groups of the image
/// set the run would use (that of `--fate-root`, else the default FATE root).
pub fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let root = fate_root_of(&args).unwrap_or_else(crate::config::project::workspace_root);
    let mut command = Cli::command();
    if let Ok(set) = crate::imageset::ImageSet::load(&root) {
        let listing = format!(
            "The image set of {}:\n{}",
            root.join(crate::imageset::IMAGE_SET_FILE).display(),
            set.listing()
        );
        command = command.mut_subcommand("images", |c| c.after_help(listing));
    }
    let matches = command.get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// `--fate-root DIR` or `--fate-root=DIR`, read before clap parses.
fn fate_root_of(args: &[std::ffi::OsString]) -> Option<PathBuf> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        if text == "--fate-root" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(root) = text.strip_prefix("--fate-root=") {
            return Some(PathBuf::from(root));
        }
    }
    None
}
