//! [`Platform`] for JavaScript hosts: `fetch`, timers, `Date.now`, `Math.random`, `JSON.parse`.
//!
//! `fetch` and the timers are looked up on the global object, never on `window`, so the same code
//! runs in browsers, workers, Node, Deno and Bun.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, JsString, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

use tensorlake_snapshots_core::args::ArgError;
use tensorlake_snapshots_core::config::{Config, Secret};

use tensorlake_snapshots_core::platform::{Aborted, Expect, Platform, Request, RequestBody, Response, SendError};
use crate::wasm::{abort, driver};
use crate::wasm::errors::describe;
use crate::wasm::js_json::{self, Indexable, JsBody, JsJson};

#[wasm_bindgen(module = "/js/exchange.js")]
extern "C" {
    // `fetch` undefined means the global one, whatever the global object is (window, a worker
    // scope, Node's globalThis): never `window.fetch`, which Node and workers lack. The timeout
    // and the caller's signal bound the exchange through one AbortController made there.
    #[allow(clippy::too_many_arguments)]
    fn exchange(
        fetch: &JsValue,
        url: &str,
        method: &JsValue,
        headers: &Object,
        body: &JsValue,
        signal: Option<AbortSignal>,
        timeout_ms: u32,
        want_bytes: bool,
        max_bytes: f64,
    ) -> Promise;
}

/// Where the bearer token comes from.
#[derive(Clone)]
pub enum Auth {
    /// No `Authorization` header.
    None,
    /// A fixed API key.
    Key(Secret),
    /// `tokenProvider`: called before each request; may return a string or a promise of one.
    Provider(Function),
}

thread_local! {
    /// The transport a client uses when its options name none: set by the Node entry point to
    /// its node:http transport; empty elsewhere, meaning the global `fetch`.
    pub static DEFAULT_FETCH: std::cell::RefCell<Option<Function>> = const { std::cell::RefCell::new(None) };
    /// Makes the transport of a client given `httpAgent` (the agent in, a fetch-shaped function
    /// out): set by the Node entry point; empty elsewhere, where `httpAgent` is refused.
    pub static AGENT_FETCH: std::cell::RefCell<Option<Function>> = const { std::cell::RefCell::new(None) };
}

/// The default transport, if an entry point installed one.
pub fn default_fetch() -> Option<Function> {
    DEFAULT_FETCH.with(|slot| slot.borrow().clone())
}

/// The transport for the `httpAgent` option: the Node entry's transport through that agent.
pub fn fetch_with_agent(agent: &JsValue) -> Result<Function, ArgError> {
    let factory = AGENT_FETCH.with(|slot| slot.borrow().clone());
    let factory = factory.ok_or_else(|| {
        ArgError::type_error("httpAgent", "works only with the package's Node entry (Node, Bun, Deno); elsewhere pass fetch")
    })?;
    // What node:http itself calls on an agent: anything else would fail on the first request.
    let is_agent = agent.is_object() && Reflect::get(agent, &"addRequest".into()).is_ok_and(|f| f.is_function());
    if !is_agent {
        return Err(ArgError::type_error("httpAgent", "must be an http.Agent or https.Agent (a proxy agent, for one)"));
    }
    let made = factory.call1(&JsValue::UNDEFINED, agent).ok().and_then(|f| f.dyn_into::<Function>().ok());
    made.ok_or_else(|| ArgError::type_error("httpAgent", "could not make a transport through this agent"))
}

/// What every call of one client shares.
pub struct Shared {
    /// The resolved configuration.
    pub cfg: Config,
    /// Credentials.
    pub auth: Auth,
    /// A caller-supplied `fetch`, used instead of the global one.
    pub fetch: Option<Function>,
    /// Every distinct token a provider returned (the newest [`MAX_REMEMBERED_TOKENS`]), kept
    /// only to redact them from anything the client builds: a server may echo an old one.
    pub tokens: RefCell<Vec<String>>,
    /// The `User-Agent` to send, outside browsers (which refuse to let pages set it), as a JS
    /// string made once.
    pub user_agent: Option<JsValue>,
    /// `Bearer <apiKey>` as a JS string made once, when the credential is a fixed key.
    pub bearer: Option<JsValue>,
}

/// How many of a rotating provider's tokens are remembered for redaction. A token is rotated at
/// most every few minutes in practice, so this covers days of a long-lived client.
pub const MAX_REMEMBERED_TOKENS: usize = 1024;

impl Shared {
    /// `text` with the API key and every remembered token replaced by `[redacted]`.
    pub fn redact(&self, text: String) -> String {
        let mut text = text;
        if let Auth::Key(key) = &self.auth {
            if !key.expose().is_empty() {
                text = tensorlake_snapshots_core::text::replace_all(&text, key.expose(), "[redacted]");
            }
        }
        for token in self.tokens.borrow().iter() {
            if !token.is_empty() {
                text = tensorlake_snapshots_core::text::replace_all(&text, token, "[redacted]");
            }
        }
        text
    }

