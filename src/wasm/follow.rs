//! `followStdout` / `followStderr` / `followOutput`: an async iterator over a process's output
//! lines as the sandbox streams them (`GET …/{stream}/follow`, Server-Sent Events).
//!
//! The body is read chunk by chunk (js/follow.js) and split by the core's `SseDecoder`, so a line
//! reaches the caller as soon as its event arrives, and memory holds one chunk and its events,
//! however long the process runs. The request is opened by the first `next()`; it ends with the
//! stream (`event: eof` once the process has exited), on `return()` (a `break` out of
//! `for await`), or when the signal fires, each of which closes the connection.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use js_sys::{JsString, Object, Promise, Reflect};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

use tensorlake_snapshots_core::api::SandboxTarget;
use tensorlake_snapshots_core::call::{self, Call, ERROR_BODY_MAX_CHARS};
use tensorlake_snapshots_core::error::{
    describe_request, server_message, ApiError, ConnectionError, Error,
};
use tensorlake_snapshots_core::platform::{
    Expect, Method, Platform, Request, RequestBody, SendError,
};
use tensorlake_snapshots_core::processes::{self, SseDecoder};
use tensorlake_snapshots_core::retry::{is_retryable_status, RetryClass};
use tensorlake_snapshots_core::trace;

use crate::wasm::js_json;
use crate::wasm::js_platform::{JsHost, Shared};
use crate::wasm::methods::call as run_call;
use crate::wasm::plain::plain;

#[wasm_bindgen(module = "/js/follow.js")]
extern "C" {
    #[wasm_bindgen(js_name = openStream)]
    fn open_stream(
        fetch: &JsValue,
        url: &str,
        headers: &Object,
        signal: Option<AbortSignal>,
    ) -> Promise;

    /// An open response (js/follow.js).
    type Stream;
    #[wasm_bindgen(method, getter)]
    fn status(this: &Stream) -> f64;
    /// The next text chunk, or `undefined` at the end.
    #[wasm_bindgen(method)]
    fn read(this: &Stream) -> Promise;
    #[wasm_bindgen(method)]
    fn cancel(this: &Stream);
}

/// The state behind one follow iterator.
pub struct Follow {
    shared: Rc<Shared>,
    signal: Option<AbortSignal>,
    sandbox_id: String,
    url: String,
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    stream: Option<Rc<Stream>>,
    /// The trace id of the follow request, for errors while reading it.
    trace_id: String,
    decoder: SseDecoder,
    events: VecDeque<String>,
    finished: bool,
    busy: bool,
}

impl Follow {
    /// A follow of `stream` (`stdout`, `stderr` or `output`) of `process` in `target`.
    pub fn new(
        shared: Rc<Shared>,
        target: &SandboxTarget,
        process: &str,
        stream: &str,
        signal: Option<AbortSignal>,
    ) -> Follow {
        let url = processes::process(&target.base, process, &format!("/{stream}/follow"));
        Follow {
            shared,
            signal,
            sandbox_id: target.sandbox_id.clone(),
            url,
            state: RefCell::new(State::default()),
        }
    }

    fn finish(&self) {
        let mut state = self.state.borrow_mut();
        state.finished = true;
        state.events.clear();
        if let Some(stream) = state.stream.take() {
            stream.cancel();
        }
    }
}

fn iterator_result(value: JsValue, done: bool) -> JsValue {
    let obj = Object::new();
    let _ = Reflect::set(&obj, &"value".into(), &value);
    let _ = Reflect::set(&obj, &"done".into(), &done.into());
    obj.into()
}

/// The iterator's `next()`: the next `{ line, timestamp, stream }`, or `{ done: true }`.
pub fn next(follow: &Rc<Follow>) -> Promise {
    let follow = follow.clone();
    let signal = follow.signal.clone();
    run_call(
        &follow.shared.clone(),
        move || Ok((follow, signal)),
        |host, follow| async move {
            if std::mem::replace(&mut follow.state.borrow_mut().busy, true) {
                return Err(Error::Sandbox {
                    message: "follow: next() was called before the previous next() settled".into(),
                    code: "CONCURRENT_NEXT",
                    sandbox_id: None,
                    trace_id: None,
                });
            }
            let step = step(&host, &follow).await;
            follow.state.borrow_mut().busy = false;
            if !matches!(step, Ok(Some(_))) {
                follow.finish();
            }
            Ok(match step? {
                Some(event) => iterator_result(event, false),
                None => iterator_result(JsValue::UNDEFINED, true),
            })
        },
    )
}

/// The iterator's `return()`: closes the stream (a `break` out of `for await`).
pub fn stop(follow: &Rc<Follow>) -> Promise {
    follow.finish();
    Promise::resolve(&iterator_result(JsValue::UNDEFINED, true))
}

