//! Where a bundle's images go in a registry: `HOST[:PORT]/PREFIX/NAME:TAG`, with
//! `--namespace` replacing the prefix (a Harbor project) for every image, third-party ones
//! included, as KubeFATE expects of a private registry.

use anyhow::{Result, bail};

use crate::docker::reference;

/// A registry and the namespace the bundle's images go under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `HOST` or `HOST:PORT`, as Docker names a registry.
    pub registry: String,
    /// Replaces each image's own path but its last component, when given.
    pub namespace: Option<String>,
}

/// One image's place in the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub repository: String,
    pub tag: String,
}

impl Target {
    /// Checks both before any work: a registry address and a namespace in Docker's grammar.
    pub fn new(registry: &str, namespace: Option<&str>) -> Result<Target> {
        let registry = registry
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        if let Err(why) = reference::check_registry(registry) {
            bail!(
                "--registry {registry:?} {why}: give HOST or HOST:PORT, e.g. harbor.bank.local or 10.0.0.5:5000"
            );
        }
        if let Some(ns) = namespace {
            if ns.contains(':') || reference::split_host(ns).0.is_some() {
                bail!(
                    "--namespace {ns:?} names a registry host: give only the namespace (e.g. fate), and the host with --registry"
                );
            }
            if let Err(why) = reference::check_prefix(ns) {
                bail!("--namespace {ns:?} {why}");
            }
        }
        Ok(Target {
            registry: registry.to_string(),
            namespace: namespace.map(str::to_string),
        })
    }

    /// Where the bundled `reference` (`[HOST/]PATH[:TAG]`) goes: its path under this
    /// registry, or its last component under the namespace.
    pub fn destination(&self, bundled: &str) -> Result<Destination> {
        let (name, tag) = reference::split_tag(bundled);
        let Some(tag) = tag else {
            bail!("{bundled} has no tag: a bundle names every image by name and tag");
        };
        let (_, path) = reference::split_host(name);
        let repository = match &self.namespace {
            Some(ns) => format!("{ns}/{}", path.rsplit('/').next().unwrap_or(path)),
            None => path.to_string(),
        };
        Ok(Destination {
            repository,
            tag: tag.to_string(),
        })
    }

    /// `HOST/REPOSITORY:TAG`, as `docker pull` takes it.
    #[must_use]
    pub fn display(&self, destination: &Destination) -> String {
        format!(
            "{}/{}:{}",
            self.registry, destination.repository, destination.tag
        )
    }

    /// The host without its port.
    #[must_use]
    pub fn host(&self) -> &str {
        match self.registry.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => &self.registry,
        }
    }

    /// Whether the registry is on this host's loopback, which Docker reaches over plain
    /// HTTP without being told.
    #[must_use]
    pub fn is_loopback(&self) -> bool {
        let host = self.host().trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_keep_their_path_or_go_under_the_namespace() {
        let plain = Target::new("harbor.local:8443", None).unwrap();
        let d = plain.destination("federatedai/eggroll:1.0.2").unwrap();
        assert_eq!(
            plain.display(&d),
            "harbor.local:8443/federatedai/eggroll:1.0.2"
        );
        let d = plain.destination("redis:5").unwrap();
        assert_eq!(plain.display(&d), "harbor.local:8443/redis:5");

        let ns = Target::new("harbor.local", Some("fate")).unwrap();
        for (bundled, pushed) in [
            (
                "federatedai/eggroll:1.0.2",
                "harbor.local/fate/eggroll:1.0.2",
            ),
            ("redis:5", "harbor.local/fate/redis:5"),
            ("docker.io/library/mysql:8", "harbor.local/fate/mysql:8"),
            ("127.0.0.1:5000/a/b/c:t", "harbor.local/fate/c:t"),
        ] {
            let d = ns.destination(bundled).unwrap();
            assert_eq!(ns.display(&d), pushed);
        }
        assert!(ns.destination("redis").is_err());
    }

    #[test]
    fn addresses_and_namespaces_are_checked() {
        assert!(Target::new("https://harbor.local/", None).is_ok());
        assert!(Target::new("harbor local", None).is_err());
        assert!(Target::new("h:5000", Some("Fate")).is_err());
        assert!(Target::new("h:5000", Some("other:5000/fate")).is_err());
        assert!(Target::new("h:5000", Some("fate/team-1")).is_ok());
    }

    #[test]
    fn loopback_is_known() {
        assert!(Target::new("127.0.0.1:5000", None).unwrap().is_loopback());
        assert!(Target::new("localhost:5000", None).unwrap().is_loopback());
        assert!(!Target::new("10.0.0.5:5000", None).unwrap().is_loopback());
        assert_eq!(Target::new("h.local:5000", None).unwrap().host(), "h.local");
    }
}
