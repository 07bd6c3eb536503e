//! The egg's make command line for real: a storage service in the shape of FATE's
//! (`which protoc` in its Makefile, a system-check, `-L./third_party/lib`) compiled with
//! make and g++ against libraries a builder image compiled, on a toolchain image made
//! from Debian's archive; the binary must then run in the image.

mod support;

use std::process::Command;

use support::{Builder, Fixture};

fn docker_run(args: &[&str]) -> std::process::Output {
    let mut c = Command::new("docker");
    c.args(["run", "--rm"]).args(args);
    support::run_with_engine(&mut c)
}

#[test]
fn the_egg_make_line_builds_a_fate_shaped_storage_service_that_runs() {
    let toolchain = support::toolchain_image();
    let fx = Fixture::example("cxx-egg", "cxx", Builder::BuildKit);
    let run = support::Run::from(support::run_with_engine(
        fx.command(&["images", "--no-cache"])
            .env("TOOLCHAIN_IMAGE", &toolchain),
    ))
    .ok();
    assert_eq!(
        fx.images_built(),
        ["egg", "storage-service-builder"],
        "{}",
        run.stdout
    );
    let log = std::fs::read_to_string(fx.root.join("target/xtask/logs/build-egg.log")).unwrap();
    assert!(
        log.contains("g++ -o storage-service-0.3 storage.pb.o storage-service.o"),
        "{log}"
    );

    // It runs, with the library path the image sets.
    let egg = fx.reference("egg");
    let out = docker_run(&[&egg, "./storage-service", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("proto package: com.webank.ai.eggroll.api.storage"),
        "{text}"
    );
    assert!(text.contains("linked with: tiny 3.0.0"), "{text}");

    // Without that library path it cannot start: the path is what makes it run.
    let out = docker_run(&[
        "-e",
        "LD_LIBRARY_PATH=",
        &egg,
        "./storage-service",
        "--help",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("libtiny.so"));

    // And the Makefile's own check stops a make without the tool paths, as it stopped
    // the old egg build.
    let out = docker_run(&[
        &egg,
        "make",
        "-C",
        "/data/projects/fate/storage-service-cxx",
        "system-check",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("DEPENDENCY ERROR"));
    fx.assert_clean();
}
