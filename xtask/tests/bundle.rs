#![allow(
    clippy::too_many_lines,
    reason = "a real-engine scenario reads best as one story"
)]
//! `cargo xtask bundle` and loading bundles, with real `docker save`/`docker load`.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use support::bundles::{by_hand, ids, remove_bundled};
use support::{Builder, Engine, Fixture, Run, run_with_engine};

on_both_engines!(
    bundles_round_trip_and_damaged_bundles_are_refused,
    round_trip
);

/// Bundles written and loaded on one engine, by the tool and by hand, in gzip and zstd;
/// damaged bundles load nothing.
fn round_trip(engine: Engine) {
    let fx = Fixture::mini_on("bundle", Builder::Legacy, engine);
    fx.xtask(&["images"]).ok();

    let (out, originals) = gzip_bundle(&fx);
    loads_every_way(&fx, &out, &originals);
    zstd_on_a_terminal(&fx, &originals);
    damaged_bundles_load_nothing(&fx, &out);
    fx.assert_clean();
}

/// The gzip bundle of the old recipe's two archives, really compressed, with a manifest:
/// its directory, and the IDs of the bundled images.
fn gzip_bundle(fx: &Fixture) -> (std::path::PathBuf, BTreeMap<String, String>) {
    // gzip: the two archives of the old recipe, really compressed, with a manifest. Right
    // after `images`, as the README's quick path types it: the example's third-party
    // stand-ins are built from its image set (nothing can be pulled).
    let out = fx.tmp.path().join("bundle gz");
    let run = fx.xtask(&["bundle", "--out", out.to_str().unwrap()]).ok();
    assert!(
        run.stderr
            .contains("is not present; building it from the image set (image redis)"),
        "{}",
        run.stderr
    );
    // stdout is the archives only (path, size, sha256), the build's summary went to stderr.
    assert!(
        run.stdout.lines().count() == 2 && run.stdout.lines().all(|l| l.split('\t').count() == 3),
        "{}",
        run.stdout
    );
    let originals = ids(fx);
    assert_eq!(originals.len(), 10, "{originals:?}");
    let names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, support::bundles::bundle_files(), "{}", run.stderr);
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("bundle.json")).unwrap()).unwrap();
    for archive in manifest["archives"].as_array().unwrap() {
        let file = out.join(archive["file"].as_str().unwrap());
        assert_eq!(
            archive["size"].as_u64().unwrap(),
            fs::metadata(&file).unwrap().len()
        );
        assert_eq!(archive["sha256"].as_str().unwrap(), support::sha256(&file));
        assert_eq!(archive["compression"], "gzip");
        let gz = fs::read(&file).unwrap();
        assert_eq!(&gz[..2], [0x1f, 0x8b], "{} is not gzip", file.display());
    }
    let fate_images = &manifest["archives"][1]["images"];
    assert_eq!(
        fate_images.as_array().unwrap().len(),
        8,
        "modules only, not base or builder"
    );
    assert!(!fate_images.to_string().contains("base-image"));

    // Smaller than the raw docker save tar of the same images.
    let refs: Vec<String> = fate_images
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reference"].as_str().unwrap().to_string())
        .collect();
    let raw = fx.tmp.path().join("raw.tar");
    let mut save = vec!["save", "-o", raw.to_str().unwrap()];
    save.extend(refs.iter().map(String::as_str));
    fx.docker(&save);
    let (raw_size, gz_size) = (
        fs::metadata(&raw).unwrap().len(),
        fs::metadata(out.join("fate.images.tar.gz")).unwrap().len(),
    );
    eprintln!("fate images: docker save tar {raw_size} bytes, gzip bundle {gz_size} bytes");
    match fx.engine.store {
        // The example's images are mostly jars (already deflated): measurably smaller,
        // not half.
        support::engine::Store::GraphDriver => assert!(
            gz_size * 100 < raw_size * 90,
            "gzip {gz_size} vs raw {raw_size}"
        ),
        // The containerd store keeps (and saves) its layers gzip-compressed already: the
        // bundle stores them (gzip level 0), its framing a fraction of a percent.
        support::engine::Store::Containerd => {
            assert!(
                gz_size <= raw_size + raw_size / 500 + 1024,
                "gzip {gz_size} vs raw {raw_size}"
            );
        }
    }

    (out, originals)
}

