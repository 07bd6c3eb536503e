//! An SPDX 2.3 SBOM of every image this tool builds, made from what it staged (not by
//! scanning the image afterwards): the image (reference, ID, platform, source commit),
//! every file staged into its context with its SHA1 and SHA256, each jar as a package
//! with its Maven coordinates (a module's from the pom this tool reads, a dependency's
//! from the jar's own `pom.properties`), the Python requirements as packages with their
//! pinned versions, and the packages of the parent images it builds on. Written beside
//! the contexts (`target/xtask/sbom/<image>.spdx.json`) when the image is built, and
//! carried by the bundle.

pub mod contents;
pub mod spdx;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use contents::{Coordinates, Requirement};
use spdx::{Document, ExternalRef, Package, Relationship};

/// The image an SBOM describes.
pub struct Subject<'a> {
    /// The image set's name of the image.
    pub name: &'a str,
    pub reference: &'a str,
    pub id: &'a str,
    /// `os/arch` of what was built (several, comma-separated, for a multi-platform image).
    pub platform: &'a str,
    /// The source commit and repository it was built from.
    pub revision: &'a str,
    pub source_url: &'a str,
    /// When this document was written (RFC 3339, seconds).
    pub created: &'a str,
    /// How it was built: the epoch of its times, the engine and the builder.
    pub built_with: &'a str,
}

/// A file staged into the context, as the SBOM lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedFile {
    /// Its path in the context.
    pub path: String,
    pub sha1: String,
    pub sha256: String,
    pub holds: Holds,
}

/// The packages a staged file is, or lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holds {
    Nothing,
    /// A jar; its coordinates when known (a Maven module's, or its `pom.properties`').
    Jar(Option<Coordinates>),
    /// A `requirements*.txt`.
    Requirements(Vec<Requirement>),
}

/// Where the SBOM of image `name` is written.
#[must_use]
pub fn path(work_dir: &Path, name: &str) -> PathBuf {
    work_dir.join("sbom").join(format!("{name}.spdx.json"))
}

const IMAGE: &str = "SPDXRef-Image";
/// The external reference that carries the image's ID.
const IMAGE_ID: &str = "docker-image-id";

/// The SBOM of `subject`, staged as `files`, built on the images `parents` describe.
#[must_use]
pub fn document(subject: &Subject, files: &[StagedFile], parents: &[Document]) -> Document {
    let mut packages = vec![image_package(subject, files)];
    let mut relationships = vec![Relationship::new(spdx::DOCUMENT, "DESCRIBES", IMAGE)];
    let mut spdx_files = Vec::new();
    for (n, file) in files.iter().enumerate() {
        let file_id = format!("SPDXRef-File-{}", n + 1);
        relationships.push(Relationship::new(IMAGE, "CONTAINS", &file_id));
        spdx_files.push(spdx::File {
            spdx_id: file_id,
            file_name: format!("./{}", file.path),
            checksums: spdx::checksums(&file.sha1, &file.sha256),
        });
        for mut package in file_packages(file) {
            package.spdx_id = format!("SPDXRef-Package-{}", packages.len());
            relationships.push(Relationship::new(IMAGE, "CONTAINS", &package.spdx_id));
            packages.push(package);
        }
    }
    for (k, parent) in parents.iter().enumerate() {
        let Some(parent_image) = parent.packages.iter().find(|p| p.spdx_id == IMAGE) else {
            continue;
        };
        let parent_id = format!("SPDXRef-Parent-{}", k + 1);
        relationships.push(Relationship::new(IMAGE, "DESCENDANT_OF", &parent_id));
        packages.push(Package {
            spdx_id: parent_id,
            files_analyzed: false,
            package_verification_code: None,
            ..parent_image.clone()
        });
        for inherited in parent.packages.iter().filter(|p| p.spdx_id != IMAGE) {
            if inherited.spdx_id.starts_with("SPDXRef-Parent-") {
                continue;
            }
            let id = format!("SPDXRef-Inherited-{}", packages.len());
            relationships.push(Relationship::new(IMAGE, "CONTAINS", &id));
            let from = format!("from the parent image {}", parent_image.name);
            let comment = match &inherited.comment {
                Some(c) if c.starts_with("from the parent image") => c.clone(),
                Some(c) => format!("{from}: {c}"),
                None => from,
            };
            packages.push(Package {
                spdx_id: id,
                comment: Some(comment),
                ..inherited.clone()
            });
        }
    }
    Document {
        spdx_version: spdx::VERSION.into(),
        data_license: "CC0-1.0".into(),
        spdx_id: spdx::DOCUMENT.into(),
        name: format!("SBOM of {}", subject.reference),
        document_namespace: format!(
            "https://spdx.org/spdxdocs/fate-xtask/{}/{}",
            spdx::id_part(subject.reference),
            subject.id.trim_start_matches("sha256:")
        ),
        creation_info: spdx::CreationInfo {
            created: subject.created.into(),
            creators: vec![format!("Tool: fate-xtask-{}", env!("CARGO_PKG_VERSION"))],
        },
        packages,
        files: spdx_files,
        relationships,
    }
}

