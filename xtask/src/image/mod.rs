//! One image: its build step (argv, labels, build args), its Dockerfile as built, and
//! the staging of its context.

pub mod dockerfile;
mod restage;
pub mod sbom;
pub mod staging;
pub mod step;
pub mod step_kind;
