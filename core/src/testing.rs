//! Test doubles for the native test suite: a scripted [`Platform`] with a fake clock, and
//! `serde_json::Value` as the JSON type. Compiled only for `cargo test`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::config::{ClientOptions, Config, Environment};
use crate::platform::{Aborted, Body, Json, Key, Platform, Request, Response, SendError};

/// Parses test JSON.
pub fn parse(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("test JSON must parse") // allow-panic: test double
}

impl Json for serde_json::Value {
    fn get(&self, key: Key) -> Option<Self> {
        self.as_object()?
            .get(key.wire())
            .filter(|v| !v.is_null())
            .cloned()
    }
    fn is_string(&self) -> bool {
        self.is_string()
    }
    fn as_string(&self) -> Option<String> {
        self.as_str().map(str::to_string)
    }
    fn as_f64(&self) -> Option<f64> {
        serde_json::Value::as_f64(self)
    }
    fn as_bool(&self) -> Option<bool> {
        serde_json::Value::as_bool(self)
    }
    fn is_object(&self) -> bool {
        self.is_object()
    }
    fn elements(&self) -> Option<Vec<Self>> {
        self.as_array().cloned()
    }
}

/// A response body held as text.
#[derive(Debug, Clone)]
pub struct FakeBody(pub String);

impl Body for FakeBody {
    type Json = serde_json::Value;
    fn text(&self) -> String {
        self.0.clone()
    }
    fn parse_json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_str(&self.0).map_err(|e| e.to_string())
    }
}

/// One scripted outcome of `send`.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// A response.
    Reply {
        status: u16,
        body: String,
        retry_after: Option<String>,
        content_type: Option<String>,
    },
    /// A connection failure.
    Network(String),
    /// A connection that could not be made: nothing was sent.
    Refused,
    /// A timeout.
    Timeout,
}

impl Scripted {
    /// A text response.
    pub fn status(status: u16, body: &str) -> Scripted {
        Scripted::Reply {
            status,
            body: body.into(),
            retry_after: None,
            content_type: Some("text/plain".into()),
        }
    }
    /// A JSON response.
    pub fn json(status: u16, body: &str) -> Scripted {
        Scripted::Reply {
            status,
            body: body.into(),
            retry_after: None,
            content_type: Some("application/json".into()),
        }
    }
    /// A connection failure.
    pub fn network(message: &str) -> Scripted {
        Scripted::Network(message.into())
    }
    /// A timeout.
    pub fn timeout() -> Scripted {
        Scripted::Timeout
    }
    /// Adds a `Retry-After` header.
    pub fn retry_after(self, value: &str) -> Scripted {
        match self {
            Scripted::Reply {
                status,
                body,
                content_type,
                ..
            } => Scripted::Reply {
                status,
                body,
                retry_after: Some(value.into()),
                content_type,
            },
            other => other,
        }
    }
}

