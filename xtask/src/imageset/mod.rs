//! The declared image set (`docker/images.toml` of the FATE root): Maven projects,
//! packaged module trees, mirror settings and images. Everything about *which* images
//! exist lives in that file; code only interprets it.

pub mod check;
mod inputs;
pub mod order;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// Where the image set lives, relative to the FATE root.
pub const IMAGE_SET_FILE: &str = "docker/images.toml";

/// Group names that select every image.
pub const ALL_GROUP: &str = "all";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSet {
    #[serde(default)]
    pub maven: Vec<MavenProject>,
    #[serde(default)]
    pub mirrors: Mirrors,
    #[serde(default)]
    pub packaging: Packaging,
    #[serde(default, rename = "tree")]
    pub trees: Vec<Tree>,
    #[serde(rename = "image")]
    pub images: Vec<Image>,
    /// Debian packages Maven needs on this host (e.g. the offline repository a `file://`
    /// mirror points at); installed when missing and a Maven step runs.
    #[serde(default, rename = "maven-debian-packages")]
    pub maven_debian_packages: Vec<String>,
}

/// A Maven project (a directory of the FATE root with a `pom.xml`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MavenProject {
    /// Directory under the FATE root; also the project's name.
    pub name: String,
    /// Projects that must be built first and are mounted beside this one.
    #[serde(default)]
    pub after: Vec<String>,
}

/// Mirror settings: build-arg name -> URL, one map per profile.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mirrors {
    #[serde(default)]
    pub global: BTreeMap<String, String>,
    #[serde(default)]
    pub cn: BTreeMap<String, String>,
}

impl Mirrors {
    /// Every location name either profile declares.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let names: BTreeSet<&str> = self
            .global
            .keys()
            .chain(self.cn.keys())
            .map(String::as_str)
            .collect();
        names.into_iter()
    }
}

/// The `.env` naming key that holds an image's tag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum TagKey {
    #[serde(rename = "BASE_TAG")]
    BaseTag,
    #[serde(rename = "BUILDER_TAG")]
    BuilderTag,
    #[default]
    #[serde(rename = "TAG")]
    Tag,
}

impl TagKey {
    /// The `.env` key, as written there.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            TagKey::BaseTag => "BASE_TAG",
            TagKey::BuilderTag => "BUILDER_TAG",
            TagKey::Tag => "TAG",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Packaging {
    /// Directory of module skeletons, relative to the FATE root.
    #[serde(default = "default_skeleton_dir")]
    pub skeletons: String,
}

impl Default for Packaging {
    fn default() -> Self {
        Packaging {
            skeletons: default_skeleton_dir(),
        }
    }
}

fn default_skeleton_dir() -> String {
    "example-tree-dir".into()
}

/// A packaged module tree: a copy of its skeleton filled from Maven outputs or sources.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Tree {
    pub name: String,
    /// Start from `<skeletons>/<name>` (default true).
    #[serde(default = "yes")]
    pub skeleton: bool,
    #[serde(default)]
    pub java: Option<JavaJar>,
    #[serde(default)]
    pub copy: Vec<CopyFrom>,
    #[serde(default)]
    pub empty_dirs: Vec<String>,
}

/// A jar built by Maven, installed with its `lib/` and a stable-named symlink.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JavaJar {
    /// The Maven project that builds it.
    pub maven: String,
    /// The module's artifactId; the jar is `<artifact>-<version>.jar`, the link `<artifact>.jar`.
    pub artifact: String,
    /// Copy the module's `target/lib/` (dependencies) too.
    #[serde(default = "yes")]
    pub lib: bool,
    /// The JDK path inside the image, written into `service.sh` as `JAVA_HOME=`.
    pub java_home: String,
}

/// Copy a path of the FATE root to `to` (default: its own name) inside a tree or context.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyFrom {
    pub from: String,
    #[serde(default)]
    pub to: Option<String>,
    /// Glob patterns (relative to `from`) left out of the copy.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl CopyFrom {
    /// Destination inside the tree or context.
    #[must_use]
    pub fn dest(&self) -> String {
        self.to.clone().unwrap_or_else(|| {
            Path::new(&self.from)
                .file_name()
                .map_or_else(|| self.from.clone(), |n| n.to_string_lossy().into_owned())
        })
    }
}

