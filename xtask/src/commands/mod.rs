//! One module per command of the CLI, each starting with its entry point.

pub mod bake;
pub mod bench;
pub mod bundle;
pub mod doctor;
pub mod images;
pub mod load;
pub mod push;