type Handler = Box<dyn FnMut(&Request<'_>, f64) -> Scripted>;

/// An owned copy of a request the code under test sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// Method.
    pub method: crate::platform::Method,
    /// URL.
    pub url: String,
    /// Body.
    pub body: crate::platform::RequestBody,
    /// Headers.
    pub headers: Vec<(&'static str, String)>,
    /// `traceparent`.
    pub traceparent: String,
    /// Timeout, ms.
    pub timeout_ms: f64,
}

impl Sent {
    /// The value of a header, by its exact name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

/// A fake host: answers from a script or a handler, records requests and sleeps, and keeps a
/// clock that only moves when the code under test sleeps or sends.
pub struct Fake {
    script: RefCell<VecDeque<Scripted>>,
    handler: RefCell<Option<Handler>>,
    sent: RefCell<Vec<Sent>>,
    sleeps: RefCell<Vec<f64>>,
    now: Cell<f64>,
    seed: Cell<u32>,
    secret: Option<String>,
    /// Each request takes this long on the fake clock.
    pub latency_ms: Cell<f64>,
    /// The signal fires at the start of sleep number N (0-based).
    pub abort_at_sleep: Cell<Option<usize>>,
}

impl Fake {
    /// A fake answering from `script` in order.
    pub fn new(script: Vec<Scripted>) -> Fake {
        Fake {
            script: RefCell::new(script.into()),
            handler: RefCell::new(None),
            sent: RefCell::new(Vec::new()),
            sleeps: RefCell::new(Vec::new()),
            now: Cell::new(1_796_040_000_000.0),
            seed: Cell::new(12345),
            secret: None,
            latency_ms: Cell::new(1.0),
            abort_at_sleep: Cell::new(None),
        }
    }
    /// A fake answering through `handler(request, now_ms)`.
    pub fn with_handler(handler: impl FnMut(&Request<'_>, f64) -> Scripted + 'static) -> Fake {
        let fake = Fake::new(Vec::new());
        *fake.handler.borrow_mut() = Some(Box::new(handler));
        fake
    }
    /// Makes `redact` hide `secret`.
    pub fn with_secret(mut self, secret: &str) -> Fake {
        self.secret = Some(secret.into());
        self
    }
    /// Requests sent so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.sent.borrow().clone()
    }
    /// Sleeps requested so far, in ms.
    pub fn sleeps(&self) -> Vec<f64> {
        self.sleeps.borrow().clone()
    }
}

impl Platform for Fake {
    type Json = serde_json::Value;
    type Body = FakeBody;
    type Cause = String;

    async fn send(&self, request: &Request<'_>) -> Result<Response<FakeBody>, SendError<String>> {
        self.sent.borrow_mut().push(Sent {
            method: request.method,
            url: request.url.to_string(),
            body: request.body.clone(),
            headers: request.headers.clone(),
            traceparent: request.traceparent.clone(),
            timeout_ms: request.timeout_ms,
        });
        let now = self.now.get();
        let outcome = match self.handler.borrow_mut().as_mut() {
            Some(handler) => handler(request, now),
            None => self
                .script
                .borrow_mut()
                .pop_front()
                .unwrap_or(Scripted::Network("script exhausted".into())),
        };
        match outcome {
            Scripted::Timeout => {
                self.now.set(now + request.timeout_ms);
                Err(SendError::TimedOut {
                    cause: "TimeoutError".into(),
                })
            }
            other => {
                self.now.set(now + self.latency_ms.get());
                match other {
                    Scripted::Reply {
                        status,
                        body,
                        retry_after,
                        content_type,
                    } => Ok(Response {
                        status,
                        retry_after,
                        content_type,
                        body: FakeBody(body),
                    }),
                    Scripted::Network(message) => Err(SendError::Network {
                        message,
                        cause: "TypeError".into(),
                        unsent: false,
                    }),
                    Scripted::Refused => Err(SendError::Network {
                        message: "connect ECONNREFUSED".into(),
                        cause: "TypeError".into(),
                        unsent: true,
                    }),
                    Scripted::Timeout => Err(SendError::Aborted), // handled above
                }
            }
        }
    }

    async fn sleep(&self, ms: f64) -> Result<(), Aborted> {
        let index = self.sleeps.borrow().len();
        if self.abort_at_sleep.get() == Some(index) {
            return Err(Aborted);
        }
        self.sleeps.borrow_mut().push(ms);
        self.now.set(self.now.get() + ms);
        Ok(())
    }

    fn now_ms(&self) -> f64 {
        self.now.get()
    }

    fn random_u32(&self) -> u32 {
        // xorshift32: deterministic, so failures reproduce.
        let mut x = self.seed.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.seed.set(x);
        x
    }

    fn parse_json(&self, text: &str) -> Result<serde_json::Value, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    fn redact(&self, text: String) -> String {
        match &self.secret {
            Some(secret) => text.replace(secret.as_str(), "[redacted]"),
            None => text,
        }
    }
}

/// A local-server configuration with default timeouts and three retries.
pub fn config() -> Config {
    let options = ClientOptions {
        api_url: Some("http://127.0.0.1:8900".into()),
        ..Default::default()
    };
    let config = Config::resolve(options, Environment::default());
    config.expect("test config is valid") // allow-panic: test double
}

/// Runs a future that never waits on anything real (the fake platform resolves at once).
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("a fake-platform future must not wait"), // allow-panic: test double
    }
}
