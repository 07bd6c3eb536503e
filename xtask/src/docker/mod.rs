//! What this tool asks of Docker beyond the bundle's needs: every `docker` command line
//! of a build (as data: `argv`), the builder and the buildx plugin, emulation for other
//! platforms, and the engine remembered between runs.

pub mod argv;
pub mod emulation;
pub mod engine;
pub mod remembered_engine;
