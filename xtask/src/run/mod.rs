//! Running a plan: the scheduler, what each step does, the run report, the FATE root's
//! lock and the remembered file digests.

pub mod caches;
pub mod digest_cache;
pub mod lock;
pub mod pipeline;
pub mod report;
pub mod scheduler;
pub mod steps;
