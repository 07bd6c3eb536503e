#![allow(
    clippy::too_many_lines,
    reason = "a real-engine scenario reads best as one story"
)]
//! Incremental and parallel builds: what did not change is not rebuilt, and `--jobs`
//! does not change the result.

mod support;

use std::collections::BTreeMap;

use support::{Builder, Engine, Fixture};

const FEDERATION_SRC: &str =
    "arch/driver/federation/src/main/java/com/webank/ai/fate/driver/Federation.java";

/// Why the last run ran step `id` (it must have run).
fn reason(fx: &Fixture, id: &str) -> String {
    let step = &fx.last_run()[id];
    assert_eq!(step.result, "ran", "{id}: {step:?}");
    step.reason.clone().unwrap_or_default()
}

/// `reference` replaced by a commit of itself with one more ENV: its labels (the inputs
/// digest among them) stay, its ID does not.
fn change_by_hand(fx: &Fixture, reference: &str) {
    let container = fx.docker(&["create", reference, "/nonexistent"]);
    fx.docker(&["commit", "--change", "ENV HAND=made", &container, reference]);
    fx.docker(&["rm", &container]);
}

/// Whether the last run found step `id` up to date.
fn up_to_date(fx: &Fixture, id: &str) -> bool {
    fx.last_run()[id].result == "up-to-date"
}

on_both_engines!(rebuilds_only_what_changed, rebuilds_what_changed);

