//! Local images as the engine describes them: the labels this tool's images carry, the
//! `docker image inspect` that reads them, and the commands that move images in and out
//! of an engine (`docker save`, `docker load`).

use std::collections::BTreeMap;

use crate::process::Command;

/// The label every image and container of this tool carries (as a prefix).
pub const LABEL_TOOL: &str = "org.fedai.fate-xtask";

/// The label holding an image's inputs digest.
pub const LABEL_INPUTS: &str = "org.fedai.fate-xtask.inputs";

/// The label holding the platforms an image was built for (comma-separated), so that a
/// rebuild for others says so.
pub const LABEL_PLATFORMS: &str = "org.fedai.fate-xtask.platforms";

/// Put after every `FROM` of a built Dockerfile: the legacy builder's intermediate
/// containers carry it, so those a crashed engine left behind can be found.
pub const LABEL_STAGE: &str = "org.fedai.fate-xtask.stage";

/// Labels that do not decide the image's content (and so not whether to rebuild).
pub const VOLATILE_LABELS: [&str; 4] = [
    "org.opencontainers.image.created",
    LABEL_REVISION,
    LABEL_INPUTS,
    // Platforms are an input already (as `--platform`); the label only names them.
    LABEL_PLATFORMS,
];

/// The local images the run knows of, by reference.
pub type LocalImages = BTreeMap<String, ImageInfo>;

/// What the engine says of a local image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    /// The inputs digest label, if this tool built it.
    pub inputs: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// `os/arch[/variant]`; for a multi-platform image on the containerd store, that of
    /// the engine's own platform.
    pub platform: String,
    /// The diff IDs of its layers.
    pub layers: Vec<String>,
    /// The platforms this tool built it for (its platforms label), if it says.
    pub built_for: Option<String>,
    /// The source commit it says it was built from (its OCI revision label).
    pub revision: Option<String>,
}

/// The OCI label of the source commit an image was built from (`<commit>-dirty` when its
/// files held changes not committed).
pub const LABEL_REVISION: &str = "org.opencontainers.image.revision";

/// The server's version and platform: `26.1.5 linux/amd64`.
#[must_use]
pub fn server_version() -> Command {
    Command::new(
        "docker",
        [
            "version",
            "--format",
            "{{.Server.Version}} {{.Server.Os}}/{{.Server.Arch}}",
        ],
    )
}

/// The storage driver and its status, which names the containerd snapshotter when the
/// engine uses the containerd image store.
#[must_use]
pub fn image_store() -> Command {
    Command::new(
        "docker",
        ["info", "--format", "{{.Driver}} {{json .DriverStatus}}"],
    )
}

/// The endpoint of the docker context the CLI uses.
#[must_use]
pub fn context_endpoint() -> Command {
    Command::new(
        "docker",
        [
            "context",
            "inspect",
            "--format",
            "{{.Endpoints.docker.Host}}",
        ],
    )
}

/// One `docker save` of several images: shared layers are written once.
#[must_use]
pub fn save(references: &[String]) -> Command {
    Command::new(
        "docker",
        std::iter::once("save".to_string()).chain(references.iter().cloned()),
    )
}

/// `docker load` from stdin.
#[must_use]
pub fn load() -> Command {
    Command::new("docker", ["load"])
}

/// `docker image inspect` of references: one line per image found (see [`parse_inspect`]).
#[must_use]
pub fn inspect(references: &[String]) -> Command {
    let format = "{{json .RepoTags}} {{.Id}} {{.Size}} {{.Os}}/{{.Architecture}}{{with index . \"Variant\"}}/{{.}}{{end}} {{json .RootFS.Layers}} {{json .Config.Labels}}".to_string();
    let mut args = vec![
        "image".to_string(),
        "inspect".into(),
        "--format".into(),
        format,
    ];
    args.extend(references.iter().cloned());
    Command::new("docker", args)
}

/// Whether a failed `docker image inspect` said only that images are missing (so the
/// engine answered).
#[must_use]
pub fn only_missing_images(stderr: &str) -> bool {
    stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .all(|l| l.contains("No such image"))
}

/// The images of `references` found in [`inspect`]'s output.
#[must_use]
pub fn parse_inspect(output: &str, references: &[String]) -> BTreeMap<String, ImageInfo> {
    let mut found = BTreeMap::new();
    for line in output.lines() {
        let mut fields = line.splitn(6, ' ');
        let (Some(tags), Some(id), Some(size), Some(platform), Some(layers)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        let layers: Vec<String> = serde_json::from_str(layers).unwrap_or_default();
        // The labels, last: their values may hold spaces.
        let labels: BTreeMap<String, String> = fields
            .next()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_default();
        let label = |key: &str| labels.get(key).filter(|v| !v.is_empty()).cloned();
        let (inputs, built_for) = (label(LABEL_INPUTS), label(LABEL_PLATFORMS));
        let revision = label(LABEL_REVISION);
        for reference in references
            .iter()
            .filter(|r| tags.contains(&format!("\"{r}\"")))
        {
            found.insert(
                reference.clone(),
                ImageInfo {
                    id: id.to_string(),
                    inputs: inputs.clone(),
                    built_for: built_for.clone(),
                    revision: revision.clone(),
                    size: size.parse().unwrap_or(0),
                    platform: platform.to_string(),
                    layers: layers.clone(),
                },
            );
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_no_such_image_means_the_engine_answered() {
        assert!(only_missing_images(
            "Error: No such image: fate/redis:1\nError: No such image: fate/mysql:1\n"
        ));
        assert!(only_missing_images(
            "Error response from daemon: No such image: fate/redis:1\n"
        ));
        assert!(only_missing_images(""));
        assert!(!only_missing_images(
            "Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?\n"
        ));
        assert!(!only_missing_images(
            "Error: No such image: a\nerror during connect: Get \"http://x\": EOF\n"
        ));
    }

    #[test]
    fn inspect_output_is_matched_to_references() {
        let out = "[\"p/a:1\",\"p/a:latest\"] sha256:aa 120 linux/amd64 [\"sha256:l1\",\"sha256:l2\"] {\"org.fedai.fate-xtask.inputs\":\"digest1\",\"org.fedai.fate-xtask.platforms\":\"linux/amd64,linux/arm64\",\"x\":\"a b\"}\n[\"p/b:1\"] sha256:bb 7 linux/arm64/v8 [] null\n";
        let refs = vec!["p/a:1".to_string(), "p/b:1".into(), "p/c:1".into()];
        let found = parse_inspect(out, &refs);
        assert_eq!(found["p/a:1"].inputs.as_deref(), Some("digest1"));
        assert_eq!(found["p/b:1"].inputs, None);
        assert_eq!(
            found["p/a:1"].built_for.as_deref(),
            Some("linux/amd64,linux/arm64")
        );
        assert_eq!(found["p/b:1"].built_for, None);
        assert_eq!(found["p/b:1"].size, 7);
        assert_eq!(found["p/a:1"].layers, ["sha256:l1", "sha256:l2"]);
        assert_eq!(found["p/b:1"].platform, "linux/arm64/v8");
        assert!(!found.contains_key("p/c:1"));
    }
}
