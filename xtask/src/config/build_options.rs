//! How images are built beyond what their Dockerfiles say (BuildKit's builder, cache,
//! pull, platforms): the flags, the `.env` keys, and their checks before any work.

use fate_bundle::docker::reference;
use fate_bundle::ui::problems::Problems;

use crate::config::values::Values;

/// Build flags; empty or `None` means "not given".
#[derive(Clone, Debug, Default)]
pub struct BuildOverrides {
    pub builder: Option<String>,
    pub cache_from: Vec<String>,
    pub cache_to: Vec<String>,
    pub pull: bool,
    pub platform: Option<String>,
}

/// How images are built beyond what their Dockerfiles say: BuildKit's builder, cache
/// and platform. None of it is an input of an image but the platform.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// A buildx builder by name (`docker buildx ls`); `None`: the current one.
    pub builder: Option<String>,
    /// Cache sources and exports, as buildx takes them (`type=registry,ref=...`);
    /// `{image}` stands for the image's name.
    pub cache_from: Vec<String>,
    pub cache_to: Vec<String>,
    /// Look for newer versions of the external images builds start from.
    pub pull: bool,
    /// Target platforms (`os/arch[/variant]`); empty: the engine's own.
    pub platforms: Vec<String>,
}

impl BuildOptions {
    /// What needs BuildKit, as flag names (empty when the legacy builder can do it all).
    #[must_use]
    pub fn buildkit_only(&self) -> Vec<String> {
        let mut needs = Vec::new();
        if let Some(name) = &self.builder {
            needs.push(format!("--builder {name}"));
        }
        needs.extend(self.cache_to.iter().map(|c| format!("--cache-to {c}")));
        needs.extend(
            self.cache_from
                .iter()
                .filter(|c| c.contains('='))
                .map(|c| format!("--cache-from {c}")),
        );
        needs
    }

    /// A cache spec for one image.
    #[must_use]
    pub fn for_image(spec: &str, image: &str) -> String {
        spec.replace("{image}", image)
    }
}

/// Flags beat `.env`; lists in `.env` are separated by spaces. Checked here, before
/// any work, rather than deep inside a build.
pub(super) fn from_values(
    values: &Values,
    flags: &BuildOverrides,
    problems: &mut Problems,
) -> BuildOptions {
    let list = |flag: &[String], key: &str| -> Vec<String> {
        if flag.is_empty() {
            values
                .get(key)
                .split_whitespace()
                .map(String::from)
                .collect()
        } else {
            flag.to_vec()
        }
    };
    let at = |key: &str, flag_given: bool, flag: &str| where_from(values, key, flag_given, flag);
    let builder = flags
        .builder
        .clone()
        .or_else(|| Some(values.get("BUILDX_BUILDER").to_string()))
        .filter(|b| !b.is_empty());
    if let Some(name) = &builder
        && !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        problems.push(format!(
            "{}: {name:?} is not a buildx builder name (letters, digits, _ . -); `docker buildx ls` lists the builders",
            at("BUILDX_BUILDER", flags.builder.is_some(), "--builder")
        ));
    }
    let cache_from = list(&flags.cache_from, "BUILD_CACHE_FROM");
    let cache_to = list(&flags.cache_to, "BUILD_CACHE_TO");
    for (specs, key, flag, given, direction) in [
        (
            &cache_from,
            "BUILD_CACHE_FROM",
            "--cache-from",
            !flags.cache_from.is_empty(),
            CacheDirection::Import,
        ),
        (
            &cache_to,
            "BUILD_CACHE_TO",
            "--cache-to",
            !flags.cache_to.is_empty(),
            CacheDirection::Export,
        ),
    ] {
        for spec in specs {
            if let Err(why) = check_cache_spec(spec, direction) {
                problems.push(format!("{}: {spec:?} {why}", at(key, given, flag)));
            }
        }
    }
    BuildOptions {
        builder,
        cache_from,
        cache_to,
        pull: flags.pull,
        platforms: platforms(values, flags, problems),
    }
}

/// Where a value came from, for messages: the flag when it was given, else `.env`'s line.
fn where_from(values: &Values, key: &str, flag_given: bool, flag: &str) -> String {
    if flag_given {
        flag.to_string()
    } else {
        values.at(key)
    }
}

/// `--platform` else `BUILD_PLATFORM`: comma-separated `os/arch[/variant]`.
fn platforms(values: &Values, flags: &BuildOverrides, problems: &mut Problems) -> Vec<String> {
    let platform = flags
        .platform
        .clone()
        .unwrap_or_else(|| values.get("BUILD_PLATFORM").to_string());
    let platforms: Vec<String> = platform
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();
    for p in &platforms {
        if let Err(why) = fate_bundle::docker::platform::check_platform(p) {
            problems.push(format!(
                "{}: {p:?} {why}",
                where_from(
                    values,
                    "BUILD_PLATFORM",
                    flags.platform.is_some(),
                    "--platform"
                )
            ));
        }
    }
    platforms
}

/// A cache spec is `key=value,...` with a `type` (BuildKit), or an image reference
/// (the legacy builder's `--cache-from`); `{image}` may stand for the image's name.
fn check_cache_spec(spec: &str, direction: CacheDirection) -> Result<(), String> {
    let concrete = BuildOptions::for_image(spec, "image");
    if concrete.contains('{') || concrete.contains('}') {
        return Err("has a placeholder other than {image}".into());
    }
    if !concrete.contains('=') {
        return reference::check_reference(&concrete);
    }
    let mut fields = std::collections::BTreeMap::new();
    for field in concrete.split(',') {
        let Some((key, value)) = field.split_once('=') else {
            return Err(format!("has {field:?} where key=value belongs"));
        };
        if key.is_empty() || value.is_empty() {
            return Err(format!("has an empty key or value in {field:?}"));
        }
        fields.insert(key, value);
    }
    let Some(kind) = fields.get("type") else {
        return Err(
            "names no type; write e.g. type=registry,ref=registry.local:5000/fate/{image}:cache"
                .into(),
        );
    };
    // What BuildKit requires of each cache backend, checked before any work (BuildKit
    // itself says so only when the build starts, after Maven and staging).
    let needs: &[&str] = match (*kind, direction) {
        ("registry", _) => &["ref"],
        ("local", CacheDirection::Import) => &["src"],
        ("local", CacheDirection::Export) => &["dest"],
        ("s3", _) => &["bucket", "region"],
        ("azblob", _) => &["account_url", "name"],
        ("inline", CacheDirection::Export) | ("gha", _) => &[],
        ("inline", CacheDirection::Import) => {
            return Err(
                "imports nothing: an inline cache is read from an image, type=registry,ref=IMAGE"
                    .into(),
            );
        }
        (other, _) => {
            return Err(format!(
                "has type {other:?}, which BuildKit does not know; the types are registry, local, inline (export), gha, s3 and azblob"
            ));
        }
    };
    match needs.iter().find(|key| !fields.contains_key(**key)) {
        Some(key) => Err(format!(
            "has type {kind} without {key}= (BuildKit requires it); write e.g. {}",
            match *key {
                "ref" => "type=registry,ref=registry.local:5000/fate/{image}:cache",
                "src" => "type=local,src=/var/cache/fate/{image}",
                "dest" => "type=local,dest=/var/cache/fate/{image}",
                _ => "the keys of BuildKit's cache docs for that type",
            }
        )),
        None => Ok(()),
    }
}

/// Whether a cache spec is read (`--cache-from`) or written (`--cache-to`).
#[derive(Clone, Copy)]
enum CacheDirection {
    Import,
    Export,
}
