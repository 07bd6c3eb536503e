//! The `load` command as both programs run it (`cargo xtask load` and the loader a bundle
//! carries): into this host's Docker engine, or, with `--registry`, into a registry with no
//! engine at all.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use xshell::Shell;

use crate::load;
use crate::ui::Ui;

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Bundle directories or archive files [default: the working directory if it holds
    /// bundle.json, else the bundle `cargo xtask bundle` writes in this workspace]
    #[arg(value_name = "DIR|FILE")]
    pub paths: Vec<PathBuf>,
    /// Check the bundle's signature with this minisign public key before reading any
    /// archive [default: FATE_XTASK_VERIFY_KEY of the environment]; an unsigned or changed
    /// bundle is refused.
    #[arg(long, value_name = "KEY.pub")]
    pub verify_key: Option<PathBuf>,
    /// Load an update bundle on a host that lacks images of the bundle it updates: what it
    /// carries loads, and the exit code is 3 (the host does not hold the release).
    #[arg(long, conflicts_with = "registry")]
    pub allow_partial: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Pushing into a registry instead of loading into Docker.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Push the images into this registry instead (no Docker engine needed): each as
    /// HOST[:PORT]/PATH:TAG, its path as bundled.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub registry: Option<String>,
    /// Put every image, third-party ones too, under this namespace (a Harbor project):
    /// HOST/NS/NAME:TAG.
    #[arg(long, value_name = "NS", requires = "registry")]
    pub namespace: Option<String>,
    /// Push only this platform of multi-platform images (os/arch[/variant]).
    #[arg(long, value_name = "PLATFORM", requires = "registry")]
    pub platform: Option<String>,
    /// The registry user; the password is read from stdin, or from --password-env
    /// [default: Docker's config.json login or credential helper for the registry].
    #[arg(long, requires = "registry")]
    pub user: Option<String>,
    /// The environment variable holding the password of --user.
    #[arg(long, value_name = "VAR", requires = "user")]
    pub password_env: Option<String>,
    /// The CA certificate (PEM) of a registry with a private CA [default:
    /// /etc/docker/certs.d/HOST:PORT/*.crt, as Docker reads it].
    #[arg(long, value_name = "CA.crt", requires = "registry")]
    pub ca_file: Option<PathBuf>,
    /// Reach the registry without TLS, or without checking its certificate: only on a
    /// network you trust.
    #[arg(long, requires = "registry")]
    pub insecure: bool,
    /// Blobs sent at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 6,
          value_parser = clap::value_parser!(u16).range(1..=64), requires = "registry")]
    pub jobs: u16,
    /// Tries again, after the first, for each blob that fails to upload (1 s, 2 s, 4 s ...).
    #[arg(long, value_name = "N", default_value_t = 3, requires = "registry")]
    pub retries: u32,
    /// Seconds to wait for the registry to connect or answer, per request.
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600), requires = "registry")]
    pub timeout: u64,
}

#[cfg(feature = "registry")]
impl RegistryArgs {
    /// The push, checked: `None` without `--registry`.
    pub fn options(&self) -> Result<Option<crate::registry::Options>> {
        use crate::registry::{Access, Options, Target};
        use std::time::Duration;
        let Some(address) = &self.registry else {
            return Ok(None);
        };
        Ok(Some(Options {
            target: Target::new(address, self.namespace.as_deref())?,
            access: Access {
                user: self.user.clone(),
                password_env: self.password_env.clone(),
                ca_file: self.ca_file.clone(),
                insecure: self.insecure,
                timeout: Duration::from_secs(self.timeout),
            },
            platform: self.platform.clone(),
            jobs: usize::from(self.jobs),
            retries: self.retries,
        }))
    }
}

/// Whether this build holds the registry client (the `registry` feature): `load
/// --registry` runs here, else in the loader a bundle carries.
pub const HAS_REGISTRY: bool = cfg!(feature = "registry");

/// Loads (or pushes) the bundles `inputs`.
pub fn run(ui: &Ui, args: &LoadArgs, inputs: &[PathBuf]) -> Result<()> {
    let key = load::verify_key(args.verify_key.clone());
    if args.registry.registry.is_some() {
        return push(ui, args, inputs, key);
    }
    let sh = Shell::new()?;
    load::load(ui, &sh, inputs, key.as_deref(), args.allow_partial)
}

#[cfg(feature = "registry")]
fn push(ui: &Ui, args: &LoadArgs, inputs: &[PathBuf], key: Option<PathBuf>) -> Result<()> {
    let options = args.registry.options()?.expect("--registry was given");
    crate::registry::push(ui, inputs, key.as_deref(), &options)
}

#[cfg(not(feature = "registry"))]
fn push(_: &Ui, _: &LoadArgs, _: &[PathBuf], _: Option<PathBuf>) -> Result<()> {
    anyhow::bail!(
        "this program was built without the registry client: push with the loader the bundle carries (./fate-xtask load --registry HOST DIR), or with cargo xtask load --registry, which runs it"
    )
}
