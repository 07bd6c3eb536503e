//! `.env` as data: parsed (never executed), validated, and resolved with the
//! precedence flag > environment > `.env` > default, into one [`Config`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::imageset::ImageSet;
use crate::problems::Problems;
use crate::reference;

/// Keys every `.env` must define.
pub const REQUIRED_KEYS: [&str; 4] = ["PREFIX", "BASE_TAG", "BUILDER_TAG", "TAG"];

/// Optional keys with their defaults (a mirror key's default comes from the image set).
pub const OPTIONAL_KEYS: [(&str, &str); 8] = [
    ("MAVEN_IMAGE", "maven:3.6-jdk-8"),
    ("MAVEN_MODE", "docker"),
    ("MAVEN_CACHE_DIR", ""),
    ("SOURCE_URL", "https://github.com/FederatedAI/FATE"),
    ("REDIS_IMAGE", "redis:5.0.14"),
    ("MYSQL_IMAGE", "mysql:8.0.28"),
    ("REGISTRY", ""),
    ("REGISTRY_USER", ""),
];

/// Which set of download locations builds use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MirrorProfile {
    Global,
    China,
}

/// Where Maven runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MavenMode {
    /// In a throwaway container of this image.
    Docker { image: String },
    /// The host's `mvn`.
    Host,
}

/// What the command line says about configuration; `None` means "not given".
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub env_file: Option<PathBuf>,
    pub chinese_mirror: bool,
    pub maven: Option<String>,
}

/// One `key=value` of a `.env` file, with the line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvEntry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Everything later steps need to know, resolved once.
#[derive(Clone, Debug)]
pub struct Config {
    pub fate_root: PathBuf,
    pub env_file: PathBuf,
    /// Every known key with its resolved value.
    pub values: BTreeMap<String, String>,
    pub mirror: MirrorProfile,
    pub maven: MavenMode,
    pub maven_cache: PathBuf,
    /// Non-fatal findings, shown before work starts.
    pub warnings: Vec<String>,
}

impl Config {
    /// The resolved value of a key (empty when unset and without default).
    pub fn value(&self, key: &str) -> &str {
        self.values.get(key).map(String::as_str).unwrap_or("")
    }

    pub fn prefix(&self) -> &str {
        self.value("PREFIX")
    }

    /// The mirror setting `name` of the active profile: `.env`'s `NAME` (or `CN_NAME`
    /// under `--chinese-mirror`), else the image set's default.
    pub fn mirror_value(&self, name: &str) -> &str {
        self.value(&mirror_key(self.mirror, name))
    }

    /// Directory for everything this tool writes: staged trees, contexts, logs.
    pub fn work_dir(&self) -> PathBuf {
        self.fate_root.join("target").join("xtask")
    }
}

