//! Runs each call's future from JavaScript: the exported method returns the promise of a small
//! async function (`drive` in js/exchange.js) that polls the future synchronously and, when the
//! future waits for an exchange, awaits that exchange's promise itself and polls again.
//!
//! Why not `wasm_bindgen_futures::future_to_promise` around a `JsFuture`: per call that made an
//! outer promise, registered two wasm-bindgen closures with a `FinalizationRegistry` for the
//! `JsFuture`, and woke the task through `queueMicrotask` before polling it (BENCHMARKS.md,
//! "per call"). Here a call costs one JS async function and one native `await` per exchange;
//! the one closure the driver calls is made once per module. Everything else a call may wait for (a
//! sleep on gloo's timer, a `tokenProvider`'s promise through `JsFuture`, an abort listener)
//! still works through an ordinary `Waker`: waking a parked task resolves the promise its driver
//! awaits.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use js_sys::{Function, Promise};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// A call's future, with its error already the JS value to reject with.
pub type Task = Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>;

#[wasm_bindgen(module = "/js/exchange.js")]
extern "C" {
    fn drive(poll: &Function, id: u32) -> Promise;
    #[wasm_bindgen(js_name = wake)]
    fn wake_parked(id: u32);
    /// What `poll` returns when the task failed (the error is then the next `poll(id)`'s result)
    /// or waits for a wake-up; anything else it returns is the result, or a promise to await.
    #[wasm_bindgen(thread_local_v2, js_name = FAILED)]
    static FAILED: JsValue;
    #[wasm_bindgen(thread_local_v2, js_name = PARK)]
    static PARK: JsValue;
}

#[derive(Default)]
struct Slot {
    /// `None` while the task is being polled (or once it is over).
    future: Option<Task>,
    /// A promise the task handed over during this poll, for the driver to await.
    handoff: Option<Promise>,
    /// The driver is awaiting a handed-over promise; its outcome arrives with the next poll.
    awaiting: bool,
    /// That outcome, until the task's [`Handoff`] takes it.
    outcome: Option<Result<JsValue, JsValue>>,
    /// Woken while being polled: poll again before parking.
    woken: bool,
}

thread_local! {
    static TASKS: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
    static FREE: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// The task being polled (calls can nest: a callback of one call may start another).
    static CURRENT: Cell<Option<u32>> = const { Cell::new(None) };
    /// The error of a failed task, until the driver asks for it.
    static ERROR: RefCell<Option<JsValue>> = const { RefCell::new(None) };
    /// The driver's entry point into wasm, made once and kept for the module's life.
    static ENTRY: Function = Closure::<dyn Fn(u32, JsValue, bool) -> JsValue>::new(poll).into_js_value().unchecked_into();
}

fn with_slot<R>(id: u32, f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
    TASKS.with(|tasks| tasks.try_borrow_mut().ok()?.get_mut(id as usize).map(f))
}

/// Starts `task` and returns the promise of its result. The first poll runs before this returns.
pub fn run(task: Task) -> Promise {
    let id = FREE
        .with(|free| free.borrow_mut().pop())
        .unwrap_or_else(|| {
            TASKS.with(|tasks| {
                let mut tasks = tasks.borrow_mut();
                tasks.push(Slot::default());
                (tasks.len() - 1) as u32
            })
        });
    with_slot(id, |slot| {
        *slot = Slot {
            future: Some(task),
            ..Slot::default()
        }
    });
    ENTRY.with(|poll| drive(poll, id))
}

