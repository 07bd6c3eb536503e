//! The process-wide state that signals need, and nothing else: which signal asked the
//! run to stop, the children running (killed on a signal), and the counts and spans of
//! the children a run started (for its report).

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// When this process started (for the run report's wall time).
static PROCESS_STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// When this process started: the first call (main's) sets it.
pub fn process_started() -> Instant {
    *PROCESS_STARTED.get_or_init(Instant::now)
}

/// The signal that asked this run to stop (0: none yet).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Children that are running, so a signal to this process alone (SIGTERM from CI or
/// `timeout`, SIGHUP) stops them too.
static RUNNING: Mutex<Vec<(u64, Arc<dyn Kill>)>> = Mutex::new(Vec::new());
static NEXT_CHILD: AtomicU64 = AtomicU64::new(0);

/// When each long child ran: the time not covered by these is the tool's own overhead.
pub(super) static CHILD_SPANS: Mutex<Vec<(Instant, Instant)>> = Mutex::new(Vec::new());
/// Every process this run started.
static STARTED: AtomicU64 = AtomicU64::new(0);

/// How many processes this run has started.
pub fn processes_started() -> u64 {
    STARTED.load(Ordering::SeqCst)
}

pub(super) fn count_start() {
    STARTED.fetch_add(1, Ordering::SeqCst);
}

pub(super) trait Kill: Send + Sync {
    fn kill(&self);
}

impl Kill for duct::ReaderHandle {
    fn kill(&self) {
        let _ = duct::ReaderHandle::kill(self);
    }
}

impl Kill for duct::Handle {
    fn kill(&self) {
        let _ = duct::Handle::kill(self);
    }
}

/// A running child registered for killing on a signal; deregistered when dropped.
pub(super) struct Registered(u64);

pub(super) fn register(child: Arc<dyn Kill>) -> Registered {
    let id = NEXT_CHILD.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut running) = RUNNING.lock() {
        running.push((id, child.clone()));
    }
    if interrupted() {
        child.kill();
    }
    Registered(id)
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut running) = RUNNING.lock() {
            running.retain(|(id, _)| *id != self.0);
        }
    }
}

/// Wall time during which at least one step's child process was running.
pub fn child_time() -> Duration {
    let mut spans = CHILD_SPANS.lock().map(|s| s.clone()).unwrap_or_default();
    spans.sort();
    let mut total = Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    for (start, end) in spans {
        match current {
            Some((s, e)) if start <= e => current = Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                current = Some((start, end));
            }
            None => current = Some((start, end)),
        }
    }
    if let Some((s, e)) = current {
        total += e - s;
    }
    total
}

/// SIGINT (Ctrl-C), SIGTERM (CI cancellation, `timeout`, `systemctl stop`) and SIGHUP
/// all stop the run the same way: running children are killed, no new step starts, the
/// caller cleans up and exits with 128 + the signal's number.
pub fn install_signal_handlers() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("cannot install the signal handlers")?;
    std::thread::spawn(move || {
        for signal in signals.forever() {
            SIGNAL.store(signal, Ordering::SeqCst);
            let running: Vec<Arc<dyn Kill>> = RUNNING
                .lock()
                .map(|r| r.iter().map(|(_, c)| c.clone()).collect())
                .unwrap_or_default();
            for child in running {
                child.kill();
            }
        }
    });
    Ok(())
}

pub fn interrupted() -> bool {
    SIGNAL.load(Ordering::SeqCst) != 0
}

/// The exit code of a run stopped by a signal: 128 + its number (130 for Ctrl-C).
pub fn signal_exit_code() -> Option<u8> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => u8::try_from(128 + signal).ok(),
    }
}

/// The stopping signal's name, for messages.
pub fn signal_name() -> &'static str {
    match SIGNAL.load(Ordering::SeqCst) {
        signal_hook::consts::SIGTERM => "SIGTERM",
        signal_hook::consts::SIGHUP => "SIGHUP",
        _ => "Ctrl-C",
    }
}

/// Sleeps up to `wait`, ending early when the run is interrupted.
pub fn sleep_unless_interrupted(wait: Duration) {
    let until = Instant::now() + wait;
    while !interrupted() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
}
