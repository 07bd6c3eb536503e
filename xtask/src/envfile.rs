//! `.env` text as data: `KEY=VALUE` entries with the line each came from. Nothing in it
//! is ever executed; unparseable lines become problems that name their line.

use std::path::Path;

use crate::problems::Problems;

/// One `key=value` of a `.env` file, with the line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvEntry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Parses `.env` text with dotenvy, recording each key's line. Unparseable lines become problems.
pub fn parse(text: &str, file: &Path, problems: &mut Problems) -> Vec<EnvEntry> {
    // A UTF-8 BOM (common from Windows editors) is not part of the first key.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries = Vec::new();
    let mut search_from = 0;
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((key, value)) => {
                let line = line_of_key(text, &key, search_from);
                search_from = line;
                entries.push(EnvEntry {
                    key,
                    value: value.trim_end_matches('\r').to_string(),
                    line,
                });
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
