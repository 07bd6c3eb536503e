//! The `docker-bake.json` of a plan's builds, for `docker buildx bake`: one target per
//! image with its staged context and Dockerfile, args, tag, cache and platforms, tied
//! to the targets it starts from by named `contexts`, plus one group per build wave.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::imageset::order;
use crate::plan::Plan;
use crate::steps::action::Action;
use crate::steps::build::BuildStep;

#[derive(Debug, Serialize)]
pub struct BakeFile {
    pub group: BTreeMap<String, Group>,
    pub target: BTreeMap<String, Target>,
}

#[derive(Debug, Serialize)]
pub struct Group {
    pub targets: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Target {
    pub context: String,
    pub dockerfile: String,
    pub tags: Vec<String>,
    pub args: BTreeMap<String, String>,
    /// The images of this set it starts from, as the targets that build them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub contexts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    #[serde(rename = "cache-from", skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    #[serde(rename = "cache-to", skip_serializing_if = "Vec::is_empty")]
    pub cache_to: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pull: bool,
    /// No provenance attestation, as `images` builds them.
    pub attest: Vec<String>,
}

/// The bake file of every build in `plan`. Without `named_contexts` (BuildKit before
/// 0.10 cannot use them), the groups `stage-1`, `stage-2`, ... must be baked in order.
#[must_use]
pub fn of(plan: &Plan, named_contexts: bool) -> BakeFile {
    let builds: Vec<&BuildStep> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Build(b) => Some(b),
            _ => None,
        })
        .collect();
    let name_of: BTreeMap<&str, &str> = builds
        .iter()
        .map(|b| (b.reference.as_str(), b.name.as_str()))
        .collect();
    let parents_of = |b: &BuildStep| -> Vec<(String, String)> {
        b.parents
            .iter()
            .filter_map(|r| {
                name_of
                    .get(r.as_str())
                    .map(|n| (r.clone(), (*n).to_string()))
            })
            .collect()
    };
    // The stages are the project's one dependency order's.
    let wave: BTreeMap<&str, usize> = order::dependency_order(
        &builds,
        |b| b.name.as_str(),
        |b| {
            b.parents
                .iter()
                .filter_map(|r| name_of.get(r.as_str()).copied())
                .collect()
        },
    )
    .into_iter()
    .map(|o| (o.item.name.as_str(), o.depth))
    .collect();
    let mut target = BTreeMap::new();
    for b in &builds {
        let parents = parents_of(b);
        let contexts = if named_contexts {
            parents
                .iter()
                .map(|(r, n)| (r.clone(), format!("target:{n}")))
                .collect()
        } else {
            BTreeMap::new()
        };
        target.insert(
            b.name.clone(),
            Target {
                context: b.context.display().to_string(),
                dockerfile: b.staged_dockerfile.display().to_string(),
                tags: vec![b.reference.clone()],
                args: b.build_args.iter().cloned().collect(),
                contexts,
                platforms: b.options.platforms.clone(),
                cache_from: b.options.cache_from.clone(),
                cache_to: b.options.cache_to.clone(),
                pull: b.options.pull,
                attest: vec![crate::docker::argv::BAKE_PROVENANCE_OFF.into()],
            },
        );
    }
    BakeFile {
        group: groups(&builds, &wave),
        target,
    }
}

/// `default` with every target, and `stage-N` with the targets of wave N.
fn groups(builds: &[&BuildStep], wave: &BTreeMap<&str, usize>) -> BTreeMap<String, Group> {
    let mut group = BTreeMap::new();
    group.insert(
        "default".to_string(),
        Group {
            targets: builds.iter().map(|b| b.name.clone()).collect(),
        },
    );
    for b in builds {
        group
            .entry(format!("stage-{}", wave[b.name.as_str()]))
            .or_insert_with(|| Group {
                targets: Vec::new(),
            })
            .targets
            .push(b.name.clone());
    }
    group
}
