//! Reproducible images and `verify`: two checkouts of one commit (another path, another
//! umask for the build, a while apart, the build cache pruned and the images removed in
//! between) give the same image IDs on Docker 26 (BuildKit rewrites file times); `verify`
//! passes a clean bundle, refuses one built from files not committed, and names the file
//! of an image that is not what its commit builds. On Docker 20.10, whose BuildKit cannot
//! rewrite times, two checkouts give the same layers, and `verify` compares layers and
//! says so.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::{Builder, Engine, Fixture, Run};

/// A clone of `fx`'s tree at `dir`, as another user would check it out (under `umask`):
/// a fixture with `prefix`, and `fx`'s engine and builder.
fn clone_of(fx: &Fixture, dir: &str, prefix: &str, umask: &str) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join(dir);
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(r#"umask {umask} && exec git clone -q "$0" "$1""#))
        .arg(&fx.root)
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    Fixture {
        tmp,
        root,
        prefix: prefix.to_string(),
        builder: fx.builder,
        engine: fx.engine.clone(),
    }
}

/// `fx`'s command run under another umask.
fn with_umask(fx: &Fixture, umask: &str, args: &[&str]) -> Run {
    let inner = fx.command(args);
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!(r#"umask {umask} && exec "$0" "$@""#))
        .arg(inner.get_program())
        .args(inner.get_args())
        .env_clear();
    for (key, value) in inner.get_envs() {
        if let Some(value) = value {
            c.env(key, value);
        }
    }
    Run::from(support::run_with_engine(&mut c))
}

fn bundle(fx: &Fixture, name: &str) -> PathBuf {
    let out = fx.tmp.path().join(name);
    fx.xtask(&["bundle", "--no-loader", "--out", out.to_str().unwrap()])
        .ok();
    out
}

/// `verify` leaves no worktree, no image of its own and no change in the tree.
fn assert_verify_left_nothing(fx: &Fixture) {
    let worktrees = support::git(&fx.root, &["worktree", "list"]);
    assert_eq!(
        worktrees.lines().count(),
        1,
        "a worktree was left: {worktrees}"
    );
    let own = fx.docker(&[
        "images",
        "-q",
        "--filter",
        "reference=fate-xtask-verify-*/*",
    ]);
    assert_eq!(own, "", "verify's images were left");
    fx.assert_clean();
}

/// The lines `verify` printed for each image: `(verdict, reference)`.
fn verdicts(run: &Run) -> Vec<(String, String)> {
    run.stdout
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(v, r)| (v.to_string(), r.to_string()))
        .collect()
}

#[test]
fn two_checkouts_build_the_same_images_and_verify_tells_what_differs() {
    let fx = Fixture::mini_on("repro", Builder::BuildKit, Engine::containerd());
    fx.xtask(&["images"]).ok();
    let first = fx.images();
    assert_eq!(first.len(), 10, "{first:?}");
    let created = fx.docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Created}}",
        &fx.reference("python"),
    ]);
    assert!(created.starts_with("1970-01-01"), "{created}");

    // Another checkout, at another path, made and built under another umask (its files
    // 600, its directories 700) a while later, with the images removed and the build
    // cache pruned: the same ten image IDs.
    let other = clone_of(&fx, "other checkout", &fx.prefix, "077");
    let mode = |p: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(other.root.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!((mode("arch/pom.xml"), mode("arch")), (0o600, 0o700));
    fx.remove_images();
    fx.engine.prune_build_cache();
    std::thread::sleep(std::time::Duration::from_secs(2));
    with_umask(&other, "077", &["images"]).ok();
    assert_eq!(
        other.images(),
        first,
        "the second checkout built other images"
    );

    // A clean bundle verifies: every image rebuilt from its commit, reproduced.
    let clean = bundle(&fx, "clean bundle");
    let run = fx.xtask(&["verify", clean.to_str().unwrap()]).ok();
    let found = verdicts(&run);
    assert_eq!(found.len(), 10, "{}", run.stdout);
    assert!(
        found.iter().all(|(v, _)| v == "reproduced"),
        "{}",
        run.stdout
    );
    assert_verify_left_nothing(&fx);

    update_bundle_verifies(&fx, &clean);
    forged_image_differs(&fx);
    dirty_bundle_is_refused(&fx);
}

