//! One API call as a loop of attempts: each attempt gets its own trace and timeout, the retry
//! policy (`retry`) decides whether another follows, and a bad answer becomes a typed error.

use crate::config::Config;
use crate::error::{describe_request, server_message, ApiError, ConnectionError, Error, NotFound};
use crate::platform::{
    random_unit, Body, Expect, Method, Platform, Request, RequestBody, Response, SendError,
};
use crate::retry::{may_retry, next_delay_ms, RetryClass};
use crate::time::retry_after_ms;
use crate::trace;

/// The shortest timeout an attempt gets when a deadline is close, so the last poll of a wait
/// still has a real chance to answer.
pub const MIN_ATTEMPT_MS: f64 = 500.0;

/// How much of an error response is read into messages. Real error bodies are a line or a small
/// JSON object; a hostile 100 MB error page is not copied into the client's memory.
pub const ERROR_BODY_MAX_CHARS: usize = 16 * 1024;

/// Everything about a call except the attempt-specific trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Body.
    pub body: RequestBody,
    /// How to read a 2xx body.
    pub expect: Expect,
    /// `Accept`, when it matters.
    pub accept: Option<&'static str>,
    /// `X-Tensorlake-Sandbox-Id`, for a sandbox's own API.
    pub sandbox_id: Option<String>,
    /// Whether the call may be repeated.
    pub class: RetryClass,
    /// What a 404 means on this route.
    pub not_found: Option<NotFound>,
    /// A delete: a 404 on a retry that follows an attempt whose outcome is unknown means the
    /// earlier attempt did the work, so the call succeeded.
    pub gone_means_done: bool,
}

impl Call {
    /// A call with the usual defaults: text body expected, no sandbox header, 404 untyped.
    pub fn new(method: Method, url: String, class: RetryClass) -> Call {
        Call {
            method,
            url,
            body: RequestBody::Empty,
            expect: Expect::Text,
            accept: None,
            sandbox_id: None,
            class,
            not_found: None,
            gone_means_done: false,
        }
    }

    /// A DELETE of what `not_found` names (see [`Call::gone_means_done`]).
    pub fn delete(url: String, not_found: NotFound) -> Call {
        let mut call = Call::new(Method::Delete, url, RetryClass::Idempotent);
        call.not_found = Some(not_found);
        call.gone_means_done = true;
        call
    }
}

/// How long and how often a call may keep trying.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// No attempt starts, and no retry delay ends, after this (epoch ms).
    pub deadline_ms: f64,
    /// Retries after the first attempt.
    pub max_retries: u32,
}

impl Budget {
    /// The budget of a plain call: the configured retries, within one request timeout.
    pub fn standard<P: Platform>(p: &P, cfg: &Config) -> Budget {
        Budget {
            deadline_ms: p.now_ms() + cfg.request_timeout_ms,
            max_retries: cfg.max_retries,
        }
    }
}

/// A successful response with what is needed to report trouble decoding it.
#[derive(Debug)]
pub struct Reply<B> {
    /// The response.
    pub response: Response<B>,
    /// Trace id of the attempt that succeeded.
    pub trace_id: String,
    /// The request's method, for messages.
    pub method: Method,
    /// The request's URL, for messages.
    pub url: String,
}

impl<B> Reply<B> {
    /// `METHOD /path`, for messages; built only when one is needed.
    pub fn describe(&self) -> String {
        describe_request(self.method, &self.url)
    }
}

/// Sends `call`, retrying what the retry policy allows within `budget`.
pub async fn send<P: Platform>(
    p: &P,
    cfg: &Config,
    call: &Call,
    budget: Budget,
) -> Result<Reply<P::Body>, Error<P>> {
    let describe = || describe_request(call.method, &call.url);
    let mut retry = 0u32;
    // Whether an earlier attempt may have been applied although it failed (no answer, or a 5xx).
    let mut maybe_applied = false;
    loop {
        let trace = trace::fresh(p);
        let now = p.now_ms();
        let timeout_ms = cfg
            .request_timeout_ms
            .min((budget.deadline_ms - now).max(MIN_ATTEMPT_MS));
        let request = Request {
            method: call.method,
            url: &call.url,
            body: &call.body,
            expect: call.expect,
            headers: headers(cfg, call, &trace.traceparent, timeout_ms),
            traceparent: trace.traceparent,
            timeout_ms,
        };
        let (error, status) = match p.send(&request).await {
            Ok(response)
                if (200..300).contains(&response.status)
                    || (response.status == 404 && maybe_applied && call.gone_means_done) =>
            {
                trace::note_success(&trace.trace_id);
                return Ok(Reply { response, trace_id: trace.trace_id, method: call.method, url: call.url.clone() });
            }
            Ok(response) => {
                let status = response.status;
                (
                    Error::Api(Box::new(api_error(p, call, &describe(), response, trace.trace_id))),
                    Some(status),
                )
            }
            Err(SendError::Aborted) => return Err(Error::Aborted),
            Err(SendError::TooLarge { limit }) => {
                return Err(Error::Sandbox {
                    message: format!(
                        "{}: the response was larger than maxResponseBytes ({} bytes); it was not read further",
                        describe(),
                        crate::decimal::format_decimal(limit)
                    ),
                    code: "RESPONSE_TOO_LARGE",
                    sandbox_id: None,
                    trace_id: Some(trace.trace_id),
                })
            }
            Err(SendError::Credentials { message }) => {
                return Err(Error::Sandbox {
                    message,
                    code: "CREDENTIALS",
                    sandbox_id: None,
                    trace_id: Some(trace.trace_id),
                })
            }
            Err(SendError::TimedOut { cause }) => {
                let message = format!(
                    "no response within {} ms",
                    crate::decimal::format_decimal(timeout_ms)
                );
                (
                    connection(message, cause, trace.trace_id, true, &describe()),
                    None,
                )
            }
            Err(SendError::Network { message, cause, unsent }) => {
                let mut error = connection(p.redact(message), cause, trace.trace_id, false, &describe());
                if let Error::Connection(conn) = &mut error {
                    conn.nothing_sent = unsent && !maybe_applied;
                }
                (error, None)
            }
        };
        // A request that never left may be sent again, even one that creates something.
        let unsent = matches!(&error, Error::Connection(conn) if conn.nothing_sent);
        if retry >= budget.max_retries || !(unsent || may_retry(call.class, status)) {
            return Err(error);
        }
        maybe_applied |= !unsent && status.map_or(true, |s| s >= 500);
        let Some(delay) = next_delay_ms(
            retry,
            random_unit(p),
            error.retry_after_ms(),
            p.now_ms(),
            budget.deadline_ms,
        ) else {
            return Err(error);
        };
        if p.sleep(delay).await.is_err() {
            return Err(Error::Aborted);
        }
        retry += 1;
    }
}

