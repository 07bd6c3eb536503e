//! `cargo xtask`: FATE's image build, as a library its binary (`main.rs`: parse, resolve,
//! dispatch) and its tests use.
//!
//! Layers, bottom to top (a module imports only from layers below its own; the bundle
//! and what a host needs to read it are the `fate_bundle` crate, below them all):
//! 1. `imageset`: the declared image set (`docker/images.toml`), as data.
//! 2. `config`: `.env` and flags resolved into one configuration; a FATE root opened.
//! 3. `docker`, `scheduler`: build command lines and engine questions; running a graph of jobs.
//! 4. `maven`: POMs, Maven's command lines and settings.
//! 5. `stage`: build contexts staged, tree walks, file digests, Dockerfile rules.
//! 6. `facts`: what the machine and the tree say, gathered once (preflight).
//! 7. `steps`: each kind of step: what it says, its one decision, what it does.
//! 8. `plan`: the pure planner, config + image set + facts -> steps.
//! 9. `run`: a plan run (or previewed), its report and the FATE root's lock.
//! 10. `bake`, `bundle`, `push`, `verify`: a bake file; what a bundle carries; pushing
//!     images; rebuilding a bundle's images from their commits to compare them.
//! 11. `bench`: the benchmark beside the old way and `docker buildx bake`.
//! 12. `cli`: every flag, and the small methods that turn flags into decisions.
//! 13. `commands`: one file per command, each starting at its entry point.

pub mod bake;
pub mod bench;
pub mod bundle;
pub mod cli;
pub mod commands;
pub mod config;
pub mod docker;
pub mod facts;
pub mod imageset;
pub mod maven;
pub mod plan;
pub mod push;
pub mod run;
pub mod scheduler;
pub mod stage;
pub mod steps;
pub mod verify;
