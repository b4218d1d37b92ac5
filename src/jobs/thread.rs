//! The training thread's scheduling priority.

/// Lowers the calling thread's scheduling priority to `nice` (Linux: per
/// thread); at 19 the thread also joins the idle scheduling class
/// (`SCHED_IDLE`), so it runs only on CPU time no request wants. Best effort:
/// failure only costs latency, so it is logged.
pub(super) fn lower_thread_priority(nice: i32) {
    if nice <= 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority with who = 0 changes only the calling thread.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
        if rc != 0 {
            tracing::warn!(nice, error = %std::io::Error::last_os_error(), "cannot lower the training thread's priority");
        }
        if nice >= 19 {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: pid 0 is the calling thread; SCHED_IDLE takes priority 0.
            let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
            if rc != 0 {
                tracing::warn!(error = %std::io::Error::last_os_error(), "cannot move the training thread to the idle scheduling class");
            }
        }
    }
}
