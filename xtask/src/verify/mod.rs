//! Verifying a bundle by rebuilding it: each image the image set builds is built again
//! from the commit its revision records, in a temporary worktree (never the user's tree)
//! and under a prefix of its own (never the user's tags), then compared with what the
//! bundle holds: the same image ID, or the first layer that differs and its files.

pub mod compare;
pub mod worktree;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use fate_bundle::archive::layers;
use fate_bundle::archive::spool::{self, Spooled};
use fate_bundle::check;
use fate_bundle::docker::engine;
use fate_bundle::manifest::{Archive, BundledImage};
use fate_bundle::process::{self, Command};
use fate_bundle::ui::problems::Problems;

use crate::config::project::Project;
use crate::docker::argv::rewrites_timestamps;
use crate::steps::build::DIRTY;
pub use compare::{Change, Verdict};
use worktree::Worktree;

/// One image of the bundle to rebuild: its name in the image set, where it is in the
/// bundle, and what it records.
#[derive(Clone, Debug)]
pub struct Wanted {
    pub name: String,
    pub archive: usize,
    pub image: BundledImage,
}

/// What `verify` found of each image, in build order.
pub struct Found {
    pub reference: String,
    pub verdict: Verdict,
}

/// The images of `archives` the image set builds (by the last part of their repository,
/// as bundles name them), in its build order; those it does not build (third-party
/// images pulled from elsewhere) are returned apart. Refuses, before any work, images
/// that cannot be rebuilt from a commit.
pub fn wanted(
    project: &Project,
    archives: &[(PathBuf, Archive)],
) -> Result<(Vec<Wanted>, Vec<String>)> {
    let mut problems = Problems::new("the bundle cannot be verified");
    let mut by_name = BTreeMap::new();
    let mut elsewhere = Vec::new();
    for (index, (_, archive)) in archives.iter().enumerate() {
        for image in &archive.images {
            let name = image_name(&image.reference);
            if project.set.image(&name).is_none() {
                elsewhere.push(image.reference.clone());
                continue;
            }
            if image.revision.is_empty() || image.revision == "unknown" {
                problems.push(format!(
                    "{}: bundle.json records no commit for it (a bundle written before verify, or built outside a git repository); bundle it again with this version",
                    image.reference
                ));
            } else if let Some(commit) = image.revision.strip_suffix(DIRTY) {
                problems.push(format!(
                    "{} was built from files not committed (revision {}): no commit holds what it was built from, so it cannot be rebuilt; commit them on top of {commit}, build and bundle again",
                    image.reference, image.revision
                ));
            }
            by_name.insert(
                name.clone(),
                Wanted {
                    name,
                    archive: index,
                    image: image.clone(),
                },
            );
        }
    }
    problems.into_result()?;
    let ordered = project
        .set
        .build_order()
        .into_iter()
        .filter_map(|image| by_name.remove(&image.name))
        .collect();
    Ok((ordered, elsewhere))
}

