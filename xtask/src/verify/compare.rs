//! An image rebuilt beside the one a bundle holds: the same image, the same files (on an
//! engine that cannot make file times the same), or the first layer that differs and what
//! in it was added, removed or changed. Pure: layers and their listings in, a verdict out.

use std::collections::BTreeMap;
use std::fmt;

use fate_bundle::archive::layers::{Entry, Listing};

/// How a rebuilt image compares with the bundled one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The same image ID: every byte of its config and layers.
    Reproduced,
    /// Every layer holds the same files (kinds, modes, owners, contents); only file times
    /// differ, which this engine cannot make the same (see `rewrites_timestamps`).
    SameFiles,
    /// The first layer (from 1) that differs, and how.
    Differs { layer: usize, changes: Vec<Change> },
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
        Verdict::Reproduced
    })
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
            Verdict::Reproduced
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
