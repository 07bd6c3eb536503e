//! The only module that spawns processes. Short captured questions go through xshell
//! (one `Shell`, passed down); long, streamed or piped children through duct. It knows
//! nothing of docker or Maven: callers build the [`Command`]s.

mod ask;
mod children;
mod command;
mod logged;
pub mod private;
#[cfg(test)]
mod tests;

pub use ask::{
    Answer, measure, query, query_anywhere, query_limit, query_status, query_stdout, run_captured,
    run_in_foreground, run_measured, run_with_stdin,
};
pub use children::{
    child_time, install_signal_handlers, interrupted, process_started, processes_started,
    signal_exit_code, signal_name, sleep_unless_interrupted,
};
pub use command::{Command, quote};
pub use logged::{
    PipedChild, Stream, TAIL_LINES, TimedOut, run_logged, run_logged_within, spawn_piped,
    stream_stdout, tail,
};
