//! One file per command, each starting with its entry point.

pub mod bundle;
pub mod doctor;
pub mod images;
pub mod keygen;
pub mod load;
