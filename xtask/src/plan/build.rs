//! One image's build step: its labels, the build args its Dockerfile declares, where its
//! context is staged, and the exact `docker build` command line that runs.

use std::path::PathBuf;

use crate::config::{BuildOptions, Config, MirrorProfile};
use crate::docker::argv::{self, BuildSpec, LABEL_INPUTS, LABEL_PLATFORMS, LABEL_TOOL};
use crate::facts::preflight::Facts;
use crate::imageset::Image;
use crate::plan::Inputs;
use crate::stage::dockerfile::ArgDecl;
use crate::stage::staging::StageOp;
use crate::steps::build::{BuildStep, INPUTS_PLACEHOLDER};

/// The build step of `image`, with its context staged from `ops`.
#[must_use]
pub fn step(
    Inputs { config, set, facts }: Inputs,
    image: &Image,
    ops: Vec<StageOp>,
    no_cache: bool,
) -> BuildStep {
    let reference = config.reference(image);
    let context = config.work_dir().join("contexts").join(&image.name);
    let staged_dockerfile = context.with_extension("Dockerfile");
    let iidfile = context.with_extension("iid");
    let build_args = build_args(config, image, facts.dockerfile_args.get(&image.name));
    let options = options_for(&config.build, image);
    let rewrite_timestamps =
        argv::rewrites_timestamps(facts.builder, &facts.engine.version, &options);
    let context_tar = argv::sends_context_as_tar(facts.builder, rewrite_timestamps)
        .then(|| context.with_extension("context.tar"));
    let command = argv::build(&BuildSpec {
        builder: facts.builder,
        dockerfile: staged_dockerfile.clone(),
        tag: reference.clone(),
        build_args: build_args.clone(),
        no_cache,
        iidfile: Some(iidfile.clone()),
        buildx_plugin: facts.buildx_plugin.clone(),
        context: context.clone(),
        options: options.clone(),
        rewrite_timestamps,
        context_tar: context_tar.clone(),
    });
    let dockerfile = config
        .fate_root
        .join(image.dockerfile_for(config.mirror == MirrorProfile::China));
    let mut sources = vec![dockerfile.clone()];
    sources.extend(ops.iter().filter_map(|op| match op {
        StageOp::Copy { from, .. } => Some(from.clone()),
        StageOp::Jar { module, .. } => Some(module.dir.clone()),
        StageOp::EmptyDir(_) => None,
    }));
    BuildStep {
        name: image.name.clone(),
        root: config.fate_root.clone(),
        sources,
        revision_paths: set
            .input_paths(image, config.mirror == MirrorProfile::China)
            .into_iter()
            .map(PathBuf::from)
            .collect(),
        labels: labels(config, facts, image),
        dockerfile,
        staged_dockerfile,
        build_args,
        parents: image
            .parents
            .iter()
            .filter_map(|p| set.image(p))
            .map(|p| config.reference(p))
            .collect(),
        context,
        context_tar,
        ops,
        iidfile,
        builder: facts.builder,
        platform: if options.platforms.is_empty() {
            facts.engine.platform.clone()
        } else {
            options.platforms.join(",")
        },
        options,
        command,
        engine: facts.engine.version.clone(),
        reference,
        sbom: fate_bundle::sbom::path(&config.work_dir(), &image.name),
        parent_sboms: image
            .parents
            .iter()
            .filter(|p| set.image(p).is_some())
            .map(|p| fate_bundle::sbom::path(&config.work_dir(), p))
            .collect(),
    }
}

/// The run's build options as they apply to `image`: cache specs name it, and only an
/// image that starts from no image of this set pulls (its parents are local only).
fn options_for(options: &BuildOptions, image: &Image) -> BuildOptions {
    let expand = |specs: &[String]| -> Vec<String> {
        specs
            .iter()
            .map(|s| BuildOptions::for_image(s, &image.name))
            .collect()
    };
    BuildOptions {
        builder: options.builder.clone(),
        cache_from: expand(&options.cache_from),
        cache_to: expand(&options.cache_to),
        pull: options.pull && image.parents.is_empty(),
        platforms: options.platforms.clone(),
    }
}

/// The labels every image gets.
fn labels(config: &Config, facts: &Facts, image: &Image) -> Vec<(String, String)> {
    [
        (
            "org.opencontainers.image.version",
            config.tag(image.tag_key),
        ),
        ("org.opencontainers.image.revision", &facts.revision),
        // Not the time of this build: the image's own, which two builds share.
        ("org.opencontainers.image.created", &argv::source_date()),
        ("org.opencontainers.image.source", &config.source_url),
        (&format!("{LABEL_TOOL}.image") as &str, &image.name),
        (LABEL_INPUTS, INPUTS_PLACEHOLDER),
        (LABEL_PLATFORMS, &built_for(config, facts)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// What images are built for: `--platform`'s platforms, else the engine's own.
fn built_for(config: &Config, facts: &Facts) -> String {
    if config.build.platforms.is_empty() {
        facts.engine.platform.clone()
    } else {
        config.build.platforms.join(",")
    }
}

/// Values for the ARGs a Dockerfile declares: image-set args, then `.env` image naming,
/// then the active mirror profile. Undeclared args are never passed.
#[must_use]
pub fn build_args(
    config: &Config,
    image: &Image,
    declared: Option<&Vec<ArgDecl>>,
) -> Vec<(String, String)> {
    declared
        .into_iter()
        .flatten()
        .filter_map(|arg| {
            let name = arg.name.as_str();
            let value = image
                .args
                .get(name)
                .map(String::as_str)
                .or_else(|| config.naming_value(name))
                .or_else(|| config.locations.get(name).map(String::as_str))?;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}
