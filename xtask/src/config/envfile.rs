//! `.env` text as data: `KEY=VALUE` entries with the line each came from, with docker
//! compose's interpolation (`$V`, `${V}`, `${V:-default}`, `${V-default}`, `${V:?error}`,
//! `${V?error}`, `${V:+alt}`, `${V+alt}`, `$$`; none in single quotes). Nothing in it is
//! ever executed; unparseable lines and failed `?` forms become problems naming their line.

use std::collections::BTreeMap;
use std::path::Path;

use fate_bundle::ui::problems::Problems;

/// One `key=value` of a `.env` file, with the line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvEntry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Parses `.env` text with dotenvy, recording each key's line, and interpolates values as
/// docker compose does (the environment first, then keys set earlier in the file).
pub fn parse(
    text: &str,
    file: &Path,
    process_env: &BTreeMap<String, String>,
    problems: &mut Problems,
) -> Vec<EnvEntry> {
    // A UTF-8 BOM (common from Windows editors) is not part of the first key.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries = Vec::new();
    let mut search_from = 0;
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((key, value)) => {
                let line = line_of_key(text, &key, search_from);
                search_from = line;
                let lookup = |name: &str| {
                    process_env.get(name).cloned().or_else(|| {
                        entries
                            .iter()
                            .rev()
                            .find(|e: &&EnvEntry| e.key == name)
                            .map(|e| e.value.clone())
                    })
                };
                let raw = text.lines().nth(line.saturating_sub(1)).and_then(raw_value);
                let value = match raw {
                    Some((raw, Quoting::Single)) => raw,
                    Some((raw, Quoting::Interpolated)) => match interpolate(&raw, &lookup) {
                        Ok(v) => v,
                        Err(why) => {
                            problems.push(format!("{}:{line}: {key}: {why}", file.display()));
                            continue;
                        }
                    },
                    // Spread over several lines: as dotenvy read it.
                    None => value.trim_end_matches('\r').to_string(),
                };
                entries.push(EnvEntry { key, value, line });
            }
            Err(dotenvy::Error::LineParse(content, _)) => {
                // dotenvy reports the offending part of the line; find the whole line.
                let (line, full) = text
                    .lines()
                    .enumerate()
                    .skip(search_from)
                    .find(|(_, l)| l.contains(content.trim_end_matches('\r')))
                    .map_or((0, content.as_str()), |(i, l)| {
                        (i + 1, l.trim_end_matches('\r'))
                    });
                search_from = line;
                let why = if content.contains("$(") || content.contains('`') {
                    "uses shell command substitution; .env is read as data and never run: write the literal value"
                } else {
                    "is not KEY=VALUE; quote values that contain spaces or #"
                };
                problems.push(format!(
                    "{}:{line}: `{}` {why}",
                    file.display(),
                    full.trim()
                ));
            }
            Err(e) => problems.push(format!("{}: {e}", file.display())),
        }
    }
    entries
}

/// 1-based line where `key` is assigned, at or after line `after`.
fn line_of_key(text: &str, key: &str, after: usize) -> usize {
    let assigns = |l: &str| {
        let l = l.trim_start();
        let l = l.strip_prefix("export ").unwrap_or(l).trim_start();
        l.strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    text.lines()
        .enumerate()
        .skip(after)
        .find(|(_, l)| assigns(l))
        .map_or(after, |(i, _)| i + 1)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quoting {
    /// `'...'`: taken literally.
    Single,
    /// Unquoted or `"..."`: interpolated.
    Interpolated,
}

/// The value of a `KEY=VALUE` line as written: quotes removed, a trailing ` # comment`
/// dropped. None when it does not close on its line.
fn raw_value(line: &str) -> Option<(String, Quoting)> {
    let line = line.trim_end_matches('\r').trim_start();
    let line = line.strip_prefix("export ").unwrap_or(line);
    let rest = line.split_once('=')?.1.trim_start();
    if let Some(body) = rest.strip_prefix('\'') {
        let end = body.find('\'')?;
        return Some((body[..end].to_string(), Quoting::Single));
    }
    if let Some(body) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some((out, Quoting::Interpolated)),
                '\\' => match chars.next()? {
                    'n' => out.push('\n'),
                    other => out.push(other),
                },
                c => out.push(c),
            }
        }
        return None;
    }
    let value = rest.split(" #").next().unwrap_or("").trim_end();
    Some((value.to_string(), Quoting::Interpolated))
}

