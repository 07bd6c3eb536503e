//! Every `docker` command line this tool runs is built here, as data (no process is
//! spawned: `engine` asks the questions, the executor runs the steps), plus the labels
//! and image facts those commands read and write.

use std::path::{Path, PathBuf};

pub use fate_bundle::docker::images::{
    ImageInfo, LABEL_INPUTS, LABEL_PLATFORMS, LABEL_REVISION, LABEL_STAGE, LABEL_TOOL, LocalImages,
    VOLATILE_LABELS, server_version,
};
use fate_bundle::process::Command;

use crate::config::BuildOptions;

/// How images get built on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builder {
    BuildKit,
    Legacy,
}

/// How to get BuildKit where only the legacy builder is installed.
pub const GET_BUILDKIT: &str = "install the buildx plugin (Debian 13 and Ubuntu 24.04: apt install docker-buildx; Docker's own repository: docker-buildx-plugin)";

/// The notice the legacy builder prints at the start of every build, line by line
/// (trimmed): said once per run instead.
pub const LEGACY_BANNER: [&str; 3] = [
    "DEPRECATED: The legacy builder is deprecated and will be removed in a future release.",
    "BuildKit is currently disabled; enable it by removing the DOCKER_BUILDKIT=0",
    "environment-variable.",
];

/// Which builder runs: Docker's own switch `DOCKER_BUILDKIT` first (0 or false: the
/// legacy builder; 1 or true: BuildKit, which then must be installed), else BuildKit
/// when the buildx plugin answers.
pub fn choose_builder(docker_buildkit: Option<&str>, buildx: bool) -> Result<Builder, String> {
    match docker_buildkit.map(str::to_ascii_lowercase).as_deref() {
        Some("0" | "false") => Ok(Builder::Legacy),
        Some("1" | "true") if !buildx => Err(format!(
            "DOCKER_BUILDKIT=1 asks for BuildKit, but `docker buildx` does not answer: {GET_BUILDKIT}"
        )),
        _ if buildx => Ok(Builder::BuildKit),
        _ => Ok(Builder::Legacy),
    }
}

impl Builder {
    /// Words a person uses.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Builder::BuildKit => "BuildKit (docker buildx)",
            Builder::Legacy => "the legacy builder",
        }
    }
}

/// One `docker build`: everything its command line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildSpec {
    pub builder: Builder,
    pub dockerfile: PathBuf,
    pub tag: String,
    pub build_args: Vec<(String, String)>,
    pub no_cache: bool,
    /// Where the engine writes the new image's ID.
    pub iidfile: Option<PathBuf>,
    /// BuildKit's client run as itself (see [`buildx_plugin`]), else through `docker buildx`.
    pub buildx_plugin: Option<PathBuf>,
    pub context: PathBuf,
    /// Builder, cache (specs for this image), pull and platform.
    pub options: BuildOptions,
    /// Whether the builder sets every file time in the layers to [`SOURCE_DATE_EPOCH`]
    /// (see [`rewrites_timestamps`]).
    pub rewrite_timestamps: bool,
    /// The context sent as this tar on stdin, the Dockerfile inside it (see
    /// [`sends_context_as_tar`]); else `context` is sent as a directory.
    pub context_tar: Option<PathBuf>,
}

/// The Dockerfile's name in a context tar (`--file` names it there: a tar context brings
/// its Dockerfile along). Contexts are copied as `<dir>/ /`, so it is never copied.
pub const DOCKERFILE_IN_TAR: &str = "Dockerfile";

/// Whether a build sends its context as a tar (see `stage::context_tar`): BuildKit that
/// cannot rewrite file times gives the directories of a directory context the time they
/// arrive (two builds, other layers), and keeps a tar's. The legacy builder's client
/// sends a tar of the directory itself.
#[must_use]
pub fn sends_context_as_tar(builder: Builder, rewrite_timestamps: bool) -> bool {
    builder == Builder::BuildKit && !rewrite_timestamps
}

/// Whether BuildKit builds on this engine can set every file time in the layers they
/// make to `SOURCE_DATE_EPOCH` (the image exporter's `rewrite-timestamp`, BuildKit
/// 0.13.2+, which Docker Engine 26.1.1 and later embed), so that two builds of one
/// commit give the same image ID. Known for the engine's own builder only: a named
/// builder (`--builder`) may run any BuildKit.
#[must_use]
pub fn rewrites_timestamps(builder: Builder, engine_version: &str, options: &BuildOptions) -> bool {
    builder == Builder::BuildKit
        && options.builder.is_none()
        && version_at_least(engine_version, [26, 1, 1])
}

