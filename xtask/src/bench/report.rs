//! The bench's figures as Markdown, with the machine and engine they were taken on.

use xshell::Shell;

use crate::docker::{argv, engine};
use fate_bundle::archive::streams;
use fate_bundle::archive::streams::Compression;
use fate_bundle::process::{self, Command};

use crate::bench::fixture::{GENERATED_DATA_FILES, GENERATED_PY_FILES, SCALE_FILES};
use crate::bench::samples::{
    COMPRESSION_LEVELS, PAYLOAD_IMAGE, Sample, Samples, Scenario, Shape, median,
};
use crate::bench::shapes::SHAPES;

/// The figures as a Markdown report, with the machine they were taken on.
pub(super) fn report(sh: &Shell, samples: &Samples, runs: usize) -> String {
    let machine = format!(
        "{} CPUs, {} memory, kernel {}, Docker Engine {} ({} storage, building with {})",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        process::query(
            sh,
            &Command::new("sh", ["-c", "free -h | awk '/Mem:/ {print $2}'"])
        )
        .unwrap_or_default(),
        process::query(sh, &Command::new("uname", ["-r"])).unwrap_or_default(),
        process::query(sh, &argv::server_version()).unwrap_or_default(),
        process::query(sh, &argv::storage_driver()).unwrap_or_default(),
        engine::builder(sh).map_or("no builder", argv::Builder::describe),
    );
    let mut out = format!(
        "# Benchmarks\n\nTaken by `cargo xtask bench --runs {runs}` on a copy of examples/mini-fate, {}.\n\
         Machine: {machine}.\nEach figure is the median of {runs} runs; times in seconds.\n",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
    );
    out.push_str(&build_section(samples));
    out.push_str(&peer_section(samples));
    out.push_str(&scale_paragraph(samples));
    out.push_str(&bundle_section(samples));
    out.push_str(
        "\nTargets: no-op under 1 s and at least 20x faster than the baseline; a one-file change rebuilds \
         exactly one image, at least 3x faster; cold --jobs 2 no slower than --jobs 1; overhead under 5% of a \
         cold build; bundles at most half the raw size, gzip at most 1.2x and zstd at most 1.0x the time of \
         `docker save -o` one archive after another; loading gzip at most 1.1x and zstd at most 1.0x the \
         time of `docker load -i` of the raw tars one after another; signing and its check under 1%. \
         Beside `docker buildx bake`: cold builds at most 1.0x bake's and xtask's own time at most 5% of \
         them; the no-op at most 0.05 s and at least 20x faster than bake with nothing changed; a one-file \
         Java edit at least 3x faster than Maven plus bake and 10x faster than the old way; 30,000 more \
         files: the no-op under 0.2 s, growing less than 30 ms per 10,000 files; `bundle` and `load` under \
         32 MB of resident memory.\n",
    );
    out
}

/// The median of a figure over a scenario's runs (NaN when it did not run).
fn med(samples: &Samples, name: Scenario, figure: fn(&Sample) -> f64) -> f64 {
    let mut v: Vec<f64> = samples
        .get(&name)
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
    if !samples.contains_key(&Scenario::ColdJobs2) {
        return String::new();
    }
    let med = |name: Scenario, f: fn(&Sample) -> f64| med(samples, name, f);
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
            Scenario::ColdJobs2,
            Scenario::ColdBaseline,
        ),
        ("no-op rebuild", Scenario::NoOp, Scenario::NoOpBaseline),
        (
            "one-file change",
            Scenario::OneFile,
            Scenario::OneFileBaseline,
        ),
    ] {
        let (a, b) = (med(ours, wall), med(theirs, wall));
        let built = med(ours, |s| s.images_built as f64);
        out.push_str(&format!(
            "| {label} | {a:.2} | {b:.2} | {:.3} ({}) | {built} |\n",
            a / b,
            speed(a, b)
        ));
    }
    let (j2, j1) = (
        med(Scenario::ColdJobs2, wall),
        med(Scenario::ColdJobs1, wall),
    );
    out.push_str(&format!(
        "\nCold build with --jobs 2: {j2:.2} s; with --jobs 1: {j1:.2} s (ratio {:.3}).\n",
        j2 / j1
    ));
    let legacy = med(Scenario::ColdLegacy, wall);
    if legacy.is_nan() {
        out.push_str(
            "\nBuildKit vs the legacy builder: not measured (this machine builds with the legacy \
             builder; install docker-buildx and rerun).\n",
        );
    } else {
        out.push_str(&format!(
            "\nCold build with --jobs 2, BuildKit: {j2:.2} s; the same with the legacy builder \
             (`DOCKER_BUILDKIT=0`, the first run only): {legacy:.2} s (BuildKit {:.1}x faster).\n",
            legacy / j2
        ));
    }
    out.push_str(&format!(
        "A no-op starts {} processes (all at once; none of them a build).\n",
        med(Scenario::NoOp, |s| s.processes as f64)
    ));
    let overhead = med(Scenario::ColdJobs2, |s| s.overhead.as_secs_f64());
    out.push_str(&format!(
        "xtask overhead (its wall time minus the time its child processes ran): {overhead:.2} s in a cold \
         build ({:.1}% of it); {:.2} s in a no-op rebuild, which runs no child process.\n",
        100.0 * overhead / j2,
        med(Scenario::NoOp, |s| s.overhead.as_secs_f64())
    ));
    out
}

