//! The process module's tests: real children (sh, sleep, python3).

use std::io::Read;
use std::time::{Duration, Instant};

use xshell::Shell;

use super::*;
use crate::process::ask::{self as asking, high_water_kib};
use crate::process::children::CHILD_SPANS;

#[test]
fn a_watched_child_reports_its_peak_memory() {
    assert_eq!(
        high_water_kib("Name:\tx\nVmPeak:\t 9 kB\nVmHWM:\t   2048 kB\n"),
        Some(2048)
    );
    assert_eq!(high_water_kib("Name:\tzombie\n"), None);
    // 64 MiB held for half a second: the peak is at least that, and under twice it.
    let hold = Command::new(
        "python3",
        [
            "-c",
            "import time; b = bytearray(64 << 20); time.sleep(0.5)",
        ],
    );
    let (_, peak) = run_measured(&hold, true).unwrap();
    assert!((64 * 1024..128 * 1024).contains(&peak), "peak {peak} KiB");
    assert_eq!(run_measured(&hold, false).unwrap().1, 0);
}

#[test]
fn every_runner_honours_env_and_cwd() {
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path().canonicalize().unwrap();
    let command = Command::new("sh", ["-c", "echo \"$FATE_TEST_VALUE\"; pwd"])
        .env("FATE_TEST_VALUE", "from the command")
        .current_dir(here.clone());
    let expected = format!("from the command\n{}", here.display());
    let sh = Shell::new().unwrap();
    assert_eq!(query(&sh, &command).unwrap(), expected);
    assert_eq!(query_stdout(&sh, &command), expected);
    assert_eq!(query_anywhere(&command).unwrap().trim(), expected);
    assert_eq!(run_captured(&command).unwrap().trim(), expected);
    let (ok, said) = run_with_stdin(&command, "").unwrap();
    assert!(ok);
    assert_eq!(said.trim(), expected);
    let mut streamed = String::new();
    let stream = stream_stdout(&command, &dir.path().join("stream.log")).unwrap();
    (&stream).read_to_string(&mut streamed).unwrap();
    assert_eq!(streamed.trim(), expected);
}

#[test]
fn a_question_that_does_not_answer_is_given_up() {
    let sh = Shell::new().unwrap();
    let started = Instant::now();
    let sleepy = Command::new("sleep", ["30"]);
    let e = asking::ask(Some(&sh), &sleepy, Some(Duration::from_millis(200)))
        .err()
        .unwrap();
    assert!(
        format!("{e:#}").contains("did not answer within 0.2 s"),
        "{e:#}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn commands_render_shell_quoted() {
    let c = Command::new("docker", ["build", "--label", "a=b c", "it's"]);
    assert_eq!(c.to_string(), r"docker build --label 'a=b c' 'it'\''s'");
    let c = Command::new("mvn", ["package"])
        .env("A", "x y")
        .current_dir("/p q".into());
    assert_eq!(c.to_string(), "(cd '/p q' && A='x y' mvn package)");
}

#[test]
fn child_time_merges_overlapping_spans() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    CHILD_SPANS.lock().unwrap().extend([
        (t0, t0 + s(2)),
        (t0 + s(1), t0 + s(3)),
        (t0 + s(5), t0 + s(6)),
    ]);
    assert!(child_time() >= s(4));
}
