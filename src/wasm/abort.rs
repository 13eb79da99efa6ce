//! Cancellation: following a caller's `AbortSignal`, and sleeping until a delay passes or the
//! signal fires, whichever comes first.
//!
//! Everything here is released on drop: the timer is cleared and the listener removed, so an
//! aborted wait leaves nothing behind that would keep a Node process alive.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::task::{Poll, Waker};

use gloo_timers::callback::Timeout;
use js_sys::Function;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::AbortSignal;

use tensorlake_snapshots_core::platform::Aborted;

#[wasm_bindgen(module = "/js/exchange.js")]
extern "C" {
    // One real listener per signal, however many calls follow it (see js/exchange.js).
    #[wasm_bindgen(js_name = onAbort)]
    fn follow_abort(signal: &AbortSignal, callback: &Function) -> Function;
}

/// Runs a callback when a signal fires, until dropped.
pub struct AbortLink {
    unfollow: Function,
    // Kept alive while the signal may call it.
    _listener: Closure<dyn FnMut()>,
}

impl AbortLink {
    /// Calls `on_abort` once if `signal` fires while the link lives.
    pub fn new(signal: &AbortSignal, on_abort: impl FnMut() + 'static) -> AbortLink {
        let listener = Closure::<dyn FnMut()>::new(on_abort);
        // A signal-like object without addEventListener simply never notifies; the explicit
        // `aborted` checks before each step still honour it.
        let unfollow = follow_abort(signal, listener.as_ref().unchecked_ref());
        AbortLink { unfollow, _listener: listener }
    }
}

impl Drop for AbortLink {
    fn drop(&mut self) {
        let _ = self.unfollow.call0(&JsValue::UNDEFINED);
    }
}

/// The longest delay a JS timer honours (2^31 - 1 ms); longer ones fire at once in Node.
const MAX_TIMER_MS: f64 = 2_147_483_647.0;

/// Sleeps `ms` milliseconds, or less if `signal` fires.
///
/// Built on gloo's callback `Timeout` (cleared on drop) and one waker slot shared by the timer and
/// the abort listener, rather than on `TimeoutFuture`, whose channel adds a kilobyte of wasm.
pub async fn sleep(ms: f64, signal: Option<&AbortSignal>) -> Result<(), Aborted> {
    if signal.is_some_and(AbortSignal::aborted) {
        return Err(Aborted);
    }
    let millis = ms.clamp(0.0, MAX_TIMER_MS) as u32;
    // 0 = waiting, 1 = the delay passed, 2 = the signal fired.
    let state = Rc::new(Cell::new(0u8));
    let waker: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
    let settle = |outcome: u8| {
        let (state, waker) = (state.clone(), waker.clone());
        move || {
            if state.get() == 0 {
                state.set(outcome);
            }
            if let Some(w) = waker.try_borrow_mut().ok().and_then(|mut slot| slot.take()) {
                w.wake();
            }
        }
    };
    let _timer = Timeout::new(millis, settle(1));
    let _link = signal.map(|signal| AbortLink::new(signal, settle(2)));
    poll_fn(|cx| match state.get() {
        0 => {
            if let Ok(mut slot) = waker.try_borrow_mut() {
                *slot = Some(cx.waker().clone());
            }
            Poll::Pending
        }
        1 => Poll::Ready(Ok(())),
        _ => Poll::Ready(Err(Aborted)),
    })
    .await
}

/// How [`race`] ended.
pub enum Raced<T> {
    /// The future finished first.
    Done(T),
    /// The time ran out first.
    TimedOut,
    /// The signal fired first.
    Aborted,
}

/// Runs `future` until it finishes, `ms` milliseconds pass, or `signal` fires, whichever comes
/// first. Used for the caller's own promises (a `tokenProvider`), which nothing else bounds.
pub async fn race<F: Future>(future: F, ms: f64, signal: Option<&AbortSignal>) -> Raced<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut timer = std::pin::pin!(sleep(ms, signal));
    poll_fn(|cx| {
        if let Poll::Ready(value) = future.as_mut().poll(cx) {
            return Poll::Ready(Raced::Done(value));
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Raced::TimedOut),
            Poll::Ready(Err(Aborted)) => Poll::Ready(Raced::Aborted),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
