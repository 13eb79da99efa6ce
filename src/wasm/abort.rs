//! Cancellation: following a caller's `AbortSignal`, and sleeping until a delay passes or the
//! signal fires, whichever comes first.
//!
//! Everything here is released on drop: the timer is cleared and the listener removed, so an
//! aborted wait leaves nothing behind that would keep a Node process alive.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::future::Future;
use std::task::{Poll, Waker};

use gloo_timers::future::TimeoutFuture;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{AbortSignal, AddEventListenerOptions};

use crate::platform::Aborted;

/// Runs a callback when a signal fires, until dropped.
pub struct AbortLink {
    signal: AbortSignal,
    listener: Closure<dyn FnMut()>,
}

impl AbortLink {
    /// Calls `on_abort` once if `signal` fires while the link lives.
    pub fn new(signal: &AbortSignal, on_abort: impl FnMut() + 'static) -> AbortLink {
        let listener = Closure::<dyn FnMut()>::new(on_abort);
        let options = AddEventListenerOptions::new();
        options.set_once(true);
        // A signal-like object without addEventListener simply never notifies; the explicit
        // `aborted` checks before each step still honour it.
        let _ = signal.add_event_listener_with_callback_and_add_event_listener_options(
            "abort",
            listener.as_ref().unchecked_ref(),
            &options,
        );
        AbortLink { signal: signal.clone(), listener }
    }
}

impl Drop for AbortLink {
    fn drop(&mut self) {
        let _ = self.signal.remove_event_listener_with_callback("abort", self.listener.as_ref().unchecked_ref());
    }
}

/// The longest delay a JS timer honours (2^31 - 1 ms); longer ones fire at once in Node.
const MAX_TIMER_MS: f64 = 2_147_483_647.0;

/// Sleeps `ms` milliseconds, or less if `signal` fires.
pub async fn sleep(ms: f64, signal: Option<&AbortSignal>) -> Result<(), Aborted> {
    if signal.is_some_and(AbortSignal::aborted) {
        return Err(Aborted);
    }
    let millis = ms.clamp(0.0, MAX_TIMER_MS) as u32;
    let mut timer = TimeoutFuture::new(millis);
    let fired = Rc::new(Cell::new(false));
    let waker: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
    let _link = signal.map(|signal| {
        let (fired, waker) = (fired.clone(), waker.clone());
        AbortLink::new(signal, move || {
            fired.set(true);
            if let Some(w) = waker.borrow_mut().take() {
                w.wake();
            }
        })
    });
    poll_fn(|cx| {
        if fired.get() {
            return Poll::Ready(Err(Aborted));
        }
        if let Ok(mut slot) = waker.try_borrow_mut() {
            *slot = Some(cx.waker().clone());
        }
        Pin::new(&mut timer).poll(cx).map(|()| Ok(()))
    })
    .await
}