/// One entry of an image's build context.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, untagged)]
pub enum ContextPart {
    /// A packaged tree at `to` (default: the context root).
    Tree {
        tree: String,
        #[serde(default)]
        to: Option<String>,
    },
    /// A path of the FATE root.
    Source(CopyFrom),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Image {
    pub name: String,
    #[serde(default = "default_group")]
    pub group: String,
    pub dockerfile: String,
    /// Used instead of `dockerfile` under `--chinese-mirror`.
    #[serde(default)]
    pub mirror_dockerfile: Option<String>,
    /// The `.env` key holding this image's tag.
    #[serde(default)]
    pub tag_key: TagKey,
    /// Images of this set that the Dockerfile builds on.
    #[serde(default)]
    pub parents: Vec<String>,
    pub context: Vec<ContextPart>,
    /// Fixed build args, beside the ones taken from `.env` and the mirror profile.
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub push: bool,
    #[serde(default = "yes")]
    pub bundle: bool,
    /// Built when no image is named (and by `all`); otherwise only when named.
    #[serde(default = "yes")]
    pub default: bool,
}

impl Image {
    /// The Dockerfile for the chosen mirror profile.
    #[must_use]
    pub fn dockerfile_for(&self, china: bool) -> &str {
        match (&self.mirror_dockerfile, china) {
            (Some(cn), true) => cn,
            _ => &self.dockerfile,
        }
    }

    /// Trees this image's context is made of.
    pub fn trees(&self) -> impl Iterator<Item = &str> {
        self.context.iter().filter_map(|p| match p {
            ContextPart::Tree { tree, .. } => Some(tree.as_str()),
            ContextPart::Source(_) => None,
        })
    }
}

fn yes() -> bool {
    true
}
fn default_group() -> String {
    "modules".into()
}

impl ImageSet {
    /// Reads and checks `<fate_root>/docker/images.toml`.
    pub fn load(fate_root: &Path) -> Result<ImageSet> {
        let path = fate_root.join(IMAGE_SET_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read the image set {}: is {} a FATE root? (pass --fate-root DIR)",
                path.display(),
                fate_root.display()
            )
        })?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parses and checks image-set text; problems say on which line.
    pub fn parse(text: &str) -> Result<ImageSet> {
        let set: ImageSet = toml::from_str(text)?;
        set.check(text).into_result()?;
        Ok(set)
    }

    #[must_use]
    pub fn image(&self, name: &str) -> Option<&Image> {
        self.images.iter().find(|i| i.name == name)
    }

    #[must_use]
    pub fn tree(&self, name: &str) -> Option<&Tree> {
        self.trees.iter().find(|t| t.name == name)
    }

    #[must_use]
    pub fn maven_project(&self, name: &str) -> Option<&MavenProject> {
        self.maven.iter().find(|m| m.name == name)
    }

    /// Image names and groups, for usage errors.
    #[must_use]
    pub fn valid_names(&self) -> String {
        let groups: BTreeSet<&str> = self.images.iter().map(|i| i.group.as_str()).collect();
        let names: Vec<&str> = self.images.iter().map(|i| i.name.as_str()).collect();
        format!(
            "images: {}; groups: {}, {ALL_GROUP}",
            names.join(", "),
            groups.into_iter().collect::<Vec<_>>().join(", ")
        )
    }

    /// Every image with its group and parents, then the groups, for `images --help`.
    #[must_use]
    pub fn listing(&self) -> String {
        let mut out = String::new();
        for image in self.build_order() {
            let parents = if image.parents.is_empty() {
                String::new()
            } else {
                format!(", on {}", image.parents.join(", "))
            };
            let default = if image.default {
                ""
            } else {
                ", only when named"
            };
            out.push_str(&format!(
                "  {:<26} group {}{parents}{default}\n",
                image.name, image.group
            ));
        }
        let groups: BTreeSet<&str> = self.images.iter().map(|i| i.group.as_str()).collect();
        let groups: Vec<&str> = groups.into_iter().collect();
        out.push_str(&format!("Groups: {}, {ALL_GROUP}\n", groups.join(", ")));
        out
    }