/// No change, Java and Python edits, a broken jar, and an image changed by hand (which
/// push and bundle refuse: only the image this tool built is trusted).
fn rebuilds_what_changed(engine: Engine) {
    let fx = Fixture::mini_on("incr", Builder::Legacy, engine);
    fx.xtask(&["images", "--jobs", "2"]).ok();
    let first = fx.images();
    assert_eq!(first.len(), 10);

    // No change: no docker build, no Maven run, same image IDs.
    let run = fx.xtask(&["images"]).ok();
    assert_eq!(fx.steps_ran(), Vec::<String>::new(), "{}", run.stdout);
    // The 3 Maven projects and 10 images (the Maven settings are unchanged too).
    let fresh = fx
        .last_run()
        .values()
        .filter(|s| s.result == "up-to-date" && (s.kind == "build" || s.kind == "maven"))
        .count();
    assert_eq!(fresh, 13, "{}", run.stdout);
    assert_eq!(fx.images(), first);
    // A no-op asks a few questions at once and builds nothing: the images, in two calls
    // (the engine's version is remembered from the last run at this endpoint; the revision
    // and the host's packages are read from their files), and whether buildx is there when
    // its plugin is not where the CLI looks first. The tree's unchanged files are known by
    // their metadata.
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fx.root.join("target/xtask/last-run.json")).unwrap(),
    )
    .unwrap();
    let processes = report["processes"].as_u64().unwrap();
    assert!((1..=3).contains(&processes), "{processes} processes");
    // The cache keeps each file's path as its bytes (any name), beside its stamp and digest.
    let digests = std::fs::read(fx.root.join("target/xtask/file-digests.bin")).unwrap();
    let name = b"Federation.java";
    assert!(
        digests.windows(name.len()).any(|w| w == name),
        "Federation.java is not in the digest cache ({} bytes)",
        digests.len()
    );

    // One module's source: Maven builds that module (with what it needs and what needs
    // it), the other modules' jars stay as they are, only that module's image is rebuilt.
    let roll_jar = fx.root.join("arch/eggroll/roll/target/fate-roll-0.3.jar");
    let roll_written = std::fs::metadata(&roll_jar).unwrap().modified().unwrap();
    support::edit(
        &fx.root,
        FEDERATION_SRC,
        "\"federation\"",
        "\"federation-v2\"",
    );
    let run = fx.xtask(&["images"]).ok();
    assert_eq!(fx.images_built(), ["federation"], "{}", run.stdout);
    assert!(
        reason(&fx, "mvn-arch").starts_with("sources changed in driver/federation"),
        "{}",
        run.stdout
    );
    let log = std::fs::read_to_string(fx.root.join("target/xtask/logs/mvn-arch.log")).unwrap();
    let argv = log.lines().next().unwrap();
    assert!(argv.contains(" -pl driver/federation -am -amd"), "{log}");
    assert!(
        argv.contains("-XX:TieredStopAtLevel=1"),
        "a short run's JVM: {argv}"
    );
    assert!(!argv.contains(" clean "), "{argv}");
    assert_eq!(
        std::fs::metadata(&roll_jar).unwrap().modified().unwrap(),
        roll_written,
        "roll's jar was rebuilt"
    );
    // fate-serving uses arch's core jar, which Maven rebuilt byte for byte.
    assert!(up_to_date(&fx, "mvn-fate-serving"), "{}", run.stdout);
    let second = fx.images();
    for (reference, id) in &first {
        let changed = reference.contains("/federation:");
        assert_eq!(second[reference] != *id, changed, "{reference}");
    }

    // A Python-only edit inside a Maven project: Maven's inputs are the reactor's poms and
    // src/ trees, so Maven stays up to date; the images with the Python tree rebuild.
    support::edit(
        &fx.root,
        "arch/api/__init__.py",
        "\"\"\"The python",
        "# edited\n\"\"\"The python",
    );
    let run = fx.xtask(&["images"]).ok();
    assert!(up_to_date(&fx, "mvn-arch"), "{}", run.stdout);
    assert_eq!(fx.images_built(), ["egg", "python"], "{}", run.stdout);

    // A build arg of the base: the base and everything built on it.
    let run = support::run_with_engine(
        fx.command(&["images"])
            .env("PIP_INDEX_URL", "https://pypi.example/simple"),
    );
    let run = support::Run::from(run).ok();
    assert_eq!(
        fx.images_built(),
        ["base-image", "egg", "python", "storage-service-builder"],
        "{}",
        run.stdout
    );

    // A base input file: the same descendants again.
    support::edit(
        &fx.root,
        "cluster-deploy/scripts/fate-base/env.sh",
        "ready",
        "ready (v2)",
    );
    let run = fx.xtask(&["images"]).ok();
    assert_eq!(
        fx.images_built(),
        ["base-image", "egg", "python", "storage-service-builder"],
        "{}",
        run.stdout
    );

    // --force rebuilds regardless.
    let run = fx.xtask(&["images", "roll", "--force"]).ok();
    assert_eq!(fx.images_built(), ["roll"], "{}", run.stdout);
    assert!(reason(&fx, "mvn-arch") == "--force", "{}", run.stdout);

    // A Maven output overwritten by hand: Maven runs again, the image keeps its content.
    let jar = fx
        .root
        .join("arch/driver/federation/target/fate-federation-0.3.jar");
    assert!(jar.is_file(), "{}", jar.display());
    let before = fx.images();
    std::fs::write(&jar, "NOT A JAR").unwrap();
    let run = fx.xtask(&["images"]).ok();
    assert!(
        reason(&fx, "mvn-arch").contains("changed since Maven built it"),
        "{}",
        run.stdout
    );
    assert_eq!(fx.images_built(), Vec::<String>::new(), "{}", run.stdout);
    assert_eq!(fx.images(), before);
    assert_ne!(std::fs::read(&jar).unwrap(), b"NOT A JAR");

    // An image changed by hand keeps the inputs label but not the ID this tool built:
    // push and bundle refuse it, and the next run rebuilds it.
    let federation = fx.reference("federation");
    change_by_hand(&fx, &federation);
    let hand_made = fx.images()[&federation].clone();
    let out = fx.tmp.path().join("bundle");
    fx.xtask(&["images", "third-party"]).ok();
    let run = fx
        .xtask(&["bundle", "--no-pull", "--out", out.to_str().unwrap()])
        .failed();
    assert!(
        run.stderr.contains(&format!("{federation} (image "))
            && run
                .stderr
                .contains("is not the image `cargo xtask images` built"),
        "{}",
        run.stderr
    );
    assert!(!out.join("bundle.json").exists());
    let run = fx.xtask(&["push", "federation"]).failed();
    assert!(
        run.stderr
            .contains("is not the image `cargo xtask images` built"),
        "{}",
        run.stderr
    );
    let run = fx.xtask(&["images"]).ok();
    assert_eq!(fx.images_built(), ["federation"], "{}", run.stdout);
    assert!(
        reason(&fx, "build-federation").contains("changed outside it"),
        "{}",
        run.stdout
    );
    let rebuilt = fx.images()[&federation].clone();
    assert_ne!(rebuilt, hand_made, "a new image, not the hand-made one");
    let env = fx.docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.Env}}",
        &federation,
    ]);
    assert!(
        !env.contains("HAND=made"),
        "the hand-made change is gone: {env}"
    );

    support::git(&fx.root, &["checkout", "--", "."]);
    fx.assert_clean();
}