/// The image set's name of a bundled image: the last part of its repository.
fn image_name(reference: &str) -> String {
    let path = reference.rsplit_once(':').map_or(reference, |(path, tag)| {
        if tag.contains('/') { reference } else { path }
    });
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// The engine verify rebuilds on, asked once: its version and platform, and whether its
/// builder sets file times in the layers to the epoch (else IDs cannot repeat).
pub struct RebuildEngine {
    server: engine::Server,
    builder: crate::docker::argv::Builder,
    times_kept: bool,
}

impl RebuildEngine {
    pub fn ask(project: &Project) -> Result<RebuildEngine> {
        let server = engine::check(&project.sh)?;
        let builder = crate::docker::engine::builder(&project.sh).map_err(anyhow::Error::msg)?;
        let times_kept = rewrites_timestamps(builder, &server.version, &project.config.build);
        Ok(RebuildEngine {
            server,
            builder,
            times_kept,
        })
    }

    /// What to say of an engine that cannot give the same image twice (what it can still
    /// show: the same layers, or the same files).
    #[must_use]
    pub fn note(&self) -> Option<String> {
        (!self.times_kept).then(|| format!(
            "this engine (Docker Engine {}, {}) cannot give the same image ID twice: it writes the build's time into each image's config, and into the directories that RUN steps and copies from other stages (COPY --from) make; images are compared layer by layer instead: `same-layers` where every layer is the same, `same-files` where layers hold the same files (kinds, modes, owners, contents) at other times. For the full check, verify on Docker Engine 26.1.1 or later with BuildKit",
            self.server.version,
            self.builder.describe()
        ))
    }
}

/// Rebuilds `wanted` (each from its own commit, parents first) on `engine` and compares
/// each image with the bundle's, whose archives are `archives` at `paths`.
pub fn rebuild_and_compare(
    project: &Project,
    engine: &RebuildEngine,
    archives: &[(PathBuf, Archive)],
    wanted: &[Wanted],
    chinese_mirror: bool,
) -> Result<Vec<Found>> {
    let config = &project.config;
    let (server, times_kept) = (&engine.server, engine.times_kept);
    let prefix = format!("fate-xtask-verify-{}", std::process::id());
    let rebuilt = Rebuilt {
        prefix: prefix.clone(),
    };
    let mut worktree: Option<Worktree> = None;
    let mut found = Vec::new();
    let mut spooled: BTreeMap<usize, (tempfile::TempDir, Spooled)> = BTreeMap::new();
    for group in groups(wanted) {
        let commit = group[0].image.revision.clone();
        match &worktree {
            Some(tree) => tree.checkout(&commit)?,
            None => {
                worktree = Some(Worktree::add(
                    &config.fate_root,
                    &config.work_dir(),
                    &commit,
                )?);
            }
        }
        let tree = worktree.as_ref().expect("made above");
        let names: Vec<&str> = group.iter().map(|w| w.name.as_str()).collect();
        project.ui.note(&format!(
            "rebuilding {} from commit {commit} in a temporary worktree",
            names.join(", ")
        ));
        build(
            project,
            tree,
            (&prefix, &server.platform),
            group,
            chinese_mirror,
        )?;
        for w in group {
            let reference = rebuilt.reference(&w.image.reference);
            let verdict = compare_one(
                project,
                &reference,
                w,
                &archives[w.archive],
                times_kept,
                &mut spooled,
            )?;
            found.push(Found {
                reference: w.image.reference.clone(),
                verdict,
            });
        }
    }
    drop(worktree);
    Ok(found)
}

/// Consecutive images (in build order) of one commit and platforms: one `images` run each.
fn groups(wanted: &[Wanted]) -> Vec<&[Wanted]> {
    wanted
        .chunk_by(|a, b| {
            a.image.revision == b.image.revision && a.image.built_for == b.image.built_for
        })
        .collect()
}

/// The rebuilt images, under verify's own prefix; removed when dropped.
struct Rebuilt {
    prefix: String,
}

impl Rebuilt {
    /// Where the image the bundle holds as `reference` is rebuilt.
    fn reference(&self, reference: &str) -> String {
        let (_, tag) = reference.rsplit_once(':').unwrap_or((reference, "latest"));
        format!("{}/{}:{tag}", self.prefix, image_name(reference))
    }
}

impl Drop for Rebuilt {
    fn drop(&mut self) {
        let sh = xshell::Shell::new().expect("a shell for cleanup");
        let listed = process::query_stdout(
            &sh,
            &Command::new(
                "docker",
                [
                    "images",
                    "--format",
                    "{{.Repository}}:{{.Tag}}",
                    "--filter",
                    &format!("reference={}/*", self.prefix),
                ],
            ),
        );
        let all: Vec<&str> = listed.lines().filter(|l| !l.is_empty()).collect();
        if !all.is_empty() {
            let mut args = vec!["rmi", "--force"];
            args.extend(all);
            let _ = process::query_stdout(&sh, &Command::new("docker", args));
        }
    }
}

/// `cargo xtask images NAMES` in the worktree: the user's `.env`, verify's prefix, the
/// bundle's tags and platforms.
/// `(prefix, platform)`: verify's own prefix, and the engine's platform (which needs no
/// `--platform`).
fn build(
    project: &Project,
    tree: &Worktree,
    (prefix, engine_platform): (&str, &str),
    group: &[Wanted],
    chinese_mirror: bool,
) -> Result<()> {
    let config = &project.config;
    let exe = std::env::current_exe().context("cannot find this program to run it again")?;
    let mut args = vec![
        "--progress".to_string(),
        "plain".into(),
        "--fate-root".into(),
        tree.fate_root.display().to_string(),
        "--env-file".into(),
        config.env_file.display().to_string(),
        "images".into(),
    ];
    args.extend(group.iter().map(|w| w.name.clone()));
    if chinese_mirror {
        args.push("--chinese-mirror".into());
    }
    let built_for = &group[0].image.built_for;
    if !built_for.is_empty() && built_for != engine_platform {
        args.extend(["--platform".into(), built_for.clone()]);
    }
    let mut command = Command::new(&exe.display().to_string(), args).env("PREFIX", prefix);
    // The bundle's tags: each image's own key (TAG, BASE_TAG, BUILDER_TAG) as it recorded.
    for w in group {
        if let (Some(image), Some((_, tag))) = (
            project.set.image(&w.name),
            w.image.reference.rsplit_once(':'),
        ) {
            command = command.env(image.tag_key.key(), tag);
        }
    }
    let log = config.work_dir().join("logs").join("verify-build.log");
    let line = project.ui.start("rebuild");
    process::run_logged(&command, &log, &line).with_context(|| {
        format!(
            "rebuilding from the bundle's commit failed (log: {}); the commit builds no longer on this machine, or not with this .env",
            log.display()
        )
    })?;
    line.finish("done", "");
    Ok(())
}

/// Compares the rebuilt image `reference` with the bundle's: by ID, else layer by layer
/// (the bundle's archive read whole once, into a private directory, and kept for the
/// other images of that archive).
fn compare_one(
    project: &Project,
    reference: &str,
    wanted: &Wanted,
    (path, archive): &(PathBuf, Archive),
    times_kept: bool,
    spooled: &mut BTreeMap<usize, (tempfile::TempDir, Spooled)>,
) -> Result<Verdict> {
    let sh = &project.sh;
    let info = engine::inspect_images(sh, &[reference.to_string()])
        .remove(reference)
        .with_context(|| format!("the rebuild left no image {reference}"))?;
    if info.id == wanted.image.id || info.id == wanted.image.config {
        return Ok(Verdict::Reproduced);
    }
    let scratch = private_dir(&project.config.work_dir(), "verify-layers-")?;
    let saved = scratch.path().join("rebuilt.tar");
    process::run_captured(&Command::new(
        "docker",
        ["save", "-o", &saved.display().to_string(), reference],
    ))?;
    let file = std::fs::File::open(&saved)?;
    let rebuilt = spool::spool(std::io::BufReader::new(file), scratch.path())?;
    // A rebuild for several platforms is saved whole: the bundle's platform is compared.
    let (rebuilt_config, rebuilt_layers) =
        match layers::platform_variant(&rebuilt, &wanted.image.platform)? {
            Some(variant) => variant,
            None => layers::image_layers(&rebuilt, reference)?,
        };
    if rebuilt_config == wanted.image.config {
        // The same config (so the same layers), stored another way (compression).
        return Ok(Verdict::Reproduced);
    }
    let (_, bundle) = match spooled.entry(wanted.archive) {
        std::collections::btree_map::Entry::Occupied(read) => read.into_mut(),
        std::collections::btree_map::Entry::Vacant(slot) => {
            let dir = private_dir(&project.config.work_dir(), "verify-bundle-")?;
            let read = check::spool_archive(&project.ui, path, archive, dir.path())?;
            slot.insert((dir, read))
        }
    };
    let (bundled_config, bundled_layers) = layers::image_layers(bundle, &wanted.image.reference)?;
    let ids = |l: &[layers::Layer]| l.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>();
    let verdict = compare::compare(
        &ids(&bundled_layers),
        &ids(&rebuilt_layers),
        times_kept,
        |i| {
            Ok((
                layers::list(&bundled_layers[i].file)?,
                layers::list(&rebuilt_layers[i].file)?,
            ))
        },
    )?;
    let config = |spooled: &Spooled, digest: &str| -> Result<serde_json::Value> {
        serde_json::from_slice(&spooled.read_small(digest)?)
            .with_context(|| format!("the config {digest} of {reference} is not valid JSON"))
    };
    Ok(verdict.with_configs(
        &config(bundle, &bundled_config)?,
        &config(&rebuilt, &rebuilt_config)?,
        times_kept,
    ))
}

/// A private directory under `under`, removed when dropped.
fn private_dir(under: &Path, prefix: &str) -> Result<tempfile::TempDir> {
    std::fs::create_dir_all(under).with_context(|| format!("cannot create {}", under.display()))?;
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(under)
        .with_context(|| format!("cannot make a directory in {}", under.display()))
}

/// `bail!` when `found` holds an image that was not reproduced (nor, on an engine that
/// cannot, shown to hold the same files).
pub fn require_all_reproduced(found: &[Found]) -> Result<()> {
    let failed = found.iter().filter(|f| f.verdict.differs()).count();
    if failed > 0 {
        bail!(
            "{failed} of {} images differ from the bundle's: they are not what their commits build (see above)",
            found.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundled_image_is_named_by_the_last_part_of_its_repository() {
        assert_eq!(image_name("fate/egg:1.0"), "egg");
        assert_eq!(
            image_name("reg:5000/ns/fate/python:1.0.2-release"),
            "python"
        );
        assert_eq!(image_name("reg:5000/fate/base-image"), "base-image");
    }

    #[test]
    fn images_of_one_commit_and_platform_build_together() {
        let w = |name: &str, revision: &str| Wanted {
            name: name.into(),
            archive: 0,
            image: BundledImage {
                revision: revision.into(),
                ..BundledImage::default()
            },
        };
        let wanted = [
            w("base", "c1"),
            w("builder", "c1"),
            w("egg", "c2"),
            w("python", "c1"),
        ];
        let sizes: Vec<usize> = groups(&wanted).iter().map(|g| g.len()).collect();
        assert_eq!(sizes, [2, 1, 1]);
    }
}