/// xtask beside `docker buildx bake`, if they ran.
fn peer_section(samples: &Samples) -> String {
    if !samples.contains_key(&Scenario::ColdBuildsBake) {
        return String::new();
    }
    let med = |name: Scenario, f: fn(&Sample) -> f64| med(samples, name, f);
    let mut out = String::from(
        "\n### Beside `docker buildx bake`\n\nThe same engine and builder, on a copy of the same tree with \
         its own image prefix, with the bake file `cargo xtask bake` writes for it (named contexts where the \
         engine's BuildKit has them, else its stage groups one after the other). Cold: the builds alone, \
         `--no-cache` on both sides, Maven's output and the staged contexts in place. One-file: a Java \
         edit, then `cargo xtask images` against `cargo xtask bake` (the same Maven, and staging) followed \
         by `docker buildx bake --load`.\n\n| scenario | xtask | bake | xtask / bake |\n|---|---|---|---|\n",
    );
    for (label, ours, theirs) in [
        (
            "cold builds",
            Scenario::ColdBuildsXtask,
            Scenario::ColdBuildsBake,
        ),
        ("nothing changed", Scenario::NoOpPeer, Scenario::NoOpBake),
        (
            "one-file Java edit",
            Scenario::OneFilePeer,
            Scenario::OneFileBake,
        ),
    ] {
        let (a, b) = (med(ours, wall), med(theirs, wall));
        out.push_str(&format!(
            "| {label} | {a:.3} | {b:.3} | {:.3} ({}) |\n",
            a / b,
            speed(a, b)
        ));
    }
    let cold = med(Scenario::ColdBuildsXtask, wall);
    let own = med(Scenario::ColdBuildsXtask, |s| s.overhead.as_secs_f64());
    out.push_str(&format!(
        "\nxtask's own time in the cold builds (wall time minus its children's): {own:.2} s, {:.1}% of \
         them.\n",
        100.0 * own / cold
    ));
    out
}

/// How the no-op grows with the tree, if measured.
fn scale_paragraph(samples: &Samples) -> String {
    if !samples.contains_key(&Scenario::NoOpScaled) {
        return String::new();
    }
    let (base, grown) = (
        med(samples, Scenario::NoOp, wall),
        med(samples, Scenario::NoOpScaled, wall),
    );
    let per_10k = (grown - base) / (SCALE_FILES as f64 / 10_000.0);
    format!(
        "\nScale: with {SCALE_FILES} more source files in a tree two images stage (python and egg), the \
         no-op takes {grown:.3} s against {base:.3} s: {:+.1} ms per 10,000 files.\n",
        per_10k * 1e3
    )
}

