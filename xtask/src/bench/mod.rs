//! `cargo xtask bench`: on a copy of a FATE tree (by default examples/mini-fate), in one
//! run, side by side with the old way:
//! - cold, no-op and one-file rebuilds vs the same Maven and `docker build` commands, all
//!   of them, in sequence;
//! - `bundle` vs `docker save -o`, and `load` vs `docker load -i` of the raw tars (one
//!   after another, as the old way ran them, and at once, as xtask runs them), with a
//!   JDK-sized image among the bundled ones, and the compression levels on those tars;
//! - that bundle pushed into a registry with no engine (`load --registry`) vs `skopeo
//!   copy` and `docker load` + `tag` + `push` of each image, and pushed again vs
//!   `sha256sum -c`;
//! - `bundle` and `load` again with other payload shapes: one large layer, many small.

mod builds;
mod bundles;
mod fixture;
mod measure;
mod peer;
mod pushes;
mod report;
pub mod run;
mod samples;
mod shapes;
