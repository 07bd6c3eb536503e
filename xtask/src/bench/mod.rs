//! `cargo xtask bench`: on a copy of a FATE tree (by default examples/mini-fate), in one
//! run, side by side with the old way:
//! - cold, no-op and one-file rebuilds vs the same Maven and `docker build` commands, all
//!   of them, in sequence;
//! - `bundle` vs `docker save -o`, and `load` vs `docker load -i` of the raw tars (one
//!   after another, as the old way ran them, and at once, as xtask runs them), with a
//!   JDK-sized image among the bundled ones, and the compression levels on those tars.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use xshell::Shell;

use crate::bundle::bundle_json::Compression;
use crate::image::staging::{self, StageOp};
use crate::imageset::ImageSet;
use crate::plan::{self, Action, Options};
use crate::process::docker_argv::{self, BuildSpec};
use crate::process::{self, Command};
use crate::run::report::{self, RunReport, StepKind};
use crate::ui::problems::Problems;
use crate::{bundle::streams, cli, config, plan::preflight, process::engine};

/// The tree is copied here, so edits never touch the source tree.
const BENCH_PREFIX: &str = "fate-bench";
const OLD_PREFIX: &str = "fate-bench-old";
/// The file the one-file scenario edits, and the text it changes.
const EDITED: &str =
    "arch/driver/federation/src/main/java/com/webank/ai/fate/driver/Federation.java";
const EDIT_FROM: &str = "Banner.banner(\"federation\"";

/// One measured run of a scenario.
#[derive(Clone, Debug, Default)]
struct Sample {
    wall: Duration,
    /// xtask's own time: wall minus the time child processes ran.
    overhead: Duration,
    images_built: usize,
    /// Bytes written (bundle scenarios).
    bytes: u64,
    /// Processes xtask started.
    processes: u64,
}

type Samples = BTreeMap<&'static str, Vec<Sample>>;

fn record(samples: &mut Samples, name: &'static str, s: Sample) {
    eprintln!("bench:   {name:<24} {:>7.2}s", s.wall.as_secs_f64());
    samples.entry(name).or_default().push(s);
}

impl cli::Bench {
    pub fn run(self, source_root: &Path, sh: &Shell) -> Result<()> {
        let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
        // Two copies with their own image prefixes, so neither way reuses the other's
        // images (the old way would strip the labels incremental builds rely on).
        let ours = tmp.path().join("xtask");
        let old = tmp.path().join("old-way");
        for (root, prefix) in [(&ours, BENCH_PREFIX), (&old, OLD_PREFIX)] {
            copy_source_tree(source_root, root)?;
            grow_to_fate_size(root)?;
            set_prefix(root, prefix)?;
        }

        let mut samples = Samples::new();
        let parts = match self.only {
            None => vec![cli::BenchPart::Build, cli::BenchPart::Bundle],
            Some(part) => vec![part],
        };
        for i in 0..usize::from(self.runs) {
            eprintln!("bench: run {} of {}", i + 1, self.runs);
            if parts.contains(&cli::BenchPart::Build) {
                build_scenarios(sh, &mut samples, &ours, &old, i)?;
            }
            if parts.contains(&cli::BenchPart::Bundle) {
                bundle_scenarios(sh, &mut samples, &ours, tmp.path())?;
            }
        }
        clean(sh, &ours, BENCH_PREFIX)?;
        clean(sh, &old, OLD_PREFIX)?;
        let report = report(sh, &samples, usize::from(self.runs));
        print!("{report}");
        if let Some(out) = &self.out {
            std::fs::write(out, &report)
                .with_context(|| format!("cannot write {}", out.display()))?;
            eprintln!("bench: wrote {}", out.display());
        }
        Ok(())
    }
}