/// The gzip bundle loads as it was bundled, by the tool (also from a bare directory, away
/// from any FATE root) and by the README's commands.
fn loads_every_way(fx: &Fixture, out: &Path, originals: &BTreeMap<String, String>) {
    // Round trip: load gives the same image IDs.
    remove_bundled(fx);
    let run = fx.xtask(&["bundle", "load", out.to_str().unwrap()]).ok();
    assert_eq!(&ids(fx), originals);
    for (reference, id) in originals {
        assert!(
            run.stdout.contains(&format!("{reference}\tsha256:")),
            "{}",
            run.stdout
        );
        let _ = id;
    }
    // The old recipe still works on the gzip archives.
    remove_bundled(fx);
    for file in ["third-party.images.tar.gz", "fate.images.tar.gz"] {
        let _shared = support::engine_shared();
        fx.docker(&["load", "-i", out.join(file).to_str().unwrap()]);
    }
    assert_eq!(&ids(fx), originals);

    // On a host with nothing but the bundle: a directory holding only it, the working
    // directory outside any FATE root, no .env in reach.
    remove_bundled(fx);
    let bare = tempfile::tempdir().unwrap();
    let lonely = bare.path().join("bundle");
    support::copy_tree(out, &lonely);
    let nowhere = bare.path().join("elsewhere");
    fs::create_dir_all(&nowhere).unwrap();
    let mut bare_load = support::clean_command(support::BIN);
    bare_load
        .current_dir(&nowhere)
        .args(["load", lonely.to_str().unwrap()]);
    fx.engine.apply(&mut bare_load);
    let run = Run::from(run_with_engine(&mut bare_load)).ok();
    assert_eq!(&ids(fx), originals, "{}", run.stderr);
    // Checked as it loads: one pass over each archive.
    assert!(
        run.stderr.contains("done     load fate.images.tar.gz")
            && !run.stderr.contains("check fate.images"),
        "{}",
        run.stderr
    );

    // By hand, with the README's commands.
    remove_bundled(fx);
    let readme = fs::read_to_string(lonely.join("README")).unwrap();
    assert!(readme.contains("sha256sum -c SHA256SUMS"), "{readme}");
    assert!(
        readme.contains("docker load -i fate.images.tar.gz"),
        "{readme}"
    );
    by_hand(
        &fx.engine,
        &lonely,
        "sha256sum -c SHA256SUMS && docker load -i third-party.images.tar.gz && docker load -i fate.images.tar.gz",
    );
    assert_eq!(&ids(fx), originals);
}

fn zstd_on_a_terminal(fx: &Fixture, originals: &BTreeMap<String, String>) {
    // zstd, written and loaded by the tool on a terminal: bars with bytes done, the total,
    // the rate and the time left.
    let zst = fx.tmp.path().join("bundle zst");
    let on_terminal = |args: &[&str]| {
        let run = Run::from(run_with_engine(&mut support::on_terminal(
            &fx.command(args),
        )))
        .ok();
        run.stdout
    };
    let drawn = on_terminal(&[
        "bundle",
        "--compress",
        "zstd",
        "--out",
        zst.to_str().unwrap(),
    ]);
    assert!(zst.join("fate.images.tar.zst").is_file());
    // As indicatif draws it: `save x [=====>   ] 1.2 MiB/3.4 MiB 5.6 MiB/s eta 0s`.
    let has_bar = |drawn: &str, title: &str| {
        let size = r"[0-9.]+ [KMG]?i?B";
        regex::Regex::new(&format!(
            r"{} \[[=> ]+\] {size}/{size} {size}/s eta [0-9]+[smh]",
            regex::escape(title)
        ))
        .unwrap()
        .is_match(drawn)
    };
    for title in [
        "save fate.images.tar.zst",
        "save third-party.images.tar.zst",
    ] {
        assert!(has_bar(&drawn, title), "no bar for {title}: {drawn}");
    }
    remove_bundled(fx);
    let drawn = on_terminal(&["load", zst.to_str().unwrap()]);
    // One bar per archive: it is checked as it loads.
    assert!(
        has_bar(&drawn, "load fate.images.tar.zst"),
        "no bar for load fate.images.tar.zst: {drawn}"
    );
    assert_eq!(&ids(fx), originals);
    remove_bundled(fx);
    let readme = fs::read_to_string(zst.join("README")).unwrap();
    assert!(
        readme.contains("zstd -dc fate.images.tar.zst | docker load"),
        "{readme}"
    );
    by_hand(
        &fx.engine,
        &zst,
        "sha256sum -c SHA256SUMS && zstd -dc third-party.images.tar.zst | docker load && zstd -dc fate.images.tar.zst | docker load",
    );
    assert_eq!(&ids(fx), originals);
}

