//! `cargo xtask bench`: cold, no-op and one-file rebuilds of a FATE tree (by default
//! examples/mini-fate), each measured against the old way (the same Maven and
//! `docker build` commands, all of them, in sequence) in the same run.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command as Process;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cli;
use crate::imageset::ImageSet;
use crate::plan::{self, Action, Options};
use crate::{config, exec, package, preflight};

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
}

impl cli::Bench {
    pub fn run(self, source_root: &Path) -> Result<()> {
        let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
        // Two copies with their own image prefixes, so neither way reuses the other's
        // images (the old way would strip the labels incremental builds rely on).
        let ours = tmp.path().join("xtask");
        let old = tmp.path().join("old-way");
        for (root, prefix) in [(&ours, BENCH_PREFIX), (&old, OLD_PREFIX)] {
            copy_source_tree(source_root, root)?;
            set_prefix(root, prefix)?;
        }

        let mut samples: BTreeMap<&str, Vec<Sample>> = BTreeMap::new();
        for i in 0..usize::from(self.runs) {
            eprintln!("bench: run {} of {}", i + 1, self.runs);
            let mut record = |name: &'static str, s: Sample| {
                eprintln!("bench:   {name:<22} {:>7.2}s", s.wall.as_secs_f64());
                samples.entry(name).or_default().push(s);
            };
            // Cold: no images, no Maven output, and no layer cache to reuse.
            clean(&old, OLD_PREFIX).context("cleaning")?;
            record("cold baseline", baseline(&old, true).context("baseline")?);
            clean(&ours, BENCH_PREFIX).context("cleaning")?;
            record(
                "cold xtask --jobs 1",
                xtask(&ours, &["--jobs", "1", "--no-cache"])?,
            );
            clean(&ours, BENCH_PREFIX).context("cleaning")?;
            record(
                "cold xtask --jobs 2",
                xtask(&ours, &["--jobs", "2", "--no-cache"])?,
            );
            record("no-op xtask", xtask(&ours, &[])?);
            record("no-op baseline", baseline(&old, false).context("baseline")?);
            edit(&ours, i)?;
            record("one-file xtask", xtask(&ours, &[])?);
            edit(&old, i)?;
            record(
                "one-file baseline",
                baseline(&old, false).context("baseline")?,
            );
        }
        clean(&ours, BENCH_PREFIX)?;
        clean(&old, OLD_PREFIX)?;
        let report = report(&samples, usize::from(self.runs))?;
        print!("{report}");
        if let Some(out) = &self.out {
            std::fs::write(out, &report)
                .with_context(|| format!("cannot write {}", out.display()))?;
            eprintln!("bench: wrote {}", out.display());
        }
        Ok(())
    }
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

/// Copies the FATE tree without build output.
fn copy_source_tree(from: &Path, to: &Path) -> Result<()> {
    let op = plan::StageOp::Copy {
        from: from.to_path_buf(),
        to: ".".into(),
        exclude: vec!["target".into(), "**/target".into()],
    };
    package::materialize(to, &package::collect(&[op])?)
}

