//! Docker's image reference grammar (distribution/reference), as validators that say why.

use std::sync::LazyLock;

use regex::Regex;

const PATH_COMPONENT: &str = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const DOMAIN: &str = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?";

static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[\w][\w.-]*$").unwrap());
static PATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^{PATH_COMPONENT}(?:/{PATH_COMPONENT})*$")).unwrap());
static HOST: LazyLock<Regex> = LazyLock::new(|| Regex::new(&format!("^{DOMAIN}$")).unwrap());
static DIGEST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$").unwrap());

/// Checks a tag: 1 to 128 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("is empty; give a tag such as 1.0.2-release".into());
    }
    if tag.len() > 128 {
        return Err(format!(
            "is longer than 128 characters ({}); shorten it",
            tag.len()
        ));
    }
    if !TAG.is_match(tag) {
        return Err(
            "is not a valid tag: use letters, digits, _ . - and do not start with . or -".into(),
        );
    }
    Ok(())
}

/// Checks a repository namespace such as `federatedai` or `registry.local:5000/fate`.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Err("is empty; give a registry namespace such as federatedai".into());
    }
    check_name(prefix)
}

/// Checks a repository name: optional registry host, then lowercase path components.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.len() > 255 {
        return Err("is longer than 255 characters".into());
    }
    let (host, path) = split_host(name);
    if let Some(host) = host
        && !HOST.is_match(host)
    {
        return Err(format!("has an invalid registry host {host:?}"));
    }
    if !PATH.is_match(path) {
        return Err("is not a valid repository name: use lowercase letters, digits and separators . _ __ - between them, components joined by /".into());
    }
    Ok(())
}

/// Checks a registry address, `HOST` or `HOST:PORT`.
pub fn check_registry(registry: &str) -> Result<(), String> {
    if HOST.is_match(registry) {
        Ok(())
    } else {
        Err("is not a registry address".into())
    }
}

/// Checks a full reference `name[:tag][@digest]`.
pub fn check_reference(reference: &str) -> Result<(), String> {
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (reference, None),
    };
    if let Some(d) = digest
        && !DIGEST.is_match(d)
    {
        return Err(format!("has an invalid digest {d:?}"));
    }
    let (name, tag) = split_tag(rest);
    check_name(name)?;
    if let Some(t) = tag {
        check_tag(t).map_err(|why| format!("has a tag that {why}"))?;
    }
    Ok(())
}

/// Splits `host/path` when the first component names a registry host (has `.` or `:`, or is localhost).
#[must_use]
pub fn split_host(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// Splits `name:tag`; a `:` inside the registry host is not a tag separator.
#[must_use]
pub fn split_tag(reference: &str) -> (&str, Option<&str>) {
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            &reference[..last_slash + i],
            Some(&reference[last_slash + i + 1..]),
        ),
        None => (reference, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert!(check_tag("1.0.2-release").is_ok());
        assert!(check_tag("latest").is_ok());
        assert!(check_tag(&"a".repeat(128)).is_ok());
        assert!(check_tag(&"a".repeat(129)).is_err());
        assert!(check_tag("1.0 release").is_err());
        assert!(check_tag(".hidden").is_err());
        assert!(check_tag("-x").is_err());
        assert!(check_tag("").is_err());
    }

    #[test]
    fn prefixes() {
        assert!(check_prefix("federatedai").is_ok());
        assert!(check_prefix("fate-test_1/sub").is_ok());
        assert!(check_prefix("127.0.0.1:5000/fate").is_ok());
        assert!(check_prefix("localhost/fate").is_ok());
        assert!(check_prefix("FederatedAI").is_err());
        assert!(check_prefix("fate/").is_err());
        assert!(check_prefix("-fate").is_err());
        assert!(check_prefix("fate..x").is_err());
    }

    #[test]
    fn references() {
        assert!(check_reference("maven:3.6-jdk-8").is_ok());
        assert!(check_reference("127.0.0.1:5000/fate/egg:1.0").is_ok());
        assert!(check_reference("redis").is_ok());
        assert!(check_reference("Redis:5").is_err());
        assert!(check_reference("redis:5 0").is_err());
        assert_eq!(
            split_tag("127.0.0.1:5000/fate/egg"),
            ("127.0.0.1:5000/fate/egg", None)
        );
        assert_eq!(split_tag("fate/egg:1.0"), ("fate/egg", Some("1.0")));
    }
}
