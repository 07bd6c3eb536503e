//! The offline bundle: its format (`bundle.json`), the byte streams of its archives,
//! and the two directions, `bundle` (save) and `load`.

pub mod archive_index;
pub mod bundle_json;
pub mod load;
pub mod members;
pub mod save;
pub mod sboms;
pub mod signing;
pub mod split;
pub mod streams;
pub mod tar_pass;
pub mod update;
