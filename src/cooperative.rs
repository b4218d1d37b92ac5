//! Cooperative scheduling for background work (training) that shares the CPU
//! with request handling, and the per-thread CPU clock that measures such work.
//!
//! Process-wide state (the time of the latest request, a per-thread background
//! mark) lives here so the layers that call yield points (`nn`, `data`,
//! `tabular`) stay free of it. Nothing in this module imports from the crate.
//!
//! Training threads run at a lowered priority, yet the kernel does not always
//! run a woken request thread (or a load generator's) ahead of them: measured
//! on a 2-vCPU VM (Linux 6.18, EEVDF), a runnable request thread waited up to
//! a scheduler tick and beyond (4–8 ms) while a `SCHED_IDLE` training thread
//! kept the CPU, which put /predict's p99 at 3–7× its idle figure.
//!
//! Background threads therefore pass [`yield_point`]s between units of work
//! (mini-batches, matrix blocks, a few hundred rows), a fraction of a
//! millisecond apart:
//! - with no request in the last [`ACTIVE_WINDOW`], a yield point offers the
//!   CPU with `sched_yield` (~0.5 µs, about 0.2% of a batch);
//! - while requests arrive, a background thread that has run for
//!   [`RUN_SLICE`] since its last pause sleeps for [`PAUSE`]: not being
//!   runnable is what lets every waiting thread on that CPU run, whatever the
//!   kernel's pick. Training then gives up 5–10% of its CPU while serving.
//!
//! On threads not marked as background a yield point is a thread-local read
//! and nothing else, so code shared with the request path can carry them.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Requests within this long mark the service as busy serving.
pub const ACTIVE_WINDOW: Duration = Duration::from_millis(20);
/// Background work between two pauses while the service is busy serving.
pub const RUN_SLICE: Duration = Duration::from_millis(1);
/// Length of a pause (the kernel adds its timer slack).
pub const PAUSE: Duration = Duration::from_micros(50);

thread_local! {
    /// Set on background threads: when the last pause ended.
    static BACKGROUND: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Microseconds since [`epoch`] of the latest foreground activity (0: none).
static LAST_FOREGROUND_US: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn micros_since_epoch(at: Instant) -> u64 {
    u64::try_from(at.duration_since(epoch()).as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Records that a request is being served now (called once per request).
pub fn note_foreground_activity() {
    LAST_FOREGROUND_US.store(micros_since_epoch(Instant::now()), Ordering::Relaxed);
}

/// Whether a request was served within [`ACTIVE_WINDOW`] before `now`.
fn serving_busy(now: Instant) -> bool {
    let last = LAST_FOREGROUND_US.load(Ordering::Relaxed);
    last != 0 && micros_since_epoch(now).saturating_sub(last) < ACTIVE_WINDOW.as_micros() as u64
}

/// Marks the calling thread as background work: its yield points yield.
pub fn mark_background_thread() {
    let _ = epoch();
    BACKGROUND.with(|b| b.set(Some(Instant::now())));
}

/// Offers the CPU to waiting threads if this is a background thread (see the
/// module documentation).
#[inline]
pub fn yield_point() {
    if let Some(since_pause) = BACKGROUND.with(Cell::get) {
        background_yield(since_pause);
    }
}

#[cold]
fn background_yield(since_pause: Instant) {
    let now = Instant::now();
    if now.duration_since(since_pause) >= RUN_SLICE && serving_busy(now) {
        std::thread::sleep(PAUSE);
        BACKGROUND.with(|b| b.set(Some(Instant::now())));
    } else {
        std::thread::yield_now();
    }
}

/// [`yield_point`] once every `every` values of a loop counter `n`.
#[inline]
pub fn yield_every(n: usize, every: usize) {
    if n % every == every - 1 {
        yield_point();
    }
}

/// CPU seconds consumed by the calling thread.
pub fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the provided timespec only.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the calling thread was marked with [`mark_background_thread`].
    fn is_background_thread() -> bool {
        BACKGROUND.with(Cell::get).is_some()
    }

    #[test]
    fn only_marked_threads_are_background() {
        assert!(!std::thread::spawn(is_background_thread).join().unwrap());
        let marked = std::thread::spawn(|| {
            mark_background_thread();
            yield_point();
            yield_every(1023, 1024);
            is_background_thread()
        });
        assert!(marked.join().unwrap());
    }

    #[test]
    fn background_threads_pause_while_requests_arrive() {
        let paused = std::thread::spawn(|| {
            mark_background_thread();
            let before = BACKGROUND.with(Cell::get).unwrap();
            std::thread::sleep(RUN_SLICE);
            note_foreground_activity();
            yield_point();
            let after = BACKGROUND.with(Cell::get).unwrap();
            after > before
        });
        assert!(paused.join().unwrap(), "a pause restarts the run slice");
        assert!(serving_busy(Instant::now()));
        assert!(!serving_busy(Instant::now() + ACTIVE_WINDOW * 2));
    }
}