/// Whether a Docker version (`26.1.5`, `20.10.24+dfsg1`, `27.0.0-rc.1`) is at least `min`.
fn version_at_least(version: &str, min: [u32; 3]) -> bool {
    let mut parts = version
        .split(['.', '-', '+', '~'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let found = [0, 1, 2].map(|_| parts.next().unwrap_or(0));
    found >= min
}

/// The time every image is made at, whatever the day it is built: BuildKit's
/// `SOURCE_DATE_EPOCH` (the config's and history's times, and with `rewrite-timestamp`
/// every file time in the layers) and the times of every staged file. Fixed, as ko and
/// rules_oci fix it, so that it depends on no input: a commit that does not touch an
/// image's inputs leaves it as it is, and two builds of one commit give the same image.
pub const SOURCE_DATE_EPOCH: i64 = 0;

/// [`SOURCE_DATE_EPOCH`] as RFC 3339, for the `org.opencontainers.image.created` label.
#[must_use]
pub fn source_date() -> String {
    let seconds = u64::try_from(SOURCE_DATE_EPOCH).expect("the epoch is not before 1970");
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// `docker build` (legacy) or `docker buildx build --load` of a spec.
/// What BuildKit builds leave out (see [`build`]), and the bake file's equivalent.
pub const PROVENANCE_OFF: &str = "--provenance=false";
pub const BAKE_PROVENANCE_OFF: &str = "type=provenance,disabled=true";

#[must_use]
pub fn build(spec: &BuildSpec) -> Command {
    let options = &spec.options;
    let mut args: Vec<String> = match spec.builder {
        Builder::BuildKit => buildkit_args(spec),
        // Also remove the container of a failed step, which --rm (the default) keeps.
        Builder::Legacy => vec!["build".into(), "--force-rm".into()],
    };
    if !options.platforms.is_empty() {
        args.extend(["--platform".into(), options.platforms.join(",")]);
    }
    if options.pull {
        args.push("--pull".into());
    }
    for spec in &options.cache_from {
        args.extend(["--cache-from".into(), spec.clone()]);
    }
    for spec in &options.cache_to {
        args.extend(["--cache-to".into(), spec.clone()]);
    }
    // A tar on stdin brings its Dockerfile along; a directory is named with its own.
    let (dockerfile, context) = match &spec.context_tar {
        Some(_) => (DOCKERFILE_IN_TAR.to_string(), "-".to_string()),
        None => (
            spec.dockerfile.display().to_string(),
            spec.context.display().to_string(),
        ),
    };
    args.extend([
        "--file".into(),
        dockerfile,
        "--tag".into(),
        spec.tag.clone(),
    ]);
    for (name, value) in &spec.build_args {
        args.push("--build-arg".into());
        args.push(format!("{name}={value}"));
    }
    // BuildKit's own: the image's times. (The legacy builder has no such argument, and
    // would warn that it went unused.)
    if spec.builder == Builder::BuildKit {
        args.push("--build-arg".into());
        args.push(format!("SOURCE_DATE_EPOCH={SOURCE_DATE_EPOCH}"));
    }
    if spec.no_cache {
        args.push("--no-cache".into());
    }
    if let Some(iidfile) = &spec.iidfile {
        args.push("--iidfile".into());
        args.push(iidfile.display().to_string());
    }
    args.push(context);
    let command = match (spec.builder, &spec.buildx_plugin) {
        // Without buildx, say so explicitly rather than let the client guess; its notice
        // that this is deprecated is said once per run, not in every log.
        (Builder::Legacy, _) => Command::new("docker", args)
            .env("DOCKER_BUILDKIT", "0")
            .quiet_lines(&LEGACY_BANNER),
        // Run as itself, the plugin spares the docker CLI's start and its question to the
        // plugin (`docker-cli-plugin-metadata`): a tenth of a second per build.
        (Builder::BuildKit, Some(plugin)) => {
            load_output(spec, Command::new(&plugin.display().to_string(), args))
        }
        (Builder::BuildKit, None) => load_output(
            spec,
            Command::new("docker", std::iter::once("buildx".to_string()).chain(args)),
        ),
    };
    match &spec.context_tar {
        Some(tar) => command.stdin_file(tar.clone()),
        None => command,
    }
}

/// A BuildKit build, and where its image goes: into the engine (`--load`), or as a tar
/// on stdout into `docker load`.
fn load_output(spec: &BuildSpec, build: Command) -> Command {
    let build = build.env(BUILDX_GIT_INFO, "0");
    if spec.rewrite_timestamps {
        build.pipe(Command::new("docker", ["load"]))
    } else {
        build
    }
}

/// The first arguments of a BuildKit build: the builder, where the image goes, and what
/// it leaves out.
fn buildkit_args(spec: &BuildSpec) -> Vec<String> {
    let options = &spec.options;
    let mut args = vec!["build".to_string()];
    if let Some(name) = &options.builder {
        args.extend(["--builder".into(), name.clone()]);
    }
    // Where file times are rewritten, the image comes as a tar on stdout, which
    // `docker load` takes: the engine's own image exporter cannot rewrite them and
    // unpack the image at once (BuildKit 0.13 refuses, on the containerd store, which
    // always unpacks). Several platforms come as an OCI layout: the docker exporter
    // writes no image index.
    args.push(
        match (spec.rewrite_timestamps, options.platforms.len() > 1) {
            (false, _) => "--load".into(),
            (true, false) => "--output=type=docker,dest=-,rewrite-timestamp=true".into(),
            (true, true) => "--output=type=oci,dest=-,rewrite-timestamp=true".into(),
        },
    );
    // The output goes to the step's log, not a terminal. No provenance attestation: the
    // images carry their source and revision as labels and their SBOM beside them; an
    // attestation makes every image an index, which on the containerd store doubles what
    // each `docker image inspect` costs (every run asks one per image), and which the
    // graph-driver store drops.
    args.extend(["--progress=plain".into(), PROVENANCE_OFF.into()]);
    args
}

/// buildx asks git about the context's checkout before every build (seven `git`
/// processes, for provenance this tool turns off); the images carry their revision and
/// source as labels instead.
const BUILDX_GIT_INFO: &str = "BUILDX_GIT_INFO";

/// The buildx plugin the docker CLI would run, when that is known without asking it: the
/// first of `candidates` that `exists`, unless the CLI's config.json adds plugin
/// directories (`cliPluginsExtraDirs`, which the CLI searches first).
pub fn buildx_plugin(
    candidates: &[PathBuf],
    exists: impl Fn(&Path) -> bool,
    cli_config: Option<&str>,
) -> Option<PathBuf> {
    let extra_dirs = cli_config
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .is_some_and(|config| !config["cliPluginsExtraDirs"].is_null());
    if extra_dirs {
        return None;
    }
    candidates.iter().find(|p| exists(p)).cloned()
}

/// Where the docker CLI finds the buildx plugin: `$DOCKER_CONFIG/cli-plugins` (else
/// `~/.docker/cli-plugins`), then the system's plugin directories.
pub fn buildx_plugin_paths(
    docker_config: Option<&std::path::Path>,
    home: Option<&std::path::Path>,
) -> Vec<PathBuf> {
    let user = docker_config
        .map(std::path::Path::to_path_buf)
        .or_else(|| home.map(|h| h.join(".docker")));
    user.into_iter()
        .map(|d| d.join("cli-plugins"))
        .chain(
            [
                "/usr/local/lib/docker/cli-plugins",
                "/usr/local/libexec/docker/cli-plugins",
                "/usr/lib/docker/cli-plugins",
                "/usr/libexec/docker/cli-plugins",
            ]
            .map(PathBuf::from),
        )
        .map(|d| d.join("docker-buildx"))
        .collect()
}

/// `docker buildx inspect [NAME]`: whether a builder exists, and the platforms it builds
/// (the current builder without a name).
#[must_use]
pub fn buildx_inspect(name: Option<&str>) -> Command {
    let mut args = vec!["buildx", "inspect"];
    args.extend(name);
    Command::new("docker", args)
}

/// A throwaway container: `docker run --rm` with a name and labels to find it by.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerRun {
    pub name: String,
    pub labels: Vec<(String, String)>,
    /// `uid:gid`
    pub user: String,
    pub env: Vec<(String, String)>,
    /// `host:container[:ro]`
    pub volumes: Vec<String>,
    pub workdir: String,
    pub image: String,
    pub command: Vec<String>,
}

#[must_use]
pub fn run_container(container: &ContainerRun) -> Command {
    let mut args: Vec<String> = vec!["run".into(), "--rm".into()];
    args.extend(["--name".into(), container.name.clone()]);
    for (k, v) in &container.labels {
        args.extend(["--label".into(), format!("{k}={v}")]);
    }
    args.extend(["--user".into(), container.user.clone()]);
    for (k, v) in &container.env {
        args.extend(["--env".into(), format!("{k}={v}")]);
    }
    for v in &container.volumes {
        args.extend(["--volume".into(), v.clone()]);
    }
    args.extend(["--workdir".into(), container.workdir.clone()]);
    args.push(container.image.clone());
    args.extend(container.command.iter().cloned());
    Command::new("docker", args)
}

#[must_use]
pub fn buildx_version() -> Command {
    Command::new("docker", ["buildx", "version"])
}

#[must_use]
pub fn storage_driver() -> Command {
    Command::new("docker", ["info", "--format", "{{.Driver}}"])
}

#[must_use]
/// `docker pull`, of one platform when given.
pub fn pull(reference: &str, platform: Option<&str>) -> Command {
    let mut args = vec!["pull"];
    if let Some(platform) = platform {
        args.extend(["--platform", platform]);
    }
    args.push(reference);
    Command::new("docker", args)
}

#[must_use]
pub fn push(reference: &str) -> Command {
    Command::new("docker", ["push", reference])
}

#[must_use]
pub fn tag(source: &str, target: &str) -> Command {
    Command::new("docker", ["tag", source, target])
}

/// `docker builder prune -af`: the build cache, which keeps the layers of removed images.
#[must_use]
pub fn prune_build_cache() -> Command {
    Command::new("docker", ["builder", "prune", "-af"])
}

/// `docker buildx bake` of a bake file's default group, or of `targets`, into the engine.
#[must_use]
pub fn bake(file: &Path, targets: &[String], no_cache: bool) -> Command {
    let mut args = vec![
        "buildx".to_string(),
        "bake".into(),
        "--progress".into(),
        "plain".into(),
        "-f".into(),
        file.display().to_string(),
        "--load".into(),
    ];
    if no_cache {
        args.push("--no-cache".into());
    }
    args.extend(targets.iter().cloned());
    Command::new("docker", args)
}

/// `docker rmi -f` of images (by reference or ID).
#[must_use]
pub fn remove_images(images: &[String]) -> Command {
    Command::new(
        "docker",
        ["rmi".to_string(), "-f".into()]
            .into_iter()
            .chain(images.iter().cloned()),
    )
}

/// Removes a registry tag, keeping the image's other tags.
#[must_use]
pub fn untag(reference: &str) -> Command {
    Command::new("docker", ["rmi", reference])
}

#[must_use]
pub fn save_to(file: &std::path::Path, references: &[String]) -> Command {
    let mut args = vec!["save".to_string(), "-o".into(), file.display().to_string()];
    args.extend(references.iter().cloned());
    Command::new("docker", args)
}

#[must_use]
pub fn load_from(file: &std::path::Path) -> Command {
    Command::new(
        "docker",
        ["load".to_string(), "-i".into(), file.display().to_string()],
    )
}

/// `docker login --password-stdin`: the password never goes into argv.
#[must_use]
pub fn login(registry: &str, user: &str) -> Command {
    let mut args = vec!["login", "--username", user, "--password-stdin"];
    if !registry.is_empty() {
        args.push(registry);
    }
    Command::new("docker", args)
}

/// IDs of the containers carrying a label (`key=value`), running or not.
#[must_use]
pub fn containers_with_label(label: &str) -> Command {
    Command::new(
        "docker",
        ["ps", "-aq", "--filter", &format!("label={label}")],
    )
}

/// Build containers of this tool that are not running (left by a crashed engine).
#[must_use]
pub fn stopped_build_containers() -> Command {
    Command::new(
        "docker",
        [
            "ps",
            "-aq",
            "--filter",
            &format!("label={LABEL_STAGE}"),
            "--filter",
            "status=created",
            "--filter",
            "status=exited",
            "--filter",
            "status=dead",
        ],
    )
}

#[must_use]
pub fn remove_containers(ids: &[&str]) -> Command {
    Command::new(
        "docker",
        ["rm", "-f"].into_iter().chain(ids.iter().copied()),
    )
}

/// `repository:tag` of every local image whose reference matches `pattern`.
#[must_use]
pub fn list_references(pattern: &str) -> Command {
    Command::new(
        "docker",
        [
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "--filter",
            &format!("reference={pattern}"),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(builder: Builder) -> BuildSpec {
        BuildSpec {
            builder,
            dockerfile: "/w/egg.Dockerfile".into(),
            tag: "fed/egg:t1".into(),
            build_args: vec![("PREFIX".into(), "fed".into())],
            no_cache: true,
            iidfile: Some("/w/egg.iid".into()),
            buildx_plugin: None,
            context: "/w/egg".into(),
            options: BuildOptions::default(),
            rewrite_timestamps: false,
            context_tar: None,
        }
    }

    #[test]
    fn buildkit_options_in_the_argv() {
        let mut s = spec(Builder::BuildKit);
        s.no_cache = false;
        s.options = BuildOptions {
            builder: Some("fleet".into()),
            cache_from: vec!["type=registry,ref=r:5000/fed/egg:cache".into()],
            cache_to: vec!["type=inline".into()],
            pull: true,
            platforms: vec!["linux/arm64".into()],
        };
        assert_eq!(
            build(&s).to_string(),
            "BUILDX_GIT_INFO=0 docker buildx build --builder fleet --load --progress=plain --provenance=false --platform linux/arm64 --pull --cache-from type=registry,ref=r:5000/fed/egg:cache --cache-to type=inline --file /w/egg.Dockerfile --tag fed/egg:t1 --build-arg PREFIX=fed --build-arg SOURCE_DATE_EPOCH=0 --iidfile /w/egg.iid /w/egg"
        );
        let mut s = spec(Builder::Legacy);
        s.no_cache = false;
        s.options = BuildOptions {
            cache_from: vec!["r:5000/fed/egg:1".into()],
            pull: true,
            platforms: vec!["linux/amd64".into()],
            ..BuildOptions::default()
        };
        assert_eq!(
            build(&s).to_string(),
            "DOCKER_BUILDKIT=0 docker build --force-rm --platform linux/amd64 --pull --cache-from r:5000/fed/egg:1 --file /w/egg.Dockerfile --tag fed/egg:t1 --build-arg PREFIX=fed --iidfile /w/egg.iid /w/egg"
        );
    }

    #[test]
    fn buildx_is_looked_for_where_the_cli_looks() {
        let paths = buildx_plugin_paths(Some("/cfg".as_ref()), Some("/home/u".as_ref()));
        assert_eq!(paths[0], PathBuf::from("/cfg/cli-plugins/docker-buildx"));
        assert!(paths.contains(&PathBuf::from(
            "/usr/libexec/docker/cli-plugins/docker-buildx"
        )));
        let paths = buildx_plugin_paths(None, Some("/home/u".as_ref()));
        assert_eq!(
            paths[0],
            PathBuf::from("/home/u/.docker/cli-plugins/docker-buildx")
        );
    }

    #[test]
    fn docker_buildkit_decides_before_the_plugin() {
        assert_eq!(choose_builder(Some("0"), true), Ok(Builder::Legacy));
        assert_eq!(choose_builder(Some("false"), true), Ok(Builder::Legacy));
        assert_eq!(choose_builder(None, true), Ok(Builder::BuildKit));
        assert_eq!(choose_builder(None, false), Ok(Builder::Legacy));
        assert_eq!(choose_builder(Some("1"), true), Ok(Builder::BuildKit));
        let e = choose_builder(Some("1"), false).unwrap_err();
        assert!(e.contains("docker-buildx"), "{e}");
    }

    #[test]
    fn the_plugin_is_run_as_itself_where_the_cli_would_find_it() {
        let candidates = [
            PathBuf::from("/cfg/cli-plugins/docker-buildx"),
            PathBuf::from("/usr/libexec/docker/cli-plugins/docker-buildx"),
        ];
        let system_only = |p: &Path| p.starts_with("/usr");
        assert_eq!(
            buildx_plugin(&candidates, system_only, Some(r#"{"auths":{}}"#)),
            Some(candidates[1].clone())
        );
        assert_eq!(
            buildx_plugin(&candidates, |_| true, None),
            Some(candidates[0].clone())
        );
        assert_eq!(buildx_plugin(&candidates, |_| false, None), None);
        // Directories the CLI searches first: left to the CLI.
        let extra = r#"{"cliPluginsExtraDirs":["/opt/plugins"]}"#;
        assert_eq!(buildx_plugin(&candidates, |_| true, Some(extra)), None);
        let mut s = spec(Builder::BuildKit);
        s.buildx_plugin = Some(candidates[1].clone());
        assert_eq!(
            build(&s).to_string(),
            "BUILDX_GIT_INFO=0 /usr/libexec/docker/cli-plugins/docker-buildx build --load --progress=plain --provenance=false --file /w/egg.Dockerfile --tag fed/egg:t1 --build-arg PREFIX=fed --build-arg SOURCE_DATE_EPOCH=0 --no-cache --iidfile /w/egg.iid /w/egg"
        );
    }

    #[test]
    fn a_builder_that_cannot_rewrite_times_is_sent_the_context_as_a_tar() {
        assert!(sends_context_as_tar(Builder::BuildKit, false));
        assert!(!sends_context_as_tar(Builder::BuildKit, true));
        // The legacy builder's client sends a tar of the directory itself.
        assert!(!sends_context_as_tar(Builder::Legacy, false));
        let mut s = spec(Builder::BuildKit);
        s.context_tar = Some("/w/egg.context.tar".into());
        let command = build(&s);
        assert_eq!(
            command.to_string(),
            "BUILDX_GIT_INFO=0 docker buildx build --load --progress=plain --provenance=false --file Dockerfile --tag fed/egg:t1 --build-arg PREFIX=fed --build-arg SOURCE_DATE_EPOCH=0 --no-cache --iidfile /w/egg.iid - < /w/egg.context.tar"
        );
        assert_eq!(command.stdin_file, Some("/w/egg.context.tar".into()));
    }

    #[test]
    fn build_argv_for_each_builder() {
        assert_eq!(
            build(&spec(Builder::Legacy)).to_string(),
            "DOCKER_BUILDKIT=0 docker build --force-rm --file /w/egg.Dockerfile --tag fed/egg:t1 --build-arg PREFIX=fed --no-cache --iidfile /w/egg.iid /w/egg"
        );
        assert_eq!(
            build(&spec(Builder::BuildKit)).to_string(),
            "BUILDX_GIT_INFO=0 docker buildx build --load --progress=plain --provenance=false --file /w/egg.Dockerfile --tag fed/egg:t1 --build-arg PREFIX=fed --build-arg SOURCE_DATE_EPOCH=0 --no-cache --iidfile /w/egg.iid /w/egg"
        );
        let mut s = spec(Builder::BuildKit);
        s.rewrite_timestamps = true;
        assert_eq!(
            build(&s).to_string(),
            "BUILDX_GIT_INFO=0 docker buildx build --output=type=docker,dest=-,rewrite-timestamp=true --progress=plain --provenance=false --file /w/egg.Dockerfile --tag fed/egg:t1 --build-arg PREFIX=fed --build-arg SOURCE_DATE_EPOCH=0 --no-cache --iidfile /w/egg.iid /w/egg | docker load"
        );
        s.options.platforms = vec!["linux/amd64".into(), "linux/arm64".into()];
        assert!(
            build(&s)
                .to_string()
                .contains(" --output=type=oci,dest=-,rewrite-timestamp=true "),
            "several platforms come as an OCI layout with their index"
        );
    }

    #[test]
    fn file_times_are_rewritten_by_the_engines_own_buildkit_from_26_1_1() {
        let default = BuildOptions::default();
        let named = BuildOptions {
            builder: Some("fleet".into()),
            ..BuildOptions::default()
        };
        for (builder, version, options, rewrites) in [
            (Builder::BuildKit, "26.1.5", &default, true),
            (Builder::BuildKit, "26.1.1", &default, true),
            (Builder::BuildKit, "29.0.0-rc.1", &default, true),
            (Builder::BuildKit, "26.1.0", &default, false),
            (Builder::BuildKit, "20.10.24+dfsg1", &default, false),
            (Builder::BuildKit, "26.1.5", &named, false),
            (Builder::Legacy, "26.1.5", &default, false),
        ] {
            assert_eq!(
                rewrites_timestamps(builder, version, options),
                rewrites,
                "{builder:?} {version} {options:?}"
            );
        }
    }

    #[test]
    fn container_runs_are_named_labelled_and_removed() {
        let c = run_container(&ContainerRun {
            name: "n".into(),
            labels: vec![("a".into(), "b".into())],
            user: "1:2".into(),
            env: vec![("HOME".into(), "/h".into())],
            volumes: vec!["/x:/y:ro".into()],
            workdir: "/y".into(),
            image: "img".into(),
            command: vec!["mvn".into(), "-B".into()],
        });
        assert_eq!(
            c.to_string(),
            "docker run --rm --name n --label a=b --user 1:2 --env HOME=/h --volume /x:/y:ro --workdir /y img mvn -B"
        );
    }
}