/// The next output event, `None` at the end.
async fn step(host: &JsHost, follow: &Follow) -> Result<Option<JsValue>, Error<JsHost>> {
    loop {
        // Events already received are not handed out after an abort: it stops the loop at once.
        if host.signal.as_ref().is_some_and(AbortSignal::aborted) {
            return Err(Error::Aborted);
        }
        let pending = {
            let mut state = follow.state.borrow_mut();
            if state.finished {
                return Ok(None);
            }
            state.events.pop_front()
        };
        if let Some(data) = pending {
            // Frames without a line (`eof`'s `{}`, heartbeats, non-JSON) carry nothing to yield.
            if let Ok(frame) = js_json::parse(&JsString::from(data.as_str())) {
                if frame.is_object()
                    && Reflect::get(&frame, &"line".into()).is_ok_and(|l| l.is_string())
                {
                    return Ok(Some(plain(&frame)));
                }
            }
            continue;
        }
        if follow.state.borrow().decoder.ended {
            return Ok(None);
        }
        let open = follow.state.borrow().stream.clone();
        let stream = match open {
            Some(stream) => stream,
            None => {
                let (stream, trace_id) = open_follow(host, follow).await?;
                let stream = Rc::new(stream);
                let mut state = follow.state.borrow_mut();
                // `return()` while the request was being opened: close what it opened.
                if state.finished {
                    stream.cancel();
                    return Ok(None);
                }
                state.stream = Some(stream.clone());
                state.trace_id = trace_id;
                stream
            }
        };
        let chunk = match JsFuture::from(stream.read()).await {
            Ok(chunk) => chunk,
            // `return()` closed the stream under a pending read: the end, not a failure.
            Err(_) if follow.state.borrow().finished => return Ok(None),
            Err(e) => {
                let trace_id = follow.state.borrow().trace_id.clone();
                return Err(with_trace(broken(host, follow, e, "the output stream broke"), &trace_id));
            }
        };
        let Some(text) = chunk.as_string() else {
            return Ok(None);
        };
        let mut state = follow.state.borrow_mut();
        let State {
            decoder, events, ..
        } = &mut *state;
        decoder.push(&text, events);
    }
}

fn broken(host: &JsHost, follow: &Follow, cause: JsValue, what: &str) -> Error<JsHost> {
    if host.signal.as_ref().is_some_and(AbortSignal::aborted) {
        return Error::Aborted;
    }
    Error::Connection(Box::new(ConnectionError {
        message: format!("{what}: {}", crate::wasm::errors::describe(&cause)),
        cause: Some(cause),
        trace_id: String::new(),
        timed_out: false,
        request: describe_request(Method::Get, &follow.url),
        outcome_unknown: None,
        nothing_sent: false,
    }))
}

/// Sends the follow request; an error status becomes the usual typed error.
async fn open_follow(host: &JsHost, follow: &Follow) -> Result<(Stream, String), Error<JsHost>> {
    let cfg = &host.shared.cfg;
    let trace = trace::fresh(host);
    let mut call = Call::new(Method::Get, follow.url.clone(), RetryClass::Idempotent);
    call.sandbox_id = Some(follow.sandbox_id.clone());
    call.accept = Some("text/event-stream");
    // No request timeout: the stream lasts as long as the process.
    let mut headers = call::headers(cfg, &call, &trace.traceparent, cfg.request_timeout_ms);
    headers.retain(|(name, _)| *name != "X-Tensorlake-Request-Timeout-Ms");
    let body = RequestBody::Empty;
    let request = Request {
        method: Method::Get,
        url: &follow.url,
        body: &body,
        expect: Expect::Text,
        headers,
        traceparent: trace.traceparent.clone(),
        timeout_ms: cfg.request_timeout_ms,
    };
    let authorization = match host.authorization(cfg.request_timeout_ms).await {
        Ok(value) => value,
        Err(SendError::Credentials { message }) => {
            return Err(Error::Sandbox {
                message,
                code: "CREDENTIALS",
                sandbox_id: None,
                trace_id: Some(trace.trace_id),
            })
        }
        Err(_) => return Err(Error::Aborted),
    };
    let fetch: JsValue = host
        .shared
        .fetch
        .clone()
        .map(JsValue::from)
        .unwrap_or(JsValue::UNDEFINED);
    let opened = open_stream(
        &fetch,
        &follow.url,
        &host.headers(&request, authorization),
        host.signal.clone(),
    );
    let stream: Stream = JsFuture::from(opened)
        .await
        .map_err(|e| {
            with_trace(
                broken(host, follow, e, "could not open the output stream"),
                &trace.trace_id,
            )
        })?
        .unchecked_into();
    let status = stream.status() as u16;
    if (200..300).contains(&status) {
        return Ok((stream, trace.trace_id));
    }
    // The error body, at most as much of it as any error message reads.
    let mut text = String::new();
    while text.len() < ERROR_BODY_MAX_CHARS {
        match JsFuture::from(stream.read())
            .await
            .ok()
            .and_then(|chunk| chunk.as_string())
        {
            Some(chunk) => text.push_str(&chunk),
            None => break,
        }
    }
    stream.cancel();
    let text = host
        .redact(tensorlake_snapshots_core::text::truncate(&text, ERROR_BODY_MAX_CHARS).to_string());
    let parsed = if text.trim_start().starts_with('{') {
        host.parse_json(&text).ok()
    } else {
        None
    };
    let (response_message, code) = server_message(&text, parsed);
    Err(Error::Api(Box::new(ApiError {
        status,
        response_message,
        code,
        trace_id: trace.trace_id,
        retryable: is_retryable_status(status),
        retry_after_ms: None,
        not_found: None,
        request: describe_request(Method::Get, &follow.url),
        outcome_unknown: None,
    })))
}

fn with_trace(err: Error<JsHost>, trace_id: &str) -> Error<JsHost> {
    match err {
        Error::Connection(mut conn) => {
            conn.trace_id = trace_id.to_string();
            Error::Connection(conn)
        }
        other => other,
    }
}
