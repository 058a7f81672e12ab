//! Real-time scheduling for the media threads (`[media] realtime_priority`).
//!
//! A media thread sleeps most of the time and must run the moment a packet arrives. Under the
//! normal scheduler a thread that wakes may wait behind whatever else holds its core: the
//! recording's disk threads, the kernel's write-back workers, a log rotation. Measured at 1000
//! recorded streams on one core, those waits put the 99th percentile of the added delay at
//! 2–12 ms; as a `SCHED_FIFO` thread the media thread preempts them at once and the same
//! percentile stays under 1 ms. The threads coalesce (`[media] coalesce_us`) and sleep between
//! turns, so they never hold a core while idle; the kernel's real-time throttling keeps a
//! share of every core for normal threads even if one ran away.
//!
//! Changing the policy needs `CAP_SYS_NICE` or an `RLIMIT_RTPRIO` at or above the priority
//! (systemd: `LimitRTPRIO=`). Without either the thread stays on the normal scheduler and the
//! gateway says so once.

/// Puts the calling thread under `SCHED_FIFO` at `priority` (1–99).
pub(super) fn enter_realtime(priority: u8) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: libc::c_int::from(priority),
    };
    // SAFETY: `sched_setscheduler` reads the fully initialised `param` for the duration of the
    // call only; pid 0 is the calling thread on Linux. It has no other memory effects.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &raw const param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The hint that goes with a refusal.
pub(super) fn refusal_hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM) => {
            "the process may not use real-time scheduling: give it CAP_SYS_NICE or an \
             RLIMIT_RTPRIO at or above [media] realtime_priority (systemd: LimitRTPRIO=), or \
             set realtime_priority = 0"
        }
        _ => "set [media] realtime_priority = 0 to run the media threads at normal priority",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_enters_fifo_or_is_refused_with_a_reason() {
        let outcome = std::thread::spawn(|| {
            let r = enter_realtime(1);
            let policy = {
                // SAFETY: reads the calling thread's policy; no memory is passed.
                #[allow(unsafe_code)]
                unsafe {
                    libc::sched_getscheduler(0)
                }
            };
            (r, policy)
        })
        .join()
        .expect("thread");
        match outcome {
            (Ok(()), policy) => assert_eq!(policy, libc::SCHED_FIFO),
            (Err(e), policy) => {
                assert_ne!(policy, libc::SCHED_FIFO);
                assert!(!refusal_hint(&e).is_empty());
            }
        }
    }
}