    /// Resolves names and groups to images, in build order. Empty selects all.
    pub fn select(&self, wanted: &[String]) -> Result<Vec<&Image>> {
        let mut chosen = BTreeSet::new();
        for w in wanted {
            let matched: Vec<&Image> = self
                .images
                .iter()
                .filter(|i| i.name == *w || i.group == *w || (w == ALL_GROUP && i.default))
                .collect();
            if matched.is_empty() {
                let hint = fate_bundle::ui::suggest::nearest(
                    w,
                    self.images.iter().map(|i| i.name.as_str()),
                )
                .map(|n| format!(" (did you mean {n}?)"))
                .unwrap_or_default();
                bail!(
                    "unknown image or group {w:?}{hint}; valid {}",
                    self.valid_names()
                );
            }
            chosen.extend(matched.into_iter().map(|i| i.name.as_str()));
        }
        Ok(self
            .build_order()
            .into_iter()
            .filter(|i| {
                if wanted.is_empty() {
                    i.default
                } else {
                    chosen.contains(i.name.as_str())
                }
            })
            .collect())
    }

    /// Every image, parents before children, otherwise in declaration order.
    #[must_use]
    pub fn build_order(&self) -> Vec<&Image> {
        self.build_stages().into_iter().map(|o| o.item).collect()
    }

