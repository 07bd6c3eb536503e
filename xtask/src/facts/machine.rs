//! What preflight asks the machine, all at once: the engine (version, images, builder,
//! and its image store when several platforms are asked for), the tree's git revision,
//! and the host's packages.

use anyhow::Result;
use xshell::Shell;

use crate::config::Config;
use crate::docker::argv::{Builder, LocalImages};
use crate::docker::engine;
use crate::docker::engine::Server;
use crate::imageset::ImageSet;
use fate_bundle::process::{self, Command};

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

/// With `recalled` (the engine this endpoint had last time), `docker version` is not
/// asked unless the images question gets no plain answer.
pub(super) fn ask_machine(config: &Config, set: &ImageSet, recalled: Option<&Server>) -> Machine {
    let references: Vec<String> = set.images.iter().map(|i| config.reference(i)).collect();
    let shell = || Shell::new().expect("a shell for short commands");
    std::thread::scope(|scope| {
        let engine = scope.spawn(|| recalled.is_none().then(|| engine::check(&shell())));
        let local_images = scope.spawn(|| engine::inspect_images_answer(&shell(), &references));
        let builder = scope.spawn(|| engine::builder(&shell()));
        let revision = scope.spawn(|| super::revision::head_commit(&shell(), &config.fate_root));
        let packages = scope.spawn(|| dpkg_listing(&shell(), &set.maven_debian_packages));
        let image_store = scope.spawn(|| {
            (config.build.platforms.len() > 1)
                .then(|| engine::image_store(&shell()).ok())
                .flatten()
        });
        let join = "a preflight question panicked";
        let (mut local_images, plain) = local_images.join().expect(join);
        let engine = match (engine.join().expect(join), recalled) {
            (Some(asked), _) => asked,
            (None, Some(server)) if plain => Ok(server.clone()),
            // The engine did not answer plainly: ask it properly (for what is wrong), and
            // the images again if it answers now.
            (None, _) => {
                let asked = engine::check(&shell());
                if asked.is_ok() {
                    local_images = engine::inspect_images(&shell(), &references);
                }
                asked
            }
        };
        Machine {
            image_store: image_store.join().expect(join),
            local_images,
            builder: builder.join().expect(join),
            revision: revision.join().expect(join),
            packages: packages.join().expect(join),
            engine,
        }
    })
}

/// Where dpkg keeps what is installed.
const DPKG_STATUS: &str = "/var/lib/dpkg/status";

/// `dpkg-query -W -f '${Package} ${Status}\n'`'s lines for `packages`: read from dpkg's
/// status file, else one call (empty off Debian).
fn dpkg_listing(sh: &Shell, packages: &[String]) -> String {
    if packages.is_empty() || which::which("dpkg-query").is_err() {
        return String::new();
    }
    if let Ok(status) = std::fs::read_to_string(DPKG_STATUS) {
        return status_lines(&status, packages);
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

/// The `PACKAGE STATUS` line of each stanza of a dpkg status file that is one of
/// `packages`, in the file's order (as `dpkg-query -W` prints each instance).
fn status_lines(status: &str, packages: &[String]) -> String {
    let mut out = String::new();
    for stanza in status.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        if let (Some(package), Some(state)) = (field("Package"), field("Status"))
            && packages.iter().any(|p| p == package)
        {
            out.push_str(&format!("{package} {state}\n"));
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_gives_the_lines_dpkg_query_prints() {
        let status = "Package: maven\nStatus: install ok installed\nVersion: 3.8.7\n\n\
                      Package: libfoo-java\nStatus: deinstall ok config-files\n\n\
                      Package: other\nStatus: install ok installed\n";
        let wanted = ["maven", "libfoo-java", "absent"].map(String::from);
        assert_eq!(
            status_lines(status, &wanted),
            "maven install ok installed\nlibfoo-java deinstall ok config-files"
        );
    }

    #[test]
    fn this_hosts_status_file_agrees_with_dpkg_query() {
        let status = std::fs::read_to_string(DPKG_STATUS).expect("a Debian host, as CI");
        let packages = ["git", "bash", "surely-not-a-package"].map(String::from);
        let mut args = vec![
            "-W".to_string(),
            "-f".into(),
            "${Package} ${Status}\\n".into(),
        ];
        args.extend(packages.iter().cloned());
        let sh = Shell::new().unwrap();
        let asked = process::query_stdout(&sh, &Command::new("dpkg-query", args));
        let sorted = |text: &str| {
            let mut lines: Vec<String> = text.lines().map(String::from).collect();
            lines.sort();
            lines
        };
        assert_eq!(sorted(&status_lines(&status, &packages)), sorted(&asked));
        assert!(asked.contains("git install ok installed"), "{asked}");
    }
}
