#![allow(
    clippy::too_many_lines,
    reason = "a real-engine scenario reads best as one story"
)]
//! Bundles for the air gap, with real engines: split for removable media, update bundles
//! and the SBOMs they carry.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use support::bundles::{by_hand, ids, remove_bundled};
use support::{Builder, Engine, Fixture, Run, run_with_engine};

/// `len` bytes that do not compress (a xorshift stream), so that an archive holding them
/// is as large as they are.
fn write_noise(path: &Path, len: usize) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..len / 8)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect();
    fs::write(path, bytes).unwrap();
}

/// The files of a directory, by name, with their sizes.
fn files(dir: &Path) -> Vec<(String, u64)> {
    let mut found: Vec<(String, u64)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    found.sort();
    found
}

on_both_engines!(
    split_bundles_load_from_their_parts_and_refuse_any_bad_part,
    split_bundle
);

/// `bundle --split-size 1MiB`: no file over 1 MiB, each part listed with its size and
/// sha256; loaded by hand with the README's `cat` and by the tool, streaming the parts;
/// a missing, added, reordered or damaged part loads nothing.
fn split_bundle(engine: Engine) {
    let fx = Fixture::mini_on("split", Builder::Legacy, engine);
    // Incompressible bytes in the python tree (in the python and egg images): the
    // modules' archive needs several parts.
    write_noise(&fx.root.join("federatedml/noise.bin"), 3 << 20);
    support::commit_all(&fx.root, "noise");
    fx.xtask(&["images"]).ok();
    let out = fx.tmp.path().join("split bundle");
    fx.xtask(&[
        "bundle",
        "--out",
        out.to_str().unwrap(),
        "--split-size",
        "1MiB",
    ])
    .ok();
    let originals = ids(&fx);
    assert_eq!(originals.len(), 10, "{originals:?}");

    let written = files(&out);
    for (name, size) in &written {
        assert!(*size <= 1 << 20, "{name} is {size} bytes");
    }
    let names: Vec<&str> = written.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        !names.iter().any(|n| n.contains(".part")),
        "nothing temporary is left: {names:?}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("bundle.json")).unwrap()).unwrap();
    let fate = &manifest["archives"][1];
    let parts = fate["parts"].as_array().unwrap();
    assert!(parts.len() >= 6, "two copies of 3 MiB of noise: {parts:?}");
    let mut listed = Vec::new();
    let mut total = 0;
    for (i, part) in parts.iter().enumerate() {
        let file = part["file"].as_str().unwrap();
        assert_eq!(file, format!("fate.images.tar.gz.{:03}", i + 1));
        let path = out.join(file);
        assert_eq!(
            part["size"].as_u64().unwrap(),
            fs::metadata(&path).unwrap().len()
        );
        assert_eq!(part["sha256"].as_str().unwrap(), support::sha256(&path));
        total += part["size"].as_u64().unwrap();
        listed.push(file.to_string());
    }
    assert_eq!(fate["size"].as_u64().unwrap(), total);
    assert!(
        !out.join("fate.images.tar.gz").exists(),
        "never reassembled"
    );
    let sums = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    for file in &listed {
        assert!(sums.contains(&format!("  {file}\n")), "{file}: {sums}");
    }

    // By hand, as the README writes it.
    let readme = fs::read_to_string(out.join("README")).unwrap();
    for line in [
        "sha256sum -c SHA256SUMS",
        "cat fate.images.tar.gz.* | docker load",
        "cat third-party.images.tar.gz.* | docker load",
    ] {
        assert!(readme.contains(&format!("  {line}\n")), "{line}: {readme}");
    }
    remove_bundled(&fx);
    by_hand(
        &fx.engine,
        &out,
        "sha256sum -c SHA256SUMS && cat fate.images.tar.gz.* | docker load && cat third-party.images.tar.gz.* | docker load",
    );
    assert_eq!(ids(&fx), originals, "by hand");

    // By the tool.
    remove_bundled(&fx);
    let run = fx.xtask(&["load", out.to_str().unwrap()]).ok();
    assert_eq!(ids(&fx), originals, "{}", run.stderr);

    // A bad part loads nothing, and says which part and why.
    remove_bundled(&fx);
    let damaged = |name: &str, damage: &dyn Fn(&Path)| {
        let dir = fx.tmp.path().join(name);
        support::copy_tree(&out, &dir);
        damage(&dir);
        let run = Run::from(run_with_engine(
            &mut fx.command(&["load", dir.to_str().unwrap()]),
        ))
        .failed();
        assert!(ids(&fx).is_empty(), "{name}: something was loaded");
        assert!(run.stderr.contains("nothing was loaded"), "{}", run.stderr);
        run.stderr
    };
    let missing = damaged("missing part", &|d| {
        fs::remove_file(d.join("fate.images.tar.gz.002")).unwrap();
    });
    assert!(
        missing.contains("fate.images.tar.gz.002 is missing"),
        "{missing}"
    );
    let next = format!("fate.images.tar.gz.{:03}", parts.len() + 1);
    let extra = damaged("extra part", &|d| {
        fs::copy(d.join("fate.images.tar.gz.001"), d.join(&next)).unwrap();
    });
    assert!(
        extra.contains(&format!("{next}: not a part of this bundle")),
        "{extra}"
    );
    let reordered = damaged("reordered parts", &|d| {
        let (a, b) = (
            d.join("fate.images.tar.gz.002"),
            d.join("fate.images.tar.gz.003"),
        );
        fs::rename(&a, d.join("swap")).unwrap();
        fs::rename(&b, &a).unwrap();
        fs::rename(d.join("swap"), &b).unwrap();
    });
    assert!(
        reordered.contains("fate.images.tar.gz.002: sha256 is")
            && reordered.contains("fate.images.tar.gz.003: sha256 is"),
        "{reordered}"
    );
    let flipped = damaged("damaged part", &|d| {
        let f = d.join("fate.images.tar.gz.004");
        let mut bytes = fs::read(&f).unwrap();
        bytes[1000] ^= 0x01;
        fs::write(&f, bytes).unwrap();
    });
    assert!(
        flipped.contains("fate.images.tar.gz.004: sha256 is") && flipped.contains("(corrupted)"),
        "{flipped}"
    );

    // Written again whole into the same directory: no part is left for `cat` to read.
    fx.xtask(&["load", out.to_str().unwrap()]).ok();
    fx.xtask(&["bundle", "--out", out.to_str().unwrap()]).ok();
    let names: Vec<String> = files(&out).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, support::bundles::bundle_files());
    fx.assert_clean();
}