/// The `.env` key holding mirror setting `name` in `profile`.
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
    let mut warnings = Vec::new();
    let entries = parse_env(text, env_file, &mut problems);

    let defaults = known_keys(images);
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut lines: BTreeMap<String, usize> = BTreeMap::new();
    for entry in &entries {
        if let Some(first) = lines.get(&entry.key) {
            warnings.push(format!(
                "{}:{}: {} is set again (first on line {first}); the last value wins, as in a shell",
                env_file.display(),
                entry.line,
                entry.key
            ));
        }
        if !defaults.contains_key(&entry.key) && !REQUIRED_KEYS.contains(&entry.key.as_str()) {
            let hint = nearest(&entry.key, defaults.keys().map(String::as_str))
                .map(|k| format!("; did you mean {k}?"))
                .unwrap_or_default();
            warnings.push(format!(
                "{}:{}: unknown key {} is ignored{hint}",
                env_file.display(),
                entry.line,
                entry.key
            ));
            continue;
        }
        lines.insert(entry.key.clone(), entry.line);
        values.insert(entry.key.clone(), entry.value.clone());
    }
    // The environment wins over the file, as with docker compose.
    for key in defaults.keys().map(String::as_str).chain(REQUIRED_KEYS) {
        if let Some(v) = process_env.get(key) {
            values.insert(key.to_string(), v.clone());
            lines.remove(key);
        }
    }
    for key in REQUIRED_KEYS {
        if !values.contains_key(key) {
            problems.push(format!(
                "{}: required key {key} is missing; add a line `{key}=...`",
                env_file.display()
            ));
        }
    }
    for (key, default) in &defaults {
        values.entry(key.clone()).or_insert_with(|| default.clone());
    }

    let at = |key: &str| match lines.get(key) {
        Some(line) => format!("{}:{line}", env_file.display()),
        None if process_env.contains_key(key) => format!("environment variable {key}"),
        None => env_file.display().to_string(),
    };
    for (key, value) in &values {
        if value.contains('`') || value.contains("$(") {
            problems.push(format!(
                "{}: {key} contains shell command substitution; .env is read as data and never run: write the literal value",
                at(key)
            ));
        }
    }
    if let Some(prefix) = values.get("PREFIX")
        && let Err(why) = reference::check_prefix(prefix)
    {
        problems.push(format!("{}: PREFIX={prefix:?} {why}", at("PREFIX")));
    }
    for key in ["BASE_TAG", "BUILDER_TAG", "TAG"] {
        if let Some(tag) = values.get(key)
            && let Err(why) = reference::check_tag(tag)
        {
            problems.push(format!("{}: {key}={tag:?} {why}", at(key)));
        }
    }

    let mirror = if overrides.chinese_mirror {
        MirrorProfile::China
    } else {
        MirrorProfile::Global
    };
    let mode = overrides
        .maven
        .clone()
        .unwrap_or_else(|| values["MAVEN_MODE"].clone());
    let maven = match mode.as_str() {
        "docker" => MavenMode::Docker {
            image: values["MAVEN_IMAGE"].clone(),
        },
        "host" => MavenMode::Host,
        other => {
            problems.push(format!(
                "{}: MAVEN_MODE={other:?} is not a Maven mode; use docker or host",
                at("MAVEN_MODE")
            ));
            MavenMode::Host
        }
    };
    if let MavenMode::Docker { image } = &maven
        && let Err(why) = reference::check_reference(image)
    {
        problems.push(format!(
            "{}: MAVEN_IMAGE={image:?} {why}",
            at("MAVEN_IMAGE")
        ));
    }
    for key in ["REDIS_IMAGE", "MYSQL_IMAGE"] {
        if let Err(why) = reference::check_reference(&values[key]) {
            problems.push(format!("{}: {key}={:?} {why}", at(key), values[key]));
        }
    }
    let maven_cache = match values["MAVEN_CACHE_DIR"].as_str() {
        "" => default_maven_cache(process_env),
        dir => fate_root.join(dir),
    };
    problems.into_result()?;
    Ok(Config {
        fate_root: fate_root.to_path_buf(),
        env_file: env_file.to_path_buf(),
        values,
        mirror,
        maven,
        maven_cache,
        warnings,
    })
}

/// Every key `.env` may set, with its default.
fn known_keys(images: &ImageSet) -> BTreeMap<String, String> {
    let mut keys: BTreeMap<String, String> = OPTIONAL_KEYS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // Every setting has a global and a China key; China falls back to the global value
    // where the image set names no China mirror.
    for (name, url) in &images.mirrors.global {
        keys.insert(mirror_key(MirrorProfile::Global, name), url.clone());
        let cn = images.mirrors.cn.get(name).unwrap_or(url);
        keys.insert(mirror_key(MirrorProfile::China, name), cn.clone());
    }
    for (name, url) in &images.mirrors.cn {
        keys.entry(mirror_key(MirrorProfile::Global, name))
            .or_default();
        keys.insert(mirror_key(MirrorProfile::China, name), url.clone());
    }
    keys
}

fn default_maven_cache(process_env: &BTreeMap<String, String>) -> PathBuf {
    let base = match (process_env.get("XDG_CACHE_HOME"), process_env.get("HOME")) {
        (Some(xdg), _) if !xdg.is_empty() => PathBuf::from(xdg),
        (_, Some(home)) if !home.is_empty() => Path::new(home).join(".cache"),
        _ => std::env::temp_dir(),
    };
    base.join("fate-xtask").join("maven")
}

