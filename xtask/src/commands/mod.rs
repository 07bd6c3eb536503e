//! The commands that run the build pipeline or check it, each starting with its entry
//! point; the other commands live with their concept (bake, bench, bundle, push).

pub mod doctor;
pub mod images;
