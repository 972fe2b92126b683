//! CPU priority of background threads. The threads that answer GitHub keep the normal
//! priority; work that can wait (the worker; the inbox janitor, through the inbox's
//! `janitor_nice` option) runs niced, so a burst of deliveries is acknowledged first and the rest
//! catches up from disk afterwards.
//!
//! Niced, not `SCHED_IDLE`: the idle class gave a burst ~9 % more acknowledgements, but on a
//! host where other processes keep the cores busy it starves the worker almost completely (the
//! integration suite beside two CPU hogs: 199 s and a release test timing out after 30 s,
//! against 75 s and all green at nice 10). Releases must make progress on a busy host.

/// Nice value of background threads.
pub const BACKGROUND_NICE: i32 = 10;

/// Raise the calling thread's nice value to [`BACKGROUND_NICE`] (Linux: per thread; threads it
/// creates afterwards inherit it). Failing is harmless: the thread then competes on equal terms.
pub fn background() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority only read their integer arguments.
    unsafe {
        let tid = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, BACKGROUND_NICE) != 0 {
            tracing::debug!("could not lower a background thread's priority");
        }
    }
}
