//! The part of SPDX 2.3's JSON form that an image's SBOM uses: the document, its
//! packages (the image, its parents, jars, Python requirements), files and
//! relationships. Read back too: a child image's SBOM carries its parents' packages.

use serde::{Deserialize, Serialize};
use sha1::Digest;

pub const VERSION: &str = "SPDX-2.3";
pub const DOCUMENT: &str = "SPDXRef-DOCUMENT";
pub const NOASSERTION: &str = "NOASSERTION";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub spdx_version: String,
    pub data_license: String,
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    pub name: String,
    pub document_namespace: String,
    pub creation_info: CreationInfo,
    pub packages: Vec<Package>,
    #[serde(default)]
    pub files: Vec<File>,
    #[serde(default)]
    pub relationships: Vec<Relationship>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CreationInfo {
    pub created: String,
    pub creators: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_info: Option<String>,
    pub download_location: String,
    pub files_analyzed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_verification_code: Option<VerificationCode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checksums: Vec<Checksum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_package_purpose: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_refs: Vec<ExternalRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_info: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VerificationCode {
    pub package_verification_code_value: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Checksum {
    pub algorithm: String,
    pub checksum_value: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalRef {
    pub reference_category: String,
    pub reference_type: String,
    pub reference_locator: String,
}

impl ExternalRef {
    #[must_use]
    pub fn purl(locator: String) -> ExternalRef {
        ExternalRef {
            reference_category: "PACKAGE-MANAGER".into(),
            reference_type: "purl".into(),
            reference_locator: locator,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct File {
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    pub file_name: String,
    pub checksums: Vec<Checksum>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Relationship {
    pub spdx_element_id: String,
    pub relationship_type: String,
    pub related_spdx_element: String,
}

impl Relationship {
    #[must_use]
    pub fn new(from: &str, kind: &str, to: &str) -> Relationship {
        Relationship {
            spdx_element_id: from.into(),
            relationship_type: kind.into(),
            related_spdx_element: to.into(),
        }
    }
}

/// The checksums SPDX 2.3 asks of a file (SHA1, which it requires) and this tool's
/// (SHA256), as hex.
#[must_use]
pub fn checksums(sha1: &str, sha256: &str) -> Vec<Checksum> {
    vec![
        Checksum {
            algorithm: "SHA1".into(),
            checksum_value: sha1.into(),
        },
        Checksum {
            algorithm: "SHA256".into(),
            checksum_value: sha256.into(),
        },
    ]
}

/// SPDX 2.3's package verification code: the SHA1 of its files' SHA1s (lowercase hex),
/// sorted and concatenated.
#[must_use]
pub fn verification_code(file_sha1s: &[&str]) -> VerificationCode {
    let mut sorted = file_sha1s.to_vec();
    sorted.sort_unstable();
    VerificationCode {
        package_verification_code_value: hex::encode(sha1::Sha1::digest(sorted.concat())),
    }
}

/// An SPDX identifier's idstring: letters, digits, `.` and `-` only.
#[must_use]
pub fn id_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verification_code_is_over_sorted_sha1s() {
        let (a, b) = ("bb", "aa");
        assert_eq!(
            verification_code(&[a, b]).package_verification_code_value,
            hex::encode(sha1::Sha1::digest(b"aabb"))
        );
    }

    #[test]
    fn ids_keep_only_what_spdx_allows() {
        assert_eq!(id_part("commons-lang3_3.12.0+x"), "commons-lang3-3.12.0-x");
    }
}
