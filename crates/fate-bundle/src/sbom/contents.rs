//! What the packages staged into a context are, read from the files themselves: a jar's
//! Maven coordinates from its `META-INF/maven/**/pom.properties`, and the pinned Python
//! requirements of a `requirements*.txt`.

use std::io::{Read, Seek};

/// Maven coordinates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coordinates {
    pub group_id: String,
    pub artifact_id: String,
    pub version: String,
}

impl Coordinates {
    /// The package URL (purl) of a Maven artifact.
    #[must_use]
    pub fn purl(&self) -> String {
        format!(
            "pkg:maven/{}/{}@{}",
            self.group_id, self.artifact_id, self.version
        )
    }
}

/// The coordinates a jar records of itself (Maven writes them into every jar it builds).
/// A jar holding several (a shaded jar) gives the one whose artifactId its file name
/// starts with, else the first; none when it records none or is not a zip.
pub fn jar_coordinates(jar: impl Read + Seek, file_name: &str) -> Option<Coordinates> {
    let mut archive = zip::ZipArchive::new(jar).ok()?;
    let names: Vec<String> = archive
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| n.starts_with("META-INF/maven/") && n.ends_with("/pom.properties"))
        .map(|n| n.to_string())
        .collect();
    let mut found = Vec::new();
    for name in names {
        let mut text = String::new();
        if let Ok(entry) = archive.by_name(&name)
            && entry.take(64 * 1024).read_to_string(&mut text).is_ok()
            && let Some(coordinates) = pom_properties(&text)
        {
            found.push(coordinates);
        }
    }
    let own = found
        .iter()
        .position(|c| file_name.starts_with(&format!("{}-", c.artifact_id)));
    match own {
        Some(i) => Some(found.swap_remove(i)),
        None => found.into_iter().next(),
    }
}

/// `groupId`, `artifactId` and `version` of a `pom.properties`.
fn pom_properties(text: &str) -> Option<Coordinates> {
    let value = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    Some(Coordinates {
        group_id: value("groupId")?,
        artifact_id: value("artifactId")?,
        version: value("version")?,
    })
}

/// One requirement of a `requirements.txt`: its name and, when pinned (`==`), version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub name: String,
    pub version: Option<String>,
    /// The line as written, when not pinned to one version.
    pub spec: String,
}

impl Requirement {
    /// The package URL (purl) of a PyPI package: its name normalized as PyPI does.
    #[must_use]
    pub fn purl(&self) -> Option<String> {
        let name: String = self
            .name
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c == '_' || c == '.' { '-' } else { c })
            .collect();
        self.version
            .as_ref()
            .map(|v| format!("pkg:pypi/{name}@{v}"))
    }
}

/// The requirements of a `requirements.txt`: comments, options (`-r`, `--index-url`)
/// and environment markers left out.
#[must_use]
pub fn requirements(text: &str) -> Vec<Requirement> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && !l.starts_with('-'))
        .filter_map(|line| {
            let spec = line.split(';').next().unwrap_or("").trim();
            let name_end = spec
                .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
                .unwrap_or(spec.len());
            let name = spec[..name_end].to_string();
            if name.is_empty() {
                return None;
            }
            let rest = spec[name_end..].trim();
            // `name[extra]==1.0`: the extras do not change the version.
            let rest = match rest.strip_prefix('[') {
                Some(r) => r.split_once(']').map_or("", |(_, after)| after.trim()),
                None => rest,
            };
            let version = rest
                .strip_prefix("==")
                .map(str::trim)
                .filter(|v| !v.is_empty() && !v.contains([',', '*']))
                .map(str::to_string);
            Some(Requirement {
                name,
                version,
                spec: spec.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn pinned_requirements_and_the_rest() {
        let text = "# FATE\nnumpy==1.16.4\nPyYAML == 5.1 ; python_version < '3.8'\n\
                    grpcio[protobuf]==1.20.0\n-r other.txt\n--index-url x\nflask>=1.0\nmy_pkg==1.*\n";
        let found = requirements(text);
        let pins: Vec<(&str, Option<&str>)> = found
            .iter()
            .map(|r| (r.name.as_str(), r.version.as_deref()))
            .collect();
        assert_eq!(
            pins,
            [
                ("numpy", Some("1.16.4")),
                ("PyYAML", Some("5.1")),
                ("grpcio", Some("1.20.0")),
                ("flask", None),
                ("my_pkg", None),
            ]
        );
        assert_eq!(found[1].purl().unwrap(), "pkg:pypi/pyyaml@5.1");
        assert_eq!(found[3].spec, "flask>=1.0");
    }

    #[test]
    fn a_jar_names_its_own_coordinates() {
        let mut jar = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (group, artifact, version) in [("org.shaded", "inner", "9"), ("org.x", "lib", "2.1")] {
            jar.start_file(
                format!("META-INF/maven/{group}/{artifact}/pom.properties"),
                options,
            )
            .unwrap();
            write!(
                jar,
                "#Generated by Maven\nversion={version}\ngroupId={group}\nartifactId={artifact}\n"
            )
            .unwrap();
        }
        let bytes = jar.finish().unwrap().into_inner();
        let found = jar_coordinates(std::io::Cursor::new(&bytes), "lib-2.1.jar").unwrap();
        assert_eq!(found.purl(), "pkg:maven/org.x/lib@2.1");
        assert!(jar_coordinates(std::io::Cursor::new(b"not a zip"), "x.jar").is_none());
    }
}