/// The bundle scenarios' table, if they ran.
fn bundle_section(samples: &Samples) -> String {
    if !samples.contains_key(&Scenario::Bundle(Compression::Gzip)) {
        return String::new();
    }
    let med = |name: Scenario, f: fn(&Sample) -> f64| med(samples, name, f);
    let mut out = String::new();
    out.push_str(&format!(
        "\n## Bundles\n\nThe example's eight module images and two third-party stand-ins, one of them \
         carrying this host's JDK twice (`{PAYLOAD_IMAGE}`).\n\n| scenario | time | size (MB) | vs docker save -o / docker load -i |\n|---|---|---|---|\n"
    ));
    let (save_t, save_mb) = (
        med(Scenario::RawSave, wall),
        med(Scenario::RawSave, megabytes),
    );
    let save_once = med(Scenario::RawSaveAtOnce, wall);
    out.push_str(&format!(
        "| docker save -o (raw tars, one after another) | {save_t:.2} | {save_mb:.1} | 1 |\n\
         | docker save -o (raw tars, at once) | {save_once:.2} | | time {:.2}x |\n",
        save_once / save_t
    ));
    for name in [Compression::Gzip, Compression::Zstd].map(Scenario::Bundle) {
        let (t, size) = (med(name, wall), med(name, megabytes));
        out.push_str(&format!(
            "| {} | {t:.2} | {size:.1} | time {:.2}x, size {:.2}x |\n",
            name.label(),
            t / save_t,
            size / save_mb
        ));
    }
    let (load_t, load_once) = (
        med(Scenario::RawLoad, wall),
        med(Scenario::RawLoadAtOnce, wall),
    );
    out.push_str(&format!(
        "| docker load -i (raw tars, one after another) | {load_t:.2} | | 1 |\n\
         | docker load -i (raw tars, at once) | {load_once:.2} | | time {:.2}x |\n",
        load_once / load_t
    ));
    for name in [Compression::Gzip, Compression::Zstd].map(Scenario::Load) {
        let t = med(name, wall);
        out.push_str(&format!(
            "| {} (checked as it loads) | {t:.2} | | time {:.2}x |\n",
            name.label(),
            t / load_t
        ));
    }
    out.push_str(&signing_paragraph(samples));
    out.push_str(&memory_paragraph(samples));
    out.push_str(&push_paragraph(samples));
    out.push_str(&shapes_paragraph(samples, save_t, load_t));
    let vs = |name: Scenario, raw: f64| format!("{:.2}x", med(name, wall) / raw);
    out.push_str(&format!(
        "\nAgainst the same raw commands run at once, as the bundle runs its archives (what compression \
         and checking cost): bundle gzip {}, zstd {}; load gzip {}, zstd {}.\n",
        vs(Scenario::Bundle(Compression::Gzip), save_once),
        vs(Scenario::Bundle(Compression::Zstd), save_once),
        vs(Scenario::Load(Compression::Gzip), load_once),
        vs(Scenario::Load(Compression::Zstd), load_once),
    ));
    out.push_str(&format!(
        "\nCompression levels (the first run only), each compressing the same raw tars on every core (the bundle uses gzip \
         level {} (0 where the layers are compressed already) and zstd level {}):\n\n| compression | level | time | size (MB) | vs docker save -o |\n\
         |---|---|---|---|---|\n",
        streams::GZIP_LEVEL,
        streams::ZSTD_LEVEL
    ));
    for (compression, level) in COMPRESSION_LEVELS {
        let name = Scenario::Level(compression, level);
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

/// The bundle and load ratios on each payload shape (the bench's own first).
fn shapes_paragraph(samples: &Samples, save_t: f64, load_t: f64) -> String {
    if !samples.contains_key(&Scenario::ShapeBundle(SHAPES[0])) {
        return String::new();
    }
    let t = |name: Scenario| med(samples, name, wall);
    let mut out = format!(
        "\nBy payload shape (gzip, against the raw commands one archive after another):\n\n\
         | payload | bundle vs docker save -o | load vs docker load -i |\n|---|---|---|\n\
         | {} | {:.2}x | {:.2}x |\n",
        Shape::TwoJdkLayers.label(),
        t(Scenario::Bundle(Compression::Gzip)) / save_t,
        t(Scenario::Load(Compression::Gzip)) / load_t
    );
    for shape in SHAPES {
        out.push_str(&format!(
            "| {} | {:.2}x | {:.2}x |\n",
            shape.label(),
            t(Scenario::ShapeBundle(shape)) / t(Scenario::ShapeRawSave(shape)),
            t(Scenario::ShapeLoad(shape)) / t(Scenario::ShapeRawLoad(shape))
        ));
    }
    out
}

/// The gzip bundle into a registry, beside skopeo and docker.
fn push_paragraph(samples: &Samples) -> String {
    if !samples.contains_key(&Scenario::Push) {
        return String::new();
    }
    let t = |name: Scenario| med(samples, name, wall);
    let peak = samples
        .get(&Scenario::Push)
        .and_then(|runs| runs.iter().map(|s| s.peak_kib).max())
        .map_or(f64::NAN, |kib| kib as f64 / 1024.0);
    let (ours, again, sums) = (
        t(Scenario::Push),
        t(Scenario::PushAgain),
        t(Scenario::SumsCheck),
    );
    let skopeo = t(Scenario::PushSkopeo);
    // An engine that cannot reach this host's loopback pushes nothing (said as it runs).
    let docker = if samples.contains_key(&Scenario::PushDocker) {
        let docker = t(Scenario::PushDocker);
        format!("{docker:.2} | ours {:.2}x", ours / docker)
    } else {
        "not measured: this engine cannot reach the registry | ".to_string()
    };
    format!(
        "\nInto a registry (a fresh docker-registry on loopback per sample), the gzip bundle:\n\n\
         | scenario | time | ratio |\n|---|---|---|\n\
         | load --registry (no engine) | {ours:.2} | 1 |\n\
         | skopeo copy docker-archive: of each image (raw tars) | {skopeo:.2} | ours {:.2}x |\n\
         | docker load + tag + push of each (raw tars) | {docker} |\n\
         | load --registry again (nothing to send) | {again:.2} | |\n\
         | sha256sum -c SHA256SUMS | {sums:.2} | again - sums = {:+.2} s |\n\n\
         Peak memory of the push: {peak:.1} MiB.\n",
        ours / skopeo,
        again - sums
    )
}

/// xtask's peak resident memory while it writes and loads bundles.
fn memory_paragraph(samples: &Samples) -> String {
    let peak = |name: Scenario| {
        samples
            .get(&name)
            .and_then(|runs| runs.iter().map(|s| s.peak_kib).max())
            .map_or(f64::NAN, |kib| kib as f64 / 1024.0)
    };
    let scenarios = [
        Scenario::Bundle(Compression::Gzip),
        Scenario::Bundle(Compression::Zstd),
        Scenario::Load(Compression::Gzip),
        Scenario::Load(Compression::Zstd),
        Scenario::BundleSigned,
        Scenario::LoadVerified,
    ];
    let listed: Vec<String> = scenarios
        .iter()
        .map(|&name| format!("{} {:.1} MiB", name.label(), peak(name)))
        .collect();
    let most = scenarios.iter().map(|&n| peak(n)).fold(0.0, f64::max);
    format!(
        "\nPeak resident memory of xtask (the highest of the runs, `VmHWM` sampled every 5 ms; the \
         archives stream): {}; at most {most:.1} MiB.\n",
        listed.join(", ")
    )
}

/// What signing and its check cost, against the unsigned gzip bundle and its load.
fn signing_paragraph(samples: &Samples) -> String {
    let med = |name: Scenario, f: fn(&Sample) -> f64| med(samples, name, f);
    let (gzip_bundle, gzip_load) = (
        med(Scenario::Bundle(Compression::Gzip), wall),
        med(Scenario::Load(Compression::Gzip), wall),
    );
    let (signed, verified) = (
        med(Scenario::BundleSigned, wall),
        med(Scenario::LoadVerified, wall),
    );
    let (sign, verify) = (
        med(Scenario::SignOnly, wall),
        med(Scenario::VerifyOnly, wall),
    );
    format!(
        "\nSigned: bundle gzip with `--sign-key` {signed:.2} s ({:+.1}% against unsigned), \
         load with `--verify-key` {verified:.2} s ({:+.1}%). Signing \
         the manifest and sums alone takes {:.2} ms ({:.3}% of the bundle), checking them \
         {:.2} ms ({:.3}% of the load).\n",
        100.0 * (signed / gzip_bundle - 1.0),
        100.0 * (verified / gzip_load - 1.0),
        sign * 1e3,
        100.0 * sign / gzip_bundle,
        verify * 1e3,
        100.0 * verify / gzip_load,
    )
}

/// How `ours` (seconds) compares with `theirs`, in words: "2.0x faster" or "1.3x slower".
fn speed(ours: f64, theirs: f64) -> String {
    if ours <= theirs {
        format!("{:.1}x faster", theirs / ours)
    } else {
        format!("{:.1}x slower", ours / theirs)
    }
}

#[cfg(test)]
mod tests {
    use super::speed;

    #[test]
    fn a_ratio_says_faster_or_slower() {
        assert_eq!(speed(1.0, 2.0), "2.0x faster");
        assert_eq!(speed(3.935, 3.031), "1.3x slower");
        assert_eq!(speed(9.385, 8.698), "1.1x slower");
        assert_eq!(speed(2.0, 2.0), "1.0x faster");
    }
}
