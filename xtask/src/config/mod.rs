//! `.env` resolved with the precedence flag > environment > `.env` > default, validated,
//! into one typed [`Config`]. Fixed keys become fields; only download locations (whose
//! names the image set declares) stay a map.

pub mod build_options;
pub mod envfile;
pub mod project;
pub mod selection;
pub mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::ValueEnum;

use crate::imageset::{Image, ImageSet, TagKey};
pub use build_options::{BuildOptions, BuildOverrides};
use envfile::EnvEntry;
use fate_bundle::docker::reference;
use fate_bundle::ui::problems::Problems;
use fate_bundle::ui::suggest;
use values::Values;

/// Keys every `.env` must define: the image naming.
pub const REQUIRED_KEYS: [&str; 4] = ["PREFIX", "BASE_TAG", "BUILDER_TAG", "TAG"];

/// Optional fixed keys with their defaults.
pub const OPTIONAL_KEYS: [(&str, &str); 12] = [
    ("MAVEN_IMAGE", "maven:3.6-jdk-8"),
    ("MAVEN_MODE", "docker"),
    ("MAVEN_CACHE_DIR", ""),
    ("SOURCE_URL", "https://github.com/FederatedAI/FATE"),
    ("REDIS_IMAGE", "redis:5.0.14"),
    ("MYSQL_IMAGE", "mysql:8.0.28"),
    ("REGISTRY", ""),
    ("REGISTRY_USER", ""),
    ("BUILDX_BUILDER", ""),
    ("BUILD_CACHE_FROM", ""),
    ("BUILD_CACHE_TO", ""),
    ("BUILD_PLATFORM", ""),
];

/// Which set of download locations builds use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MirrorProfile {
    Global,
    China,
}

impl MirrorProfile {
    /// The word for messages and generated files.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            MirrorProfile::Global => "global",
            MirrorProfile::China => "China",
        }
    }
}

/// Where Maven runs, as `--maven` and `MAVEN_MODE` say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MavenWhere {
    /// In a throwaway container of MAVEN_IMAGE, as the caller, with a persistent cache.
    Docker,
    /// The host's `mvn`.
    Host,
}

/// Where Maven runs, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MavenMode {
    /// In a throwaway container of this image.
    Docker { image: String },
    /// The host's `mvn`.
    Host,
}

/// What a command's flags say about configuration; `None` means "not given".
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub env_file: Option<PathBuf>,
    pub chinese_mirror: bool,
    pub maven: Option<MavenWhere>,
    pub build: BuildOverrides,
}

/// The image naming keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Naming {
    pub prefix: String,
    pub base_tag: String,
    pub builder_tag: String,
    pub tag: String,
}

/// Everything later steps need to know, resolved once.
#[derive(Clone, Debug)]
pub struct Config {
    pub fate_root: PathBuf,
    pub env_file: PathBuf,
    pub naming: Naming,
    pub maven: MavenMode,
    pub maven_cache: PathBuf,
    /// The caller's MAVEN_OPTS (proxies, memory), kept when this tool adds its own.
    pub maven_opts: String,
    pub source_url: String,
    pub redis_image: String,
    pub mysql_image: String,
    /// Registry `push` uses when `--registry` is not given (empty: none).
    pub registry: String,
    pub registry_user: String,
    pub mirror: MirrorProfile,
    pub build: BuildOptions,
    /// The active profile's download locations, by the name the image set declares.
    pub locations: BTreeMap<String, String>,
    /// Non-fatal findings, shown before work starts.
    pub warnings: Vec<String>,
}

impl Config {
    /// The tag an image's `tag-key` names.
    #[must_use]
    pub fn tag(&self, key: TagKey) -> &str {
        match key {
            TagKey::BaseTag => &self.naming.base_tag,
            TagKey::BuilderTag => &self.naming.builder_tag,
            TagKey::Tag => &self.naming.tag,
        }
    }

    /// `${PREFIX}/<name>:<tag>` of an image.
    #[must_use]
    pub fn reference(&self, image: &Image) -> String {
        format!(
            "{}/{}:{}",
            self.naming.prefix,
            image.name,
            self.tag(image.tag_key)
        )
    }

    /// A naming key's value, for Dockerfiles that declare it as an ARG.
    #[must_use]
    pub fn naming_value(&self, key: &str) -> Option<&str> {
        match key {
            "PREFIX" => Some(&self.naming.prefix),
            "BASE_TAG" => Some(&self.naming.base_tag),
            "BUILDER_TAG" => Some(&self.naming.builder_tag),
            "TAG" => Some(&self.naming.tag),
            _ => None,
        }
    }