/// Cold state: no bench images (nor their build cache), no Maven output, no staging.
fn clean(root: &Path, prefix: &str) -> Result<()> {
    let filter = format!("reference={prefix}/*");
    // By reference: removing the tags removes the images and their build cache.
    let refs = exec::query(
        "docker",
        &[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "--filter",
            &filter,
        ],
    )?;
    let refs: Vec<&str> = refs.split_whitespace().collect();
    if !refs.is_empty() {
        let mut args = vec!["rmi", "-f"];
        args.extend(refs);
        exec::query("docker", &args)?;
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
fn xtask(root: &Path, extra: &[&str]) -> Result<Sample> {
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let out = Process::new(exe)
        .arg("--fate-root")
        .arg(root)
        .arg("images")
        .args(extra)
        .env("NO_COLOR", "1")
        .output()?;
    let wall = started.elapsed();
    if !out.status.success() {
        bail!(
            "xtask images failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report_path = root.join("target/xtask/last-run.tsv");
    let report = std::fs::read_to_string(&report_path)
        .with_context(|| format!("cannot read {}", report_path.display()))?;
    let field = |key: &str| -> f64 {
        report
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}\t")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let images_built = report
        .lines()
        .filter(|l| l.starts_with("step\tbuild-") && l.contains("\tran\t"))
        .count();
    let child = Duration::from_secs_f64(field("child_s"));
    Ok(Sample {
        wall,
        overhead: wall.saturating_sub(child),
        images_built,
    })
}

/// The old way: every Maven project, then every image, one command after another,
/// with the same command lines minus what the old script did not have (labels,
/// reproducible-jar timestamp). Packaging is included, as the old script did it too.
fn baseline(root: &Path, no_cache: bool) -> Result<Sample> {
    let set = ImageSet::load(root)?;
    let config = config::load(root, &set, &config::Overrides::default())?;
    let facts = preflight::check(&config, &set, &[])?;
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
                package::materialize(&b.context, &package::collect(&b.ops)?)?;
                images_built += 1;
                old_build_command(&b.command)
            }
            Action::WriteFile { path, contents } => {
                std::fs::create_dir_all(path.parent().expect("a file has a directory"))?;
                std::fs::write(path, contents)?;
                continue;
            }
            _ => continue,
        };
        let mut child = Process::new(&command.program);
        child.args(&command.args).envs(command.env.iter().cloned());
        if let Some(cwd) = &command.cwd {
            child.current_dir(cwd);
        }
        let out = child.output()?;
        if !out.status.success() {
            bail!(
                "baseline `{command}` failed:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
    Ok(Sample {
        wall: started.elapsed(),
        overhead: Duration::ZERO,
        images_built,
    })
}

/// `docker build` as the old script issued it: tag, Dockerfile, build args, context.
fn old_build_command(ours: &plan::Command) -> plan::Command {
    let mut args = Vec::new();
    let mut it = ours.args.iter();
    while let Some(a) = it.next() {
        if a == "--label" {
            it.next();
        } else {
            args.push(a.clone());
        }
    }
    plan::Command {
        args,
        ..ours.clone()
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The figures as a Markdown report, with the machine they were taken on.
fn report(samples: &BTreeMap<&str, Vec<Sample>>, runs: usize) -> Result<String> {
    let med = |name: &str, f: fn(&Sample) -> f64| -> f64 {
        let mut v: Vec<f64> = samples
            .get(name)
            .map(|s| s.iter().map(f).collect())
            .unwrap_or_default();
        if v.is_empty() {
            f64::NAN
        } else {
            median(&mut v)
        }
    };
    let wall = |s: &Sample| s.wall.as_secs_f64();
    let machine = format!(
        "{} CPUs, {}, kernel {}, Docker Engine {} ({} storage, {} builder)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        exec::query(
            "sh",
            &["-c", "free -h | awk '/Mem:/ {print $2 \" memory\"}'"]
        )
        .unwrap_or_default(),
        exec::query("uname", &["-r"]).unwrap_or_default(),
        exec::query("docker", &["version", "--format", "{{.Server.Version}}"]).unwrap_or_default(),
        exec::query("docker", &["info", "--format", "{{.Driver}}"]).unwrap_or_default(),
        match crate::docker::builder() {
            plan::Builder::BuildKit => "BuildKit",
            plan::Builder::Legacy => "legacy",
        },
    );
    let mut out = String::new();
    out.push_str("# Benchmarks\n\n");
    out.push_str(&format!(
        "`cargo xtask bench --runs {runs}` on examples/mini-fate (host Maven, offline), {}.\n\
         Machine: {machine}.\nMedians of {runs} runs, in seconds. The baseline runs the same Maven and \
         `docker build` commands in sequence, all of them every time, as the old script did.\n\n",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
    ));
    out.push_str("| scenario | xtask | baseline | xtask / baseline | images built by xtask |\n|---|---|---|---|---|\n");
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
            "| {label} | {a:.2} | {b:.2} | {:.3} (baseline {:.1}x slower) | {built} |\n",
            a / b,
            b / a
        ));
    }
    let (j2, j1) = (
        med("cold xtask --jobs 2", wall),
        med("cold xtask --jobs 1", wall),
    );
    out.push_str(&format!(
        "| cold build, --jobs 2 vs --jobs 1 | {j2:.2} | {j1:.2} (--jobs 1) | {:.3} | 10 |\n",
        j2 / j1
    ));
    let overhead = med("cold xtask --jobs 2", |s| s.overhead.as_secs_f64());
    out.push_str(&format!(
        "\nxtask overhead in a cold build (its wall time minus the time its child processes ran): \
         {overhead:.2} s = {:.1}% of {j2:.2} s.\n",
        100.0 * overhead / j2
    ));
    let noop_overhead = med("no-op xtask", |s| s.overhead.as_secs_f64());
    out.push_str(&format!(
        "xtask overhead in a no-op rebuild: {noop_overhead:.2} s (it runs no child process).\n"
    ));
    out.push_str("\nTargets: no-op under 1 s and at least 20x faster than the baseline; one-file change rebuilds \
                  exactly one image and is at least 3x faster; cold --jobs 2 no slower than --jobs 1; overhead \
                  under 5% of a cold build.\n");
    Ok(out)
}
