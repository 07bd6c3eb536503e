//! The bench's copies of a FATE tree: copied, grown to FATE's size, given their own
//! image prefix, cleaned to a cold state, edited; the JDK payload image and the
//! bundle's image lists.

use std::path::Path;

use anyhow::{Context, Result};
use xshell::Shell;

use crate::docker::argv::{self, BuildSpec};
use crate::docker::engine;
use crate::stage::staging;
use crate::stage::staging::StageOp;
use fate_bundle::process;

use crate::bench::samples::{
    EDIT_FROM, EDITED, SMALL_FILE_BYTES, SMALL_FILES, SMALL_LAYERS, Shape,
};

/// The payload of `shape`'s build context and Dockerfile, under `context`.
fn write_context(shape: Shape, context: &Path) -> Result<()> {
    let dockerfile = match shape {
        Shape::TwoJdkLayers | Shape::OneLargeLayer => {
            let java = std::fs::canonicalize(
                which::which("java").context("the payload is the host's JDK: install one")?,
            )?;
            let jdk = java
                .parent()
                .and_then(Path::parent)
                .context("unexpected java location")?;
            // The JDK twice: in two layers, or as one layer of as many bytes (over 500 MB
            // either way, as the aims are for payloads of 500 MB and more).
            let ops = ["opt/jdk", "opt/jdk-again"].map(|to| StageOp::Copy {
                from: jdk.to_path_buf(),
                to: to.into(),
                exclude: vec![],
            });
            staging::materialize(context, &staging::collect(&ops, None)?)?;
            if shape == Shape::TwoJdkLayers {
                "FROM scratch\nCOPY opt/jdk /opt/jdk\nCOPY opt/jdk-again /opt/jdk-again\n"
                    .to_string()
            } else {
                "FROM scratch\nCOPY opt /opt\n".to_string()
            }
        }
        Shape::ManySmallLayers => {
            let mut dockerfile = "FROM scratch\n".to_string();
            for layer in 0..SMALL_LAYERS {
                let dir = context.join(format!("layer{layer}"));
                std::fs::create_dir_all(&dir)?;
                for file in 0..SMALL_FILES {
                    let seed = (layer * SMALL_FILES + file) as u64 + 1;
                    std::fs::write(dir.join(format!("f{file}.bin")), file_bytes(seed))?;
                }
                dockerfile.push_str(&format!("COPY layer{layer} /data/layer{layer}\n"));
            }
            dockerfile
        }
    };
    std::fs::write(context.join("Dockerfile"), dockerfile)?;
    Ok(())
}

/// One file of the many-layers payload: half bytes that do not compress (as class files
/// in jars), half text that does (as Python sources), the same for the same `seed`.
fn file_bytes(seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = Vec::with_capacity(SMALL_FILE_BYTES);
    // xorshift64: test data, not secrets.
    while bytes.len() < SMALL_FILE_BYTES / 2 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    let line = format!("def handler_{seed}(request):\n    return request.payload\n");
    while bytes.len() < SMALL_FILE_BYTES {
        bytes.extend_from_slice(line.as_bytes());
    }
    bytes.truncate(SMALL_FILE_BYTES);
    bytes
}

/// The payload image of `shape`, built once (kept across runs).
pub(super) fn build_payload_image(sh: &Shell, scratch: &Path, shape: Shape) -> Result<()> {
    let image = shape.image().to_string();
    if engine::inspect_images(sh, std::slice::from_ref(&image)).contains_key(&image) {
        return Ok(());
    }
    let context = scratch.join("payload");
    std::fs::create_dir_all(&context)?;
    write_context(shape, &context)?;
    process::run_captured(&argv::build(&BuildSpec {
        builder: engine::builder(sh).map_err(anyhow::Error::msg)?,
        dockerfile: context.join("Dockerfile"),
        tag: image,
        build_args: Vec::new(),
        no_cache: false,
        iidfile: None,
        buildx_plugin: None,
        context: context.clone(),
        options: crate::config::BuildOptions::default(),
        rewrite_timestamps: false,
        context_tar: None,
    }))?;
    std::fs::remove_dir_all(&context)?;
    Ok(())
}

