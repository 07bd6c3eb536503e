//! Hostile bundles, round four: a manifest far larger than any bundle's, and manifests
//! that are not text or not JSON, each refused at once, in little memory and few words,
//! with what to do. `load` reads the manifest before it asks the engine, so these run
//! with no engine at all and each is measured as it runs
//! (its time, its peak resident memory, what it prints).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use fate_bundle::process::{self, Command};
use support::Run;

/// `cargo xtask load DIR`, with no engine reachable: its output, how long it took and
/// its peak resident memory in KiB.
fn load(bundle: &Path) -> (Run, Duration, u64) {
    let command = Command::new(
        env!("CARGO_BIN_EXE_xtask"),
        ["--progress", "plain", "load", bundle.to_str().unwrap()],
    )
    .env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let started = Instant::now();
    let answer = process::measure(&command).unwrap();
    let took = started.elapsed();
    let run = Run {
        code: Some(i32::from(!answer.success)),
        stdout: answer.stdout,
        stderr: answer.stderr,
    };
    (run, took, answer.peak_kib)
}

#[test]
fn a_manifest_of_a_million_parts_is_refused_at_once_in_little_memory() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let mut parts = String::with_capacity(200 << 20);
    for n in 0..1_000_000 {
        if n > 0 {
            parts.push(',');
        }
        parts.push_str(&format!(
            r#"{{"file":"fate.images.tar.gz.{n:07}","size":1,"sha256":"{}"}}"#,
            "0".repeat(64)
        ));
    }
    let manifest = format!(
        r#"{{"format":"fate-xtask-bundle/1","created":"2026-12-01T00:00:00Z","archives":[{{"file":"fate.images.tar.gz","compression":"gzip","size":1000000,"sha256":"{}","images":[],"parts":[{parts}]}}]}}"#,
        "0".repeat(64)
    );
    assert!(manifest.len() > 100 << 20, "{} bytes", manifest.len());
    std::fs::write(bundle.join("bundle.json"), manifest).unwrap();
    let (run, took, peak_kib) = load(&bundle);
    let run = run.failed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        run.stderr.contains("larger than 16 MiB") && run.stderr.contains("copy the bundle again"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.len() < 2000,
        "{} bytes of stderr",
        run.stderr.len()
    );
    assert!(peak_kib > 0 && peak_kib < 64 * 1024, "peak {peak_kib} KiB");
}

#[test]
fn a_manifest_that_is_not_text_or_not_json_says_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(
        bundle.join("bundle.json"),
        b"{\"format\": \"\xff\xfe\x00binary",
    )
    .unwrap();
    let (run, _, _) = load(&bundle);
    let run = run.failed();
    assert!(
        run.stderr
            .contains("is not text (the byte at offset 12 is not UTF-8)")
            && run.stderr.contains("copy the bundle again"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("written beside"), "{}", run.stderr);

    std::fs::write(bundle.join("bundle.json"), "archives: none\n").unwrap();
    let (run, _, _) = load(&bundle);
    let run = run.failed();
    assert!(
        run.stderr.contains("is not a bundle manifest")
            && run.stderr.contains("copy the bundle again"),
        "{}",
        run.stderr
    );
}
