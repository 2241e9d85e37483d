//! Workers started ahead of need: a small warm pool that sessions of the same
//! configuration take their first worker from.
//!
//! A new worker costs an interpreter start (tens of ms); a pooled one has
//! already said `ready` and imported what its first run needs, so a new
//! session's first result costs a run. A pooled worker has never run agent
//! code and is handed to exactly one session, which owns it from then on (its
//! process, its scratch folder, its variables): sessions share a pool, never a
//! worker. Taking one starts a replacement in the background.
//!
//! Workers are keyed by everything that shapes the process before a session
//! exists (the launcher and its limits, the interpreter, the environment, the
//! working directory), so a session only ever gets a worker it would have
//! started itself. Idle workers die with the pool (its last handle dropped,
//! or [`WorkerPool::close`]) and with the host (the parent-death signal).

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;

use super::subprocess::{RawWorker, WorkerCommand, WorkerLauncher, worker_args};
use crate::bounds::{BoundsError, count};
use crate::error::ExecutorError;
use crate::spawn::make_host_undumpable;

/// The most idle workers a pool keeps per configuration: each is a live
/// interpreter (~10 MiB); more than a handful only holds memory.
pub const MAX_POOL_SIZE: usize = 16;

/// A warm pool of workers, shared by every session whose config holds a
/// clone of it (`SubprocessConfig::pool`, `SandboxConfig::pool`).
///
/// Cheap to clone; the idle workers are killed when the last clone (the
/// configs and executors hold one) is dropped, or at [`WorkerPool::close`].
/// Refills run on the tokio runtime of the session that took a worker: share
/// a pool between sessions of one runtime.
#[derive(Clone)]
pub struct WorkerPool {
    inner: Arc<Inner>,
}

struct Inner {
    size: usize,
    state: std::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    idle: HashMap<String, VecDeque<Pooled>>,
    /// Keys with a refill under way (one task per key).
    filling: HashSet<String>,
    closed: bool,
}

/// An idle worker and the scratch folder it was started in (the session that
/// takes it makes that folder its own).
pub(crate) struct Pooled {
    pub(crate) worker: RawWorker,
    pub(crate) scratch: Option<tempfile::TempDir>,
}

/// How to start a worker for one configuration.
pub(crate) struct Template {
    pub(crate) key: String,
    pub(crate) launcher: Arc<dyn WorkerLauncher>,
    pub(crate) python: PathBuf,
    pub(crate) env: Vec<(OsString, OsString)>,
    /// The config's working directory; `None`: a fresh scratch folder each.
    pub(crate) cwd: Option<PathBuf>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("size", &self.inner.size)
            .field("idle", &self.idle_pids().len())
            .finish()
    }
}