    /// A download location of the active profile (empty when unset).
    pub fn location(&self, name: &str) -> &str {
        self.locations.get(name).map_or("", String::as_str)
    }

    /// Directory for everything this tool writes: staged trees, contexts, logs.
    #[must_use]
    pub fn work_dir(&self) -> PathBuf {
        self.fate_root.join("target").join("xtask")
    }
}

/// The `.env` key holding download location `name` in `profile`.
#[must_use]
pub fn mirror_key(profile: MirrorProfile, name: &str) -> String {
    match profile {
        MirrorProfile::Global => name.to_string(),
        MirrorProfile::China => format!("CN_{name}"),
    }
}

/// Reads and resolves the configuration of `fate_root`.
pub fn load(fate_root: &Path, images: &ImageSet, overrides: &Overrides) -> Result<Config> {
    let env_file = overrides
        .env_file
        .clone()
        .unwrap_or_else(|| fate_root.join(".env"));
    let text = std::fs::read_to_string(&env_file).with_context(|| {
        format!(
            "cannot read {}: every FATE root needs a .env with {}; pass --env-file FILE to use another",
            env_file.display(),
            REQUIRED_KEYS.join(", ")
        )
    })?;
    let process_env: BTreeMap<String, String> = std::env::vars().collect();
    resolve(fate_root, &env_file, &text, &process_env, images, overrides)
}

/// Pure resolution of `.env` text plus environment plus flags.
pub fn resolve(
    fate_root: &Path,
    env_file: &Path,
    text: &str,
    process_env: &BTreeMap<String, String>,
    images: &ImageSet,
    overrides: &Overrides,
) -> Result<Config> {
    let mut problems = Problems::new(format!("{} is not valid", env_file.display()));
    let entries = envfile::parse(text, env_file, process_env, &mut problems);
    let defaults = known_keys(images);
    let (values, warnings) = merge(env_file, &entries, process_env, &defaults, &mut problems);
    check_values(&values, &mut problems);
    let mirror = if overrides.chinese_mirror {
        MirrorProfile::China
    } else {
        MirrorProfile::Global
    };
    let maven = maven_mode(&values, overrides, &mut problems);
    let build = build_options::from_values(&values, &overrides.build, &mut problems);
    let maven_cache = match values.get("MAVEN_CACHE_DIR") {
        "" => default_maven_cache(process_env).unwrap_or_else(|| {
            problems.push(
                "MAVEN_CACHE_DIR: neither XDG_CACHE_HOME nor HOME is set, and the Maven cache is not put in a shared temporary directory: set MAVEN_CACHE_DIR in .env or the environment"
                    .to_string(),
            );
            PathBuf::new()
        }),
        dir => fate_root.join(dir),
    };
    problems.into_result()?;
    let locations = images
        .mirrors
        .names()
        .map(|name| {
            let value = values.get(&mirror_key(mirror, name));
            (name.to_string(), value.to_string())
        })
        .collect();
    let owned = |key: &str| values.get(key).to_string();
    Ok(Config {
        fate_root: fate_root.to_path_buf(),
        env_file: env_file.to_path_buf(),
        naming: Naming {
            prefix: owned("PREFIX"),
            base_tag: owned("BASE_TAG"),
            builder_tag: owned("BUILDER_TAG"),
            tag: owned("TAG"),
        },
        maven,
        maven_cache,
        maven_opts: process_env.get("MAVEN_OPTS").cloned().unwrap_or_default(),
        source_url: owned("SOURCE_URL"),
        redis_image: owned("REDIS_IMAGE"),
        mysql_image: owned("MYSQL_IMAGE"),
        registry: owned("REGISTRY"),
        registry_user: owned("REGISTRY_USER"),
        mirror,
        build,
        locations,
        warnings,
    })
}

