//! An image rebuilt beside the one a bundle holds: the same image, the same layers or the
//! same files (on an engine that cannot make times the same), or the first layer that
//! differs and what in it was added, removed or changed (or, every layer the same, what
//! its config says otherwise). Pure: layers, listings and configs in, a verdict out.

use std::collections::BTreeMap;
use std::fmt;

use fate_bundle::archive::layers::{Entry, Listing};
use fate_bundle::docker::images::LABEL_INPUTS;

/// How a rebuilt image compares with the bundled one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The same image ID: every byte of its config and layers.
    Reproduced,
    /// Every layer the same (the same diff IDs); the configs differ only in the times
    /// this engine writes from the build's clock (see `rewrites_timestamps`).
    SameLayers,
    /// Every layer holds the same files (kinds, modes, owners, contents); only file times
    /// differ, which this engine cannot make the same (see `rewrites_timestamps`).
    SameFiles,
    /// The first layer (from 1) that differs, and how.
    Differs { layer: usize, changes: Vec<Change> },
    /// Every layer the same (or the same files), the config not: the fields that differ
    /// (`config.Labels`, `history`, ...).
    ConfigDiffers(Vec<String>),
}

/// One difference in a layer: a path only in the bundle's image (removed in the
/// rebuild), only in the rebuild (added), or in both with other attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Added(String),
    Removed(String),
    Changed {
        path: String,
        what: Vec<&'static str>,
    },
    /// The images have different numbers of layers: the rebuild has `rebuilt`.
    LayerCount {
        bundled: usize,
        rebuilt: usize,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Added(path) => write!(f, "added in the rebuild: /{path}"),
            Change::Removed(path) => write!(f, "only in the bundle: /{path}"),
            Change::Changed { path, what } => write!(f, "changed: /{path} ({})", what.join(", ")),
            Change::LayerCount { bundled, rebuilt } => write!(
                f,
                "the bundle's image has {bundled} layers, the rebuild {rebuilt}"
            ),
        }
    }
}

/// Compares two images layer by layer: `bundled` and `rebuilt` are each layer's diff ID
/// and its listing (read only where asked: `list(i)` gives layer `i` of both). With
/// `times_kept` (the engine makes file times the same), a time that differs is a change.
pub fn compare(
    bundled: &[String],
    rebuilt: &[String],
    times_kept: bool,
    mut list: impl FnMut(usize) -> anyhow::Result<(Listing, Listing)>,
) -> anyhow::Result<Verdict> {
    let mut only_times = false;
    for layer in 0..bundled.len().max(rebuilt.len()) {
        match (bundled.get(layer), rebuilt.get(layer)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(_), Some(_)) => {
                let (a, b) = list(layer)?;
                let changes = changes(&a, &b, times_kept);
                if !changes.is_empty() {
                    return Ok(Verdict::Differs {
                        layer: layer + 1,
                        changes,
                    });
                }
                only_times = true;
            }
            _ => {
                return Ok(Verdict::Differs {
                    layer: layer + 1,
                    changes: vec![Change::LayerCount {
                        bundled: bundled.len(),
                        rebuilt: rebuilt.len(),
                    }],
                });
            }
        }
    }
    Ok(if only_times {
        Verdict::SameFiles
    } else {
        Verdict::SameLayers
    })
}

impl Verdict {
    /// With the two images' configs compared: every layer the same (or the same files)
    /// but a config that differs in more than the engine's times is a difference.
    #[must_use]
    pub fn with_configs(
        self,
        bundled: &serde_json::Value,
        rebuilt: &serde_json::Value,
        times_kept: bool,
    ) -> Verdict {
        if !matches!(self, Verdict::SameLayers | Verdict::SameFiles) {
            return self;
        }
        let mut fields = config_changes(bundled, rebuilt, times_kept);
        // Layers with the same files at other times have other diff IDs.
        if self == Verdict::SameFiles {
            fields.retain(|f| f != "rootfs");
        }
        if fields.is_empty() {
            self
        } else {
            Verdict::ConfigDiffers(fields)
        }
    }

    /// Whether the rebuild is not what the bundle holds.
    #[must_use]
    pub fn differs(&self) -> bool {
        matches!(self, Verdict::Differs { .. } | Verdict::ConfigDiffers(_))
    }
}

