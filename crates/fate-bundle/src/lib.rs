//! FATE's offline image bundles, readable without the FATE checkout that made them: the
//! format (`bundle.json`, `SHA256SUMS`, the archives and their parts), writing a bundle
//! from a Docker engine's images, checking one (sizes, sha256, signatures, SBOMs) and
//! loading it into an engine, with nothing loaded unless all of it is intact.
//!
//! Layers, bottom to top (a module imports only from layers below its own; the workspace's
//! tidy test keeps this):
//! 1. `fsx`, `ui`: files written whole; what a person sees (lines, bars, problems).
//! 2. `process`, `sbom`: child processes and signals; SPDX documents.
//! 3. `docker`: image references and platforms, the engine's answers, local images.
//! 4. `archive`, `signing`: an archive's bytes (streams, parts, its index); minisign.
//! 5. `manifest`: `bundle.json` and reading a bundle back.
//! 6. `update`, `check`: update bundles (`--since`) and what a host still needs; a
//!    bundle's files checked against `bundle.json` before and as they are read.
//! 7. `load`, `write`, `registry`: a bundle into an engine, out of one, and into a
//!    registry with no engine at all (the `registry` feature, which the loader has).
//! 8. `loader`: the `load` command as `cargo xtask` and the loader in a bundle run it.

pub mod archive;
pub mod check;
pub mod docker;
pub mod fsx;
pub mod load;
pub mod loader;
pub mod manifest;
pub mod process;
#[cfg(feature = "registry")]
pub mod registry;
pub mod sbom;
pub mod signing;
pub mod ui;
pub mod update;
pub mod write;