/// Damaged bundles are refused before anything is loaded.
fn damaged_bundles_load_nothing(fx: &Fixture, out: &Path) {
    // Damaged bundles are refused before anything is loaded.
    remove_bundled(fx);
    let damaged = |name: &str, damage: &dyn Fn(&Path)| {
        let dir = fx.tmp.path().join(name);
        support::copy_tree(out, &dir);
        damage(&dir);
        let run = Run::from(run_with_engine(
            &mut fx.command(&["load", dir.to_str().unwrap()]),
        ))
        .failed();
        assert!(ids(fx).is_empty(), "{name}: something was loaded");
        run.stderr
    };
    let flipped = damaged("flipped", &|d| {
        let f = d.join("fate.images.tar.gz");
        let mut bytes = fs::read(&f).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        fs::write(&f, bytes).unwrap();
    });
    assert!(
        flipped.contains("nothing was loaded") && flipped.contains("(corrupted)"),
        "{flipped}"
    );
    let truncated = damaged("truncated", &|d| {
        let f = d.join("fate.images.tar.gz");
        let bytes = fs::read(&f).unwrap();
        fs::write(&f, &bytes[..bytes.len() - 1000]).unwrap();
    });
    assert!(truncated.contains("truncated"), "{truncated}");
    let ghost = damaged("ghost", &|d| {
        let m = d.join("bundle.json");
        let text = fs::read_to_string(&m).unwrap();
        let first = text.find("\"reference\"").unwrap();
        let edited = format!(
            "{}\"reference\": \"{}/ghost:1.0\", \"id\": \"sha256:{}\"}}, {{{}",
            &text[..first],
            fx.prefix,
            "0".repeat(64),
            &text[first..]
        );
        fs::write(&m, edited).unwrap();
    });
    assert!(
        ghost.contains("does not hold") && ghost.contains("/ghost:1.0"),
        "{ghost}"
    );
    // The other archive, loading at the same time, was held back before its end.
    assert!(
        ghost.contains("loading") && ghost.contains("as another archive of the bundle failed"),
        "{ghost}"
    );
    let escape = damaged("escape", &|d| {
        let m = d.join("bundle.json");
        let text = fs::read_to_string(&m).unwrap();
        let edited = text.replace(
            "\"file\": \"third-party.images.tar.gz\"",
            "\"file\": \"../bundle gz/third-party.images.tar.gz\"",
        );
        assert_ne!(edited, text);
        fs::write(&m, edited).unwrap();
    });
    assert!(escape.contains("plain file name"), "{escape}");
}

#[test]
fn a_bundle_made_on_docker_20_loads_on_the_containerd_store() {
    across("across-to-26", Engine::system(), Engine::containerd());
}

#[test]
fn a_bundle_made_on_the_containerd_store_loads_on_docker_20() {
    across("across-to-20", Engine::containerd(), Engine::system());
}

