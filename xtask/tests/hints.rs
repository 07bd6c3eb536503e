//! Every hint is a command that fixes what it names: each case here makes the failure,
//! takes the command out of the message as written, runs it, and runs the failed
//! command again, which must then succeed. (Hints tested the same way elsewhere: the
//! docker group in `hostile.rs`; `push --login` in `push.rs`; `--sign-password-env` in
//! `bundle.rs`; "load that bundle first" in `airgap.rs`.)

mod support;

use std::path::PathBuf;

use support::{Fixture, Registry};

/// The hints `bundle` and `push` give for images that are missing, have lost their SBOM,
/// or were changed outside the tool.
#[test]
fn bundle_and_push_hints_fix_what_they_name() {
    let fx = Fixture::mini("hints");
    let out = |name: &str| -> String {
        let dir: PathBuf = fx.tmp.path().join(name);
        dir.to_str().unwrap().to_string()
    };

    // Nothing built yet: bundle names each image and the command that builds them.
    let run = fx
        .xtask(&["bundle", "--no-loader", "--out", &out("first")])
        .failed();
    let build_all = support::hint(&run.stderr, "is not built; run: ");
    assert_eq!(build_all, "cargo xtask images");
    fx.follow(&build_all);
    fx.xtask(&["bundle", "--no-loader", "--out", &out("first")])
        .ok();

    // An SBOM removed: bundle names its path and the command that writes it again.
    let sbom = fx.root.join("target/xtask/sbom/federation.spdx.json");
    std::fs::remove_file(&sbom).unwrap();
    let run = fx
        .xtask(&["bundle", "--no-loader", "--out", &out("no sbom")])
        .failed();
    assert!(
        run.stderr.contains(&sbom.display().to_string()),
        "{}",
        run.stderr
    );
    let write_sbom = support::hint(&run.stderr, ": run ");
    fx.follow(&write_sbom);
    assert!(
        sbom.is_file(),
        "{write_sbom} did not write {}",
        sbom.display()
    );
    fx.xtask(&["bundle", "--no-loader", "--out", &out("no sbom")])
        .ok();

    // An image replaced by hand: bundle and push name it and the command that rebuilds it.
    let federation = fx.reference("federation");
    fx.docker(&["tag", &fx.reference("proxy"), &federation]);
    let run = fx
        .xtask(&["bundle", "--no-loader", "--out", &out("replaced")])
        .failed();
    let rebuild = support::hint(&run.stderr, "rebuild it: ");
    assert_eq!(rebuild, "cargo xtask images federation");
    let registry = Registry::start(None);
    let push = ["push", "federation", "--registry", &registry.addr];
    let run = fx.xtask(&push).failed();
    assert_eq!(support::hint(&run.stderr, "rebuild it: "), rebuild);
    fx.follow(&rebuild);
    fx.xtask(&["bundle", "--no-loader", "--out", &out("replaced")])
        .ok();

    // An image removed: push names it and the command that builds it.
    fx.remove_only(std::slice::from_ref(&federation));
    let run = fx.xtask(&push).failed();
    let build = support::hint(&run.stderr, "build it: ");
    assert_eq!(build, "cargo xtask images federation");
    fx.follow(&build);
    fx.xtask(&push).ok();
    fx.assert_clean();
}
