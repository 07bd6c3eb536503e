//! The steps of a run, one type per kind with its three sides together: what it says of
//! itself (name, command, operations), its one decision (which the run and the dry run
//! both call) and what it does. Adding a kind is one type here and one [`action::Action`]
//! variant.

pub mod action;
pub mod build;
pub mod decision;
pub mod host;
pub mod kind;
pub mod maven;
pub mod records;
pub mod sbom;