/// Cold, no-op and one-file rebuilds, each followed by the old way.
fn build_scenarios(
    sh: &Shell,
    samples: &mut Samples,
    ours: &Path,
    old: &Path,
    run: usize,
) -> Result<()> {
    // Cold: no images, no Maven output, and no layer cache to reuse.
    clean(sh, old, OLD_PREFIX).context("cleaning")?;
    record(
        samples,
        "cold baseline",
        baseline(sh, old, true).context("baseline")?,
    );
    clean(sh, ours, BENCH_PREFIX).context("cleaning")?;
    record(
        samples,
        "cold xtask --jobs 1",
        xtask(ours, &["images", "--jobs", "1", "--no-cache"])?,
    );
    clean(sh, ours, BENCH_PREFIX).context("cleaning")?;
    record(
        samples,
        "cold xtask --jobs 2",
        xtask(ours, &["images", "--jobs", "2", "--no-cache"])?,
    );
    if engine::builder(sh) == Ok(docker_argv::Builder::BuildKit) {
        clean(sh, ours, BENCH_PREFIX).context("cleaning")?;
        let legacy = xtask_command(ours, &["images", "--jobs", "2", "--no-cache"])?
            .env("DOCKER_BUILDKIT", "0");
        record(
            samples,
            "cold xtask --jobs 2 legacy",
            xtask_run(ours, &legacy)?,
        );
    }
    record(samples, "no-op xtask", xtask(ours, &["images"])?);
    record(
        samples,
        "no-op baseline",
        baseline(sh, old, false).context("baseline")?,
    );
    edit(ours, run)?;
    record(samples, "one-file xtask", xtask(ours, &["images"])?);
    edit(old, run)?;
    record(
        samples,
        "one-file baseline",
        baseline(sh, old, false).context("baseline")?,
    );
    Ok(())
}

/// The JDK-sized stand-in for mysql that the bundle scenarios carry.
const PAYLOAD_IMAGE: &str = "fate-bench/jdk-payload:1";

/// `bundle` vs `docker save -o`, then `load` vs `docker load -i` of the raw tars, then
/// the gzip levels on the raw tar.
fn bundle_scenarios(sh: &Shell, samples: &mut Samples, ours: &Path, scratch: &Path) -> Result<()> {
    xtask(ours, &["images"])?;
    xtask(ours, &["images", "redis"])?;
    build_payload_image(sh, scratch)?;
    let refs = bundled_refs(ours)?;
    let raw_dir = scratch.join("raw");
    std::fs::create_dir_all(&raw_dir)?;
    let mut bundles = Vec::new();
    for compression in ["gzip", "zstd"] {
        let dir = scratch.join(format!("bundle-{compression}"));
        let out = dir.display().to_string();
        let run = xtask_bundle(ours, &["bundle", "--compress", compression, "--out", &out])?;
        let extension = if compression == "gzip" {
            ".tar.gz"
        } else {
            ".tar.zst"
        };
        let bytes = dir_bytes(&dir, extension)?;
        record(samples, bundle_name(compression), Sample { bytes, ..run });
        bundles.push((compression, dir));
    }
    let saves: Vec<Command> = refs
        .iter()
        .map(|(name, images)| docker_argv::save_to(&raw_dir.join(format!("{name}.tar")), images))
        .collect();
    // The old way, one after another; then the same commands at once, as xtask runs them.
    let raw = Sample {
        wall: timed(&saves, false)?,
        bytes: dir_bytes(&raw_dir, ".tar")?,
        ..Sample::default()
    };
    record(samples, "docker save -o", raw);
    let at_once = Sample {
        wall: timed(&saves, true)?,
        ..Sample::default()
    };
    record(samples, "docker save -o at once", at_once);

    let all: Vec<String> = refs.iter().flat_map(|(_, r)| r.clone()).collect();
    for (compression, dir) in &bundles {
        remove_images(&all)?;
        let run = xtask_bundle(ours, &["load", &dir.display().to_string()])?;
        record(samples, load_name(compression), run);
    }
    let loads: Vec<Command> = refs
        .iter()
        .map(|(name, _)| docker_argv::load_from(&raw_dir.join(format!("{name}.tar"))))
        .collect();
    for (name, at_once) in [("docker load -i", false), ("docker load -i at once", true)] {
        remove_images(&all)?;
        let load = Sample {
            wall: timed(&loads, at_once)?,
            ..Sample::default()
        };
        record(samples, name, load);
    }
    compression_levels(samples, &raw_dir)?;
    for (_, dir) in &bundles {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::remove_dir_all(&raw_dir)?;
    Ok(())
}

fn bundle_name(compression: &str) -> &'static str {
    if compression == "gzip" {
        "bundle gzip"
    } else {
        "bundle zstd"
    }
}

fn load_name(compression: &str) -> &'static str {
    if compression == "gzip" {
        "load gzip"
    } else {
        "load zstd"
    }
}

