//! Image platforms as Docker writes them: `os/arch[/variant]`.

/// `linux/arm64/v8` is `linux/arm64`.
#[must_use]
pub fn same_platform(image: &str, engine: &str) -> bool {
    let cut = |p: &str| p.split('/').take(2).collect::<Vec<_>>().join("/");
    cut(image) == cut(engine)
}

/// `os/arch[/variant]`, lowercase.
#[must_use]
pub fn is_platform(p: &str) -> bool {
    let parts: Vec<&str> = p.split('/').collect();
    (2..=3).contains(&parts.len())
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

/// The operating systems and architectures (with their variants) images are built for,
/// as Go and the OCI image spec name them.
const SYSTEMS: [&str; 2] = ["linux", "windows"];
const ARCHITECTURES: [(&str, &[&str]); 10] = [
    ("amd64", &["v1", "v2", "v3", "v4"]),
    ("arm64", &["v8"]),
    ("arm", &["v5", "v6", "v7", "v8"]),
    ("386", &[]),
    ("ppc64le", &[]),
    ("s390x", &[]),
    ("riscv64", &[]),
    ("mips64le", &[]),
    ("mips64", &[]),
    ("loong64", &[]),
];

/// `os/arch[/variant]` that a builder can target: a known system, architecture and variant
/// (`linux/notanarch` is refused before any work, not built and tagged).
pub fn check_platform(p: &str) -> Result<(), String> {
    if !is_platform(p) {
        return Err(
            "is not a platform; write os/arch[/variant], e.g. linux/amd64 or linux/arm64".into(),
        );
    }
    let parts: Vec<&str> = p.split('/').collect();
    if !SYSTEMS.contains(&parts[0]) {
        return Err(format!(
            "names the system {:?}, which images are not built for; the systems are {}",
            parts[0],
            SYSTEMS.join(", ")
        ));
    }
    let Some((_, variants)) = ARCHITECTURES.iter().find(|(arch, _)| *arch == parts[1]) else {
        let known: Vec<&str> = ARCHITECTURES.iter().map(|(arch, _)| *arch).collect();
        return Err(format!(
            "names the architecture {:?}, which no builder targets; the architectures are {}",
            parts[1],
            known.join(", ")
        ));
    };
    match parts.get(2) {
        Some(variant) if !variants.contains(variant) => Err(format!(
            "names the variant {variant:?} of {}, which has {}",
            parts[1],
            if variants.is_empty() {
                "none".to_string()
            } else {
                variants.join(", ")
            }
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_is_the_same_platform() {
        assert!(same_platform("linux/arm64/v8", "linux/arm64"));
        assert!(!same_platform("linux/arm64", "linux/amd64"));
        assert!(is_platform("linux/arm/v7"));
        assert!(!is_platform("linux"));
        assert!(!is_platform("Linux/AMD64"));
    }

    #[test]
    fn only_platforms_a_builder_targets_are_taken() {
        for good in [
            "linux/amd64",
            "linux/arm64/v8",
            "linux/arm/v7",
            "windows/amd64",
        ] {
            assert_eq!(check_platform(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("linux/notanarch", "architecture \"notanarch\""),
            ("plan9/amd64", "system \"plan9\""),
            ("linux/arm/v9", "variant \"v9\" of arm"),
            ("linux/386/v2", "which has none"),
            ("linux", "is not a platform"),
        ] {
            let error = check_platform(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
