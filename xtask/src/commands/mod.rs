//! One file per command, each starting with its entry point.

pub mod bake;
pub mod bench;
pub mod bundle;
pub mod completions;
pub mod doctor;
pub mod images;
pub mod keygen;
pub mod load;
pub mod push;
pub mod verify;
