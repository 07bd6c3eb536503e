//! Running a plan (or previewing it): preflight, plan and steps as one pipeline, the
//! run report, and the FATE root's lock.

pub mod lock;
pub mod pipeline;
pub mod preview;
pub mod report;
