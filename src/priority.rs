//! Thread priority: lowering the calling thread's nice value, for work that
//! must not compete with requests (reloads, exposure export). Its own module
//! because both the reload and the exposure pipelines use it, and neither
//! should depend on the other.

/// Lowers the calling thread's priority to the nice value `nice` (best
/// effort). Reloads use [`crate::reload::background::RELOAD_NICE`], exposure
/// export [`crate::exposure::EXPORT_NICE`].
pub fn lower_priority_to(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // On Linux a nice value belongs to a thread (its tid), not the process.
        // Only ever lowered: a process started nicer than this keeps its value.
        let tid = rustix::thread::gettid();
        let now = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
        if now < nice {
            if let Err(e) = rustix::process::setpriority_process(Some(tid), nice) {
                tracing::debug!(error = %e, "could not lower a background thread's priority");
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// The calling thread's nice value (Linux), for tests.
pub fn current_nice() -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}
