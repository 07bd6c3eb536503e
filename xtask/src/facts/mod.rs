//! What the machine and the tree say, gathered once before planning (preflight): the
//! engine, its images and builder, the commit, host packages, Maven's modules, what the
//! run may write. The planner only reads these [`preflight::Facts`].

pub mod machine;
pub mod preflight;
pub mod revision;
pub mod sources;
pub mod submodules;
pub mod writable;
