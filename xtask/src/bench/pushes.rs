//! The registry scenarios: a gzip bundle pushed into a fresh registry by `load
//! --registry` (no engine), beside the ways people push one today: `skopeo copy
//! docker-archive:` of each image in turn, and `docker load` + `docker tag` + `docker
//! push` of each; then the same bundle pushed again, beside `sha256sum -c` of its sums.
//! Each sample has a registry of its own (Debian's docker-registry on loopback), so
//! nothing is already there.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fate_bundle::process::{self, Command, PipedChild};

use crate::bench::fixture::remove_images;
use crate::bench::measure::xtask_bundle;
use crate::bench::samples::{Sample, Samples, Scenario, record};
use crate::docker::argv;

/// A docker-registry on a free loopback port, with its storage under `dir`; stopped when
/// dropped, also when a scenario fails.
struct Registry {
    child: Option<PipedChild>,
    addr: String,
}

impl Registry {
    fn start(dir: &Path) -> Result<Registry> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        std::fs::create_dir_all(dir)?;
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.join("data").display()
            ),
        )?;
        let serve = Command::new(
            "docker-registry",
            ["serve".to_string(), config.display().to_string()],
        );
        let child = process::spawn_piped(&serve, &dir.join("registry.log")).context(
            "the push scenarios need Debian's docker-registry (apt install docker-registry)",
        )?;
        let registry = Registry {
            child: Some(child),
            addr,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(&registry.addr).is_err() {
            if started.elapsed() > Duration::from_secs(20) {
                anyhow::bail!("docker-registry did not start on {}", registry.addr);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(registry)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            child.abort();
        }
    }
}

/// The push scenarios on the gzip `bundle` and the raw tars of the same images
/// (`raw_dir`, one per archive, as `refs` groups them).
pub(super) fn push_scenarios(
    samples: &mut Samples,
    ours: &Path,
    bundle: &Path,
    raw_dir: &Path,
    refs: &[(&str, Vec<String>)],
    scratch: &Path,
) -> Result<()> {
    let bundle_arg = bundle.display().to_string();
    let registry = Registry::start(&scratch.join("registry-ours"))?;
    let args = ["load", &bundle_arg, "--registry", &registry.addr];
    record(samples, Scenario::Push, xtask_bundle(ours, &args)?);
    record(samples, Scenario::PushAgain, xtask_bundle(ours, &args)?);
    drop(registry);
    std::fs::remove_dir_all(scratch.join("registry-ours"))?;
    let sums = Command::new("sha256sum", ["-c", "--quiet", fate_bundle::manifest::SUMS])
        .current_dir(bundle.to_path_buf());
    record(samples, Scenario::SumsCheck, timed(&[sums])?);

    let registry = Registry::start(&scratch.join("registry-skopeo"))?;
    let addr = registry.addr.clone();
    let copies: Vec<Command> = refs
        .iter()
        .flat_map(|(name, images)| {
            let tar = raw_dir.join(format!("{name}.tar"));
            let addr = addr.clone();
            images
                .iter()
                .map(move |image| skopeo_copy(&tar, image, &addr))
        })
        .collect::<Vec<_>>();
    let skopeo = timed(&copies);
    drop(registry);
    record(samples, Scenario::PushSkopeo, skopeo?);
    std::fs::remove_dir_all(scratch.join("registry-skopeo"))?;

    let all: Vec<String> = refs.iter().flat_map(|(_, r)| r.clone()).collect();
    let registry = Registry::start(&scratch.join("registry-docker"))?;
    let registry_addr = registry.addr.clone();
    remove_images(&all)?;
    let mut commands: Vec<Command> = refs
        .iter()
        .map(|(name, _)| argv::load_from(&raw_dir.join(format!("{name}.tar"))))
        .collect();
    let targets: Vec<String> = all
        .iter()
        .map(|r| format!("{}/{r}", registry.addr))
        .collect();
    for (image, target) in all.iter().zip(&targets) {
        commands.push(argv::tag(image, target));
        commands.push(argv::push(target));
    }
    let docker = timed(&commands);
    drop(registry);
    let _ = process::run_captured(&argv::remove_images(&targets));
    match docker {
        Ok(sample) => record(samples, Scenario::PushDocker, sample),
        // An engine in a network namespace of its own (the tests' second engine) does
        // not reach this host's loopback: the scenario is left out, and said.
        Err(e) => eprintln!(
            "bench: docker load+tag+push not measured: this engine cannot push to {registry_addr} ({e:#})"
        ),
    }
    std::fs::remove_dir_all(scratch.join("registry-docker"))?;
    Ok(())
}

/// `skopeo copy` of one image of a `docker save` tar into the registry.
fn skopeo_copy(tar: &Path, image: &str, registry: &str) -> Command {
    Command::new(
        "skopeo",
        [
            "copy".to_string(),
            "--quiet".into(),
            "--dest-tls-verify=false".into(),
            format!("docker-archive:{}:{image}", tar.display()),
            format!("docker://{registry}/{image}"),
        ],
    )
}

fn timed(commands: &[Command]) -> Result<Sample> {
    let started = Instant::now();
    for command in commands {
        process::run_captured(command)?;
    }
    Ok(Sample {
        wall: started.elapsed(),
        ..Sample::default()
    })
}