on_both_engines!(
    update_bundles_carry_only_what_changed_and_name_what_a_host_still_needs,
    update_bundle
);

/// `bundle --since OLD` after a python edit: only python and egg, the old bundle named;
/// onto a host holding the old bundle every image ends at its new ID; onto a host
/// without it, load loads nothing and names the bundle to load first, and with
/// `--allow-partial` loads what the update carries and exits 3; a chain loaded with a
/// gap is refused the same way.
fn update_bundle(engine: Engine) {
    let fx = Fixture::mini_on("update", Builder::Legacy, engine);
    fx.xtask(&["images"]).ok();
    let old = fx.tmp.path().join("old bundle");
    fx.xtask(&["bundle", "--out", old.to_str().unwrap()]).ok();
    let old_ids = ids(&fx);
    assert_eq!(old_ids.len(), 10);

    let init = fx.root.join("federatedml/__init__.py");
    let text = fs::read_to_string(&init).unwrap();
    fs::write(&init, format!("{text}# edited\n")).unwrap();
    support::commit_all(&fx.root, "a python edit");
    fx.xtask(&["images"]).ok();
    let new_ids = ids(&fx);
    let changed: Vec<String> = new_ids
        .iter()
        .filter(|(r, id)| old_ids[*r] != **id)
        .map(|(r, _)| r.clone())
        .collect();
    assert_eq!(
        changed,
        [fx.reference("egg"), fx.reference("python")],
        "the python tree is in the egg and python images"
    );

    let update = fx.tmp.path().join("update");
    fx.xtask(&[
        "bundle",
        "--since",
        old.to_str().unwrap(),
        "--out",
        update.to_str().unwrap(),
    ])
    .ok();
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(update.join("bundle.json")).unwrap()).unwrap();
    let old_manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(old.join("bundle.json")).unwrap()).unwrap();
    let archives = manifest["archives"].as_array().unwrap();
    assert_eq!(archives.len(), 1, "no third-party archive: {manifest}");
    assert_eq!(archives[0]["file"], "fate.images.tar.gz");
    let mut carried: Vec<String> = archives[0]["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reference"].as_str().unwrap().to_string())
        .collect();
    carried.sort();
    assert_eq!(carried, changed);
    let updates = &manifest["updates"];
    assert_eq!(updates["created"], old_manifest["created"]);
    assert_eq!(
        updates["sha256"].as_str().unwrap(),
        support::sha256(&old.join("bundle.json"))
    );
    let unchanged: Vec<&str> = updates["unchanged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reference"].as_str().unwrap())
        .collect();
    assert_eq!(unchanged.len(), 8, "{unchanged:?}");
    assert!(unchanged.iter().all(|r| !changed.iter().any(|c| c == r)));
    let readme = fs::read_to_string(update.join("README")).unwrap();
    assert!(
        readme.contains("This bundle updates the bundle written"),
        "{readme}"
    );

    // A host that loaded the old bundle: every image ends at its new ID.
    remove_bundled(&fx);
    fx.xtask(&["load", old.to_str().unwrap()]).ok();
    assert_eq!(ids(&fx), old_ids);
    let run = fx.xtask(&["load", update.to_str().unwrap()]).ok();
    assert_eq!(ids(&fx), new_ids);
    assert!(!run.stderr.contains("lacks"), "{}", run.stderr);

    // A host without it: nothing loads, and load names the bundle to load first.
    remove_bundled(&fx);
    let run = fx.xtask(&["load", update.to_str().unwrap()]).failed();
    assert_eq!(run.code, Some(1));
    assert!(ids(&fx).is_empty(), "an update loaded without its base");
    let base = format!(
        "updates the bundle written {} (bundle.json sha256 {})",
        old_manifest["created"].as_str().unwrap(),
        support::sha256(&old.join("bundle.json"))
    );
    assert!(
        run.stderr.contains(&base)
            && run
                .stderr
                .contains("nothing was loaded: load that bundle first")
            && run.stderr.contains("--allow-partial"),
        "{}",
        run.stderr
    );
    // With --allow-partial: what the update carries loads, and the exit code says the
    // host does not hold the release.
    let run = fx.xtask(&["load", update.to_str().unwrap(), "--allow-partial"]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    let now = ids(&fx);
    assert_eq!(now.keys().cloned().collect::<Vec<_>>(), changed);
    assert!(now.iter().all(|(r, id)| new_ids[r] == *id));
    assert!(
        run.stderr
            .contains("this host lacks these images of that bundle")
            && run.stderr.contains("does not hold the release"),
        "{}",
        run.stderr
    );
    for reference in &unchanged {
        assert!(
            run.stderr.contains(&format!("{reference} (not present)")),
            "{reference}: {}",
            run.stderr
        );
    }

    // Nothing changed since the update: an update of no archive, which loads as a check.
    fx.xtask(&["load", old.to_str().unwrap()]).ok();
    fx.xtask(&["load", update.to_str().unwrap()]).ok();
    let nothing = fx.tmp.path().join("nothing new");
    let run = fx
        .xtask(&[
            "bundle",
            "--since",
            update.join("bundle.json").to_str().unwrap(),
            "--out",
            nothing.to_str().unwrap(),
        ])
        .ok();
    assert!(
        run.stderr.contains("the update carries no archive"),
        "{}",
        run.stderr
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(nothing.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(manifest["archives"].as_array().unwrap().len(), 0);
    assert_eq!(
        manifest["updates"]["unchanged"].as_array().unwrap().len(),
        10
    );
    let run = fx.xtask(&["load", nothing.to_str().unwrap()]).ok();
    assert!(!run.stderr.contains("lacks"), "{}", run.stderr);
    assert_eq!(ids(&fx), new_ids);

    // The chain old -> update -> nothing, loaded as old then nothing: the gap is named.
    remove_bundled(&fx);
    fx.xtask(&["load", old.to_str().unwrap()]).ok();
    let run = fx.xtask(&["load", nothing.to_str().unwrap()]).failed();
    let gap = format!(
        "updates the bundle written {}",
        manifest["updates"]["created"].as_str().unwrap()
    );
    assert!(
        run.stderr.contains(&gap) && run.stderr.contains(&fx.reference("python")),
        "{}",
        run.stderr
    );
    assert_eq!(ids(&fx), old_ids, "the chain's gap loaded something");
    fx.assert_clean();
}

/// The SPDX project's validator (see [`support::spdx_validator`]).
fn pyspdxtools(document: &Path) {
    let validated = std::process::Command::new(support::spdx_validator())
        .arg("-i")
        .arg(document)
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "{}: {}{}",
        document.display(),
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );
}

/// The regular files of a directory tree, by path relative to it, with their sha256.
/// The sha256 of every file staged in the context `dir`, by its path in the image: the
/// example's Dockerfiles copy each directory of the context to the image's root.
fn image_sha256s(dir: &Path) -> std::collections::BTreeMap<String, String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let staged = e.path().strip_prefix(dir).unwrap();
            let in_image: PathBuf = staged.components().skip(1).collect();
            (
                format!("./{}", in_image.display()),
                support::sha256(e.path()),
            )
        })
        .collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// The package of `doc` named `name`.
