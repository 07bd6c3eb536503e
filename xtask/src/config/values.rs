//! The resolved value of every known `.env` key, and where each came from (a line of
//! `.env`, an environment variable), for messages that point at it.

use std::collections::BTreeMap;
use std::path::Path;

/// Resolved values of every known key, and where each came from.
pub struct Values<'a> {
    pub env_file: &'a Path,
    pub values: BTreeMap<String, String>,
    /// `.env` line of each key the file set (and the environment did not override).
    pub lines: BTreeMap<String, usize>,
    pub from_environment: Vec<String>,
}

impl Values<'_> {
    pub fn get(&self, key: &str) -> &str {
        self.values.get(key).map_or("", String::as_str)
    }

    /// Where a key's value came from, for messages.
    #[must_use]
    pub fn at(&self, key: &str) -> String {
        match self.lines.get(key) {
            Some(line) => format!("{}:{line}", self.env_file.display()),
            None if self.from_environment.iter().any(|k| k == key) => {
                format!("environment variable {key}")
            }
            None => self.env_file.display().to_string(),
        }
    }
}
