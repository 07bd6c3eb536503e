//! Collects every problem found by a check so the user sees them all at once.

use anyhow::{Result, bail};

/// A titled list of problems; each entry says where, what is wrong, and the fix.
#[derive(Debug)]
pub struct Problems {
    title: String,
    items: Vec<String>,
}

impl Problems {
    pub fn new(title: impl Into<String>) -> Self {
        Problems {
            title: title.into(),
            items: Vec::new(),
        }
    }

    pub fn push(&mut self, problem: impl Into<String>) {
        self.items.push(problem.into());
    }

    /// Rewrites every problem (e.g. to say on which line it is).
    pub fn map(&mut self, f: impl Fn(&str) -> String) {
        for item in &mut self.items {
            *item = f(item);
        }
    }

    /// Ok when nothing was found, else one error listing every problem.
    pub fn into_result(self) -> Result<()> {
        if self.items.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = self.items.iter().map(|p| format!("  - {p}")).collect();
        bail!("{}:\n{}", self.title, list.join("\n"))
    }
}