    fn remember(&self, token: &str) {
        let mut tokens = self.tokens.borrow_mut();
        if tokens.iter().any(|t| t == token) {
            return;
        }
        if tokens.len() >= MAX_REMEMBERED_TOKENS {
            tokens.remove(0);
        }
        tokens.push(token.to_string());
    }
}

thread_local! {
    /// Header names and methods as JS strings, made once: every request sends the same few.
    static NAMES: RefCell<Vec<(&'static str, JsValue)>> = const { RefCell::new(Vec::new()) };
    /// State of the generator behind trace ids and jitter (0 until seeded).
    static RNG: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A JS string for a `&'static str` the client sends on every request.
fn interned(name: &'static str) -> JsValue {
    NAMES.with(|names| {
        if let Ok(mut names) = names.try_borrow_mut() {
            if let Some((_, value)) = names.iter().find(|(n, _)| std::ptr::eq(*n, name) || *n == name) {
                return value.clone();
            }
            let value = JsValue::from_str(name);
            names.push((name, value.clone()));
            return value;
        }
        JsValue::from_str(name)
    })
}

/// The host for one call: the client's shared state plus the call's own `AbortSignal`.
pub struct JsHost {
    /// Shared client state.
    pub shared: Rc<Shared>,
    /// The caller's signal, if any.
    pub signal: Option<AbortSignal>,
}

impl JsHost {
    /// The `Authorization` value for one attempt. A provider runs under the call's signal and
    /// the attempt's timeout, and what it returns is checked before it is used: a provider that
    /// throws or returns something unusable fails the call with a typed error, never retried.
    pub(crate) async fn authorization(&self, timeout_ms: f64) -> Result<Option<JsValue>, SendError<JsValue>> {
        match &self.shared.auth {
            Auth::None => Ok(None),
            Auth::Key(_) => Ok(self.shared.bearer.clone()),
            Auth::Provider(provider) => {
                let failed = |e: &JsValue| SendError::Credentials {
                    message: self.shared.redact(format!("tokenProvider failed: {}", describe(e))),
                };
                let value = provider.call0(&JsValue::UNDEFINED).map_err(|e| failed(&e))?;
                let value = match abort::race(JsFuture::from(Promise::resolve(&value)), timeout_ms, self.signal.as_ref()).await {
                    abort::Raced::Done(result) => result.map_err(|e| failed(&e))?,
                    abort::Raced::Aborted => return Err(SendError::Aborted),
                    abort::Raced::TimedOut => {
                        let message = format!(
                            "tokenProvider did not return a token within {} ms",
                            tensorlake_snapshots_core::decimal::format_decimal(timeout_ms)
                        );
                        return Err(SendError::Credentials { message });
                    }
                };
                if value.is_null_or_undefined() {
                    return Ok(None);
                }
                // Deliberately no `cause`: an object such as `{ token }` would carry the secret.
                let token = value.as_string().ok_or_else(|| SendError::Credentials {
                    message: "tokenProvider must return a string (or a promise of one)".into(),
                })?;
                // Surrounding whitespace is not part of a token: `fetch('/token').then((r) =>
                // r.text())` often ends in a newline, which was refused as a line break.
                let token = token.trim();
                if token.is_empty() {
                    return Ok(None);
                }
                if let Some(problem) = Secret::new(token.to_string()).header_problem() {
                    return Err(SendError::Credentials { message: format!("the token from tokenProvider {problem}") });
                }
                // Only a token that is sent can come back in an answer.
                self.shared.remember(token);
                Ok(Some(JsValue::from_str(&format!("Bearer {token}"))))
            }
        }
    }

    pub(crate) fn headers(&self, request: &Request<'_>, authorization: Option<JsValue>) -> Object {
        let headers = Object::new();
        let target = headers.unchecked_ref::<Indexable>();
        for (name, value) in &request.headers {
            target.put(&interned(name), &JsValue::from_str(value));
        }
        if let Some(value) = authorization {
            target.put(&interned("Authorization"), &value);
        }
        if let Some(value) = &self.shared.user_agent {
            target.put(&interned("User-Agent"), value);
        }
        headers
    }

    /// The request and the reading of its body (js/exchange.js).
    async fn exchange(&self, request: &Request<'_>, authorization: Option<JsValue>) -> Result<Response<JsBody>, SendError<JsValue>> {
        let body: JsValue = match request.body {
            RequestBody::Empty => JsValue::UNDEFINED,
            RequestBody::Json(json) => json.into(),
            RequestBody::Bytes(bytes) => Uint8Array::from(bytes.as_slice()).into(),
        };
        let fetch: JsValue = self.shared.fetch.clone().map(JsValue::from).unwrap_or(JsValue::UNDEFINED);
        let headers = self.headers(request, authorization);
        let want_bytes = request.expect == Expect::Bytes;
        // The longest delay a JS timer honours is 2^31 - 1 ms; longer ones fire at once in Node.
        let timeout_ms = request.timeout_ms.clamp(1.0, 2_147_483_647.0) as u32;
        let pending = exchange(&fetch, request.url, &interned(request.method.as_str()), &headers, &body, self.signal.clone(), timeout_ms, want_bytes, self.shared.cfg.max_response_bytes);
        let parts: Array = match driver::Handoff::Start(pending).await {
            Ok(parts) => parts.unchecked_into(),
            Err(rejection) => return Err(self.classify(rejection)),
        };
        let status = parts.get(0).as_f64().unwrap_or(0.0) as u16;
        let body = parts.get(3);
        // A caller's `fetch` could hand back anything; only a string or bytes is a body.
        let body = if body.is_string() {
            JsBody::Text(body.unchecked_into())
        } else if body.is_instance_of::<Uint8Array>() {
            JsBody::Bytes(body.unchecked_into())
        } else {
            let error = js_sys::TypeError::new("the fetch response body is neither text nor bytes");
            return Err(network(&error.into(), false));
        };
        Ok(Response { status, content_type: header_text(parts.get(1)), retry_after: header_text(parts.get(2)), body })
    }

    /// Reads the `[kind, error]` an exchange rejects with.
    fn classify(&self, rejection: JsValue) -> SendError<JsValue> {
        if !Array::is_array(&rejection) {
            return network(&rejection, false);
        }
        let pair: Array = rejection.unchecked_into();
        let (kind, error) = (pair.get(0).as_string().unwrap_or_default(), pair.get(1));
        match kind.as_str() {
            "abort" => SendError::Aborted,
            "timeout" => SendError::TimedOut { cause: error },
            "too_large" => SendError::TooLarge { limit: self.shared.cfg.max_response_bytes },
            _ if self.user_aborted() => SendError::Aborted,
            "unsent" => network(&error, true),
            _ => network(&error, false),
        }
    }

    fn user_aborted(&self) -> bool {
        self.signal.as_ref().is_some_and(AbortSignal::aborted)
    }
}

impl Platform for JsHost {
    type Json = JsJson;
    type Body = JsBody;
    type Cause = JsValue;

    async fn send(&self, request: &Request<'_>) -> Result<Response<JsBody>, SendError<JsValue>> {
        if self.user_aborted() {
            return Err(SendError::Aborted);
        }
        let authorization = self.authorization(request.timeout_ms).await?;
        if self.user_aborted() {
            return Err(SendError::Aborted);
        }
        self.exchange(request, authorization).await
    }

    async fn sleep(&self, ms: f64) -> Result<(), Aborted> {
        abort::sleep(ms, self.signal.as_ref()).await
    }

    fn now_ms(&self) -> f64 {
        js_sys::Date::now()
    }

    fn random_u32(&self) -> u32 {
        // splitmix64, seeded once from Math.random and the clock: trace ids and jitter need
        // spread, not secrecy, and this saves a JS call per random word.
        RNG.with(|state| {
            let mut x = state.get();
            if x == 0 {
                x = (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64 ^ (js_sys::Date::now() as u64).rotate_left(32) | 1;
            }
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            state.set(x);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 32) as u32
        })
    }

    fn parse_json(&self, text: &str) -> Result<JsJson, String> {
        js_json::parse(&JsString::from(text))
    }

    fn redact(&self, text: String) -> String {
        self.shared.redact(text)
    }
}

/// A response header's value as text. The content type nearly every answer carries is recognised
/// by comparison, without copying it into wasm memory on every call.
fn header_text(value: JsValue) -> Option<String> {
    const JSON_TYPE: &str = "application/json";
    if value.is_null_or_undefined() {
        None
    } else if value == interned(JSON_TYPE) {
        Some(JSON_TYPE.to_string())
    } else {
        value.as_string()
    }
}

/// A transport failure, with the most useful description the host offers: Node's
/// `TypeError: fetch failed` hides the real reason (`ECONNREFUSED …`) in its `cause`. `unsent`:
/// no connection could be made, so nothing was sent.
fn network(e: &JsValue, unsent: bool) -> SendError<JsValue> {
    let mut message = describe(e);
    if let Ok(cause) = Reflect::get(e, &"cause".into()) {
        if !cause.is_null_or_undefined() {
            message = format!("{message} ({})", describe(&cause));
        }
    }
    SendError::Network { message, cause: e.clone(), unsent }
}
