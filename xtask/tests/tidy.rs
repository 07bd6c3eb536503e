//! The shape of the code, kept by tests (as rust-analyzer keeps its tidy checks): every
//! crate of the workspace declares its layers, bottom to top, in its root's doc comment;
//! no module imports from a layer above its own or from another module of its own layer,
//! no two files import each other (directly or round a loop), no file is longer than 500
//! lines before its tests, and no function is longer than 80 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 500;
const MAX_FN_LINES: usize = 80;

#[test]
fn no_module_imports_upward_or_sideways() {
    let mut problems = Vec::new();
    for krate in crates() {
        let layers = krate.layers();
        for file in &krate.files {
            let Some(from) = file.module.first() else {
                continue;
            };
            let Some(&from_layer) = layers.get(from.as_str()) else {
                problems.push(format!(
                    "{}: module `{from}` is not in the layers of {}: add it to the list there",
                    file.path.display(),
                    krate.root().path.display()
                ));
                continue;
            };
            for target in krate.imports(file) {
                let to = &krate.files[target].module[0];
                if to == from {
                    continue;
                }
                match layers.get(to.as_str()) {
                    Some(&to_layer) if to_layer < from_layer => {}
                    Some(&to_layer) => problems.push(format!(
                        "{}: imports `{to}` (layer {to_layer}) from `{from}` (layer {from_layer}): {}",
                        file.path.display(),
                        if to_layer == from_layer {
                            "modules of one layer do not know each other"
                        } else {
                            "an import from a lower layer up to a higher one"
                        }
                    )),
                    None => {}
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn no_files_import_each_other() {
    let mut problems = Vec::new();
    for krate in crates() {
        let edges: Vec<Vec<usize>> = krate.files.iter().map(|f| krate.imports(f)).collect();
        for cycle in strongly_connected(&edges) {
            let names: Vec<String> = cycle
                .iter()
                .map(|&i| krate.files[i].path.display().to_string())
                .collect();
            problems.push(format!("an import cycle: {}", names.join(", ")));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn no_file_over_500_lines_before_its_tests() {
    let long: Vec<String> = crates()
        .iter()
        .flat_map(|k| &k.files)
        .filter(|f| f.lines_before_tests > MAX_FILE_LINES)
        .map(|f| format!("{}: {} lines", f.path.display(), f.lines_before_tests))
        .collect();
    assert!(long.is_empty(), "\n{}", long.join("\n"));
}

#[test]
fn no_function_over_80_lines() {
    let mut long = Vec::new();
    for file in crates().iter().flat_map(|k| &k.files) {
        for (name, line, lines) in functions(&file.code) {
            if lines > MAX_FN_LINES {
                long.push(format!(
                    "{}:{line}: fn {name} is {lines} lines",
                    file.path.display()
                ));
            }
        }
    }
    assert!(long.is_empty(), "\n{}", long.join("\n"));
}

#[test]
fn the_checks_see_what_they_check() {
    // Guards the guards: the lexer and the import reader on a known text.
    let code = blank_literals(
        "use crate::{a::b, c}; // crate::d\nlet s = \"crate::e\"; let c = '}'; fn f<'a>() { crate::g::h(); }\n",
    );
    assert!(!code.contains("crate::d") && !code.contains("crate::e"));
    let paths = import_paths(&code);
    assert_eq!(
        paths,
        [
            vec!["crate", "a", "b"],
            vec!["crate", "c"],
            vec!["crate", "g", "h"]
        ]
        .map(|p| p.into_iter().map(String::from).collect::<Vec<_>>())
    );
    let fns = functions("fn a() {\n  let x = 1;\n}\nfn b();\nfn c() { { } }\n");
    assert_eq!(
        fns,
        [("a".to_string(), 1, 3), ("c".to_string(), 5, 1)].to_vec()
    );
    assert_eq!(
        expand_use("a::{b, c::{d, e}, self}"),
        ["a::b", "a::c::d", "a::c::e", "a"]
    );
}

/// One crate of the workspace: its source files, each with its module path.
struct Crate {
    files: Vec<SourceFile>,
    by_module: BTreeMap<Vec<String>, usize>,
}

struct SourceFile {
    path: PathBuf,
    /// `plan::kind` for `src/plan/kind.rs`; empty for the crate root.
    module: Vec<String>,
    /// The source with comments and literals blanked, up to its tests.
    code: String,
    lines_before_tests: usize,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn crates() -> Vec<Crate> {
    let mut roots = vec![workspace().join("xtask/src")];
    if let Ok(dir) = fs::read_dir(workspace().join("crates")) {
        let mut more: Vec<PathBuf> = dir.map(|e| e.unwrap().path().join("src")).collect();
        more.sort();
        roots.extend(more);
    }
    let crates: Vec<Crate> = roots.iter().map(|r| Crate::read(r)).collect();
    assert!(
        crates.iter().all(|c| c.files.len() > 1),
        "tidy found no sources"
    );
    crates
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(src).sort_by_file_name() {
            let path = entry.unwrap().into_path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            // Binaries beside the library (src/main.rs, src/bin/NAME.rs) are crate roots of
            // their own; a module's tests kept in a file of their own (`tests.rs`) are
            // tests whole.
            let binary = rel.starts_with("bin")
                || (rel == Path::new("main.rs") && src.join("lib.rs").is_file());
            if binary || rel.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let mut module: Vec<String> = rel
                .with_extension("")
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "main" | "lib")
            ) {
                module.pop();
            }
            let text = fs::read_to_string(&path).unwrap();
            let code = blank_literals(&text);
            let tests_at = code
                .lines()
                .position(|l| l.trim_start().starts_with("#[cfg(test)]"))
                .unwrap_or(code.lines().count());
            let code: String = code
                .lines()
                .take(tests_at)
                .map(|l| format!("{l}\n"))
                .collect();
            files.push(SourceFile {
                path: path.strip_prefix(workspace()).unwrap().to_path_buf(),
                module,
                code,
                lines_before_tests: tests_at,
            });
        }
        let by_module = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.module.clone(), i))
            .collect();
        Crate { files, by_module }
    }

    fn root(&self) -> &SourceFile {
        &self.files[self.by_module[&Vec::new()]]
    }

    /// Top-level module -> its layer, from the root's doc comment: the numbered lines
    /// after `Layers, bottom to top`, each naming its modules in backticks.
    fn layers(&self) -> BTreeMap<String, usize> {
        let text = fs::read_to_string(workspace().join(&self.root().path)).unwrap();
        let numbered = regex::Regex::new(r"^//!\s*(\d+)\.\s").unwrap();
        let named = regex::Regex::new(r"`([a-z_]+)`").unwrap();
        let mut layers = BTreeMap::new();
        let mut inside = false;
        for line in text.lines().take_while(|l| l.starts_with("//!")) {
            if line.contains("Layers, bottom to top") {
                inside = true;
                continue;
            }
            let Some(number) = numbered.captures(line).filter(|_| inside) else {
                continue;
            };
            let layer: usize = number[1].parse().unwrap();
            let names = line.split(':').next().unwrap_or(line);
            for name in named.captures_iter(names) {
                layers.insert(name[1].to_string(), layer);
            }
        }
        assert!(
            !layers.is_empty(),
            "{} states no layers (a doc line `Layers, bottom to top`, then `1. `a`, `b`: why`)",
            self.root().path.display()
        );
        layers
    }

    /// The files `file` imports (itself left out), by `crate::`, `super::`, `self::` or
    /// a child module's name.
    fn imports(&self, file: &SourceFile) -> Vec<usize> {
        let mut out = BTreeSet::new();
        for path in import_paths(&file.code) {
            let mut absolute: Vec<String> = match path[0].as_str() {
                "crate" => Vec::new(),
                "super" | "self" => {
                    let mut base = file.module.clone();
                    let mut rest = &path[..];
                    while rest.first().is_some_and(|s| s == "super") {
                        base.pop();
                        rest = &rest[1..];
                    }
                    if rest.first().is_some_and(|s| s == "self") {
                        rest = &rest[1..];
                    }
                    base.extend(rest.iter().cloned());
                    out.extend(self.resolve(&base));
                    continue;
                }
                first => {
                    let mut child = file.module.clone();
                    child.push(first.to_string());
                    if !self.by_module.contains_key(&child) {
                        continue;
                    }
                    file.module.clone()
                }
            };
            absolute.extend(path.iter().skip_while(|s| *s == "crate").cloned());
            out.extend(self.resolve(&absolute));
        }
        let me = self.by_module[&file.module];
        out.into_iter().filter(|&i| i != me).collect()
    }

    /// The file of the longest module path that prefixes `path`.
    fn resolve(&self, path: &[String]) -> Option<usize> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.by_module.get(&path[..n]).copied())
    }
}

/// Paths a file names: each `use` tree expanded, and every path in code (`std::fs::read`
/// too: only those that name a module of the crate count, by `crate::`, `super::` or a
/// child module's name).
fn import_paths(code: &str) -> Vec<Vec<String>> {
    let uses = regex::Regex::new(r"(?s)\buse\s+([^;]+);").unwrap();
    let inline = regex::Regex::new(
        r"(?:^|[^A-Za-z0-9_:])([a-z_][a-z0-9_]*(?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)+)",
    )
    .unwrap();
    let mut paths = Vec::new();
    let mut rest = String::with_capacity(code.len());
    let mut last = 0;
    for m in uses.find_iter(code) {
        rest.push_str(&code[last..m.start()]);
        last = m.end();
        let tree = uses.captures(m.as_str()).unwrap()[1].to_string();
        paths.extend(expand_use(&tree).into_iter().map(|p| split_path(&p)));
    }
    rest.push_str(&code[last..]);
    paths.extend(inline.captures_iter(&rest).map(|c| split_path(&c[1])));
    paths.retain(|p| !p.is_empty());
    paths
}

fn split_path(path: &str) -> Vec<String> {
    path.split("::")
        .map(|s| s.trim().trim_start_matches("r#").to_string())
        .filter(|s| !s.is_empty() && s != "*")
        .map(|s| s.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

/// `a::{b, c::{d}}` -> `a::b`, `a::c::d`; `self` inside braces is the prefix itself.
fn expand_use(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(open) = tree.find('{') else {
        return vec![tree.trim().to_string()];
    };
    let prefix = tree[..open].trim().trim_end_matches("::").to_string();
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .flat_map(expand_use)
        .map(|p| match p.as_str() {
            "self" => prefix.clone(),
            _ if prefix.is_empty() => p,
            _ => format!("{prefix}::{p}"),
        })
        .collect()
}

/// Each `fn` with a body: its name, first line and length in lines.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let start = regex::Regex::new(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)").unwrap();
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    for c in start.captures_iter(code) {
        let at = c.get(0).unwrap().start();
        let Some(body) = code[at..].find(['{', ';']).map(|i| at + i) else {
            continue;
        };
        if bytes[body] == b';' {
            continue;
        }
        let mut depth = 0;
        let mut end = body;
        for (i, &b) in bytes.iter().enumerate().skip(body) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let line = code[..at].matches('\n').count() + 1;
        let lines = code[at..=end].matches('\n').count() + 1;
        out.push((c[1].to_string(), line, lines));
    }
    out
}

/// The source with comments, strings and character literals blanked (lines kept), so
/// braces and paths are read only from code.
fn blank_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(&chars, i) {
            // r"..", r#".."#, br#".."#: ends at a quote followed by as many hashes.
            i = chars[i..].iter().position(|&c| c == '"').unwrap() + i + 1;
            out.push_str("\"\"");
            while i < chars.len() {
                if chars[i] == '"' && chars[i + 1..].iter().take(hashes).all(|&h| h == '#') {
                    i += 1 + hashes;
                    break;
                }
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                let skip = if chars[i] == '\\' { 2 } else { 1 };
                for &c in chars.iter().skip(i).take(skip) {
                    blank(&mut out, c);
                }
                i += skip;
            }
            out.push('"');
            i += 1;
        } else if c == '\'' && is_char_literal(&chars, i) {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            out.push_str("' '");
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// At `i`, the start of a raw string: its number of hashes.
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    let before_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    if before_ident {
        return None;
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    (chars.get(j + hashes) == Some(&'"')).then_some(hashes)
}

/// `'x'` or `'\n'`, not a lifetime `'a`.
fn is_char_literal(chars: &[char], i: usize) -> bool {
    match chars.get(i + 1) {
        Some('\\') => true,
        Some(_) => chars.get(i + 2) == Some(&'\''),
        None => false,
    }
}

/// Tarjan's strongly connected components with more than one node.
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        edges: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        found: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &s.edges[v] {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort_unstable();
                s.found.push(component);
            }
        }
    }
    let n = edges.len();
    let mut s = State {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.found
}