    /// The images in build order, each with the stage it can be built in (after every
    /// parent's stage).
    #[must_use]
    pub fn build_stages(&self) -> Vec<order::Ordered<'_, Image>> {
        order::dependency_order(
            &self.images,
            |i| i.name.as_str(),
            |i| i.parents.iter().map(String::as_str).collect(),
        )
    }

    #[must_use]
    pub fn maven_order(&self) -> Vec<&MavenProject> {
        order::dependency_order(
            &self.maven,
            |m| m.name.as_str(),
            |m| m.after.iter().map(String::as_str).collect(),
        )
        .into_iter()
        .map(|o| o.item)
        .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const SAMPLE: &str = r#"
[[maven]]
name = "arch"
[[maven]]
name = "fate-serving"
after = ["arch"]

[mirrors.global]
PIP_INDEX_URL = "https://pypi.org/simple"
MAVEN_MIRROR_URL = ""
[mirrors.cn]
PIP_INDEX_URL = "https://pypi.tuna.tsinghua.edu.cn/simple"
MAVEN_MIRROR_URL = "https://maven.aliyun.com/repository/public"

[[tree]]
name = "egg"
java = { maven = "arch", artifact = "fate-egg", java-home = "/usr/lib/jvm/jre" }
[[tree]]
name = "python"
copy = [{ from = "arch", exclude = ["**/src/main/java"] }, { from = "federatedml" }]

[[image]]
name = "egg"
dockerfile = "docker/modules/egg/Dockerfile"
parents = ["storage-service-builder", "base-image"]
context = [{ tree = "egg", to = "egg-service" }, { tree = "python", to = "egg-processor" }]

[[image]]
name = "storage-service-builder"
group = "builder"
tag-key = "BUILDER_TAG"
dockerfile = "docker/builder/Dockerfile"
parents = ["base-image"]
context = [{ from = "arch/eggroll/storage-service-cxx", to = "." }]
push = false
bundle = false

[[image]]
name = "base-image"
group = "base"
tag-key = "BASE_TAG"
dockerfile = "docker/base/Dockerfile"
mirror-dockerfile = "docker/base/Dockerfile-cn"
context = [{ from = "requirements.txt" }]
push = false
bundle = false

[[image]]
name = "python"
dockerfile = "docker/modules/python/Dockerfile"
parents = ["base-image"]
context = [{ tree = "python" }]
"#;

    pub fn sample_set() -> ImageSet {
        ImageSet::parse(SAMPLE).unwrap()
    }

    fn names(images: &[&Image]) -> Vec<String> {
        images.iter().map(|i| i.name.clone()).collect()
    }

    #[test]
    fn build_order_puts_parents_first() {
        let set = sample_set();
        assert_eq!(
            names(&set.build_order()),
            ["base-image", "storage-service-builder", "egg", "python"]
        );
        let mvn: Vec<&str> = set.maven_order().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(mvn, ["arch", "fate-serving"]);
    }

    #[test]
    fn selection_by_name_group_and_all() {
        let set = sample_set();
        assert_eq!(names(&set.select(&[]).unwrap()).len(), 4);
        assert_eq!(names(&set.select(&["all".into()]).unwrap()).len(), 4);
        assert_eq!(
            names(&set.select(&["modules".into()]).unwrap()),
            ["egg", "python"]
        );
        assert_eq!(
            names(&set.select(&["python".into(), "base".into()]).unwrap()),
            ["base-image", "python"]
        );
        let e = set.select(&["eg".into()]).unwrap_err().to_string();
        assert!(
            e.contains("unknown image or group \"eg\" (did you mean egg?)"),
            "{e}"
        );
        assert!(e.contains("groups: base, builder, modules, all"), "{e}");
    }

    #[test]
    fn cycles_unknown_parents_and_escaping_paths_are_refused() {
        let cyclic = SAMPLE.replace(
            "name = \"base-image\"\ngroup",
            "name = \"base-image\"\nparents = [\"egg\"]\ngroup",
        );
        let e = format!("{:#}", ImageSet::parse(&cyclic).unwrap_err());
        assert!(e.contains("cycle: "), "{e}");
        assert!(
            e.contains("base-image -> egg -> storage-service-builder -> base-image"),
            "{e}"
        );

        let escaping = SAMPLE.replace(
            "{ from = \"requirements.txt\" }",
            "{ from = \"../../etc\" }",
        );
        let e = format!("{:#}", ImageSet::parse(&escaping).unwrap_err());
        assert!(e.contains("escapes the FATE root"), "{e}");

        let absolute = SAMPLE.replace("docker/base/Dockerfile\"", "/etc/Dockerfile\"");
        let e = format!("{:#}", ImageSet::parse(&absolute).unwrap_err());
        assert!(e.contains("must be a relative path"), "{e}");

        let orphan = SAMPLE.replace(
            "parents = [\"base-image\"]\ncontext = [{ tree",
            "parents = [\"nope\"]\ncontext = [{ tree",
        );
        let e = format!("{:#}", ImageSet::parse(&orphan).unwrap_err());
        assert!(e.contains("image python has unknown parent nope"), "{e}");
    }

    /// The line of `needle` in `text`, 1-based.
    fn line_of(text: &str, needle: &str, nth: usize) -> usize {
        text.lines()
            .enumerate()
            .filter(|(_, l)| l.contains(needle))
            .nth(nth)
            .map(|(i, _)| i + 1)
            .unwrap()
    }

    #[test]
    fn semantic_errors_say_on_which_line() {
        let orphan = SAMPLE.replace(
            "parents = [\"base-image\"]\ncontext = [{ tree",
            "parents = [\"nope\"]\ncontext = [{ tree",
        );
        let e = format!("{:#}", ImageSet::parse(&orphan).unwrap_err());
        // The tree python comes first; the image is the second declaration.
        let line = line_of(&orphan, "name = \"python\"", 1);
        assert!(
            e.contains(&format!(
                "line {line}: image python has unknown parent nope"
            )),
            "{e}"
        );

        let twice =
            format!("{SAMPLE}\n[[image]]\nname = \"egg\"\ndockerfile = \"d\"\ncontext = []\n");
        let e = format!("{:#}", ImageSet::parse(&twice).unwrap_err());
        let line = line_of(&twice, "name = \"egg\"", 2);
        assert!(
            e.contains(&format!("line {line}: image egg is declared twice")),
            "{e}"
        );

        let cyclic = SAMPLE.replace(
            "name = \"base-image\"\ngroup",
            "name = \"base-image\"\nparents = [\"egg\"]\ngroup",
        );
        let e = format!("{:#}", ImageSet::parse(&cyclic).unwrap_err());
        let line = line_of(&cyclic, "name = \"base-image\"", 0);
        assert!(
            e.contains(&format!(
                "line {line}: images depend on each other in a cycle"
            )),
            "{e}"
        );
    }

    #[test]
    fn images_named_like_groups_are_refused() {
        for name in ["all", "modules"] {
            let clash = SAMPLE.replace("name = \"python\"", &format!("name = \"{name}\""));
            let e = format!("{:#}", ImageSet::parse(&clash).unwrap_err());
            assert!(
                e.contains(&format!("image {name} is named like a group")),
                "{e}"
            );
        }
    }

    #[test]
    fn mirror_dockerfile_is_chosen_only_for_china() {
        let set = sample_set();
        let base = set.image("base-image").unwrap();
        assert_eq!(base.dockerfile_for(false), "docker/base/Dockerfile");
        assert_eq!(base.dockerfile_for(true), "docker/base/Dockerfile-cn");
        assert_eq!(
            set.image("python").unwrap().dockerfile_for(true),
            "docker/modules/python/Dockerfile"
        );
    }
}
