//! A panic inside a simulated node is a finding, not a crash of the harness: every node host's
//! future is polled inside `catch_unwind`, and a process-wide panic hook records the message
//! and location of a panic raised while a node is polled (on that thread only), so the run
//! can name it (`node n3 panicked: MESSAGE at FILE:LINE`) and stop just that host.
//!
//! Panics anywhere else (the driver, the checker) still go to the previous hook and unwind as
//! before: those are bugs of the harness, not findings.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Once;
use std::task::{Context, Poll};

thread_local! {
    /// True while this thread polls a node's future.
    static IN_NODE: Cell<bool> = const { Cell::new(false) };
    /// The message and location of the last panic raised inside a node on this thread.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL_HOOK: Once = Once::new();

/// Installs (once per process) the hook that captures panics raised inside node polls and
/// keeps them off stderr; any other panic goes to the hook installed before.
fn install_hook() {
    INSTALL_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_NODE.with(Cell::get) {
                let message = if let Some(text) = info.payload().downcast_ref::<&str>() {
                    (*text).to_string()
                } else if let Some(text) = info.payload().downcast_ref::<String>() {
                    text.clone()
                } else {
                    "(non-string panic payload)".to_string()
                };
                let location = info
                    .location()
                    .map(|location| format!(" at {}:{}", location.file(), location.line()))
                    .unwrap_or_default();
                CAUGHT.with(|caught| *caught.borrow_mut() = Some(format!("{message}{location}")));
            } else {
                previous(info);
            }
        }));
    });
}

/// Where a node's panic is recorded: "MESSAGE at FILE:LINE", first panic only.
pub type PanicSlot = Rc<RefCell<Option<String>>>;

/// Wraps a node host's future: a panic while polling it ends the future with `Ok(())` (the
/// host stops, the simulation goes on) and is written to `slot`.
pub struct CatchNodePanic<F> {
    inner: Pin<Box<F>>,
    slot: PanicSlot,
}

impl<F> CatchNodePanic<F> {
    pub fn new(inner: F, slot: PanicSlot) -> Self {
        install_hook();
        CatchNodePanic {
            inner: Box::pin(inner),
            slot,
        }
    }
}

impl<F: Future<Output = turmoil::Result>> Future for CatchNodePanic<F> {
    type Output = turmoil::Result;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<turmoil::Result> {
        let was_inside = IN_NODE.with(|inside| inside.replace(true));
        let polled = catch_unwind(AssertUnwindSafe(|| self.inner.as_mut().poll(cx)));
        IN_NODE.with(|inside| inside.set(was_inside));
        match polled {
            Ok(poll) => poll,
            Err(_) => {
                let caught = CAUGHT
                    .with(|caught| caught.borrow_mut().take())
                    .unwrap_or_else(|| "(panic without a message)".to_string());
                let mut slot = self.slot.borrow_mut();
                if slot.is_none() {
                    *slot = Some(caught);
                }
                Poll::Ready(Ok(()))
            }
        }
    }
}

/// The cause a run gives for a node's panic.
pub fn cause(node_name: &str, panic: &str) -> String {
    format!("node {node_name} panicked: {panic}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_the_wrapped_future_is_recorded_with_its_location() {
        let slot: PanicSlot = Rc::default();
        let future = CatchNodePanic::new(
            async {
                let limit = 3;
                assert!(limit > 5, "term went backwards: {limit}");
                Ok(())
            },
            slot.clone(),
        );
        let waker = std::task::Waker::noop();
        let mut context = Context::from_waker(waker);
        let mut future = Box::pin(future);
        assert!(matches!(
            future.as_mut().poll(&mut context),
            Poll::Ready(Ok(()))
        ));
        let recorded = slot.borrow().clone().expect("the panic is recorded");
        assert!(
            recorded.starts_with("term went backwards: 3 at ") && recorded.contains("panics.rs:"),
            "{recorded}"
        );
    }
}
