//! Keys the reference tool makes: passwordless (`-G -W`) and password-protected keys of
//! Debian 12's minisign 0.11 and Debian 13's 0.12 open here and sign what both binaries
//! verify; what both binaries sign, this tool verifies. (No engine needed: the signing is
//! the bundle library's, the same `bundle --sign-key` and `load --verify-key` use.)

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fate_bundle::signing;

/// A minisign binary: its name and how to run it.
struct Minisign {
    version: &'static str,
    program: Vec<PathBuf>,
}

impl Minisign {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.program[0]);
        c.args(&self.program[1..]);
        c
    }

    /// Runs it with `input` on stdin (passwords, as it reads them without a terminal).
    fn run(&self, args: &[&str], input: &str) -> String {
        let mut c = self.command();
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "minisign {} {args:?}: {said}",
            self.version
        );
        said
    }
}

/// Debian 12's minisign (0.11), installed as the tests install packages.
fn debian_12() -> Minisign {
    support::ensure_packages("minisign", &["minisign"]);
    Minisign {
        version: "0.11",
        program: vec![PathBuf::from("minisign")],
    }
}

/// Debian 13's minisign (0.12), unpacked with its libsodium and glibc under target/ and
/// run by that glibc's loader (this host's glibc is older than it needs).
fn debian_13() -> Minisign {
    let dir = support::workspace().join("target/tmp/trixie-minisign");
    let loader = dir.join("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
    if !dir.join("usr/bin/minisign").is_file() || !loader.is_file() {
        let script = support::workspace().join("xtask/tests/support/trixie-debs.sh");
        let out = Command::new(script)
            .arg(&dir)
            .args(["minisign", "libsodium23", "libc6"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "fetching Debian 13's minisign: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Minisign {
        version: "0.12",
        program: vec![
            loader,
            "--library-path".into(),
            dir.join("usr/lib/x86_64-linux-gnu"),
            dir.join("usr/bin/minisign"),
        ],
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn keys_of_minisign_0_11_and_0_12_sign_and_verify_both_ways() {
    let tools = [debian_12(), debian_13()];
    assert!(tools[1].run(&["-v"], "").contains("0.12"));
    let tmp = tempfile::tempdir().unwrap();
    for maker in &tools {
        for password in [None, Some("pw-for-minisign")] {
            let case = format!(
                "{}-{}",
                maker.version,
                if password.is_some() {
                    "password"
                } else {
                    "open"
                }
            );
            let (public, secret) = (
                tmp.path().join(format!("{case}.pub")),
                tmp.path().join(format!("{case}.key")),
            );
            let mut args = vec!["-G", "-p", path(&public), "-s", path(&secret)];
            if password.is_none() {
                args.push("-W");
            }
            let pw = password.map_or(String::new(), |p| format!("{p}\n{p}\n"));
            maker.run(&args, &pw);

            // This tool signs with the key; both binaries verify.
            let key = match password {
                Some(p) => signing::secret_key_with_password(&secret, p),
                None => signing::secret_key(&secret, None),
            }
            .unwrap_or_else(|e| panic!("{case}: {e:#}"));
            let file = tmp.path().join(format!("{case}.json"));
            std::fs::write(&file, format!("{{\"case\":\"{case}\"}}\n")).unwrap();
            let signature = signing::sign(&key, &std::fs::read(&file).unwrap(), "test").unwrap();
            std::fs::write(signing::signature_path(&file), signature).unwrap();
            for checker in &tools {
                let said = checker.run(&["-Vm", path(&file), "-p", path(&public)], "");
                assert!(
                    said.contains("verified"),
                    "{case} by {}: {said}",
                    checker.version
                );
            }
            signing::verify(&public, &file).unwrap();

            // The binary signs with the key; this tool verifies.
            let theirs = tmp.path().join(format!("{case}.theirs"));
            std::fs::write(&theirs, "signed by minisign\n").unwrap();
            let pw = password.map_or(String::new(), |p| format!("{p}\n"));
            maker.run(&["-S", "-s", path(&secret), "-m", path(&theirs)], &pw);
            signing::verify(&public, &theirs).unwrap_or_else(|e| panic!("{case}: {e:#}"));

            // A wrong password is refused, naming the key.
            if password.is_some() {
                let wrong = signing::secret_key_with_password(&secret, "wrong").unwrap_err();
                assert!(format!("{wrong:#}").contains(path(&secret)), "{wrong:#}");
            }
        }
    }
}