/// A bundle made on one engine loads on the other, by the tool and by the README's
/// commands, as the images it holds: each loaded image is the one the bundle names (by
/// its config digest where the store's ID is the config, else by its layers), and the
/// IDs the tool prints are the ones the engine gave them.
/// Each direction has a prefix of its own: both run at once, and each removes its images
/// from both engines.
fn across(name: &str, from: Engine, to: Engine) {
    let fx = Fixture::mini_on(name, Builder::BuildKit, from);
    fx.xtask(&["images"]).ok();
    let out = fx.tmp.path().join("bundle");
    fx.xtask(&["bundle", "--out", out.to_str().unwrap()]).ok();
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("bundle.json")).unwrap()).unwrap();
    let there = fx.on(to);
    let run = there.xtask(&["load", out.to_str().unwrap()]).ok();
    let loaded = ids(&there);
    assert_eq!(loaded.len(), 10, "{loaded:?}\n{}", run.stderr);
    let printed: BTreeMap<&str, &str> = run
        .stdout
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .collect();
    assert_eq!(printed.len(), 10, "{}", run.stdout);
    for image in manifest["archives"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["images"].as_array().unwrap())
    {
        let reference = image["reference"].as_str().unwrap();
        let inspect = there.docker(&[
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{json .RootFS.Layers}}",
            reference,
        ]);
        let (id, layers) = inspect.split_once(' ').unwrap();
        assert_eq!(
            printed[reference], id,
            "the ID load printed for {reference}"
        );
        assert_eq!(
            layers,
            image["layers"].to_string(),
            "{reference}: the layers the bundle names"
        );
        if there.engine.store == support::engine::Store::GraphDriver {
            assert_eq!(id, image["config"].as_str().unwrap(), "{reference}");
        }
    }
    remove_bundled(&there);
    by_hand(
        &there.engine,
        &out,
        "sha256sum -c SHA256SUMS && docker load -i third-party.images.tar.gz && docker load -i fate.images.tar.gz",
    );
    assert_eq!(ids(&there), loaded, "by hand as by the tool");
    there.assert_clean();
    fx.assert_clean();
}

#[test]
fn an_arm64_bundle_from_two_platform_images_loads_as_arm64_on_both_stores() {
    let fx = Fixture::mini_on("arm64-of-two", Builder::BuildKit, Engine::containerd());
    let two = "linux/amd64,linux/arm64";
    fx.xtask(&["images", "--platform", two]).ok();
    // The third-party images are missing: the bundle builds them for its platform.
    for_one_platform(&fx, &[Engine::system(), Engine::containerd()]);
}

#[test]
fn an_arm64_bundle_from_a_graph_driver_loads_as_arm64_on_both_stores() {
    let fx = Fixture::mini_on("arm64-of-one", Builder::BuildKit, Engine::system());
    fx.xtask(&["images", "--platform", "linux/arm64"]).ok();
    fx.xtask(&["images", "third-party", "--platform", "linux/arm64"])
        .ok();
    // Images of one platform are not bundled as another's: refused before anything is
    // written.
    let refused = fx.tmp.path().join("refused");
    let run = fx
        .xtask(&[
            "bundle",
            "--platform",
            "linux/amd64",
            "--out",
            refused.to_str().unwrap(),
        ])
        .failed();
    assert!(
        run.stderr
            .contains("is built for linux/arm64 only, not linux/amd64"),
        "{}",
        run.stderr
    );
    assert!(
        !refused.exists(),
        "nothing is written, not even the directory"
    );
    for_one_platform(&fx, &[Engine::containerd(), Engine::system()]);
}

