//! Returning freed heap memory to the operating system after large requests.
//!
//! glibc keeps the pages of freed large allocations (request bodies, decoded batches)
//! in its arenas, so a burst of 256-row `/predict` batches leaves the resident set tens
//! of megabytes above its idle size for good. Requests with a large body (and finished
//! training jobs) mark the heap as worth trimming; a background task calls `malloc_trim`
//! at most once per [`TRIM_INTERVAL`] when marked, off the request path, and once more
//! one interval after the marks stop, for what the burst's last requests and closing
//! connections freed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Bodies at least this large mark the heap for trimming.
pub const LARGE_BODY_BYTES: u64 = 64 * 1024;
/// How often the trimmer looks at the mark.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(1);

static TRIM_WANTED: AtomicBool = AtomicBool::new(false);

/// Notes a request body of `bytes`; large ones mark the heap for trimming.
pub fn note_body(bytes: u64) {
    if bytes >= LARGE_BODY_BYTES {
        TRIM_WANTED.store(true, Ordering::Relaxed);
    }
}

/// Marks the heap as worth trimming (a training job ended, freeing its data).
pub fn request_trim() {
    TRIM_WANTED.store(true, Ordering::Relaxed);
}

/// Trims the heap if a large body was seen since the last call; returns whether it did.
pub fn trim_if_wanted() -> bool {
    if !TRIM_WANTED.swap(false, Ordering::Relaxed) {
        return false;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
    true
}

/// Runs [`trim_if_wanted`] every [`TRIM_INTERVAL`] on the blocking pool, forever.
pub async fn trim_periodically() {
    let mut ticks = tokio::time::interval(TRIM_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut trailing = false;
    loop {
        ticks.tick().await;
        if TRIM_WANTED.load(Ordering::Relaxed) {
            trailing = true;
            let _ = tokio::task::spawn_blocking(trim_if_wanted).await;
        } else if trailing {
            trailing = false;
            request_trim();
            let _ = tokio::task::spawn_blocking(trim_if_wanted).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_large_bodies_ask_for_a_trim_and_a_trim_clears_the_mark() {
        trim_if_wanted();
        note_body(LARGE_BODY_BYTES - 1);
        assert!(!trim_if_wanted(), "a small body must not ask for a trim");
        note_body(LARGE_BODY_BYTES);
        assert!(trim_if_wanted());
        assert!(!trim_if_wanted(), "the mark is cleared by the trim");
    }
}