/// A committed edit, and `bundle --since` the clean bundle: the update carries the two
/// images it changed (each recording the new commit), and they verify as reproduced.
fn update_bundle_verifies(fx: &Fixture, base: &std::path::Path) {
    support::edit(
        &fx.root,
        "federatedml/ftl/__init__.py",
        "",
        "# a committed edit\n",
    );
    support::commit_all(&fx.root, "an edit in the python tree");
    fx.xtask(&["images"]).ok();
    let update = fx.tmp.path().join("update bundle");
    fx.xtask(&[
        "bundle",
        "--no-loader",
        "--since",
        base.to_str().unwrap(),
        "--out",
        update.to_str().unwrap(),
    ])
    .ok();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(update.join("bundle.json")).unwrap())
            .unwrap();
    let head = support::git(&fx.root, &["rev-parse", "HEAD"]);
    let mut carried: Vec<(String, String)> = manifest["archives"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["images"].as_array().unwrap())
        .map(|i| {
            (
                i["reference"].as_str().unwrap().to_string(),
                i["revision"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    carried.sort();
    assert_eq!(
        carried,
        [
            (fx.reference("egg"), head.clone()),
            (fx.reference("python"), head)
        ],
        "{manifest}"
    );
    let run = fx.xtask(&["verify", update.to_str().unwrap()]).ok();
    let mut found = verdicts(&run);
    found.sort();
    assert_eq!(
        found,
        [
            ("reproduced".to_string(), fx.reference("egg")),
            ("reproduced".to_string(), fx.reference("python"))
        ],
        "{}",
        run.stdout
    );
    assert_verify_left_nothing(fx);
}

/// An image built from another tree (a file changed that git is told to ignore, so its
/// revision names the commit as if clean), bundled with bundle.json to match: it differs,
/// and verify names the file.
fn forged_image_differs(fx: &Fixture) {
    let forged = clone_of(fx, "forged", &format!("{}-forged", fx.prefix), "022");
    let file = "federatedml/__init__.py";
    support::edit(&forged.root, file, "", "# not in any commit\n");
    support::git(&forged.root, &["update-index", "--assume-unchanged", file]);
    forged.xtask(&["images"]).ok();
    let forged_bundle = bundle(&forged, "forged bundle");
    let run = Run::from(support::run_with_engine(
        &mut fx.command(&["verify", forged_bundle.to_str().unwrap()]),
    ))
    .failed();
    let found = verdicts(&run);
    let python = forged.reference("python");
    assert!(
        found.contains(&("differs".to_string(), python.clone())),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("changed: /data/projects/fate/python/federatedml/__init__.py (contents)"),
        "{}",
        run.stdout
    );
    assert!(
        found.contains(&("reproduced".to_string(), forged.reference("federation"))),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("2 of 10 images differ"),
        "{}",
        run.stderr
    );
    assert_verify_left_nothing(fx);
}

/// Built from files not committed: refused plainly, before any work.
fn dirty_bundle_is_refused(fx: &Fixture) {
    let file = "federatedml/__init__.py";
    support::edit(&fx.root, file, "", "# edited, not committed\n");
    fx.xtask(&["images"]).ok();
    let dirty = bundle(fx, "dirty bundle");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dirty.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(manifest["built"]["clean"], false, "{manifest}");
    let run = fx.xtask(&["verify", dirty.to_str().unwrap()]).failed();
    assert!(
        run.stderr.contains("was built from files not committed")
            && run.stderr.contains("cannot be rebuilt"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("rebuilding"), "{}", run.stderr);
    support::git(&fx.root, &["checkout", "--", file]);
    assert_verify_left_nothing(fx);
}

/// Each image's layers (diff IDs), by reference.
fn layers(fx: &Fixture) -> std::collections::BTreeMap<String, Vec<String>> {
    fx.images()
        .into_keys()
        .map(|reference| {
            let json = fx.docker(&[
                "image",
                "inspect",
                "--format",
                "{{json .RootFS.Layers}}",
                &reference,
            ]);
            (reference, serde_json::from_str(&json).unwrap())
        })
        .collect()
}

/// Docker 20.10 (BuildKit 0.8) writes the build's time into each config, so IDs cannot
/// repeat; but each context, sent as a tar and copied as `<dir>/ /`, keeps its times:
/// another checkout (other path, umask 077), with the images removed and the cache
/// pruned, gives the same layers. Only the layers egg copies from the builder stage
/// (`COPY --from` to a directory the copy makes) carry the build's time. `verify` says
/// why, compares layers, and passes.
#[test]
fn an_engine_that_cannot_repeat_ids_repeats_the_layers_and_says_so() {
    let fx = Fixture::mini_on("repro-old", Builder::BuildKit, Engine::system());
    fx.xtask(&["images"]).ok();
    let first = layers(&fx);
    assert_eq!(first.len(), 10, "{first:?}");
    let bundled = bundle(&fx, "bundle");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundled.join("bundle.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["built"]["clean"], true, "{manifest}");
    assert_eq!(manifest["built"]["source_date_epoch"], 0, "{manifest}");
    assert!(
        manifest["archives"][1]["images"][0]["revision"]
            .as_str()
            .is_some_and(|r| r.len() == 40),
        "{manifest}"
    );

    let other = clone_of(&fx, "other checkout", &fx.prefix, "077");
    fx.remove_images();
    fx.engine.prune_build_cache();
    std::thread::sleep(std::time::Duration::from_secs(2));
    with_umask(&other, "077", &["images"]).ok();
    let second = layers(&other);
    let egg = fx.reference("egg");
    for (reference, ids) in &first {
        let again = &second[reference];
        assert_eq!(ids.len(), again.len(), "{reference}");
        let differing: Vec<usize> = (0..ids.len()).filter(|&i| ids[i] != again[i]).collect();
        // egg: the base's two layers, its three context copies, then the four copies
        // from the builder stage.
        let expected: &[usize] = if *reference == egg {
            &[5, 6, 7, 8]
        } else {
            &[]
        };
        assert_eq!(differing, expected, "{reference}: {ids:?} then {again:?}");
    }

    fx.engine.prune_build_cache();
    let run = fx.xtask(&["verify", bundled.to_str().unwrap()]).ok();
    assert!(
        run.stderr.contains("cannot give the same image ID twice")
            && run.stderr.contains("compared layer by layer"),
        "{}",
        run.stderr
    );
    let found = verdicts(&run);
    assert_eq!(found.len(), 10, "{}", run.stdout);
    for (verdict, reference) in &found {
        let expected = if *reference == egg {
            "same-files"
        } else {
            "same-layers"
        };
        assert_eq!(verdict, expected, "{reference}: {}", run.stdout);
    }
    assert_verify_left_nothing(&fx);
}