#[test]
fn parallel_and_sequential_builds_give_the_same_images() {
    let fx = Fixture::mini("jobs");
    fx.xtask(&["images", "--jobs", "1"]).ok();
    let names = support::build_order();
    let snapshot = |tag: &str| -> Vec<(String, String, BTreeMap<String, String>)> {
        names
            .iter()
            .map(|name| {
                let r = fx.reference(name);
                let files = fx.image_files(&r, &fx.tmp.path().join(tag).join(name));
                (
                    fx.label(&r, "org.fedai.fate-xtask.inputs"),
                    fx.label(&r, "org.opencontainers.image.version"),
                    files,
                )
            })
            .collect()
    };
    let sequential = snapshot("jobs1");
    let first_ids = fx.images();

    let run = fx
        .xtask(&["images", "--jobs", "2", "--force", "--no-cache"])
        .ok();
    assert_eq!(fx.steps_ran().len(), 13, "{}", run.stdout);
    let second_ids = fx.images();
    for (reference, id) in &first_ids {
        assert_ne!(&second_ids[reference], id, "{reference} was not rebuilt");
    }
    let parallel = snapshot("jobs2");
    for ((name, a), b) in names.iter().zip(&sequential).zip(&parallel) {
        // An image's inputs include its parents' IDs, which a rebuild changes; images
        // without parents have the same inputs.
        let has_parent = ["storage-service-builder", "python", "egg"].contains(name);
        if !has_parent {
            assert_eq!(a.0, b.0, "{name}: inputs label differs");
        }
        assert_eq!(b.0.len(), 64, "{name}: inputs label");
        assert_eq!(a.1, b.1, "{name}: version label differs");
        assert_eq!(a.2, b.2, "{name}: contents differ");
    }
    fx.assert_clean();
}

on_both_engines!(the_dry_run_decides_as_the_run_then_does, dry_run_agrees);

/// The dry run's decisions are the run's, step by step and reason by reason: after a
/// Java edit (also with `--pull`), a Python edit, a changed parent, an image removed and
/// an image changed by hand, and with `--force`. The dry run leaves a step `unknown` only
/// behind one it says must run first (or is unknown itself).
fn dry_run_agrees(engine: Engine) {
    let fx = Fixture::mini_on("agree", Builder::Legacy, engine);
    fx.xtask(&["images"]).ok();
    let federation = fx.reference("federation");
    let java_edit = |to: &str| {
        let from = std::fs::read_to_string(fx.root.join(FEDERATION_SRC)).unwrap();
        let at = from.find("\"federation").unwrap();
        let end = from[at + 1..].find('"').unwrap() + at + 2;
        support::edit(
            &fx.root,
            FEDERATION_SRC,
            &from[at..end],
            &format!("\"{to}\""),
        );
    };
    let changes: [Change; 7] = [
        ("a Java edit", &[], &|| java_edit("federation-v3")),
        ("a Java edit with --pull", &["--pull"], &|| {
            java_edit("federation-v4");
        }),
        ("a Python edit", &[], &|| {
            support::edit(&fx.root, "federatedml/__init__.py", "", "# edited\n");
        }),
        ("a changed parent", &[], &|| {
            support::edit(&fx.root, "docker/base/Dockerfile", "", "# edited\n");
        }),
        ("an image removed by hand", &[], &|| {
            fx.remove_only(std::slice::from_ref(&federation));
        }),
        ("an image changed by hand", &[], &|| {
            change_by_hand(&fx, &federation);
        }),
        ("--force", &["--force"], &|| {}),
    ];
    for (change, flags, make) in changes {
        make();
        let decided = dry_run_decisions(&fx, flags);
        let mut args = vec!["images"];
        args.extend(flags);
        fx.xtask(&args).ok();
        let did = fx.last_run();
        assert_eq!(
            decided.keys().collect::<Vec<_>>(),
            did.keys().collect::<Vec<_>>(),
            "{change}: the same steps"
        );
        let mut runs = 0;
        for (id, step) in &decided {
            let done = &did[id];
            match step.decision.as_str() {
                "will-run" => {
                    runs += 1;
                    assert_eq!(done.result, "ran", "{change}: {id} was to run");
                    assert_eq!(
                        done.reason, step.reason,
                        "{change}: {id} ran for another reason"
                    );
                }
                "up-to-date" => assert_eq!(done.result, "up-to-date", "{change}: {id}"),
                "unknown" => {
                    assert!(
                        step.after
                            .iter()
                            .any(|d| decided[d].decision != "up-to-date"),
                        "{change}: {id} is unknown ({:?}) though nothing before it runs",
                        step.reason
                    );
                    // What a dependency cannot change is decided before it runs.
                    let knowable = ["--force", "--pull: the base may be newer", "not built yet"];
                    assert!(
                        !done
                            .reason
                            .as_deref()
                            .is_some_and(|r| knowable.contains(&r)),
                        "{change}: {id} ran for {:?}, which the dry run could tell, but it said unknown",
                        done.reason
                    );
                }
                other => panic!("{change}: {id}: decision {other}"),
            }
        }
        assert!(runs > 0, "{change}: something was to run: {decided:?}");
    }
    support::git(&fx.root, &["checkout", "--", "."]);
    fx.assert_clean();
}