/// The image itself: its files analyzed (every staged file), its ID, platform and commit.
fn image_package(subject: &Subject, files: &[StagedFile]) -> Package {
    let sha1s: Vec<&str> = files.iter().map(|f| f.sha1.as_str()).collect();
    let tag = subject
        .reference
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .map(|(_, tag)| tag.to_string());
    Package {
        spdx_id: IMAGE.into(),
        name: subject.reference.into(),
        version_info: tag,
        download_location: spdx::NOASSERTION.into(),
        files_analyzed: true,
        package_verification_code: Some(spdx::verification_code(&sha1s)),
        primary_package_purpose: Some("CONTAINER".into()),
        external_refs: vec![ExternalRef {
            reference_category: "OTHER".into(),
            reference_type: IMAGE_ID.into(),
            reference_locator: subject.id.into(),
        }],
        source_info: Some(match subject.revision.strip_suffix("-dirty") {
            Some(commit) => format!(
                "built from commit {commit} of {} with changes not committed (revision {})",
                subject.source_url, subject.revision
            ),
            None => format!(
                "built from commit {} of {}, its files all committed",
                subject.revision, subject.source_url
            ),
        }),
        comment: Some(format!(
            "image {} of the image set, ID {}, platform {}; built with {}",
            subject.name, subject.id, subject.platform, subject.built_with
        )),
        ..Package::default()
    }
}

/// The packages a staged file is or lists (their SPDX IDs set by the caller).
fn file_packages(file: &StagedFile) -> Vec<Package> {
    let in_context = format!("./{}", file.path);
    match &file.holds {
        Holds::Nothing => Vec::new(),
        Holds::Jar(coordinates) => {
            let file_name = file.path.rsplit('/').next().unwrap_or(&file.path);
            let (name, version_info, external_refs) = match coordinates {
                Some(c) => (
                    format!("{}:{}", c.group_id, c.artifact_id),
                    Some(c.version.clone()),
                    vec![ExternalRef::purl(c.purl())],
                ),
                None => (file_name.to_string(), None, Vec::new()),
            };
            vec![Package {
                name,
                version_info,
                download_location: spdx::NOASSERTION.into(),
                checksums: spdx::checksums(&file.sha1, &file.sha256),
                package_file_name: Some(in_context),
                primary_package_purpose: Some("LIBRARY".into()),
                external_refs,
                ..Package::default()
            }]
        }
        Holds::Requirements(requirements) => requirements
            .iter()
            .map(|r| Package {
                name: r.name.clone(),
                version_info: r.version.clone(),
                download_location: spdx::NOASSERTION.into(),
                primary_package_purpose: Some("LIBRARY".into()),
                external_refs: r.purl().map(ExternalRef::purl).into_iter().collect(),
                comment: Some(match &r.version {
                    Some(_) => format!("a Python requirement of {in_context}"),
                    None => format!(
                        "a Python requirement of {in_context}, not pinned: {}",
                        r.spec
                    ),
                }),
                ..Package::default()
            })
            .collect(),
    }
}