impl WorkerPool {
    /// A pool keeping `size` idle workers per configuration (1 to
    /// [`MAX_POOL_SIZE`]). Nothing starts until a session uses it.
    pub fn new(size: usize) -> Result<Self, BoundsError> {
        let size = count(
            "pool size",
            u64::try_from(size).unwrap_or(u64::MAX),
            1,
            MAX_POOL_SIZE as u64,
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                size: usize::try_from(size).unwrap_or(MAX_POOL_SIZE),
                state: std::sync::Mutex::default(),
            }),
        })
    }

    /// Idle workers kept per configuration.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// The process ids of the idle workers (every configuration): for
    /// diagnostics, tests and measuring the pool's memory.
    pub fn idle_pids(&self) -> Vec<u32> {
        self.inner
            .lock()
            .idle
            .values()
            .flatten()
            .filter_map(|pooled| pooled.worker.pid())
            .collect()
    }

    /// Kills every idle worker and starts no more; sessions keep the workers
    /// they took and start their own from now on.
    pub fn close(&self) {
        let idle = {
            let mut state = self.inner.lock();
            state.closed = true;
            std::mem::take(&mut state.idle)
        };
        drop(idle); // outside the lock: killing a tree walks /proc
    }

    /// A live idle worker for `key`, if any; dead ones met on the way are
    /// dropped (a refill replaces them).
    pub(crate) fn take(&self, key: &str) -> Option<Pooled> {
        let mut dead = Vec::new();
        let found = {
            let mut state = self.inner.lock();
            let queue = state.idle.get_mut(key)?;
            loop {
                let Some(mut pooled) = queue.pop_front() else {
                    break None;
                };
                if pooled.worker.alive() {
                    break Some(pooled);
                }
                dead.push(pooled);
            }
        };
        if !dead.is_empty() {
            tracing::warn!(
                count = dead.len(),
                "pooled workers died while idle; replacing them"
            );
        }
        drop(dead);
        found
    }

    /// Tops the pool up for `template` in the background, unless a refill
    /// for it is under way or the pool is closed. Needs a tokio runtime.
    pub(crate) fn refill(&self, template: Arc<Template>) {
        {
            let mut state = self.inner.lock();
            if state.closed || !state.filling.insert(template.key.clone()) {
                return;
            }
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.inner.lock().filling.remove(&template.key);
            return;
        };
        // A weak handle: a refill never keeps a dropped pool alive.
        let pool = Arc::downgrade(&self.inner);
        runtime.spawn(fill(pool, template));
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the pool wants one more worker for `key`.
    fn wants(&self, key: &str) -> bool {
        let state = self.lock();
        !state.closed && state.idle.get(key).map_or(0, VecDeque::len) < self.size
    }
}

/// How long a refill waits before starting a worker: the session that just
/// took one gets its first result before a new interpreter competes with it
/// for the CPU (the pool holds `size` workers for a burst meanwhile).
const REFILL_DELAY: Duration = Duration::from_millis(50);

/// Starts workers for `template` one at a time until the pool holds its size,
/// the pool is gone or closed, or a start fails (logged; the next take tries
/// again).
async fn fill(pool: Weak<Inner>, template: Arc<Template>) {
    /// Clears the key's `filling` mark however the task ends (even aborted).
    struct Filling(Weak<Inner>, String);
    impl Drop for Filling {
        fn drop(&mut self) {
            if let Some(inner) = self.0.upgrade() {
                inner.lock().filling.remove(&self.1);
            }
        }
    }
    let _filling = Filling(pool.clone(), template.key.clone());
    tokio::time::sleep(REFILL_DELAY).await;
    loop {
        if !pool
            .upgrade()
            .is_some_and(|inner| inner.wants(&template.key))
        {
            return;
        }
        let pooled = match start(&template).await {
            Ok(pooled) => pooled,
            Err(error) => {
                tracing::warn!(%error, "cannot start a pooled worker");
                return;
            }
        };
        let Some(inner) = pool.upgrade() else {
            return;
        };
        let mut state = inner.lock();
        if state.closed {
            drop(state);
            drop(pooled);
            return;
        }
        state
            .idle
            .entry(template.key.clone())
            .or_default()
            .push_back(pooled);
    }
}

/// One worker for `template`, started and `ready`.
async fn start(template: &Template) -> Result<Pooled, ExecutorError> {
    make_host_undumpable();
    let (scratch, cwd) = match &template.cwd {
        Some(cwd) => (None, cwd.clone()),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("py-code-mode-session-")
                .tempdir()
                .map_err(|source| ExecutorError::Spawn {
                    python: template.python.clone(),
                    source,
                })?;
            let path = dir.path().to_owned();
            (Some(dir), path)
        }
    };
    let (args, bytecode) = worker_args(&template.python);
    let command = WorkerCommand {
        python: template.python.clone(),
        args,
        env: template.env.clone(),
        cwd,
    };
    let mut worker = RawWorker::launch(&*template.launcher, command, bytecode).await?;
    worker.wait_ready().await?;
    Ok(Pooled { worker, scratch })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_is_validated() {
        assert!(WorkerPool::new(0).is_err());
        assert!(WorkerPool::new(MAX_POOL_SIZE + 1).is_err());
        let message = WorkerPool::new(0)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("pool size"), "{message}");
        assert_eq!(WorkerPool::new(2).map(|p| p.size()).ok(), Some(2));
    }
}