/// The headers of one attempt (wire-protocol §1.3, §5.1): a fresh `traceparent`, the timeout the
/// server may use to bound its own work, the scope headers only when both ids are set, and the
/// sandbox id for a sandbox's own API. Browsers cannot set `Host`, so the sandbox is always named
/// by `X-Tensorlake-Sandbox-Id`, which the cloud proxy and the local server both honour.
pub fn headers(cfg: &Config, call: &Call, traceparent: &str, timeout_ms: f64) -> Vec<(&'static str, String)> {
    let mut headers = Vec::with_capacity(6);
    headers.extend([
        ("traceparent", traceparent.to_string()),
        ("X-Tensorlake-Request-Timeout-Ms", crate::decimal::format_decimal(timeout_ms.round())),
    ]);
    if let Some((org, project)) = &cfg.scope {
        headers.push(("X-Forwarded-Organization-Id", org.clone()));
        headers.push(("X-Forwarded-Project-Id", project.clone()));
    }
    match &call.body {
        RequestBody::Empty => {}
        RequestBody::Json(_) => headers.push(("Content-Type", "application/json".into())),
        RequestBody::Bytes(_) => headers.push(("Content-Type", "application/octet-stream".into())),
    }
    if let Some(accept) = call.accept {
        headers.push(("Accept", accept.into()));
    }
    if let Some(id) = &call.sandbox_id {
        headers.push(("X-Tensorlake-Sandbox-Id", id.clone()));
    }
    headers
}

fn connection<P: Platform>(
    message: String,
    cause: P::Cause,
    trace_id: String,
    timed_out: bool,
    request: &str,
) -> Error<P> {
    Error::Connection(Box::new(ConnectionError {
        message,
        cause: Some(cause),
        trace_id,
        timed_out,
        request: request.to_string(),
        outcome_unknown: None,
        nothing_sent: false,
    }))
}

fn api_error<P: Platform>(
    p: &P,
    call: &Call,
    request: &str,
    response: Response<P::Body>,
    trace_id: String,
) -> ApiError {
    let text = p.redact(response.body.text_prefix(ERROR_BODY_MAX_CHARS));
    let looks_json = text.trim_start().starts_with('{');
    let parsed = if looks_json {
        p.parse_json(&text).ok()
    } else {
        None
    };
    let (response_message, code) = server_message(&text, parsed);
    let retry_after = response
        .retry_after
        .as_deref()
        .and_then(|v| retry_after_ms(v, p.now_ms()));
    ApiError {
        status: response.status,
        response_message,
        code,
        trace_id,
        retryable: crate::retry::is_retryable_status(response.status),
        retry_after_ms: retry_after,
        not_found: if response.status == 404 {
            call.not_found.clone()
        } else {
            None
        },
        request: request.to_string(),
        outcome_unknown: None,
    }
}

/// Parses a successful reply's body as JSON, or explains why it is not.
pub fn json<P: Platform>(reply: &Reply<P::Body>) -> Result<P::Json, Error<P>> {
    reply
        .response
        .body
        .parse_json()
        .map_err(|why| invalid(reply, &format!("expected JSON ({why})")))
}

/// An [`Error::InvalidResponse`] for a reply that parsed but has the wrong shape, or did not parse.
pub fn invalid<P: Platform>(reply: &Reply<P::Body>, why: &str) -> Error<P> {
    let response = &reply.response;
    let content_type = response
        .content_type
        .as_deref()
        .unwrap_or("no content type");
    let text = response.body.text();
    let excerpt = crate::text::truncate(text.trim(), 120);
    Error::InvalidResponse {
        message: format!(
            "Invalid response to {} (status {}, {}): {}; the body starts with: \"{}\"",
            reply.describe(), response.status, content_type, why, excerpt
        ),
        status: response.status,
        trace_id: reply.trace_id.clone(),
    }
}

#[cfg(test)]
#[path = "call_tests.rs"]
mod tests;
