//! What preflight asks the machine, all at once: the engine (version, images, builder,
//! and its image store when several platforms are asked for), the tree's git revision,
//! and the host's packages.

use anyhow::Result;
use xshell::Shell;

use crate::config::Config;
use crate::imageset::ImageSet;
use crate::process::docker_argv::{Builder, LocalImages};
use crate::process::{self, Command, engine};

/// What the machine answered; the independent questions are asked at once.
pub(super) struct Machine {
    /// The engine's version, or why it does not answer.
    pub(super) engine: Result<engine::Server>,
    /// Asked when several platforms are to be built (see [`Facts::image_store`]).
    pub(super) image_store: Option<engine::ImageStore>,
    pub(super) local_images: LocalImages,
    pub(super) builder: std::result::Result<Builder, String>,
    pub(super) revision: String,
    /// `dpkg-query`'s listing of the image set's host packages.
    pub(super) packages: String,
}

pub(super) fn ask_machine(config: &Config, set: &ImageSet) -> Machine {
    let references: Vec<String> = set.images.iter().map(|i| config.reference(i)).collect();
    let root = config.fate_root.to_string_lossy().into_owned();
    let shell = || Shell::new().expect("a shell for short commands");
    std::thread::scope(|scope| {
        let engine = scope.spawn(|| engine::check(&shell()));
        let local_images = scope.spawn(|| engine::inspect_images(&shell(), &references));
        let builder = scope.spawn(|| engine::builder(&shell()));
        let revision = scope.spawn(|| {
            let git = Command::new("git", ["-C", &root, "rev-parse", "HEAD"]);
            process::query(&shell(), &git).unwrap_or_else(|_| "unknown".into())
        });
        let packages = scope.spawn(|| dpkg_listing(&shell(), &set.maven_debian_packages));
        let image_store = scope.spawn(|| {
            (config.build.platforms.len() > 1)
                .then(|| engine::image_store(&shell()).ok())
                .flatten()
        });
        let join = "a preflight question panicked";
        let engine = engine.join().expect(join);
        Machine {
            image_store: image_store.join().expect(join),
            local_images: local_images.join().expect(join),
            builder: builder.join().expect(join),
            revision: revision.join().expect(join),
            packages: packages.join().expect(join),
            engine,
        }
    })
}

/// `dpkg-query`'s status lines for `packages`: one call (empty off Debian).
fn dpkg_listing(sh: &Shell, packages: &[String]) -> String {
    if packages.is_empty() || which::which("dpkg-query").is_err() {
        return String::new();
    }
    let mut args = vec![
        "-W".to_string(),
        "-f".into(),
        "${Package} ${Status}\\n".into(),
    ];
    args.extend(packages.iter().cloned());
    // Exits non-zero when some are unknown, still listing the known ones.
    process::query_stdout(sh, &Command::new("dpkg-query", args))
}