/// Parses `.env` text with dotenvy, recording each key's line. Unparseable lines become problems.
pub fn parse_env(text: &str, file: &Path, problems: &mut Problems) -> Vec<EnvEntry> {
    // A UTF-8 BOM (common from Windows editors) is not part of the first key.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries = Vec::new();
    let mut search_from = 0;
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((key, value)) => {
                let line = line_of_key(text, &key, search_from);
                search_from = line;
                entries.push(EnvEntry {
                    key,
                    value: value.trim_end_matches('\r').to_string(),
                    line,
                });
            }
            Err(dotenvy::Error::LineParse(content, _)) => {
                // dotenvy reports the offending part of the line; find the whole line.
                let (line, full) = text
                    .lines()
                    .enumerate()
                    .skip(search_from)
                    .find(|(_, l)| l.contains(content.trim_end_matches('\r')))
                    .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
                    .unwrap_or((0, content.as_str()));
                search_from = line;
                let why = if content.contains("$(") || content.contains('`') {
                    "uses shell command substitution; .env is read as data and never run: write the literal value"
                } else {
                    "is not KEY=VALUE; quote values that contain spaces or #"
                };
                problems.push(format!(
                    "{}:{line}: `{}` {why}",
                    file.display(),
                    full.trim()
                ));
            }
            Err(e) => problems.push(format!("{}: {e}", file.display())),
        }
    }
    entries
}

/// 1-based line where `key` is assigned, at or after line `after`.
fn line_of_key(text: &str, key: &str, after: usize) -> usize {
    let assigns = |l: &str| {
        let l = l.trim_start();
        let l = l.strip_prefix("export ").unwrap_or(l).trim_start();
        l.strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    text.lines()
        .enumerate()
        .skip(after)
        .find(|(_, l)| assigns(l))
        .map(|(i, _)| i + 1)
        .unwrap_or(after)
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
pub fn nearest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imageset::tests::sample_set;

    const GOOD: &str = "PREFIX=federatedai\nBASE_TAG=1.0.2-release\nBUILDER_TAG=1.0.2-release\nTAG=1.0.2-release\n";

    fn run(text: &str, env: &[(&str, &str)], ov: Overrides) -> Result<Config> {
        let env = env
            .iter()
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
        assert_eq!(c.prefix(), "federatedai");
        assert_eq!(c.value("TAG"), "1.0.2-release");
        assert_eq!(
            c.maven,
            MavenMode::Docker {
                image: "maven:3.6-jdk-8".into()
            }
        );
        assert_eq!(c.mirror_value("PIP_INDEX_URL"), "https://pypi.org/simple");
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn environment_beats_file_and_flags_beat_both() {
        let ov = Overrides {
            maven: Some("host".into()),
            chinese_mirror: true,
            ..Default::default()
        };
        let c = run(
            &format!("{GOOD}MAVEN_MODE=docker\nCN_PIP_INDEX_URL=https://file.example/simple\n"),
            &[("TAG", "2.0"), ("MAVEN_MODE", "docker")],
            ov,
        )
        .unwrap();
        assert_eq!(c.value("TAG"), "2.0");
        assert_eq!(c.maven, MavenMode::Host);
        assert_eq!(
            c.mirror_value("PIP_INDEX_URL"),
            "https://file.example/simple"
        );
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
    fn crlf_and_bom_are_accepted() {
        let text = format!("\u{feff}{}", GOOD.replace('\n', "\r\n"));
        let c = run(&text, &[], Overrides::default()).unwrap();
        assert_eq!(c.prefix(), "federatedai");
        assert_eq!(c.value("TAG"), "1.0.2-release");
    }

    #[test]
    fn duplicates_and_unknown_keys_warn() {
        let c = run(
            &format!("{GOOD}TAG=2.0\nMAVN_IMAGE=x\n"),
            &[],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.value("TAG"), "2.0");
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
}
