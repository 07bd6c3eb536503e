//! `cargo xtask completions SHELL`: a completion script for the shell.

use clap::CommandFactory;

use crate::cli;

impl cli::Completions {
    pub fn run(self) {
        let mut command = cli::Cli::command();
        clap_complete::generate(
            self.shell,
            &mut command,
            "cargo-xtask",
            &mut std::io::stdout(),
        );
    }
}