/// The image ID an SBOM describes.
#[must_use]
pub fn image_id(document: &Document) -> Option<&str> {
    document
        .packages
        .iter()
        .find(|p| p.spdx_id == IMAGE)?
        .external_refs
        .iter()
        .find(|r| r.reference_type == IMAGE_ID)
        .map(|r| r.reference_locator.as_str())
}

/// Reads an SBOM this tool wrote.
pub fn read(path: &Path) -> Result<Document> {
    read_with_text(path).map(|(document, _)| document)
}

/// Reads an SBOM this tool wrote, with the bytes it was read from.
pub fn read_with_text(path: &Path) -> Result<(Document, Vec<u8>)> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let document = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not an SPDX JSON document", path.display()))?;
    Ok((document, text))
}

/// Writes an SBOM whole or not at all.
pub fn write(path: &Path, document: &Document) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let text = serde_json::to_string_pretty(document)? + "\n";
    crate::fsx::write_whole(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Subject<'static> {
        Subject {
            name: "python",
            reference: "federatedai/python:1.0.2-release",
            id: "sha256:abcd",
            platform: "linux/amd64",
            revision: "0123",
            source_url: "https://github.com/FederatedAI/FATE",
            created: "2026-12-01T00:00:00Z",
            built_with: "SOURCE_DATE_EPOCH=0, Docker Engine 26.1.5, BuildKit",
        }
    }

    fn file(path: &str, holds: Holds) -> StagedFile {
        StagedFile {
            path: path.into(),
            sha1: format!("{:040}", path.len()),
            sha256: format!("{:064}", path.len()),
            holds,
        }
    }

    #[test]
    fn the_image_its_files_jars_requirements_and_parents() {
        let base = document(
            &Subject {
                name: "base-image",
                reference: "federatedai/base-image:1.0.2-release",
                ..subject()
            },
            &[file(
                "requirements.txt",
                Holds::Requirements(contents::requirements("numpy==1.16.4\n")),
            )],
            &[],
        );
        let jar = Coordinates {
            group_id: "com.webank.ai.fate".into(),
            artifact_id: "fate-roll".into(),
            version: "0.3".into(),
        };
        let doc = document(
            &subject(),
            &[
                file("roll/fate-roll-0.3.jar", Holds::Jar(Some(jar))),
                file("roll/lib/odd.jar", Holds::Jar(None)),
                file("roll/conf/roll.properties", Holds::Nothing),
            ],
            &[base],
        );
        assert_eq!(image_id(&doc), Some("sha256:abcd"));
        let names: Vec<(&str, Option<&str>)> = doc
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version_info.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("federatedai/python:1.0.2-release", Some("1.0.2-release")),
                ("com.webank.ai.fate:fate-roll", Some("0.3")),
                ("odd.jar", None),
                (
                    "federatedai/base-image:1.0.2-release",
                    Some("1.0.2-release")
                ),
                ("numpy", Some("1.16.4")),
            ]
        );
        assert_eq!(doc.files.len(), 3);
        assert_eq!(doc.files[0].file_name, "./roll/fate-roll-0.3.jar");
        let ids: std::collections::BTreeSet<&str> =
            doc.packages.iter().map(|p| p.spdx_id.as_str()).collect();
        assert_eq!(ids.len(), doc.packages.len(), "SPDX IDs are unique");
        assert!(
            doc.relationships
                .iter()
                .any(|r| r.relationship_type == "DESCENDANT_OF"
                    && r.related_spdx_element == "SPDXRef-Parent-1")
        );
        assert_eq!(
            doc.packages[4].comment.as_deref(),
            Some(
                "from the parent image federatedai/base-image:1.0.2-release: a Python requirement of ./requirements.txt"
            )
        );
    }
}