/// The fields of two image configs that differ (`config` and `container_config` field by
/// field), each config first without what the engine writes from its clock where it does
/// not keep times (see [`clockless`]).
#[must_use]
pub fn config_changes(
    bundled: &serde_json::Value,
    rebuilt: &serde_json::Value,
    times_kept: bool,
) -> Vec<String> {
    let (bundled, rebuilt) = if times_kept {
        (bundled.clone(), rebuilt.clone())
    } else {
        (clockless(bundled), clockless(rebuilt))
    };
    let empty = serde_json::Map::new();
    let (a, b) = (
        object(Some(&bundled), &empty),
        object(Some(&rebuilt), &empty),
    );
    let mut fields = Vec::new();
    for key in differing_keys(a, b) {
        if matches!(key.as_str(), "config" | "container_config") {
            let inner = differing_keys(object(a.get(key), &empty), object(b.get(key), &empty));
            fields.extend(inner.into_iter().map(|k| format!("{key}.{k}")));
        } else {
            fields.push(key.clone());
        }
    }
    fields
}

/// `value`'s fields, or `empty` where it is not an object.
fn object<'a>(
    value: Option<&'a serde_json::Value>,
    empty: &'a serde_json::Map<String, serde_json::Value>,
) -> &'a serde_json::Map<String, serde_json::Value> {
    value
        .and_then(serde_json::Value::as_object)
        .unwrap_or(empty)
}

/// The keys of `a` or `b` whose values differ, in order.
fn differing_keys<'a>(
    a: &'a serde_json::Map<String, serde_json::Value>,
    b: &'a serde_json::Map<String, serde_json::Value>,
) -> std::collections::BTreeSet<&'a String> {
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .collect()
}

/// `config` without what an engine that cannot rewrite times writes from its clock or
/// its build containers: `created` (also in `history`), `container` and
/// `container_config.Hostname` (the legacy builder's container ID); and with its inputs
/// digest (which names the parents by their IDs, which hold their build's time) written
/// as `<inputs>` wherever it appears (the label, the history of the `LABEL` step).
fn clockless(config: &serde_json::Value) -> serde_json::Value {
    let digest = config["config"]["Labels"][LABEL_INPUTS]
        .as_str()
        .filter(|d| !d.is_empty());
    let mut config = match digest {
        Some(digest) => {
            let text = config.to_string().replace(digest, "<inputs>");
            serde_json::from_str(&text).expect("a value's own text with a string replaced")
        }
        None => config.clone(),
    };
    if let Some(fields) = config.as_object_mut() {
        fields.remove("created");
        fields.remove("container");
        if let Some(steps) = fields.get_mut("history").and_then(|h| h.as_array_mut()) {
            for step in steps.iter_mut().filter_map(|s| s.as_object_mut()) {
                step.remove("created");
            }
        }
        if let Some(container) = fields
            .get_mut("container_config")
            .and_then(|c| c.as_object_mut())
        {
            container.remove("Hostname");
        }
    }
    config
}

/// What differs between two listings of one layer, by path.
#[must_use]
pub fn changes(bundled: &Listing, rebuilt: &Listing, times_kept: bool) -> Vec<Change> {
    let mut all: BTreeMap<&str, (Option<&Entry>, Option<&Entry>)> = BTreeMap::new();
    for (path, entry) in bundled {
        all.entry(path).or_default().0 = Some(entry);
    }
    for (path, entry) in rebuilt {
        all.entry(path).or_default().1 = Some(entry);
    }
    all.into_iter()
        .filter_map(|(path, pair)| match pair {
            (Some(_), None) => Some(Change::Removed(path.to_string())),
            (None, Some(_)) => Some(Change::Added(path.to_string())),
            (Some(a), Some(b)) => {
                let what = differences(a, b, times_kept);
                (!what.is_empty()).then(|| Change::Changed {
                    path: path.to_string(),
                    what,
                })
            }
            (None, None) => None,
        })
        .collect()
}

