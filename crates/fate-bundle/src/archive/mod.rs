//! An archive's bytes: `docker save`'s tar read once as it streams (its index of images
//! checked on the way), compressed on every core, split into numbered parts.

pub mod index;
pub mod layers;
pub mod members;
pub mod parts;
pub mod spool;
pub mod streams;
pub mod tar_pass;
