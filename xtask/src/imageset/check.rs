//! The image set's structural checks (no file system needed): names valid and unique,
//! parents, trees and projects known, paths inside the FATE root, no cycles. Each problem
//! carries the declaration it is about, whose line in `docker/images.toml` it is told
//! with.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};

use crate::imageset::{ALL_GROUP, ContextPart, Image, ImageSet};
use fate_bundle::ui::problems::Problems;

/// The declaration a problem is about.
#[derive(Clone, Copy)]
struct Subject<'a> {
    /// `[[image]]`, `[[tree]]` or `[[maven]]`.
    table: &'static str,
    name: &'a str,
    /// Which declaration of that name: 0 the first, 1 the second (of a duplicate).
    nth: usize,
}

impl<'a> Subject<'a> {
    fn image(name: &'a str) -> Subject<'a> {
        Subject {
            table: "[[image]]",
            name,
            nth: 0,
        }
    }

    fn tree(name: &'a str) -> Subject<'a> {
        Subject {
            table: "[[tree]]",
            name,
            nth: 0,
        }
    }

    fn maven(name: &'a str) -> Subject<'a> {
        Subject {
            table: "[[maven]]",
            name,
            nth: 0,
        }
    }

    /// Its line (1-based) in the image set's text.
    fn line(self, text: &str) -> Option<usize> {
        let mut in_table = false;
        text.lines()
            .enumerate()
            .filter(|(_, line)| {
                let line = line.trim();
                if line.starts_with('[') {
                    in_table = line == self.table;
                    return false;
                }
                in_table
                    && line.split_once('=').is_some_and(|(k, v)| {
                        k.trim() == "name" && v.trim().trim_matches('"') == self.name
                    })
            })
            .nth(self.nth)
            .map(|(i, _)| i + 1)
    }
}

/// The line (1-based) of `text` (an image set) that declares the image `name`.
#[must_use]
pub fn image_line(text: &str, name: &str) -> Option<usize> {
    Subject::image(name).line(text)
}

/// Problems found, each with what it is about.
#[derive(Default)]
struct Found<'a>(Vec<(Option<Subject<'a>>, String)>);

impl<'a> Found<'a> {
    fn push(&mut self, subject: Option<Subject<'a>>, problem: String) {
        self.0.push((subject, problem));
    }

    /// A path in the image set must stay inside the FATE root: relative, without `..`.
    fn relative(&mut self, subject: Option<Subject<'a>>, what: &str, path: &str) {
        let path_ref = Path::new(path);
        if path.is_empty() || path_ref.is_absolute() {
            self.push(
                subject,
                format!("{what} {path:?} must be a relative path inside the FATE root"),
            );
        } else if path_ref
            .components()
            .any(|c| matches!(c, Component::ParentDir))
        {
            self.push(
                subject,
                format!("{what} {path:?} escapes the FATE root with ..; keep paths inside it"),
            );
        }
    }
}

impl ImageSet {
    /// Structural checks that need no file system; each problem says on which line of
    /// `text` (the image set's) the declaration it is about is.
    pub(super) fn check(&self, text: &str) -> Problems {
        let mut found = Found::default();
        self.check_names(&mut found);
        self.check_maven_and_trees(&mut found);
        for image in &self.images {
            self.check_image(image, &mut found);
        }
        if let Some((first, cycle)) =
            find_cycle(self.images.iter().map(|i| (i.name.as_str(), &i.parents)))
        {
            found.push(
                Some(Subject::image(first)),
                format!("images depend on each other in a cycle: {cycle}"),
            );
        }
        if let Some((first, cycle)) =
            find_cycle(self.maven.iter().map(|m| (m.name.as_str(), &m.after)))
        {
            found.push(
                Some(Subject::maven(first)),
                format!("maven projects depend on each other in a cycle: {cycle}"),
            );
        }
        let mut p = Problems::new("the image set is not valid");
        for (subject, problem) in found.0 {
            match subject.and_then(|s| s.line(text)) {
                Some(line) => p.push(format!("line {line}: {problem}")),
                None => p.push(problem),
            }
        }
        p
    }

