//! Polling a future on the caller's own thread, off the runtime's workers.
//!
//! A binding may poll a run where it is awaited (the Python package polls an
//! in-process or worker run on the application's event loop thread) so that
//! the thread that finishes the work wakes the caller directly, with no task
//! hand-off in between. Such a thread must never block. Work that may block
//! it (starting a worker process, killing one's process tree) first awaits
//! [`off_caller_thread`]: polled through [`poll`], that asks the poller to
//! move the rest of the future onto the runtime; polled anywhere else (a
//! spawned task), it is ready at once.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

thread_local! {
    /// Set while [`poll`] polls on this thread.
    static ON_CALLER: Cell<bool> = const { Cell::new(false) };
    /// Set by [`off_caller_thread`] during such a poll.
    static MOVE_ASKED: Cell<bool> = const { Cell::new(false) };
}

/// What one [`poll`] of a future on the caller's thread came to.
#[derive(Debug)]
pub enum CallerPoll<T> {
    Ready(T),
    Pending,
    /// The future is about to block: spawn it and await the task instead
    /// (its next poll, on the runtime, goes on from where it stopped).
    MoveToRuntime,
}

/// Polls `future` as the caller's thread (see the module docs).
pub fn poll<F: Future + ?Sized>(
    future: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> CallerPoll<F::Output> {
    /// Puts the flag back however the poll ends (a panic included).
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ON_CALLER.set(self.0);
        }
    }
    let restore = Restore(ON_CALLER.replace(true));
    MOVE_ASKED.set(false);
    let polled = future.poll(cx);
    drop(restore);
    match polled {
        Poll::Ready(output) => CallerPoll::Ready(output),
        Poll::Pending if MOVE_ASKED.replace(false) => CallerPoll::MoveToRuntime,
        Poll::Pending => CallerPoll::Pending,
    }
}

/// Ready at once on a runtime's thread; polled through [`poll`], pending
/// until the poller has moved the future onto the runtime.
pub fn off_caller_thread() -> OffCaller {
    OffCaller { asked: false }
}

/// See [`off_caller_thread`].
#[derive(Debug)]
#[must_use = "a future does nothing unless awaited"]
pub struct OffCaller {
    asked: bool,
}

impl Future for OffCaller {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !ON_CALLER.get() {
            return Poll::Ready(());
        }
        if self.asked {
            // Polled on the caller's thread again: the poller did not move
            // it (it does not know how); go on here rather than hang.
            return Poll::Ready(());
        }
        self.asked = true;
        MOVE_ASKED.set(true);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn work() -> u32 {
        off_caller_thread().await;
        7
    }

    #[test]
    fn a_future_asks_to_move_where_it_would_block_and_goes_on_elsewhere() {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut future = Box::pin(work());
        assert!(matches!(
            poll(future.as_mut(), &mut cx),
            CallerPoll::MoveToRuntime
        ));
        // Polled off the caller's thread (as a spawned task would be): it goes on.
        assert_eq!(future.as_mut().poll(&mut cx), Poll::Ready(7));
    }

    #[test]
    fn a_future_that_never_blocks_is_polled_to_its_end_on_the_caller() {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut future = Box::pin(async { 3 });
        assert!(matches!(
            poll(future.as_mut(), &mut cx),
            CallerPoll::Ready(3)
        ));
    }
}
