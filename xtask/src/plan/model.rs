//! A plan: its steps in order, each with the steps it waits for and its [`Action`], and
//! the plan as text (`images --dry-run`).

use std::fmt;

use crate::config::Config;
use crate::facts::preflight::Facts;
use crate::imageset::ImageSet;
use crate::scheduler::Scheduled;
use crate::steps::action::Action;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Unique, file-name safe: also the log's name.
    pub id: String,
    pub title: String,
    /// Indices of steps that must succeed first.
    pub deps: Vec<usize>,
    pub action: Action,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Images named on the command line plus missing parents, in build order.
    pub images: Vec<String>,
}

impl Plan {
    pub(super) fn push(
        &mut self,
        id: &str,
        title: String,
        deps: Vec<usize>,
        action: Action,
    ) -> usize {
        self.steps.push(Step {
            id: id.to_string(),
            title,
            deps,
            action,
        });
        self.steps.len() - 1
    }
}

/// What every piece of a plan is computed from: the configuration, the image set and what
/// preflight found.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    pub config: &'a Config,
    pub set: &'a ImageSet,
    pub facts: &'a Facts,
}

/// Builds the plan for `cargo xtask images`.
impl Plan {
    /// The plan as text, with each step's status (up to date, or why it runs) where given.
    #[must_use]
    pub fn render(&self, status: &[String]) -> String {
        let mut out = String::new();
        self.write(&mut out, status).expect("writing to a String");
        out
    }

    fn write(&self, f: &mut impl fmt::Write, status: &[String]) -> fmt::Result {
        writeln!(
            f,
            "plan: {} steps; images: {}",
            self.steps.len(),
            self.images.join(", ")
        )?;
        for (n, step) in self.steps.iter().enumerate() {
            let after: Vec<String> = step.deps.iter().map(|d| (d + 1).to_string()).collect();
            let after = if after.is_empty() {
                String::new()
            } else {
                format!("  (after {})", after.join(", "))
            };
            writeln!(f, "{:>3}. [{}] {}{after}", n + 1, step.id, step.title)?;
            if let Some(s) = status.get(n) {
                writeln!(f, "       -> {s}")?;
            }
            write_action(&step.action, f)?;
        }
        Ok(())
    }
}

/// What the step runs or writes, as the plan shows it.
fn write_action(action: &Action, f: &mut impl fmt::Write) -> fmt::Result {
    for (n, op) in action.operations().iter().enumerate() {
        // A build's staging operations sit under its `stage` line.
        let indent = if matches!(action, Action::Build(_)) && n >= 2 {
            9
        } else {
            7
        };
        writeln!(f, "{:indent$}{op}", "")?;
    }
    match action.command() {
        Some(c) => writeln!(f, "       $ {c}"),
        None => Ok(()),
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, &[])
    }
}

impl Scheduled for Step {
    fn id(&self) -> &str {
        &self.id
    }
    fn title(&self) -> &str {
        &self.title
    }
    fn deps(&self) -> &[usize] {
        &self.deps
    }
    fn engine_does_the_work(&self) -> bool {
        matches!(self.action, Action::Build(_))
    }
}