/// Runs `commands` one after another, or all at once; returns the wall time.
fn timed(commands: &[Command], at_once: bool) -> Result<Duration> {
    let started = Instant::now();
    if at_once {
        Problems::each_at_once("a raw command failed", commands, process::run_captured)?;
    } else {
        for command in commands {
            process::run_captured(command)?;
        }
    }
    Ok(started.elapsed())
}

/// The levels the bundle's levels were chosen from: each compresses the raw tars on
/// every core, as `bundle` does.
const COMPRESSION_LEVELS: [(Compression, i32, &str); 7] = [
    (Compression::Gzip, 1, "gzip level 1"),
    (Compression::Gzip, 3, "gzip level 3"),
    (Compression::Gzip, 6, "gzip level 6"),
    (Compression::Gzip, 9, "gzip level 9"),
    (Compression::Zstd, 1, "zstd level 1"),
    (Compression::Zstd, 3, "zstd level 3"),
    (Compression::Zstd, 6, "zstd level 6"),
];

fn compression_levels(samples: &mut Samples, raw_dir: &Path) -> Result<()> {
    for (compression, level, name) in COMPRESSION_LEVELS {
        let started = Instant::now();
        let mut bytes = 0;
        for entry in std::fs::read_dir(raw_dir)? {
            let path = entry?.path();
            let mut input = std::io::BufReader::new(std::fs::File::open(&path)?);
            let tally = streams::Tally::default();
            let sink = streams::TallyWriter {
                inner: std::io::sink(),
                tally: tally.clone(),
            };
            let mut z = streams::compressor_at(compression, level, sink)?;
            std::io::copy(&mut input, &mut z)?;
            streams::Finish::finish_stream(z)?;
            bytes += tally.result().0;
        }
        let sample = Sample {
            wall: started.elapsed(),
            bytes,
            ..Sample::default()
        };
        record(samples, name, sample);
    }
    Ok(())
}

/// An image carrying this host's JDK (a realistic, compressible payload), as `mysql`.
fn build_payload_image(sh: &Shell, scratch: &Path) -> Result<()> {
    if engine::inspect_images(sh, &[PAYLOAD_IMAGE.to_string()]).contains_key(PAYLOAD_IMAGE) {
        return Ok(());
    }
    let java = std::fs::canonicalize(
        which::which("java").context("the payload is the host's JDK: install one")?,
    )?;
    let jdk = java
        .parent()
        .and_then(Path::parent)
        .context("unexpected java location")?;
    let context = scratch.join("payload");
    let op = StageOp::Copy {
        from: jdk.to_path_buf(),
        to: "jdk".into(),
        exclude: vec![],
    };
    staging::materialize(&context, &staging::collect(&[op])?)?;
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY jdk /opt/jdk\n",
    )?;
    process::run_captured(&docker_argv::build(&BuildSpec {
        builder: engine::builder(sh).map_err(anyhow::Error::msg)?,
        dockerfile: context.join("Dockerfile"),
        tag: PAYLOAD_IMAGE.into(),
        build_args: Vec::new(),
        no_cache: false,
        iidfile: None,
        context: context.clone(),
        options: crate::config::BuildOptions::default(),
    }))?;
    std::fs::remove_dir_all(&context)?;
    Ok(())
}

/// The two archives' image lists, as the bundle writes them (with the payload as mysql,
/// as the bundle scenarios run it).
fn bundled_refs(root: &Path) -> Result<Vec<(&'static str, Vec<String>)>> {
    let set = ImageSet::load(root)?;
    let config = config::load(root, &set, &config::Overrides::default())?;
    let groups = crate::bundle::save::archive_images(&set, &config);
    Ok(groups
        .into_iter()
        .map(|(name, refs)| {
            let refs = refs
                .into_iter()
                .map(|r| {
                    if r == config.mysql_image {
                        PAYLOAD_IMAGE.to_string()
                    } else {
                        r
                    }
                })
                .collect();
            (name, refs)
        })
        .collect())
}

fn remove_images(refs: &[String]) -> Result<()> {
    process::run_captured(&docker_argv::remove_images(refs)).map(|_| ())
}