    /// Names are valid, unique, and an image is not named like a group (which would
    /// change what the group selects).
    fn check_names<'a>(&'a self, p: &mut Found<'a>) {
        type Of<'a> = fn(&'a str) -> Subject<'a>;
        let declared: [(&str, Of<'a>, Vec<&'a String>); 3] = [
            (
                "image",
                Subject::image,
                self.images.iter().map(|i| &i.name).collect(),
            ),
            (
                "tree",
                Subject::tree,
                self.trees.iter().map(|t| &t.name).collect(),
            ),
            (
                "maven project",
                Subject::maven,
                self.maven.iter().map(|m| &m.name).collect(),
            ),
        ];
        for (what, subject, names) in declared {
            let mut seen = BTreeSet::new();
            for name in names {
                if fate_bundle::docker::reference::check_name(name).is_err() || name.contains('/') {
                    p.push(
                        Some(subject(name)),
                        format!(
                            "{what} name {name:?} is not valid: use lowercase letters, digits and -"
                        ),
                    );
                }
                if !seen.insert(name) {
                    let second = Subject {
                        nth: 1,
                        ..subject(name)
                    };
                    p.push(Some(second), format!("{what} {name} is declared twice"));
                }
            }
        }
        let groups: BTreeSet<&str> = self.images.iter().map(|i| i.group.as_str()).collect();
        for image in &self.images {
            if image.name == ALL_GROUP || groups.contains(image.name.as_str()) {
                p.push(
                    Some(Subject::image(&image.name)),
                    format!(
                        "image {} is named like a group; `cargo xtask images {}` would be ambiguous: rename the image or the group",
                        image.name, image.name
                    ),
                );
            }
        }
    }

    fn check_maven_and_trees<'a>(&'a self, p: &mut Found<'a>) {
        for m in &self.maven {
            let subject = Subject::maven(&m.name);
            p.relative(Some(subject), &format!("maven project {}", m.name), &m.name);
            for a in m.after.iter().filter(|a| self.maven_project(a).is_none()) {
                p.push(
                    Some(subject),
                    format!("maven project {} comes after unknown project {a}", m.name),
                );
            }
        }
        for t in &self.trees {
            let subject = Subject::tree(&t.name);
            if let Some(j) = &t.java
                && self.maven_project(&j.maven).is_none()
            {
                p.push(
                    Some(subject),
                    format!(
                        "tree {} takes its jar from unknown maven project {}",
                        t.name, j.maven
                    ),
                );
            }
            for c in &t.copy {
                p.relative(Some(subject), &format!("tree {} copy", t.name), &c.from);
                let what = format!("tree {} copy destination", t.name);
                p.relative(Some(subject), &what, &c.dest());
            }
            for d in &t.empty_dirs {
                p.relative(Some(subject), &format!("tree {} empty dir", t.name), d);
            }
        }
        p.relative(None, "packaging.skeletons", &self.packaging.skeletons);
    }

    fn check_image<'a>(&'a self, i: &'a Image, p: &mut Found<'a>) {
        let subject = Subject::image(&i.name);
        p.relative(
            Some(subject),
            &format!("image {} dockerfile", i.name),
            &i.dockerfile,
        );
        if let Some(cn) = &i.mirror_dockerfile {
            p.relative(
                Some(subject),
                &format!("image {} mirror-dockerfile", i.name),
                cn,
            );
        }
        for parent in i
            .parents
            .iter()
            .filter(|parent| self.image(parent).is_none())
        {
            p.push(
                Some(subject),
                format!("image {} has unknown parent {parent}", i.name),
            );
        }
        for part in &i.context {
            match part {
                ContextPart::Tree { tree, to } => {
                    if self.tree(tree).is_none() {
                        p.push(
                            Some(subject),
                            format!("image {} uses unknown tree {tree}", i.name),
                        );
                    }
                    if let Some(to) = to {
                        p.relative(Some(subject), &format!("image {} context", i.name), to);
                    }
                }
                ContextPart::Source(c) => {
                    p.relative(Some(subject), &format!("image {} context", i.name), &c.from);
                    let what = format!("image {} context destination", i.name);
                    p.relative(Some(subject), &what, &c.dest());
                }
            }
        }
        if ALL_GROUP == i.group {
            p.push(
                Some(subject),
                format!(
                    "image {} cannot be in group {ALL_GROUP}: that name selects every image",
                    i.name
                ),
            );
        }
    }
}

/// Finds a dependency cycle: the node it was found from, and the cycle written `a -> b ->
/// a`.
fn find_cycle<'a>(
    edges: impl Iterator<Item = (&'a str, &'a Vec<String>)>,
) -> Option<(&'a str, String)> {
    let graph: BTreeMap<&str, Vec<&str>> = edges
        .map(|(n, deps)| (n, deps.iter().map(String::as_str).collect()))
        .collect();
    let mut finished = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, &graph, &mut Vec::new(), &mut finished))
}

/// Depth-first search from `node`; the first cycle found: its first node, and the cycle
/// written `a -> b -> a`.
fn visit<'a>(
    node: &'a str,
    graph: &BTreeMap<&'a str, Vec<&'a str>>,
    stack: &mut Vec<&'a str>,
    finished: &mut BTreeSet<&'a str>,
) -> Option<(&'a str, String)> {
    if let Some(pos) = stack.iter().position(|s| *s == node) {
        let mut cycle = stack[pos..].to_vec();
        cycle.push(node);
        return Some((cycle[0], cycle.join(" -> ")));
    }
    if finished.contains(node) {
        return None;
    }
    stack.push(node);
    for dep in graph.get(node).into_iter().flatten() {
        if let Some(c) = visit(dep, graph, stack, finished) {
            return Some(c);
        }
    }
    stack.pop();
    finished.insert(node);
    None
}
