//! The pure core of `images`: resolved config + image set + facts about the machine ->
//! an ordered list of steps, each with the exact command line that runs or its staging
//! operations. `--dry-run` prints it (as text, or as JSON for programs).

pub mod build;
pub mod images;
pub mod json;
pub mod model;
#[cfg(test)]
mod tests;

pub use crate::config::selection::Options;
pub use images::images;
pub use model::{Inputs, Plan};
