//! CPU priority of background threads. The threads that answer GitHub keep the normal
//! priority; work that can wait (the worker, the inbox janitor) runs in Linux's `SCHED_IDLE`
//! class, so a burst of deliveries is acknowledged first and the rest catches up from disk
//! afterwards.
//!
//! `SCHED_IDLE` rather than a nice value: a thread at nice 10 still took ~10 % of the CPU during
//! a saturating burst, which the HTTP workers needed (measured ~9 % more deliveries per second
//! with `SCHED_IDLE`, BENCHMARKS.md). An idle-class thread runs whenever a core is spare, which
//! outside a burst is nearly always, and even under full load the kernel gives it a small share,
//! so the backlog never stalls for good. In a container the class only ranks threads within
//! the container's own CPU group.

/// Nice value of background threads where `SCHED_IDLE` is refused (it never is on Linux for a
/// thread lowering itself; kept so the fallback still yields).
pub const BACKGROUND_NICE: i32 = 10;

/// Linux's `SCHED_IDLE` policy number, as `/proc/<pid>/task/<tid>/stat` reports it.
pub const SCHED_IDLE: u32 = 5;

/// Move the calling thread to `SCHED_IDLE`, falling back to nice [`BACKGROUND_NICE`] (Linux:
/// per thread; threads and processes it creates afterwards inherit both). Failing is harmless:
/// the thread then competes on equal terms.
pub fn background() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid, setpriority and sched_setscheduler only read their arguments; `param`
    // outlives the call.
    unsafe {
        let tid = libc::gettid();
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(tid, libc::SCHED_IDLE, &param) != 0 {
            tracing::debug!("SCHED_IDLE refused; a background thread is niced instead");
        }
        // Also niced: harmless under SCHED_IDLE, and what is left if that was refused.
        if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, BACKGROUND_NICE) != 0 {
            tracing::debug!("could not lower a background thread's priority");
        }
    }
}
