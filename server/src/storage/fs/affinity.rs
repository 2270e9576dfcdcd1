//! Keeping a CPU-heavy blocking job off the CPU of the task that feeds it.
//!
//! Why: an upload is received on a runtime worker and hashed on a blocking thread. The
//! kernel wakes the hashing thread on the CPU of the thread that woke it, and on the
//! 2-vCPU machines we measured it kept both there while the other vCPU sat idle (`perf
//! sched`: the wakeups of a push all targeted one CPU), so receiving, copying and hashing
//! took turns on one CPU. A hashing job that leaves the feeder's CPU runs beside it
//! instead (how much that gains, by upload size: `HASH_OFF_FEEDER_AFTER` in `mod.rs`).
//!
//! Only the thread's own affinity changes, within the CPUs it was allowed to use, and it
//! is restored when the job ends, so the pool thread goes back as it came. Elsewhere than
//! Linux, and where the thread may use only one CPU, nothing changes.

/// The CPU the calling thread runs on now, if the system says.
pub fn current_cpu() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: no arguments; returns -1 on failure.
        let cpu = unsafe { libc::sched_getcpu() };
        usize::try_from(cpu).ok()
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// While alive, keeps the calling thread off one CPU; dropping it restores the thread's
/// affinity. Must be dropped on the thread that made it.
pub struct Avoiding {
    #[cfg(target_os = "linux")]
    saved: Option<libc::cpu_set_t>,
    avoided: Option<usize>,
}

impl Avoiding {
    /// Changes nothing yet.
    pub fn none() -> Avoiding {
        Avoiding {
            #[cfg(target_os = "linux")]
            saved: None,
            avoided: None,
        }
    }

    /// Keeps the thread off `cpu` (from now on, instead of any CPU avoided before), when it
    /// may run on `cpu` and on at least one other.
    pub fn avoid(&mut self, cpu: usize) {
        if self.avoided == Some(cpu) {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            let size = std::mem::size_of::<libc::cpu_set_t>();
            let allowed = match self.saved {
                Some(set) => set,
                None => {
                    // SAFETY: a zeroed cpu_set_t is a valid empty set.
                    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
                    // SAFETY: `set` is a cpu_set_t of `size` bytes; 0 is this thread.
                    if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
                        return;
                    }
                    set
                }
            };
            if cpu >= libc::CPU_SETSIZE as usize {
                return;
            }
            let mut others = allowed;
            // SAFETY: `cpu` is below CPU_SETSIZE, so within the set.
            let any_other = unsafe {
                let allowed_here = libc::CPU_ISSET(cpu, &allowed);
                libc::CPU_CLR(cpu, &mut others);
                allowed_here && libc::CPU_COUNT(&others) > 0
            };
            if !any_other {
                return;
            }
            // SAFETY: as above; the kernel moves the thread if it runs on `cpu` now.
            if unsafe { libc::sched_setaffinity(0, size, &others) } == 0 {
                self.saved = Some(allowed);
                self.avoided = Some(cpu);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = cpu;
    }
}

impl Drop for Avoiding {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(set) = self.saved.take() {
            // SAFETY: restores the set read from this same thread. Failing leaves the thread
            // off one CPU, which costs speed only.
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        }
    }
}

/// The CPUs the calling thread may run on (for tests).
#[cfg(all(test, target_os = "linux"))]
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set, filled by the kernel for this
    // thread; every index tested is below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        assert_eq!(libc::sched_getaffinity(0, size, &mut set), 0);
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Lets the calling thread run on `cpus` only (for tests).
#[cfg(all(test, target_os = "linux"))]
pub fn pin_to(cpus: &[usize]) {
    // SAFETY: as in `allowed_cpus`; every CPU given is one the kernel listed.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        let size = std::mem::size_of::<libc::cpu_set_t>();
        assert_eq!(libc::sched_setaffinity(0, size, &set), 0);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_thread_leaves_the_avoided_cpu_and_gets_its_cpus_back() {
        std::thread::spawn(|| {
            let before = allowed_cpus();
            let mut guard = Avoiding::none();
            guard.avoid(before[0]);
            if before.len() > 1 {
                let during = allowed_cpus();
                assert!(!during.contains(&before[0]), "{during:?}");
                assert_eq!(during.len(), before.len() - 1);
                assert_ne!(current_cpu(), Some(before[0]));
                // Switching to another CPU avoids that one instead, from the same saved set.
                guard.avoid(before[1]);
                let switched = allowed_cpus();
                assert!(switched.contains(&before[0]) && !switched.contains(&before[1]));
            } else {
                // The only CPU allowed is never taken away.
                assert_eq!(allowed_cpus(), before);
            }
            drop(guard);
            assert_eq!(allowed_cpus(), before);
        })
        .join()
        .expect("the test thread");
    }

    #[test]
    fn a_cpu_outside_the_allowed_set_changes_nothing() {
        std::thread::spawn(|| {
            let before = allowed_cpus();
            let mut guard = Avoiding::none();
            guard.avoid(libc::CPU_SETSIZE as usize + 5);
            if let Some(outside) = (0..libc::CPU_SETSIZE as usize).find(|c| !before.contains(c)) {
                guard.avoid(outside);
            }
            assert_eq!(allowed_cpus(), before);
        })
        .join()
        .expect("the test thread");
    }
}
