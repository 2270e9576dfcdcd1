//! Blocking work fed from async code, holding a thread only while there is work.
//!
//! Why: an upload's hashing and writing, and a download's reads, are blocking file work
//! paced by a client. A blocking-pool thread that waits for the next batch of a slow client
//! is a thread no other request can use: a few hundred slow clients used up tokio's pool
//! (512 threads) and every file operation of the registry queued behind them. A [`Drain`]
//! takes a pool thread when an item arrives and gives it back as soon as its queue is
//! empty; while a client keeps its queue busy, one job runs through many items without a
//! hand-off per item.

use std::collections::VecDeque;
use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::affinity::{self, Avoiding};

/// Runs `step(&mut worker, item)` for each item pushed, in order, on the blocking pool,
/// with at most `depth` items waiting. The first failure stops it: later items are
/// dropped and [`Drain::finish`] returns the error.
pub struct Drain<W, T> {
    shared: Arc<Shared<W, T>>,
    depth: usize,
}

struct Shared<W, T> {
    state: Mutex<State<W, T>>,
    /// Wakes pushers waiting for room and `finish` waiting for the end.
    changed: Notify,
    step: fn(&mut W, T) -> io::Result<()>,
    /// With [`Drain::off_feeder`]: the CPU the last item was pushed from (`NO_CPU` until
    /// known), which the job keeps off, and the number of items pushed before it does.
    feeder: Option<(AtomicUsize, usize)>,
    /// Items pushed so far.
    pushed: AtomicUsize,
}

const NO_CPU: usize = usize::MAX;

struct State<W, T> {
    queue: VecDeque<T>,
    /// The worker while no job runs (a job takes it along).
    worker: Option<W>,
    running: bool,
    failed: Option<io::Error>,
}

impl<W: Send + 'static, T: Send + 'static> Drain<W, T> {
    pub fn new(worker: W, depth: usize, step: fn(&mut W, T) -> io::Result<()>) -> Drain<W, T> {
        Drain {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    worker: Some(worker),
                    running: false,
                    failed: None,
                }),
                changed: Notify::new(),
                step,
                feeder: None,
                pushed: AtomicUsize::new(0),
            }),
            depth: depth.max(1),
        }
    }

    /// Has the job run on other CPUs than the one items are pushed from, once `after`
    /// items have been pushed (see `affinity.rs`): for CPU-heavy steps, which otherwise
    /// take turns with the pusher on one CPU. The step must not start threads (a blocking
    /// task that needs a new pool thread, say): they would inherit the narrowed CPU set.
    pub fn off_feeder(mut self, after: usize) -> Drain<W, T> {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.feeder = Some((AtomicUsize::new(NO_CPU), after));
        }
        self
    }

    /// Queues `item`, waiting while the queue is full; false once the drain has failed
    /// (the item is dropped; [`Drain::finish`] says why).
    pub async fn push(&self, item: T) -> bool {
        let pushed = self.shared.pushed.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some((feeder, after)) = &self.shared.feeder {
            if pushed > *after {
                if let Some(cpu) = affinity::current_cpu() {
                    feeder.store(cpu, Ordering::Relaxed);
                }
            }
        }
        let mut item = Some(item);
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            // Registered before the check, so a change between the check and the wait
            // still wakes us.
            changed.as_mut().enable();
            {
                let mut state = self.shared.lock();
                if state.failed.is_some() {
                    return false;
                }
                if state.queue.len() < self.depth {
                    if let Some(item) = item.take() {
                        state.queue.push_back(item);
                    }
                    if !state.running {
                        if let Some(worker) = state.worker.take() {
                            state.running = true;
                            let shared = Arc::clone(&self.shared);
                            tokio::task::spawn_blocking(move || shared.run(worker));
                        }
                    }
                    return true;
                }
            }
            changed.await;
        }
    }

    /// Waits until every queued item is done and returns the worker, or the first error.
    pub async fn finish(self) -> io::Result<W> {
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.shared.lock();
                if !state.running {
                    if let Some(e) = state.failed.take() {
                        return Err(e);
                    }
                    return state
                        .worker
                        .take()
                        .ok_or_else(|| io::Error::other("drain finished twice"));
                }
            }
            changed.await;
        }
    }
}

