//! `cargo xtask bench`: on a copy of a FATE tree (by default examples/mini-fate), this
//! tool side by side with the old way and with `docker buildx bake` (see `bench`).

use std::path::Path;

use anyhow::Result;
use xshell::Shell;

use crate::bench::run::{Options, bench};
use crate::cli;
use crate::config::project::workspace_root;

impl cli::Bench {
    pub fn run(self, fate_root: Option<&Path>, sh: &Shell) -> Result<()> {
        let root = fate_root.map_or_else(
            || workspace_root().join("examples/mini-fate"),
            Path::to_path_buf,
        );
        let options = Options {
            runs: self.runs,
            only: self.only,
            out: self.out,
        };
        bench(&root, sh, &options)
    }
}