/// `bundle --platform linux/arm64` of `fx`'s images: bundle.json says arm64, and on each
/// engine of `targets` the tool loads every image as arm64 (with a warning naming both
/// platforms, these engines being amd64), with the IDs bundle.json gives where the store
/// keeps them; Docker 20.10 loads the same by hand. Then `verify` rebuilds each image for
/// the platforms it was built for, from its commit: the same images (by ID where the
/// engine's builder rewrites file times, else by their files).
fn for_one_platform(fx: &Fixture, targets: &[Engine]) {
    let out = fx.tmp.path().join("arm64 bundle");
    fx.xtask(&[
        "bundle",
        "--platform",
        "linux/arm64",
        "--out",
        out.to_str().unwrap(),
    ])
    .ok();
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("bundle.json")).unwrap()).unwrap();
    let images: Vec<&serde_json::Value> = manifest["archives"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["images"].as_array().unwrap())
        .collect();
    assert_eq!(images.len(), 10);
    for image in &images {
        assert_eq!(image["platform"], "linux/arm64", "{image}");
    }
    for engine in targets {
        let there = fx.on(engine.clone());
        remove_bundled(&there);
        let run = there.xtask(&["load", out.to_str().unwrap()]).ok();
        assert!(
            run.stderr.contains(
                "the bundle holds images for linux/arm64, and this engine runs linux/amd64"
            ),
            "{}",
            run.stderr
        );
        for image in &images {
            let reference = image["reference"].as_str().unwrap();
            let inspect = there.docker(&[
                "image",
                "inspect",
                "--format",
                "{{.Id}} {{.Os}}/{{.Architecture}} {{json .RootFS.Layers}}",
                reference,
            ]);
            let mut fields = inspect.splitn(3, ' ');
            let (id, platform, layers) = (
                fields.next().unwrap(),
                fields.next().unwrap(),
                fields.next().unwrap(),
            );
            assert_eq!(platform, "linux/arm64", "{reference} on {}", engine.name);
            assert_eq!(layers, image["layers"].to_string(), "{reference}");
            let expected = match there.engine.store {
                support::engine::Store::GraphDriver => &image["config"],
                support::engine::Store::Containerd if fx.engine.store == there.engine.store => {
                    &image["id"]
                }
                support::engine::Store::Containerd => continue,
            };
            assert_eq!(
                id,
                expected.as_str().unwrap(),
                "{reference} on {}",
                engine.name
            );
        }
        if there.engine.store == support::engine::Store::GraphDriver {
            remove_bundled(&there);
            by_hand(
                &there.engine,
                &out,
                "sha256sum -c SHA256SUMS && docker load -i third-party.images.tar.gz && docker load -i fate.images.tar.gz",
            );
            for image in &images {
                let reference = image["reference"].as_str().unwrap();
                assert_eq!(
                    there.docker(&[
                        "image",
                        "inspect",
                        "--format",
                        "{{.Architecture}}",
                        reference
                    ]),
                    "arm64"
                );
            }
        }
        there.assert_clean();
    }
    let run = fx.xtask(&["verify", out.to_str().unwrap()]).ok();
    let verdicts: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(verdict, _)| verdict))
        .collect();
    assert_eq!(verdicts.len(), 10, "{}", run.stdout);
    let alike: &[&str] = match fx.engine.store {
        // Rebuilt from the build cache on Docker 20.10 (not pruned here): the same IDs, or
        // every layer the same where the cache gives a config of its own time.
        support::engine::Store::GraphDriver => &["reproduced", "same-layers"],
        support::engine::Store::Containerd => &["reproduced"],
    };
    assert!(verdicts.iter().all(|v| alike.contains(v)), "{}", run.stdout);
}