impl<W, T> Shared<W, T> {
    fn lock(&self) -> MutexGuard<'_, State<W, T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The job: works through the queue, then puts the worker back and ends.
    fn run(&self, mut worker: W) {
        // Restores the thread's CPUs when the job ends, however it ends.
        let mut avoiding = Avoiding::none();
        loop {
            if let Some((feeder, _)) = &self.feeder {
                let cpu = feeder.load(Ordering::Relaxed);
                if cpu != NO_CPU {
                    avoiding.avoid(cpu);
                }
            }
            let item = {
                let mut state = self.lock();
                match state.queue.pop_front() {
                    Some(item) => item,
                    None => {
                        state.worker = Some(worker);
                        state.running = false;
                        drop(state);
                        self.changed.notify_waiters();
                        return;
                    }
                }
            };
            self.changed.notify_waiters(); // room in the queue
            let done =
                std::panic::catch_unwind(AssertUnwindSafe(|| (self.step)(&mut worker, item)));
            let failure = match done {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e,
                Err(_) => io::Error::other("a blocking worker panicked"),
            };
            let mut state = self.lock();
            state.failed = Some(failure);
            state.queue.clear();
            state.running = false;
            drop(state);
            self.changed.notify_waiters();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn add(sum: &mut Vec<u32>, item: u32) -> io::Result<()> {
        if item == 99 {
            return Err(io::Error::other("ninety-nine"));
        }
        if item == 98 {
            panic!("ninety-eight");
        }
        std::thread::sleep(Duration::from_micros(50));
        sum.push(item);
        Ok(())
    }

    #[tokio::test]
    async fn items_are_worked_in_order_and_the_worker_comes_back() {
        let drain = Drain::new(Vec::new(), 2, add);
        for i in 0..50 {
            assert!(drain.push(i).await);
            if i % 10 == 0 {
                // Let the job run dry and end, so the next push starts another.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let done = drain.finish().await.expect("no failure");
        assert_eq!(done, (0..50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn the_first_failure_stops_the_drain_and_is_returned() {
        for poison in [99, 98] {
            let drain = Drain::new(Vec::new(), 1, add);
            assert!(drain.push(1).await);
            assert!(drain.push(poison).await);
            let mut refused = false;
            for i in 2..100 {
                if !drain.push(i).await {
                    refused = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert!(refused, "pushes after a failure are refused");
            let e = drain.finish().await.expect_err("the failure");
            let want = if poison == 99 {
                "ninety-nine"
            } else {
                "panicked"
            };
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    #[cfg(target_os = "linux")]
    fn note_cpus(seen: &mut Vec<Vec<usize>>, _item: u32) -> io::Result<()> {
        seen.push(affinity::allowed_cpus());
        Ok(())
    }

    /// With `off_feeder(3)`, items pushed after the third are worked off the pusher's CPU,
    /// and the pool thread gets its CPUs back when the job ends.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_job_off_the_feeder_leaves_its_cpu_and_gives_it_back() {
        use affinity::{allowed_cpus, pin_to};
        std::thread::spawn(|| {
            let all = allowed_cpus();
            let feeder = all[0];
            // The pusher (this thread, the runtime's only worker) runs on one known CPU;
            // pool threads, which would inherit that, start with every CPU again.
            pin_to(&[feeder]);
            let everywhere = all.clone();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .on_thread_start(move || pin_to(&everywhere))
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let drain = Drain::new(Vec::new(), 1, note_cpus).off_feeder(3);
                for i in 0..8 {
                    assert!(drain.push(i).await);
                }
                let seen = drain.finish().await.expect("no failure");
                assert_eq!(seen.len(), 8);
                let others: Vec<usize> = all.iter().copied().filter(|&c| c != feeder).collect();
                // A thread allowed one CPU only keeps it.
                let off = if others.is_empty() { &all } else { &others };
                // The job looks before taking each item: the first is taken before the
                // pusher's CPU is known, the fourth and later after the push that told it.
                // The second and third may be either, depending on when the job ran.
                assert_eq!(&seen[0], &all, "item 0");
                for (i, cpus) in seen.iter().enumerate().skip(1) {
                    if i >= 3 {
                        assert_eq!(cpus, off, "item {i}");
                    } else {
                        assert!(cpus == &all || cpus == off, "item {i}: {cpus:?}");
                    }
                }
                // Every pool thread, the drain's among them, has all its CPUs again.
                for _ in 0..4 {
                    let cpus = tokio::task::spawn_blocking(allowed_cpus)
                        .await
                        .expect("joined");
                    assert_eq!(cpus, all);
                }
            });
        })
        .join()
        .expect("the test thread");
    }

    /// The point of a drain: a producer that stalls holds no blocking thread, so a pool
    /// of two threads serves many stalled producers and still runs other work.
    #[test]
    fn stalled_producers_hold_no_blocking_thread() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let mut stalled = Vec::new();
            for i in 0..20 {
                let drain = Drain::new(Vec::new(), 2, add);
                assert!(drain.push(i).await);
                stalled.push(drain); // never pushed to again, never finished
            }
            let other = tokio::task::spawn_blocking(|| 7);
            let got = tokio::time::timeout(Duration::from_secs(10), other).await;
            assert_eq!(got.expect("the pool is free").expect("joined"), 7);
            for (i, drain) in stalled.into_iter().enumerate() {
                assert_eq!(drain.finish().await.expect("finished"), vec![i as u32]);
            }
        });
    }
}
