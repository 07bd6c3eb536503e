//! What the bundle needs of Docker: image references, platforms, the engine's answers,
//! and the local images it holds.

pub mod engine;
pub mod images;
pub mod platform;
pub mod reference;