/// One step of task `id`, called by the driver with the outcome of the promise it awaited (if it
/// awaited one). Returns the result, a promise for the driver to await (a result is never one),
/// [`PARK`], or [`FAILED`], after which the next call returns the error.
fn poll(id: u32, value: JsValue, ok: bool) -> JsValue {
    if let Some(error) = ERROR.with(|slot| slot.borrow_mut().take()) {
        return error;
    }
    let Some(Some(mut future)) = with_slot(id, |slot| {
        if std::mem::take(&mut slot.awaiting) {
            slot.outcome = Some(if ok { Ok(value) } else { Err(value) });
        }
        slot.future.take()
    }) else {
        // Not a live task: nothing to resume (cannot happen through js/exchange.js).
        return JsValue::UNDEFINED;
    };
    let outer = CURRENT.replace(Some(id));
    let waker = task_waker(id);
    let mut cx = Context::from_waker(&waker);
    let step = loop {
        with_slot(id, |slot| slot.woken = false);
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(result) => break Step::Ready(result),
            Poll::Pending => {
                let (handoff, woken) = with_slot(id, |slot| (slot.handoff.take(), slot.woken))
                    .unwrap_or((None, false));
                if let Some(promise) = handoff {
                    with_slot(id, |slot| slot.awaiting = true);
                    break Step::Pending(JsValue::from(promise));
                }
                if !woken {
                    break Step::Pending(PARK.with(JsValue::clone));
                }
            }
        }
    };
    CURRENT.set(outer);
    match step {
        Step::Pending(out) => {
            with_slot(id, |slot| slot.future = Some(future));
            out
        }
        Step::Ready(result) => {
            drop(future);
            with_slot(id, |slot| *slot = Slot::default());
            FREE.with(|free| free.borrow_mut().push(id));
            match result {
                Ok(value) => value,
                Err(error) => {
                    ERROR.with(|slot| *slot.borrow_mut() = Some(error));
                    FAILED.with(JsValue::clone)
                }
            }
        }
    }
}

/// How one `poll` ended.
enum Step {
    /// The task is over.
    Ready(Result<JsValue, JsValue>),
    /// What the driver waits for: a promise, or [`PARK`].
    Pending(JsValue),
}

/// A promise awaited by the driver when the task runs under it (one native `await`, no closure),
/// else through `JsFuture`. The task must not race it against another future: while the driver
/// awaits the promise it does not poll the task for other wake-ups. The one user, the exchange
/// in `js_platform`, is bounded by its own timeout and signal inside the promise.
pub enum Handoff {
    /// Not polled yet.
    Start(Promise),
    /// Handed to the driver of this task.
    Driver(u32),
    /// Outside a driver (tests, or a future polled by another executor).
    Js(JsFuture),
}

impl Future for Handoff {
    type Output = Result<JsValue, JsValue>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut *self {
            Handoff::Start(promise) => {
                let promise = promise.clone();
                match CURRENT.get() {
                    Some(id)
                        if with_slot(id, |slot| slot.handoff = Some(promise.clone())).is_some() =>
                    {
                        *self = Handoff::Driver(id);
                        Poll::Pending
                    }
                    _ => {
                        *self = Handoff::Js(JsFuture::from(promise));
                        self.poll(cx)
                    }
                }
            }
            Handoff::Driver(id) => match with_slot(*id, |slot| slot.outcome.take()).flatten() {
                Some(outcome) => Poll::Ready(outcome),
                None => Poll::Pending,
            },
            Handoff::Js(future) => Pin::new(future).poll(cx),
        }
    }
}

// A waker is the task id. Waking a task that is being polled makes its poll go round again;
// waking a parked one resolves the promise its driver awaits (a stale or spurious wake only
// costs a poll, which futures allow).
fn task_waker(id: u32) -> Waker {
    // SAFETY: the data pointer is the task id, never dereferenced; every vtable function treats
    // it as a plain integer, and there is nothing to free.
    unsafe { Waker::from_raw(raw_waker(id as usize as *const ())) }
}

fn raw_waker(data: *const ()) -> RawWaker {
    RawWaker::new(data, &VTABLE)
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(raw_waker, wake, wake, |_| {});

fn wake(data: *const ()) {
    let id = data as usize as u32;
    let polling = with_slot(id, |slot| {
        let polling = slot.future.is_none();
        slot.woken |= polling;
        polling
    });
    if polling == Some(false) {
        wake_parked(id);
    }
}