fn package<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no package {name} in {doc}"))
}

fn checksum<'a>(item: &'a serde_json::Value, algorithm: &str) -> &'a str {
    item["checksums"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["algorithm"] == algorithm)
        .unwrap()["checksumValue"]
        .as_str()
        .unwrap()
}

on_both_engines!(
    every_bundled_module_image_carries_a_valid_sbom_of_what_was_staged,
    sboms
);

/// `images` writes an SPDX 2.3 SBOM of every image it builds, made from what it staged;
/// the bundle carries those of its module images, listed and summed; they validate with
/// `pyspdxtools`; a damaged one loads nothing, and one of another image is refused.
fn sboms(engine: Engine) {
    let fx = Fixture::mini_on("sbom", Builder::Legacy, engine);
    fx.xtask(&["images"]).ok();
    let work = fx.root.join("target/xtask");
    let out = fx.tmp.path().join("bundle with sboms");
    fx.xtask(&["bundle", "--out", out.to_str().unwrap()]).ok();
    let manifest = json(&out.join("bundle.json"));
    let listed = manifest["sboms"].as_array().unwrap();
    assert_eq!(listed.len(), 8, "one per module: {manifest}");
    let sums = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    let commit = support::git(&fx.root, &["rev-parse", "HEAD"]);
    let platform = fx.docker(&["version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"]);
    for sbom in listed {
        let file = out.join(sbom["file"].as_str().unwrap());
        assert_eq!(sbom["sha256"].as_str().unwrap(), support::sha256(&file));
        assert_eq!(
            sbom["size"].as_u64().unwrap(),
            fs::metadata(&file).unwrap().len()
        );
        assert!(sums.contains(sbom["file"].as_str().unwrap()), "{sums}");
        pyspdxtools(&file);

        // The image: reference, ID, platform, source commit.
        let reference = sbom["image"].as_str().unwrap();
        let doc = json(&file);
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        let image = package(&doc, reference);
        let id = fx.docker(&["image", "inspect", "--format", "{{.Id}}", reference]);
        assert_eq!(image["externalRefs"][0]["referenceLocator"], id.as_str());
        assert!(
            image["sourceInfo"].as_str().unwrap().contains(&commit),
            "{image}"
        );
        assert!(
            image["comment"]
                .as_str()
                .unwrap()
                .contains(&format!("platform {platform}")),
            "{image}"
        );
        // Every file staged into its context, by its path in the image, with its sha256,
        // and nothing else.
        let name = sbom["file"]
            .as_str()
            .unwrap()
            .trim_end_matches(".spdx.json");
        let staged = image_sha256s(&work.join("contexts").join(name));
        let described: std::collections::BTreeMap<String, String> = doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["fileName"].as_str().unwrap().to_string(),
                    checksum(f, "SHA256").to_string(),
                )
            })
            .collect();
        assert_eq!(described, staged, "{name}");
    }

    // A Maven module's jar by the pom's coordinates, a lib/ jar by its pom.properties,
    // both with the sha256 of the bytes packaged.
    let roll = json(&out.join("roll.spdx.json"));
    let jar = package(&roll, "com.webank.ai.fate:fate-roll");
    assert_eq!(
        jar["externalRefs"][0]["referenceLocator"],
        format!(
            "pkg:maven/com.webank.ai.fate/fate-roll@{}",
            jar["versionInfo"].as_str().unwrap()
        )
    );
    let packaged = work
        .join("contexts/roll/image")
        .join(jar["packageFileName"].as_str().unwrap());
    assert_eq!(checksum(jar, "SHA256"), support::sha256(&packaged));
    let lib = package(&roll, "org.apache.commons:commons-lang3");
    assert!(
        lib["externalRefs"][0]["referenceLocator"]
            .as_str()
            .unwrap()
            .starts_with("pkg:maven/org.apache.commons/commons-lang3@"),
        "{lib}"
    );
    assert!(
        lib["packageFileName"]
            .as_str()
            .unwrap()
            .starts_with("./data/projects/fate/roll/lib/"),
        "{lib}"
    );
    // The Python requirements, pinned, from the base image python builds on.
    let python = json(&out.join("python.spdx.json"));
    let numpy = package(&python, "numpy");
    assert_eq!(numpy["versionInfo"], "1.16.4");
    assert_eq!(
        numpy["externalRefs"][0]["referenceLocator"],
        "pkg:pypi/numpy@1.16.4"
    );
    assert!(
        numpy["comment"].as_str().unwrap().starts_with(&format!(
            "from the parent image {}",
            fx.reference("base-image")
        )),
        "{numpy}"
    );

    // A damaged SBOM: nothing is loaded.
    remove_bundled(&fx);
    let damaged = fx.tmp.path().join("damaged sbom");
    support::copy_tree(&out, &damaged);
    let roll_sbom = damaged.join("roll.spdx.json");
    let text = fs::read_to_string(&roll_sbom).unwrap();
    fs::write(&roll_sbom, text.replace("fate-roll", "fate-r0ll")).unwrap();
    let run = Run::from(run_with_engine(
        &mut fx.command(&["load", damaged.to_str().unwrap()]),
    ))
    .failed();
    assert!(
        run.stderr.contains("roll.spdx.json: sha256 is")
            && run.stderr.contains("nothing was loaded"),
        "{}",
        run.stderr
    );
    assert!(ids(&fx).is_empty(), "something was loaded");
    fx.xtask(&["load", out.to_str().unwrap()]).ok();

    // An SBOM of another image is refused before anything is written.
    fs::copy(
        work.join("sbom/python.spdx.json"),
        work.join("sbom/roll.spdx.json"),
    )
    .unwrap();
    let again = fx.tmp.path().join("refused");
    let run = fx
        .command(&["bundle", "--out", again.to_str().unwrap()])
        .output()
        .unwrap();
    let run = Run::from(run).failed();
    assert!(
        run.stderr.contains("roll.spdx.json describes image")
            && run.stderr.contains("remove it and run cargo xtask images"),
        "{}",
        run.stderr
    );
    assert!(!again.join("bundle.json").exists());
    fs::remove_file(work.join("sbom/roll.spdx.json")).unwrap();
    fx.xtask(&["images"]).ok();
    fx.xtask(&["bundle", "--out", again.to_str().unwrap()]).ok();
    assert_eq!(
        json(&again.join("roll.spdx.json"))["packages"][0]["name"],
        fx.reference("roll").as_str()
    );
    fx.assert_clean();
}