/// docker compose's interpolation of one value.
pub fn interpolate(raw: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(more) = after.strip_prefix('$') {
            out.push('$');
            rest = more;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = closing_brace(body)
                .ok_or_else(|| format!("`${{` without a closing `}}` in {raw:?}"))?;
            out.push_str(&expand(&body[..end], lookup)?);
            rest = &body[end + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if len == 0 || after.starts_with(|c: char| c.is_ascii_digit()) {
                out.push('$');
                rest = after;
            } else {
                out.push_str(&lookup(&after[..len]).unwrap_or_default());
                rest = &after[len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` closing a `${`, nested `${...}` included.
fn closing_brace(body: &str) -> Option<usize> {
    let mut depth = 0;
    let bytes = body.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'{' if i > 0 && bytes[i - 1] == b'$' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// `NAME`, `NAME:-word`, `NAME-word`, `NAME:?word`, `NAME?word`, `NAME:+word`, `NAME+word`.
fn expand(body: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let (name, form) = body.split_at(len);
    if name.is_empty() {
        return Err(format!("`${{{body}}}` names no variable"));
    }
    let value = lookup(name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let (op, word) = ["?", ":?", ":-", "-", ":+", "+"]
        .iter()
        .filter_map(|op| form.strip_prefix(op).map(|w| (*op, w)))
        .max_by_key(|(op, _)| op.len())
        .unwrap_or(("", form));
    if op.is_empty() && !form.is_empty() {
        return Err(format!("`${{{body}}}` is not a form docker compose knows"));
    }
    let word = || interpolate(word, lookup);
    Ok(match op {
        ":-" if !non_empty => word()?,
        "-" if !set => word()?,
        ":?" if !non_empty => return Err(required(name, &word()?)),
        "?" if !set => return Err(required(name, &word()?)),
        ":+" if non_empty => word()?,
        "+" if set => word()?,
        ":+" | "+" => String::new(),
        _ => value.unwrap_or_default(),
    })
}

fn required(name: &str, message: &str) -> String {
    if message.is_empty() {
        format!("required variable {name} is missing a value")
    } else {
        format!("required variable {name} is missing a value: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn compose_forms_mean_what_they_mean_in_compose() {
        let env = with(&[("SET", "x"), ("EMPTY", "")]);
        let i = |raw: &str| interpolate(raw, &env);
        assert_eq!(i("${UNSET:-1.0}"), Ok("1.0".into()));
        assert_eq!(i("${EMPTY:-d}"), Ok("d".into()));
        assert_eq!(i("${EMPTY-d}"), Ok(String::new()));
        assert_eq!(i("${UNSET-d}"), Ok("d".into()));
        assert_eq!(i("${SET:-d}"), Ok("x".into()));
        assert_eq!(i("${SET:+alt}"), Ok("alt".into()));
        assert_eq!(i("${EMPTY:+alt}"), Ok(String::new()));
        assert_eq!(i("${EMPTY+alt}"), Ok("alt".into()));
        assert_eq!(i("${UNSET+alt}"), Ok(String::new()));
        assert_eq!(i("a-$SET-${SET}b $$SET"), Ok("a-x-xb $SET".into()));
        assert_eq!(i("${UNSET:-${SET}y}"), Ok("xy".into()));
        assert_eq!(
            i("${UNSET:?set it in .env}"),
            Err("required variable UNSET is missing a value: set it in .env".into())
        );
        assert_eq!(i("${EMPTY?no}"), Ok(String::new()));
        assert!(
            i("${EMPTY:?}")
                .unwrap_err()
                .contains("EMPTY is missing a value")
        );
        assert!(i("${SET%x}").is_err());
        assert!(i("${SET").is_err());
        assert_eq!(i("$(date) `x`"), Ok("$(date) `x`".into()));
    }

    #[test]
    fn quoting_decides_interpolation() {
        assert_eq!(
            raw_value("A='${X:-1}'"),
            Some(("${X:-1}".into(), Quoting::Single))
        );
        assert_eq!(
            raw_value("A=\"a \\\" b\""),
            Some(("a \" b".into(), Quoting::Interpolated))
        );
        assert_eq!(
            raw_value("export A=${X} # note"),
            Some(("${X}".into(), Quoting::Interpolated))
        );
        assert_eq!(raw_value("A=\"open"), None);
    }

    #[test]
    fn values_see_the_environment_then_earlier_keys() {
        let mut problems = Problems::new("t");
        let env: BTreeMap<String, String> = [("FROM_ENV".to_string(), "e".to_string())].into();
        let text = "A=1\nB=${A}-${FROM_ENV}\nC=${NOPE:-2.0}\nD='${A}'\nE=${NOPE:?give E}\n";
        let entries = parse(text, Path::new(".env"), &env, &mut problems);
        let values: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            values,
            [("A", "1"), ("B", "1-e"), ("C", "2.0"), ("D", "${A}")]
        );
        let e = format!("{:#}", problems.into_result().unwrap_err());
        assert!(
            e.contains(".env:5: E: required variable NOPE is missing a value: give E"),
            "{e}"
        );
    }
}
