//! The process-wide state that signals need, and nothing else: which signal asked the
//! run to stop, the children running (killed on a signal, or by the watchdog at their
//! deadline), and the counts and spans of the children a run started (for its report).

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
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
/// `timeout`, SIGHUP) stops them too; some with a deadline the watchdog kills them at.
static RUNNING: Mutex<Vec<Running>> = Mutex::new(Vec::new());
static NEXT_CHILD: AtomicU64 = AtomicU64::new(0);
/// Woken when a child with a deadline is registered.
static WATCHDOG_WAKE: Condvar = Condvar::new();
static WATCHDOG: std::sync::Once = std::sync::Once::new();

struct Running {
    id: u64,
    child: Arc<dyn Kill>,
    deadline: Option<Instant>,
    /// Set when the watchdog killed it at its deadline.
    expired: Arc<AtomicBool>,
}

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

impl Kill for shared_child::SharedChild {
    fn kill(&self) {
        let _ = shared_child::SharedChild::kill(self);
    }
}

/// A running child registered for killing on a signal; deregistered when dropped.
pub(super) struct Registered {
    id: u64,
    expired: Arc<AtomicBool>,
}

impl Registered {
    /// Whether the watchdog killed it at its deadline.
    pub(super) fn expired(&self) -> bool {
        self.expired.load(Ordering::SeqCst)
    }
}

pub(super) fn register(child: Arc<dyn Kill>) -> Registered {
    register_until(child, None, false)
}

/// Registers a child that the watchdog kills at `deadline` if it still runs. A child of
/// the cleanup after a signal (`cleanup`) is not killed for that signal.
pub(super) fn register_until(
    child: Arc<dyn Kill>,
    deadline: Option<Instant>,
    cleanup: bool,
) -> Registered {
    let id = NEXT_CHILD.fetch_add(1, Ordering::SeqCst);
    let expired = Arc::new(AtomicBool::new(false));
    if let Ok(mut running) = RUNNING.lock() {
        running.push(Running {
            id,
            child: child.clone(),
            deadline,
            expired: expired.clone(),
        });
    }
    if deadline.is_some() {
        WATCHDOG.call_once(|| {
            std::thread::spawn(watchdog);
        });
        WATCHDOG_WAKE.notify_all();
    }
    if interrupted() && !cleanup {
        child.kill();
    }
    Registered { id, expired }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut running) = RUNNING.lock() {
            running.retain(|r| r.id != self.id);
        }
    }
}

/// Kills each child whose deadline has passed, sleeping until the next deadline.
fn watchdog() {
    let Ok(mut running) = RUNNING.lock() else {
        return;
    };
    loop {
        let now = Instant::now();
        for r in running
            .iter()
            .filter(|r| r.deadline.is_some_and(|d| d <= now))
        {
            if !r.expired.swap(true, Ordering::SeqCst) {
                r.child.kill();
            }
        }
        let next = running
            .iter()
            .filter(|r| !r.expired.load(Ordering::SeqCst))
            .filter_map(|r| r.deadline)
            .min();
        running = match next {
            Some(next) => {
                match WATCHDOG_WAKE.wait_timeout(running, next.saturating_duration_since(now)) {
                    Ok((guard, _)) => guard,
                    Err(_) => return,
                }
            }
            None => match WATCHDOG_WAKE.wait(running) {
                Ok(guard) => guard,
                Err(_) => return,
            },
        };
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
                .map(|r| r.iter().map(|r| r.child.clone()).collect())
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