fn differences(a: &Entry, b: &Entry, times_kept: bool) -> Vec<&'static str> {
    [
        (a.kind != b.kind, "kind"),
        (a.content != b.content, "contents"),
        (a.mode != b.mode, "mode"),
        (a.owner != b.owner, "owner"),
        (times_kept && a.mtime != b.mtime, "time"),
    ]
    .into_iter()
    .filter_map(|(differs, what)| differs.then_some(what))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(content: &str, mode: u32, mtime: u64) -> Entry {
        Entry {
            kind: "file".into(),
            mode,
            owner: (0, 0),
            size: content.len() as u64,
            mtime,
            content: content.into(),
        }
    }

    fn listing(entries: &[(&str, Entry)]) -> Listing {
        entries
            .iter()
            .map(|(p, e)| ((*p).to_string(), e.clone()))
            .collect()
    }

    #[test]
    fn configs_differ_in_what_the_engine_does_not_write_from_its_clock() {
        let bundled = serde_json::json!({
            "created": "2026-12-07T10:00:00Z",
            "container": "abc",
            "config": {"Labels": {"a": "1"}, "Cmd": ["x"]},
            "container_config": {"Hostname": "abc", "Cmd": ["x"]},
            "history": [{"created": "2026-12-07T10:00:00Z", "created_by": "COPY"}],
            "rootfs": {"diff_ids": ["l1"]}
        });
        let mut rebuilt = bundled.clone();
        rebuilt["created"] = "2026-12-07T11:00:00Z".into();
        rebuilt["container"] = "def".into();
        rebuilt["container_config"]["Hostname"] = "def".into();
        rebuilt["history"][0]["created"] = "2026-12-07T11:00:00Z".into();
        let clocked = [
            "container",
            "container_config.Hostname",
            "created",
            "history",
        ];
        assert!(config_changes(&bundled, &rebuilt, false).is_empty());
        assert_eq!(config_changes(&bundled, &rebuilt, true), clocked);
        assert_eq!(
            Verdict::SameLayers.with_configs(&bundled, &rebuilt, false),
            Verdict::SameLayers
        );
        // The inputs digest names the parents by ID: where times are not kept, neither
        // are the parents' IDs.
        let (mut one, mut two) = (bundled.clone(), rebuilt.clone());
        one["config"]["Labels"][LABEL_INPUTS] = "d1".into();
        one["history"][0]["created_by"] = "LABEL inputs=d1".into();
        two["config"]["Labels"][LABEL_INPUTS] = "d2".into();
        two["history"][0]["created_by"] = "LABEL inputs=d2".into();
        assert!(config_changes(&one, &two, false).is_empty());
        let mut labelled = vec!["config.Labels"];
        labelled.extend(clocked);
        assert_eq!(config_changes(&one, &two, true), labelled);
        rebuilt["config"]["Labels"]["a"] = "2".into();
        assert_eq!(
            Verdict::SameLayers.with_configs(&bundled, &rebuilt, false),
            Verdict::ConfigDiffers(vec!["config.Labels".into()])
        );
        let differs = Verdict::Differs {
            layer: 2,
            changes: vec![],
        };
        assert_eq!(
            differs.clone().with_configs(&bundled, &rebuilt, false),
            differs
        );
    }

    #[test]
    fn the_first_differing_layer_names_its_files() {
        let bundled = listing(&[
            ("app/a.py", file("a", 0o644, 0)),
            ("app/gone.py", file("g", 0o644, 0)),
            ("app/run.sh", file("r", 0o755, 0)),
        ]);
        let rebuilt = listing(&[
            ("app/a.py", file("a, edited", 0o644, 0)),
            ("app/new.py", file("n", 0o644, 0)),
            ("app/run.sh", file("r", 0o644, 0)),
        ]);
        let layers = |ids: &[&str]| ids.iter().map(ToString::to_string).collect::<Vec<_>>();
        let verdict = compare(
            &layers(&["l1", "l2", "l3"]),
            &layers(&["l1", "l2x", "l3x"]),
            true,
            |i| {
                assert_eq!(i, 1, "only the first layer that differs is read");
                Ok((bundled.clone(), rebuilt.clone()))
            },
        )
        .unwrap();
        assert_eq!(
            verdict,
            Verdict::Differs {
                layer: 2,
                changes: vec![
                    Change::Changed {
                        path: "app/a.py".into(),
                        what: vec!["contents"]
                    },
                    Change::Removed("app/gone.py".into()),
                    Change::Added("app/new.py".into()),
                    Change::Changed {
                        path: "app/run.sh".into(),
                        what: vec!["mode"]
                    },
                ]
            }
        );
        assert_eq!(
            Change::Changed {
                path: "app/a.py".into(),
                what: vec!["contents"]
            }
            .to_string(),
            "changed: /app/a.py (contents)"
        );
    }

    #[test]
    fn times_count_only_where_the_engine_keeps_them() {
        let a = listing(&[("d/f", file("x", 0o644, 0))]);
        let b = listing(&[("d/f", file("x", 0o644, 1_700_000_000))]);
        let ids = (vec!["a".to_string()], vec!["b".to_string()]);
        let verdict = |kept| compare(&ids.0, &ids.1, kept, |_| Ok((a.clone(), b.clone())));
        assert_eq!(verdict(false).unwrap(), Verdict::SameFiles);
        assert!(matches!(
            verdict(true).unwrap(),
            Verdict::Differs { layer: 1, .. }
        ));
        assert_eq!(
            compare(&ids.0, &ids.0, true, |_| unreachable!()).unwrap(),
            Verdict::SameLayers
        );
        let fewer = compare(&ids.0, &[], true, |_| unreachable!()).unwrap();
        assert_eq!(
            fewer,
            Verdict::Differs {
                layer: 1,
                changes: vec![Change::LayerCount {
                    bundled: 1,
                    rebuilt: 0
                }]
            }
        );
    }
}
