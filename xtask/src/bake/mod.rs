//! The `docker-bake.json` of a plan's builds, for `docker buildx bake`.

pub mod bakefile;