/// A change made before a run: what it is, the flags of the run, how it is made.
type Change<'a> = (&'a str, &'a [&'a str], &'a dyn Fn());

/// A step as the JSON dry run decides it.
#[derive(Debug)]
struct Decided {
    decision: String,
    reason: Option<String>,
    /// The steps it waits for.
    after: Vec<String>,
}

/// What the JSON dry run with `flags` decides for each step, by step id.
fn dry_run_decisions(fx: &Fixture, flags: &[&str]) -> BTreeMap<String, Decided> {
    let mut args = vec!["images", "--dry-run", "--format", "json"];
    args.extend(flags);
    let run = fx.xtask(&args).ok();
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let decided = Decided {
                decision: s["decision"].as_str().unwrap().to_string(),
                reason: s["reason"].as_str().map(str::to_string),
                after: s["dependencies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_str().unwrap().to_string())
                    .collect(),
            };
            (s["id"].as_str().unwrap().to_string(), decided)
        })
        .collect()
}

/// What this tool built is remembered per engine: a tree built on Docker 20.10, then on
/// the containerd store, then on Docker 20.10 again rebuilds nothing the third time (the
/// images there are still the ones it built).
#[test]
fn switching_engines_and_back_rebuilds_nothing() {
    let fx = Fixture::mini_on("switch", Builder::Legacy, Engine::system());
    fx.xtask(&["images"]).ok();
    let other = fx.on(Engine::containerd());
    let run = other.xtask(&["images"]).ok();
    assert_eq!(other.images_built().len(), 10, "{}", run.stdout);
    let run = fx.xtask(&["images"]).ok();
    assert_eq!(fx.steps_ran(), Vec::<String>::new(), "{}", run.stdout);
    fx.assert_clean();
}

on_both_engines!(
    an_image_of_uncommitted_files_says_so_until_they_are_committed,
    uncommitted_files
);

/// Labels tell the truth: an image built from files not committed says `<commit>-dirty`
/// (its SBOM too) and stays up to date while they stay as they are; once they are
/// committed it is built again with the commit that holds them; an image whose files did
/// not change keeps the commit it was built from.
fn uncommitted_files(engine: Engine) {
    let fx = Fixture::mini_on("dirty", Builder::Legacy, engine);
    fx.xtask(&["images"]).ok();
    let head = |fx: &Fixture| support::git(&fx.root, &["rev-parse", "HEAD"]);
    let first = head(&fx);
    let revision =
        |image: &str| fx.label(&fx.reference(image), "org.opencontainers.image.revision");
    assert_eq!(revision("python"), first);

    support::edit(&fx.root, "federatedml/__init__.py", "", "# edited\n");
    let run = fx.xtask(&["images"]).ok();
    assert_eq!(fx.images_built(), ["egg", "python"], "{}", run.stdout);
    assert_eq!(revision("python"), format!("{first}-dirty"));
    let sbom = std::fs::read_to_string(fx.root.join("target/xtask/sbom/python.spdx.json")).unwrap();
    assert!(
        sbom.contains(&format!("{first}-dirty")),
        "the SBOM says so too"
    );
    // Nothing changed since: nothing is built.
    let run = fx.xtask(&["images"]).ok();
    assert_eq!(fx.steps_ran(), Vec::<String>::new(), "{}", run.stdout);

    support::commit_all(&fx.root, "the python edit");
    let second = head(&fx);
    let run = fx.xtask(&["images"]).ok();
    assert_eq!(fx.images_built(), ["egg", "python"], "{}", run.stdout);
    assert_eq!(
        fx.last_run()["build-python"].reason.as_deref(),
        Some("built from uncommitted files, committed since: built again with that commit")
    );
    assert_eq!(revision("python"), second);
    // federation's files did not change: it keeps the commit it was built from.
    assert_eq!(revision("federation"), first);
    fx.assert_clean();
}