/// `bundle` beside `images --force` on the same FATE root: the bundle waits for the
/// rebuild (the root's lock) and holds exactly the images, by ID, its manifest names.
#[test]
fn a_bundle_beside_a_rebuild_holds_what_its_manifest_names() {
    let fx = Fixture::mini("bundle-race");
    fx.xtask(&["images"]).ok();
    fx.xtask(&["images", "third-party"]).ok();
    let log = fx.root.join("target/xtask/logs/mvn-arch.log");
    fs::remove_file(&log).unwrap();
    let shared = support::engine_shared();
    let rebuild = fx
        .command(&["images", "--force"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !log.exists() {
        assert!(
            started.elapsed().as_secs() < 120,
            "the rebuild never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = fx.tmp.path().join("raced");
    let bundle = Run::from(
        fx.command(&["bundle", "--out", out.to_str().unwrap()])
            .output()
            .unwrap(),
    )
    .ok();
    let rebuilt = Run::from(rebuild.wait_with_output().unwrap()).ok();
    drop(shared);
    assert!(
        bundle
            .stderr
            .contains("another cargo xtask is running on this FATE root; waiting"),
        "{}",
        bundle.stderr
    );
    // The bundle writes no run report: the rebuild's is its own.
    assert_eq!(fx.steps_ran().len(), 13, "{}", rebuilt.stdout);
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("bundle.json")).unwrap()).unwrap();
    let named: BTreeMap<String, String> = manifest["archives"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["images"].as_array().unwrap().iter())
        .map(|i| {
            let id = i["id"].as_str().unwrap().trim_start_matches("sha256:");
            (
                i["reference"].as_str().unwrap().to_string(),
                id[..12].to_string(),
            )
        })
        .collect();
    assert_eq!(
        named,
        ids(&fx),
        "the manifest names the images as they are now"
    );
    remove_bundled(&fx);
    fx.xtask(&["load", out.to_str().unwrap()]).ok();
    assert_eq!(ids(&fx), named);
    fx.assert_clean();
}

on_both_engines!(
    signed_bundles_load_only_with_a_good_signature,
    signed_bundles
);

/// Signed bundles: signed with a password-protected key made by Debian's `minisign` (the
/// password from the environment, appearing nowhere), verified by hand with it and by
/// `load --verify-key` before any archive is read; a bundle checked against another key,
/// one whose archive was swapped for another valid one (bundle.json and SHA256SUMS
/// rewritten to match), and an unsigned one load nothing; keys of `cargo xtask keygen`
/// (with and without a password) sign bundles `minisign` verifies.
fn signed_bundles(engine: Engine) {
    support::ensure_packages("minisign", &["minisign"]);
    let fx = Fixture::mini_on("signed", Builder::Legacy, engine);
    fx.xtask(&["images"]).ok();
    let keys = fx.tmp.path().join("keys");
    fs::create_dir_all(&keys).unwrap();
    let (public, secret) = (keys.join("a.pub"), keys.join("a.key"));
    // A key of Debian's minisign, with a password (given on its stdin here).
    run_ok(
        std::process::Command::new("sh")
            .arg("-c")
            .arg("printf 'pw-of-a\\npw-of-a\\n' | minisign -G -p \"$1\" -s \"$2\"")
            .arg("sh")
            .arg(&public)
            .arg(&secret),
    );
    let out = fx.tmp.path().join("signed bundle");
    let mut sign = fx.command(&[
        "bundle",
        "--out",
        out.to_str().unwrap(),
        "--sign-key",
        secret.to_str().unwrap(),
        "--sign-password-env",
        "KEY_A_PW",
    ]);
    sign.env("KEY_A_PW", "pw-of-a");
    let run = Run::from(run_with_engine(&mut sign)).ok();
    assert!(!run.stdout.contains("pw-of-a") && !run.stderr.contains("pw-of-a"));
    for file in ["bundle.json.minisig", "SHA256SUMS.minisig"] {
        assert!(out.join(file).is_file(), "{file}");
    }
    // By hand, as the bundle's README says.
    let readme = fs::read_to_string(out.join("README")).unwrap();
    let commands = "minisign -Vm bundle.json -p KEY.pub && minisign -Vm SHA256SUMS -p KEY.pub && sha256sum -c SHA256SUMS";
    assert!(readme.contains(commands), "{readme}");
    fs::copy(&public, out.join("KEY.pub")).unwrap();
    by_hand(&fx.engine, &out, commands);
    fs::remove_file(out.join("KEY.pub")).unwrap();

    // The tool: with the key, without it (a note), with another key (refused).
    remove_bundled(&fx);
    let verify = [
        "load",
        out.to_str().unwrap(),
        "--verify-key",
        public.to_str().unwrap(),
    ];
    fx.xtask(&verify).ok();
    assert_eq!(ids(&fx).len(), 10);
    remove_bundled(&fx);
    let run = fx.xtask(&["load", out.to_str().unwrap()]).ok();
    assert!(
        run.stderr
            .contains("is signed, but its signature was not checked"),
        "{}",
        run.stderr
    );
    remove_bundled(&fx);
    let other = fx.tmp.path().join("other keys");
    fx.xtask(&["keygen", "--out", other.to_str().unwrap()]).ok();
    let other_pub = other.join("fate-bundle.pub");
    let refused = |dir: &Path, key: &Path, expected: &str| {
        let mut c = fx.command(&["load", dir.to_str().unwrap()]);
        c.env("FATE_XTASK_VERIFY_KEY", key);
        let run = Run::from(run_with_engine(&mut c)).failed();
        assert!(run.stderr.contains(expected), "{expected}: {}", run.stderr);
        assert!(run.stderr.contains("nothing was loaded"), "{}", run.stderr);
        assert!(ids(&fx).is_empty(), "something was loaded");
    };
    refused(&out, &other_pub, "does not match the key");

    // An archive swapped for another valid one, bundle.json and SHA256SUMS rewritten.
    let swapped = fx.tmp.path().join("swapped");
    support::copy_tree(&out, &swapped);
    fs::copy(
        swapped.join("third-party.images.tar.gz"),
        swapped.join("fate.images.tar.gz"),
    )
    .unwrap();
    let mut manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(swapped.join("bundle.json")).unwrap()).unwrap();
    let archive = swapped.join("fate.images.tar.gz");
    let third_party_images = manifest["archives"][0]["images"].clone();
    let fate = &mut manifest["archives"][1];
    fate["size"] = fs::metadata(&archive).unwrap().len().into();
    fate["sha256"] = support::sha256(&archive).into();
    fate["images"] = third_party_images;
    fs::write(swapped.join("bundle.json"), manifest.to_string()).unwrap();
    let sums: String = manifest["archives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{}  {}\n",
                a["sha256"].as_str().unwrap(),
                a["file"].as_str().unwrap()
            )
        })
        .collect();
    fs::write(swapped.join("SHA256SUMS"), sums).unwrap();
    refused(&swapped, &public, "does not match the key");
    // No signature at all.
    fs::remove_file(swapped.join("bundle.json.minisig")).unwrap();
    refused(&swapped, &public, "is not signed");

    // A password-protected key: the password from the environment, never in argv or output.
    fx.xtask(&verify).ok();
    let locked = fx.tmp.path().join("locked keys");
    let mut keygen = fx.command(&[
        "keygen",
        "--out",
        locked.to_str().unwrap(),
        "--password-env",
        "BUNDLE_PW",
    ]);
    keygen.env("BUNDLE_PW", "s3cret-bundle-pw");
    Run::from(run_with_engine(&mut keygen)).ok();
    let locked_out = fx.tmp.path().join("locked bundle");
    let mut sign = fx.command(&[
        "bundle",
        "--out",
        locked_out.to_str().unwrap(),
        "--sign-key",
        locked.join("fate-bundle.key").to_str().unwrap(),
        "--sign-password-env",
        "BUNDLE_PW",
    ]);
    sign.env("BUNDLE_PW", "s3cret-bundle-pw");
    let run = Run::from(run_with_engine(&mut sign)).ok();
    assert!(!run.stdout.contains("s3cret") && !run.stderr.contains("s3cret"));
    run_ok(
        std::process::Command::new("minisign")
            .args(["-Vm"])
            .arg(locked_out.join("bundle.json"))
            .arg("-p")
            .arg(locked.join("fate-bundle.pub")),
    );

    // That key with no password given and no terminal to ask on (CI, cron): says how.
    let mut no_terminal = std::process::Command::new("setsid");
    let unattended = fx.command(&[
        "bundle",
        "--out",
        locked_out.to_str().unwrap(),
        "--sign-key",
        locked.join("fate-bundle.key").to_str().unwrap(),
    ]);
    no_terminal
        .arg("--wait")
        .arg(unattended.get_program())
        .args(unattended.get_args())
        .stdin(std::process::Stdio::null());
    for (key, value) in unattended.get_envs() {
        match value {
            Some(value) => no_terminal.env(key, value),
            None => no_terminal.env_remove(key),
        };
    }
    let run = Run::from(run_with_engine(&mut no_terminal)).failed();
    assert!(
        run.stderr.contains("there is no terminal to ask it on")
            && run.stderr.contains("--sign-password-env VAR"),
        "{}",
        run.stderr
    );

    // A passwordless key of Debian's minisign (`-G -W`, as CI signs) signs bundles too.
    let (open_pub, open_key) = (keys.join("open.pub"), keys.join("open.key"));
    run_ok(
        std::process::Command::new("minisign")
            .args(["-G", "-W", "-p"])
            .arg(&open_pub)
            .arg("-s")
            .arg(&open_key),
    );
    let open_out = fx.tmp.path().join("open bundle");
    fx.xtask(&[
        "bundle",
        "--out",
        open_out.to_str().unwrap(),
        "--sign-key",
        open_key.to_str().unwrap(),
    ])
    .ok();
    run_ok(
        std::process::Command::new("minisign")
            .args(["-Vm"])
            .arg(open_out.join("bundle.json"))
            .arg("-p")
            .arg(&open_pub),
    );
    fx.assert_clean();
}

/// Runs `command`, which must succeed (what it said shown when it does not).
fn run_ok(command: &mut std::process::Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