/// The two archives' image lists, as the bundle writes them (with the `payload` image as
/// mysql, as the bundle scenarios run it).
pub(super) fn bundled_refs(root: &Path, payload: &str) -> Result<Vec<(&'static str, Vec<String>)>> {
    let project = crate::bench::samples::project(root, &xshell::Shell::new()?)?;
    let (set, config) = (&project.set, &project.config);
    let groups = crate::bundle::archive_images(set, config);
    Ok(groups
        .into_iter()
        .map(|(name, refs)| {
            let refs = refs
                .into_iter()
                .map(|r| {
                    if r == config.mysql_image {
                        payload.to_string()
                    } else {
                        r
                    }
                })
                .collect();
            (name, refs)
        })
        .collect())
}

/// Removes the images and the build cache, which would keep their layers: loads then
/// start from nothing, as on the host across the air gap.
pub(super) fn remove_images(refs: &[String]) -> Result<()> {
    process::run_captured(&argv::remove_images(refs))?;
    process::run_captured(&argv::prune_build_cache()).map(|_| ())
}

pub(super) fn dir_bytes(dir: &Path, suffix: &str) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().ends_with(suffix) {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

pub(super) fn set_prefix(root: &Path, prefix: &str) -> Result<()> {
    let env_file = root.join(".env");
    let env: String = std::fs::read_to_string(&env_file)?
        .lines()
        .map(|l| {
            if l.starts_with("PREFIX=") {
                format!("PREFIX={prefix}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    Ok(std::fs::write(&env_file, env)?)
}

/// Python files and data added to the copy, so that it reads like FATE's own tree
/// (whose `federatedml`, `examples` and `fate_flow` hold thousands of files): every
/// no-op reads this much to know nothing changed.
pub const GENERATED_PY_FILES: usize = 3000;
/// Java classes added per module, to FATE 1.0.2's counts of Java files per module
/// (`git ls-tree v1.0.2`: 503 in all), so that Maven compiles as much as it does there.
pub(super) const GENERATED_JAVA: [(&str, usize); 8] = [
    ("arch/core", 151),
    ("arch/driver/federation", 45),
    ("arch/networking/proxy", 57),
    ("arch/eggroll/roll", 79),
    ("arch/eggroll/meta-service", 31),
    ("arch/eggroll/egg", 9),
    ("fateboard", 44),
    ("fate-serving/serving-server", 65),
];
pub const GENERATED_DATA_FILES: usize = 4;
pub(super) const GENERATED_DATA_BYTES: usize = 2 << 20;

/// Adds [`GENERATED_PY_FILES`] Python modules under `federatedml/generated/` and
/// [`GENERATED_DATA_FILES`] data files of 2 MiB under `examples/data/generated/`, the
/// same on every run.
pub(super) fn grow_to_fate_size(root: &Path) -> Result<()> {
    for i in 0..GENERATED_PY_FILES {
        let dir = root.join(format!("federatedml/generated/pkg{:02}", i / 100));
        std::fs::create_dir_all(&dir)?;
        let body: String = (0..40)
            .map(|n| format!("def feature_{i}_{n}(x):\n    return x * {n} + {i}\n\n"))
            .collect();
        std::fs::write(dir.join(format!("module_{i}.py")), body)?;
    }
    for (module, classes) in GENERATED_JAVA {
        let package = format!(
            "org.fedai.generated.{}",
            module
                .rsplit('/')
                .next()
                .unwrap_or(module)
                .replace('-', "_")
        );
        let dir = root
            .join(module)
            .join("src/main/java")
            .join(package.replace('.', "/"));
        std::fs::create_dir_all(&dir)?;
        for c in 0..classes {
            let methods: String = (0..12)
                .map(|m| {
                    format!(
                        "    public static long step{m}(long x) {{\n        long y = x * {m} + {c};\n        return y ^ (y >>> 3);\n    }}\n"
                    )
                })
                .collect();
            std::fs::write(
                dir.join(format!("Gen{c}.java")),
                format!("package {package};\n\npublic final class Gen{c} {{\n{methods}}}\n"),
            )?;
        }
    }
    let data = root.join("examples/data/generated");
    std::fs::create_dir_all(&data)?;
    for k in 0..GENERATED_DATA_FILES {
        let row = format!("{k},0.125,0.25,0.5,1.0,label\n");
        let text = row.repeat(GENERATED_DATA_BYTES / row.len());
        std::fs::write(data.join(format!("train_{k}.csv")), text)?;
    }
    Ok(())
}

/// Source files the scale scenario adds to a tree two images stage (python and egg).
pub const SCALE_FILES: usize = 30_000;
const SCALE_DIR: &str = "federatedml/scale";

/// Adds [`SCALE_FILES`] small Python files under `federatedml/scale/`.
pub(super) fn grow_for_scale(root: &Path) -> Result<()> {
    for i in 0..SCALE_FILES {
        let dir = root.join(format!("{SCALE_DIR}/pkg{:03}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir)?;
        }
        std::fs::write(
            dir.join(format!("m{i}.py")),
            format!("VALUE = {i}\n\ndef value():\n    return VALUE\n"),
        )?;
    }
    Ok(())
}

/// Removes what [`grow_for_scale`] added.
pub(super) fn shrink_from_scale(root: &Path) -> Result<()> {
    let dir = root.join(SCALE_DIR);
    std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))
}

/// Copies the FATE tree without build output.
pub(super) fn copy_source_tree(from: &Path, to: &Path) -> Result<()> {
    let op = StageOp::Copy {
        from: from.to_path_buf(),
        to: ".".into(),
        exclude: vec!["target".into(), "**/target".into()],
    };
    staging::materialize(to, &staging::collect(&[op], None)?)
}

/// Cold state: no bench images (nor their build cache), no Maven output, no staging.
pub(super) fn clean(sh: &Shell, root: &Path, prefix: &str) -> Result<()> {
    clean_images(sh, prefix)?;
    let is_target = |e: &walkdir::DirEntry| e.file_type().is_dir() && e.file_name() == "target";
    let mut targets = Vec::new();
    let mut walk = walkdir::WalkDir::new(root).into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry?;
        if is_target(&entry) {
            targets.push(entry.path().to_path_buf());
            walk.skip_current_dir();
        }
    }
    for t in targets {
        std::fs::remove_dir_all(&t).with_context(|| format!("cannot remove {}", t.display()))?;
    }
    Ok(())
}

/// No images of `prefix`, and no build cache (which keeps the layers of removed images).
pub(super) fn clean_images(sh: &Shell, prefix: &str) -> Result<()> {
    let refs = process::query(sh, &argv::list_references(&format!("{prefix}/*")))?;
    let refs: Vec<String> = refs.split_whitespace().map(String::from).collect();
    if refs.is_empty() {
        process::run_captured(&argv::prune_build_cache()).map(|_| ())
    } else {
        remove_images(&refs)
    }
}

/// A real source change, different each run, so Maven and one image must rebuild.
pub(super) fn edit(root: &Path, n: usize) -> Result<()> {
    let path = root.join(EDITED);
    let text = std::fs::read_to_string(&path)?;
    let start = text
        .find(EDIT_FROM)
        .with_context(|| format!("{EDITED} changed; update the bench"))?;
    let end = start + text[start..].find(')').context("unexpected source")?;
    let edited = format!(
        "{}{EDIT_FROM}, {}{}",
        &text[..start],
        9000 + n,
        &text[end..]
    );
    Ok(std::fs::write(&path, edited)?)
}
