//! Where each archive's load waits once its index has been checked: they all go on only
//! when every archive's index was as the manifest says, so a bad archive loads nothing.

use std::sync::{Condvar, Mutex};

use anyhow::{Result, bail};

/// Where each archive's load waits once its index (near the end of the archive) has
/// been checked, the rest still held back: they all go on only when every archive's
/// index was as the manifest says, so a bad archive loads nothing of the bundle.
pub(super) struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
    archives: usize,
}

#[derive(Default)]
struct GateState {
    passed: usize,
    refused: bool,
}

impl Gate {
    pub(super) fn new(archives: usize) -> Gate {
        Gate {
            state: Mutex::new(GateState::default()),
            changed: Condvar::new(),
            archives,
        }
    }

    /// This archive's index is good: waits for the others' verdicts.
    pub(super) fn pass(&self) -> Result<()> {
        let mut state = self.state.lock().expect("no gate user panics");
        state.passed += 1;
        self.changed.notify_all();
        while !state.refused && state.passed < self.archives {
            state = self.changed.wait(state).expect("no gate user panics");
        }
        if state.refused {
            bail!("stopped before it completed, as another archive of the bundle failed");
        }
        Ok(())
    }

    /// An archive failed: those waiting stop, and none passes after this.
    pub(super) fn refuse(&self) {
        let mut state = self.state.lock().expect("no gate user panics");
        state.refused = true;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::Gate;

    #[test]
    fn the_gate_opens_only_when_every_archive_passed() {
        let gate = Gate::new(3);
        let passed: Vec<bool> = std::thread::scope(|scope| {
            let waiting: Vec<_> = (0..3)
                .map(|_| scope.spawn(|| gate.pass().is_ok()))
                .collect();
            waiting.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(passed, [true, true, true]);
    }

    #[test]
    fn one_refusal_stops_those_waiting_and_those_to_come() {
        let gate = Gate::new(3);
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| gate.pass());
            std::thread::sleep(std::time::Duration::from_millis(50));
            gate.refuse();
            let error = waiting.join().unwrap().unwrap_err().to_string();
            assert!(
                error.contains("another archive of the bundle failed"),
                "{error}"
            );
        });
        assert!(gate.pass().is_err(), "a later archive is stopped too");
    }
}