fn dir_bytes(dir: &Path, suffix: &str) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().ends_with(suffix) {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

/// `cargo xtask bundle ...` / `load ...` with the payload as MYSQL_IMAGE.
fn xtask_bundle(root: &Path, args: &[&str]) -> Result<Sample> {
    let started = Instant::now();
    let command = xtask_command(root, args)?.env("MYSQL_IMAGE", PAYLOAD_IMAGE);
    process::run_captured(&command)?;
    Ok(Sample {
        wall: started.elapsed(),
        ..Sample::default()
    })
}

fn xtask_command(root: &Path, args: &[&str]) -> Result<Command> {
    let exe = std::env::current_exe()?;
    let mut all = vec![
        "--progress".to_string(),
        "plain".into(),
        "--fate-root".into(),
        root.display().to_string(),
    ];
    all.extend(args.iter().map(ToString::to_string));
    Ok(Command::new(&exe.display().to_string(), all))
}

fn set_prefix(root: &Path, prefix: &str) -> Result<()> {
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
const GENERATED_JAVA: [(&str, usize); 8] = [
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
const GENERATED_DATA_BYTES: usize = 2 << 20;

/// Adds [`GENERATED_PY_FILES`] Python modules under `federatedml/generated/` and
/// [`GENERATED_DATA_FILES`] data files of 2 MiB under `examples/data/generated/`, the
/// same on every run.
fn grow_to_fate_size(root: &Path) -> Result<()> {
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

/// Copies the FATE tree without build output.
fn copy_source_tree(from: &Path, to: &Path) -> Result<()> {
    let op = StageOp::Copy {
        from: from.to_path_buf(),
        to: ".".into(),
        exclude: vec!["target".into(), "**/target".into()],
    };
    staging::materialize(to, &staging::collect(&[op])?)
}

/// Cold state: no bench images (nor their build cache), no Maven output, no staging.
fn clean(sh: &Shell, root: &Path, prefix: &str) -> Result<()> {
    // By reference: removing the tags removes the images and their build cache.
    let refs = process::query(sh, &docker_argv::list_references(&format!("{prefix}/*")))?;
    let refs: Vec<String> = refs.split_whitespace().map(String::from).collect();
    if !refs.is_empty() {
        remove_images(&refs)?;
    }
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

/// A real source change, different each run, so Maven and one image must rebuild.
fn edit(root: &Path, n: usize) -> Result<()> {
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

/// `cargo xtask images` on the copy, as a child process, with its own run report.
fn xtask(root: &Path, args: &[&str]) -> Result<Sample> {
    xtask_run(root, &xtask_command(root, args)?)
}

fn xtask_run(root: &Path, command: &Command) -> Result<Sample> {
    let started = Instant::now();
    process::run_captured(command)?;
    let wall = started.elapsed();
    let report = RunReport::read(&root.join("target/xtask").join(report::FILE))?;
    let child = Duration::from_secs_f64(report.child_seconds);
    Ok(Sample {
        wall,
        overhead: wall.saturating_sub(child),
        images_built: report.ran(StepKind::Build),
        bytes: 0,
        processes: report.processes,
    })
}

/// The old way: every Maven project, then every image, one command after another,
/// with the same command lines minus what the old script did not have (labels,
/// reproducible-jar timestamp). Packaging is included, as the old script did it too.
fn baseline(sh: &Shell, root: &Path, no_cache: bool) -> Result<Sample> {
    let set = ImageSet::load(root)?;
    let config = config::load(root, &set, &config::Overrides::default())?;
    let facts = preflight::check(sh, &config, &set, &[], preflight::Purpose::Run)?;
    let options = Options {
        no_cache,
        ..Options::default()
    };
    let plan = plan::images(&config, &set, &facts, &options)?;
    let started = Instant::now();
    let mut images_built = 0;
    for step in &plan.steps {
        let command = match &step.action {
            Action::Maven(m) => {
                let mut c = m.command.clone();
                c.args
                    .retain(|a| !a.starts_with("-Dproject.build.outputTimestamp"));
                c
            }
            Action::Build(b) => {
                staging::materialize(&b.context, &staging::collect(&b.ops)?)?;
                images_built += 1;
                // As the old script issued it: the image set's Dockerfile (no labels).
                docker_argv::build(&BuildSpec {
                    builder: facts.builder,
                    dockerfile: b.dockerfile.clone(),
                    tag: b.reference.clone(),
                    build_args: b.build_args.clone(),
                    no_cache,
                    iidfile: None,
                    context: b.context.clone(),
                    options: crate::config::BuildOptions::default(),
                })
            }
            Action::WriteFile(file) => {
                crate::plan::kind::write_file(&file.path, &file.contents)?;
                continue;
            }
            _ => continue,
        };
        process::run_captured(&command).context("the baseline failed")?;
    }
    Ok(Sample {
        wall: started.elapsed(),
        images_built,
        ..Sample::default()
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        f64::midpoint(values[n / 2 - 1], values[n / 2])
    }
}

/// The figures as a Markdown report, with the machine they were taken on.
fn report(sh: &Shell, samples: &Samples, runs: usize) -> String {
    let machine = format!(
        "{} CPUs, {} memory, kernel {}, Docker Engine {} ({} storage, building with {})",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        process::query(
            sh,
            &Command::new("sh", ["-c", "free -h | awk '/Mem:/ {print $2}'"])
        )
        .unwrap_or_default(),
        process::query(sh, &Command::new("uname", ["-r"])).unwrap_or_default(),
        process::query(sh, &docker_argv::server_version()).unwrap_or_default(),
        process::query(sh, &docker_argv::storage_driver()).unwrap_or_default(),
        engine::builder(sh).map_or("no builder", docker_argv::Builder::describe),
    );
    let mut out = format!(
        "# Benchmarks\n\nTaken by `cargo xtask bench --runs {runs}` on a copy of examples/mini-fate, {}.\n\
         Machine: {machine}.\nEach figure is the median of {runs} runs; times in seconds.\n",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
    );
    out.push_str(&build_section(samples));
    out.push_str(&bundle_section(samples));
    out.push_str(
        "\nTargets: no-op under 1 s and at least 20x faster than the baseline; a one-file change rebuilds \
         exactly one image, at least 3x faster; cold --jobs 2 no slower than --jobs 1; overhead under 5% of a \
         cold build; bundles at most half the raw size, gzip at most 1.5x and zstd at most 1.2x the time of \
         `docker save -o`; loading gzip at most 1.3x and zstd at most 1.1x the time of `docker load -i`.\n",
    );
    out
}

/// The median of a figure over a scenario's runs (NaN when it did not run).
fn med(samples: &Samples, name: &str, figure: fn(&Sample) -> f64) -> f64 {
    let mut v: Vec<f64> = samples
        .get(name)
        .map(|s| s.iter().map(figure).collect())
        .unwrap_or_default();
    if v.is_empty() {
        f64::NAN
    } else {
        median(&mut v)
    }
}

fn wall(s: &Sample) -> f64 {
    s.wall.as_secs_f64()
}

fn megabytes(s: &Sample) -> f64 {
    s.bytes as f64 / 1e6
}

/// The image-build scenarios' table, if they ran.
fn build_section(samples: &Samples) -> String {
    if !samples.contains_key("cold xtask --jobs 2") {
        return String::new();
    }
    let med = |name: &str, f: fn(&Sample) -> f64| med(samples, name, f);
    let mut out = String::new();
    out.push_str(&format!(
        "\n## Image builds\n\nOn the example grown to FATE's size: {GENERATED_PY_FILES} generated Python \
         files and {GENERATED_DATA_FILES} data files of 2 MiB added (both copied into the python and egg \
         images), and Java classes up to FATE 1.0.2's count per module (503 in all). Host Maven, offline. The baseline runs the same Maven and `docker build` \
         commands as the old script, all of them every time, in sequence (cold: with `--no-cache`, as \
         xtask's cold runs).\n\n| scenario | xtask | baseline | xtask / baseline | images built by xtask |\n|---|---|---|---|---|\n",
    ));
    for (label, ours, theirs) in [
        (
            "cold build (--jobs 2)",
            "cold xtask --jobs 2",
            "cold baseline",
        ),
        ("no-op rebuild", "no-op xtask", "no-op baseline"),
        ("one-file change", "one-file xtask", "one-file baseline"),
    ] {
        let (a, b) = (med(ours, wall), med(theirs, wall));
        let built = med(ours, |s| s.images_built as f64);
        out.push_str(&format!(
            "| {label} | {a:.2} | {b:.2} | {:.3} ({:.1}x faster) | {built} |\n",
            a / b,
            b / a
        ));
    }
    let (j2, j1) = (
        med("cold xtask --jobs 2", wall),
        med("cold xtask --jobs 1", wall),
    );
    out.push_str(&format!(
        "\nCold build with --jobs 2: {j2:.2} s; with --jobs 1: {j1:.2} s (ratio {:.3}).\n",
        j2 / j1
    ));
    let legacy = med("cold xtask --jobs 2 legacy", wall);
    if legacy.is_nan() {
        out.push_str(
            "\nBuildKit vs the legacy builder: not measured (this machine builds with the legacy \
             builder; install docker-buildx and rerun).\n",
        );
    } else {
        out.push_str(&format!(
            "\nCold build with --jobs 2, BuildKit: {j2:.2} s; the same with the legacy builder \
             (`DOCKER_BUILDKIT=0`): {legacy:.2} s (BuildKit {:.1}x faster).\n",
            legacy / j2
        ));
    }
    out.push_str(&format!(
        "A no-op starts {} processes (all at once; none of them a build).\n",
        med("no-op xtask", |s| s.processes as f64)
    ));
    let overhead = med("cold xtask --jobs 2", |s| s.overhead.as_secs_f64());
    out.push_str(&format!(
        "xtask overhead (its wall time minus the time its child processes ran): {overhead:.2} s in a cold \
         build ({:.1}% of it); {:.2} s in a no-op rebuild, which runs no child process.\n",
        100.0 * overhead / j2,
        med("no-op xtask", |s| s.overhead.as_secs_f64())
    ));
    out
}

/// The bundle scenarios' table, if they ran.
fn bundle_section(samples: &Samples) -> String {
    if !samples.contains_key("bundle gzip") {
        return String::new();
    }
    let med = |name: &str, f: fn(&Sample) -> f64| med(samples, name, f);
    let mut out = String::new();
    out.push_str(&format!(
        "\n## Bundles\n\nThe example's eight module images and two third-party stand-ins, one of them \
         carrying this host's JDK (`{PAYLOAD_IMAGE}`).\n\n| scenario | time | size (MB) | vs docker save -o / docker load -i |\n|---|---|---|---|\n"
    ));
    let (save_t, save_mb) = (
        med("docker save -o", wall),
        med("docker save -o", megabytes),
    );
    let save_once = med("docker save -o at once", wall);
    out.push_str(&format!(
        "| docker save -o (raw tars, one after another) | {save_t:.2} | {save_mb:.1} | 1 |\n\
         | docker save -o (raw tars, at once) | {save_once:.2} | | time {:.2}x |\n",
        save_once / save_t
    ));
    for name in ["bundle gzip", "bundle zstd"] {
        let (t, size) = (med(name, wall), med(name, megabytes));
        out.push_str(&format!(
            "| {name} | {t:.2} | {size:.1} | time {:.2}x, size {:.2}x |\n",
            t / save_t,
            size / save_mb
        ));
    }
    let (load_t, load_once) = (
        med("docker load -i", wall),
        med("docker load -i at once", wall),
    );
    out.push_str(&format!(
        "| docker load -i (raw tars, one after another) | {load_t:.2} | | 1 |\n\
         | docker load -i (raw tars, at once) | {load_once:.2} | | time {:.2}x |\n",
        load_once / load_t
    ));
    for name in ["load gzip", "load zstd"] {
        let t = med(name, wall);
        out.push_str(&format!(
            "| {name} (check, then load) | {t:.2} | | time {:.2}x |\n",
            t / load_t
        ));
    }
    let vs = |name: &str, raw: f64| format!("{:.2}x", med(name, wall) / raw);
    out.push_str(&format!(
        "\nAgainst the same raw commands run at once, as the bundle runs its archives (what compression \
         and checking cost): bundle gzip {}, zstd {}; load gzip {}, zstd {}.\n",
        vs("bundle gzip", save_once),
        vs("bundle zstd", save_once),
        vs("load gzip", load_once),
        vs("load zstd", load_once),
    ));
    out.push_str(&format!(
        "\nCompression levels, each compressing the same raw tars on every core (the bundle uses gzip \
         level {} and zstd level {}):\n\n| compression | level | time | size (MB) | vs docker save -o |\n\
         |---|---|---|---|---|\n",
        streams::GZIP_LEVEL,
        streams::ZSTD_LEVEL
    ));
    for (compression, level, name) in COMPRESSION_LEVELS {
        let (t, size) = (med(name, wall), med(name, megabytes));
        out.push_str(&format!(
            "| {} | {level} | {t:.2} | {size:.1} | time {:.2}x, size {:.2}x |\n",
            compression.name(),
            t / save_t,
            size / save_mb
        ));
    }
    out
}