/// File entries, then the environment (as with docker compose), then defaults.
fn merge<'a>(
    env_file: &'a Path,
    entries: &[EnvEntry],
    process_env: &BTreeMap<String, String>,
    defaults: &BTreeMap<String, String>,
    problems: &mut Problems,
) -> (Values<'a>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut values = Values {
        env_file,
        values: BTreeMap::new(),
        lines: BTreeMap::new(),
        from_environment: Vec::new(),
    };
    let is_known = |key: &str| defaults.contains_key(key) || REQUIRED_KEYS.contains(&key);
    for entry in entries {
        let at = format!("{}:{}", env_file.display(), entry.line);
        if let Some(first) = values.lines.get(&entry.key) {
            warnings.push(format!(
                "{at}: {} is set again (first on line {first}); the last value wins, as in a shell",
                entry.key
            ));
        }
        if !is_known(&entry.key) {
            let hint = suggest::nearest(&entry.key, defaults.keys().map(String::as_str))
                .map(|k| format!("; did you mean {k}?"))
                .unwrap_or_default();
            warnings.push(format!("{at}: unknown key {} is ignored{hint}", entry.key));
            continue;
        }
        values.lines.insert(entry.key.clone(), entry.line);
        values.values.insert(entry.key.clone(), entry.value.clone());
    }
    for key in defaults.keys().map(String::as_str).chain(REQUIRED_KEYS) {
        if let Some(v) = process_env.get(key) {
            values.values.insert(key.to_string(), v.clone());
            values.lines.remove(key);
            values.from_environment.push(key.to_string());
        }
    }
    for key in REQUIRED_KEYS {
        if !values.values.contains_key(key) {
            problems.push(format!(
                "{}: required key {key} is missing; add a line `{key}=...`",
                env_file.display()
            ));
        }
    }
    for (key, default) in defaults {
        values
            .values
            .entry(key.clone())
            .or_insert_with(|| default.clone());
    }
    (values, warnings)
}

/// The longest value a key may have (a longer one fails later, deep in `docker build`).
pub const MAX_VALUE_BYTES: usize = 4096;

/// Control characters, length, shell syntax, image naming and third-party references.
fn check_values(values: &Values, problems: &mut Problems) {
    for (key, value) in &values.values {
        if let Some(c) = value.chars().find(|c| c.is_control() && *c != '\t') {
            problems.push(format!(
                "{}: {key} contains the control character U+{:04X}; write a plain value on one line",
                values.at(key),
                u32::from(c)
            ));
        }
        if value.len() > MAX_VALUE_BYTES {
            problems.push(format!(
                "{}: {key} is {} bytes long; values are limited to {MAX_VALUE_BYTES} bytes",
                values.at(key),
                value.len()
            ));
        }
        if value.contains('`') || value.contains("$(") {
            problems.push(format!(
                "{}: {key} contains shell command substitution; .env is read as data and never run: write the literal value",
                values.at(key)
            ));
        }
    }
    if let Some(prefix) = values.values.get("PREFIX")
        && let Err(why) = reference::check_prefix(prefix)
    {
        problems.push(format!("{}: PREFIX={prefix:?} {why}", values.at("PREFIX")));
    }
    for key in ["BASE_TAG", "BUILDER_TAG", "TAG"] {
        if let Some(tag) = values.values.get(key)
            && let Err(why) = reference::check_tag(tag)
        {
            problems.push(format!("{}: {key}={tag:?} {why}", values.at(key)));
        }
    }
    for key in ["REDIS_IMAGE", "MYSQL_IMAGE"] {
        if let Err(why) = reference::check_reference(values.get(key)) {
            problems.push(format!(
                "{}: {key}={:?} {why}",
                values.at(key),
                values.get(key)
            ));
        }
    }
}

/// `--maven` beats `MAVEN_MODE`; the container mode needs a valid `MAVEN_IMAGE`.
fn maven_mode(values: &Values, overrides: &Overrides, problems: &mut Problems) -> MavenMode {
    let from_file = MavenWhere::from_str(values.get("MAVEN_MODE"), false);
    let place = match (overrides.maven, from_file) {
        (Some(flag), _) => flag,
        (None, Ok(place)) => place,
        (None, Err(_)) => {
            problems.push(format!(
                "{}: MAVEN_MODE={:?} is not a Maven mode; use docker or host",
                values.at("MAVEN_MODE"),
                values.get("MAVEN_MODE")
            ));
            MavenWhere::Host
        }
    };
    match place {
        MavenWhere::Host => MavenMode::Host,
        MavenWhere::Docker => {
            let image = values.get("MAVEN_IMAGE").to_string();
            if let Err(why) = reference::check_reference(&image) {
                problems.push(format!(
                    "{}: MAVEN_IMAGE={image:?} {why}",
                    values.at("MAVEN_IMAGE")
                ));
            }
            MavenMode::Docker { image }
        }
    }
}

/// Every key `.env` may set, with its default.
fn known_keys(images: &ImageSet) -> BTreeMap<String, String> {
    let mut keys: BTreeMap<String, String> = OPTIONAL_KEYS
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    // Every location has a global and a China key; China falls back to the global value
    // where the image set names no China location.
    for name in images.mirrors.names() {
        let global = images.mirrors.global.get(name).cloned().unwrap_or_default();
        let cn = images.mirrors.cn.get(name).unwrap_or(&global).clone();
        keys.insert(mirror_key(MirrorProfile::China, name), cn);
        keys.insert(mirror_key(MirrorProfile::Global, name), global);
    }
    keys
}

