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
}
