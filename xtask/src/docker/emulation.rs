//! Whether this host runs programs of another platform: BuildKit builds a foreign
//! platform's `RUN` steps under QEMU, registered with the kernel's binfmt_misc (Debian's
//! `qemu-user-static`). `COPY`-only Dockerfiles need none.

use std::path::Path;

/// The binfmt_misc entry QEMU registers for a platform's architecture (`linux/arm64` ->
/// `qemu-aarch64`), or None for an architecture QEMU does not emulate.
#[must_use]
pub fn binfmt_entry(platform: &str) -> Option<&'static str> {
    let arch = platform.split('/').nth(1)?;
    Some(match arch {
        "amd64" => "qemu-x86_64",
        "arm64" => "qemu-aarch64",
        "arm" => "qemu-arm",
        "386" => "qemu-i386",
        "ppc64le" => "qemu-ppc64le",
        "s390x" => "qemu-s390x",
        "riscv64" => "qemu-riscv64",
        "mips64le" => "qemu-mips64el",
        _ => return None,
    })
}

/// What this host says of running `platform`'s programs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Emulation {
    /// The host's own architecture (or one it runs natively, as amd64 runs 386).
    Native,
    /// QEMU is registered for it.
    Registered(&'static str),
    /// Nothing runs its programs here; how to get it.
    Missing(String),
}

/// Whether `platform`'s programs run on a host of `host_platform`, from the binfmt_misc
/// entries under `binfmt_dir` (normally `/proc/sys/fs/binfmt_misc`).
#[must_use]
pub fn emulation(platform: &str, host_platform: &str, binfmt_dir: &Path) -> Emulation {
    let arch = |p: &str| p.split('/').nth(1).unwrap_or_default().to_string();
    let (want, host) = (arch(platform), arch(host_platform));
    if want == host || (host == "amd64" && want == "386") || (host == "arm64" && want == "arm") {
        return Emulation::Native;
    }
    let how = "apt-get install qemu-user-static (Debian, Ubuntu: it registers QEMU with binfmt_misc), or docker run --privileged --rm tonistiigi/binfmt --install all";
    let Some(entry) = binfmt_entry(platform) else {
        return Emulation::Missing(format!(
            "QEMU does not emulate {platform}: build its images on a {platform} host"
        ));
    };
    let registered = std::fs::read_to_string(binfmt_dir.join(entry))
        .is_ok_and(|text| text.lines().next() == Some("enabled"));
    if registered {
        Emulation::Registered(entry)
    } else {
        Emulation::Missing(format!(
            "{} has no enabled {entry}: {how}",
            binfmt_dir.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_platform_needs_its_qemu_entry_enabled() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            emulation("linux/amd64", "linux/amd64", dir.path()),
            Emulation::Native
        );
        let Emulation::Missing(how) = emulation("linux/arm64/v8", "linux/amd64", dir.path()) else {
            panic!()
        };
        assert!(
            how.contains("qemu-aarch64") && how.contains("qemu-user-static"),
            "{how}"
        );
        std::fs::write(dir.path().join("qemu-aarch64"), "disabled\ninterpreter x\n").unwrap();
        assert!(matches!(
            emulation("linux/arm64", "linux/amd64", dir.path()),
            Emulation::Missing(_)
        ));
        std::fs::write(dir.path().join("qemu-aarch64"), "enabled\ninterpreter x\n").unwrap();
        assert_eq!(
            emulation("linux/arm64", "linux/amd64", dir.path()),
            Emulation::Registered("qemu-aarch64")
        );
        assert!(matches!(
            emulation("windows/sparc", "linux/amd64", dir.path()),
            Emulation::Missing(_)
        ));
    }
}