/// `$XDG_CACHE_HOME/fate-xtask/maven`, else `~/.cache/fate-xtask/maven`; never a shared
/// temporary directory (None without either).
fn default_maven_cache(process_env: &BTreeMap<String, String>) -> Option<PathBuf> {
    let base = match (process_env.get("XDG_CACHE_HOME"), process_env.get("HOME")) {
        (Some(xdg), _) if !xdg.is_empty() => PathBuf::from(xdg),
        (_, Some(home)) if !home.is_empty() => Path::new(home).join(".cache"),
        _ => return None,
    };
    Some(base.join("fate-xtask").join("maven"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imageset::tests::sample_set;

    const GOOD: &str = "PREFIX=federatedai\nBASE_TAG=1.0.2-release\nBUILDER_TAG=1.0.2-release\nTAG=1.0.2-release\n";

    fn run(text: &str, env: &[(&str, &str)], ov: Overrides) -> Result<Config> {
        let env = [("HOME", "/home/t")]
            .iter()
            .chain(env)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve(
            Path::new("/fate"),
            Path::new("/fate/.env"),
            text,
            &env,
            &sample_set(),
            &ov,
        )
    }

    fn err(text: &str) -> String {
        format!("{:#}", run(text, &[], Overrides::default()).unwrap_err())
    }

    #[test]
    fn good_env_resolves_with_defaults() {
        let c = run(GOOD, &[], Overrides::default()).unwrap();
        assert_eq!(c.naming.prefix, "federatedai");
        assert_eq!(c.naming.tag, "1.0.2-release");
        assert_eq!(
            c.maven,
            MavenMode::Docker {
                image: "maven:3.6-jdk-8".into()
            }
        );
        assert_eq!(c.location("PIP_INDEX_URL"), "https://pypi.org/simple");
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn environment_beats_file_and_flags_beat_both() {
        let ov = Overrides {
            maven: Some(MavenWhere::Host),
            chinese_mirror: true,
            ..Default::default()
        };
        let c = run(
            &format!("{GOOD}MAVEN_MODE=docker\nCN_PIP_INDEX_URL=https://file.example/simple\n"),
            &[("TAG", "2.0"), ("MAVEN_MODE", "docker")],
            ov,
        )
        .unwrap();
        assert_eq!(c.naming.tag, "2.0");
        assert_eq!(c.maven, MavenMode::Host);
        assert_eq!(c.location("PIP_INDEX_URL"), "https://file.example/simple");
    }

    #[test]
    fn missing_key_is_named() {
        let e = err("PREFIX=federatedai\nBASE_TAG=a\nBUILDER_TAG=b\n");
        assert!(e.contains("required key TAG is missing"), "{e}");
    }

    #[test]
    fn bad_tags_and_prefix_point_at_their_line() {
        let e =
            err("PREFIX=FederatedAI\nBASE_TAG=\".hidden\"\nBUILDER_TAG=\"1.0 release\"\nTAG=\n");
        assert!(e.contains("/fate/.env:1: PREFIX"), "{e}");
        assert!(e.contains("/fate/.env:2: BASE_TAG"), "{e}");
        assert!(e.contains("/fate/.env:3: BUILDER_TAG"), "{e}");
        assert!(e.contains("/fate/.env:4: TAG=\"\" is empty"), "{e}");
        let long = "a".repeat(129);
        let e = err(&GOOD.replace("TAG=1.0.2-release\n", &format!("TAG={long}\n")));
        assert!(e.contains("longer than 128"), "{e}");
    }

    #[test]
    fn command_substitution_is_reported_not_run() {
        let e = err(&format!("{GOOD}MAVEN_IMAGE=$(touch /tmp/x)\n"));
        assert!(
            e.contains(":5: `MAVEN_IMAGE=$(touch /tmp/x)` uses shell command substitution"),
            "{e}"
        );
        let e = err(&format!("{GOOD}MAVEN_IMAGE=`touch /tmp/x`\n"));
        assert!(
            e.contains(":5: `MAVEN_IMAGE=`touch /tmp/x`` uses shell command substitution"),
            "{e}"
        );
        let e = err(&format!("{GOOD}MAVEN_IMAGE='$(id)'\n"));
        assert!(
            e.contains(":5: MAVEN_IMAGE contains shell command substitution"),
            "{e}"
        );
    }

    #[test]
    fn control_characters_and_huge_values_are_refused_with_their_line() {
        let e = err(&format!("{GOOD}SOURCE_URL=\"a\u{0}b\"\n"));
        assert!(
            e.contains("/fate/.env:5: SOURCE_URL contains the control character U+0000"),
            "{e}"
        );
        let e = err(&format!("{GOOD}SOURCE_URL=\"a\u{1b}[31mb\"\n"));
        assert!(
            e.contains(":5: SOURCE_URL contains the control character U+001B"),
            "{e}"
        );
        let e = err(&format!("{GOOD}SOURCE_URL={}\n", "x".repeat(1_000_000)));
        assert!(
            e.contains(":5: SOURCE_URL is 1000000 bytes long; values are limited to 4096"),
            "{e}"
        );
    }

    #[test]
    fn crlf_and_bom_are_accepted() {
        let text = format!("\u{feff}{}", GOOD.replace('\n', "\r\n"));
        let c = run(&text, &[], Overrides::default()).unwrap();
        assert_eq!(c.naming.prefix, "federatedai");
        assert_eq!(c.naming.tag, "1.0.2-release");
    }

    #[test]
    fn duplicates_and_unknown_keys_warn() {
        let c = run(
            &format!("{GOOD}TAG=2.0\nMAVN_IMAGE=x\n"),
            &[],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.naming.tag, "2.0");
        assert!(
            c.warnings[0].contains(":5: TAG is set again (first on line 4)"),
            "{:?}",
            c.warnings
        );
        assert!(
            c.warnings[1].contains("did you mean MAVEN_IMAGE?"),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn build_options_from_env_and_flags() {
        let set = sample_set();
        let env = "PREFIX=p\nBASE_TAG=b\nBUILDER_TAG=s\nTAG=t\nMAVEN_CACHE_DIR=/c\nBUILDX_BUILDER=fleet\nBUILD_CACHE_FROM=\"type=registry,ref=r:5000/p/{image}:cache p/base-image:old\"\nBUILD_PLATFORM=linux/arm64\n";
        let resolved = |ov: &Overrides| {
            resolve(
                Path::new("/f"),
                Path::new("/f/.env"),
                env,
                &BTreeMap::new(),
                &set,
                ov,
            )
        };
        let c = resolved(&Overrides::default()).unwrap();
        assert_eq!(c.build.builder.as_deref(), Some("fleet"));
        assert_eq!(
            c.build.cache_from,
            [
                "type=registry,ref=r:5000/p/{image}:cache",
                "p/base-image:old"
            ]
        );
        assert_eq!(c.build.platforms, ["linux/arm64"]);
        assert_eq!(
            c.build.buildkit_only(),
            [
                "--builder fleet",
                "--cache-from type=registry,ref=r:5000/p/{image}:cache"
            ]
        );
        let flags = Overrides {
            build: BuildOverrides {
                builder: Some("other".into()),
                cache_to: vec!["type=inline".into()],
                platform: Some("linux/amd64,linux/arm64".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let c = resolved(&flags).unwrap();
        assert_eq!(c.build.builder.as_deref(), Some("other"));
        assert_eq!(c.build.cache_to, ["type=inline"]);
        assert_eq!(c.build.platforms, ["linux/amd64", "linux/arm64"]);
        let bad = Overrides {
            build: BuildOverrides {
                builder: Some("no/slash".into()),
                cache_from: vec![
                    "type=registry".into(),
                    "type=local,dest=/c".into(),
                    "type=inline".into(),
                ],
                cache_to: vec![
                    "ref=x".into(),
                    "type=registry,ref={name}".into(),
                    "type=floppy".into(),
                ],
                platform: Some("amd64,linux/notanarch".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let e = format!("{:#}", resolved(&bad).unwrap_err());
        for expected in [
            "--builder: \"no/slash\" is not a buildx builder name",
            "--cache-to: \"ref=x\" names no type",
            "has a placeholder other than {image}",
            "--cache-from: \"type=registry\" has type registry without ref=",
            "--cache-from: \"type=local,dest=/c\" has type local without src=",
            "--cache-from: \"type=inline\" imports nothing",
            "--cache-to: \"type=floppy\" has type \"floppy\", which BuildKit does not know",
            "--platform: \"amd64\" is not a platform",
            "--platform: \"linux/notanarch\" names the architecture \"notanarch\"",
        ] {
            assert!(e.contains(expected), "{expected} in {e}");
        }
    }

    #[test]
    fn the_maven_cache_is_never_a_shared_temporary_directory() {
        let e = resolve(
            Path::new("/fate"),
            Path::new("/fate/.env"),
            GOOD,
            &BTreeMap::new(),
            &sample_set(),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("neither XDG_CACHE_HOME nor HOME is set"),
            "{e:#}"
        );
    }
}
