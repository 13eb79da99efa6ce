//! When to try a request again, and how long to wait first.
//!
//! Reads and deletes are retried on connection failures and on 429, 502, 503 and 504. A request
//! that creates something (a snapshot, a sandbox, a process) is retried only on 429, the one
//! answer that guarantees nothing happened; any other failure of such a request is reported, never
//! blindly repeated, because repeating it could create a duplicate.

/// Whether repeating a request can do harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// GET, DELETE and PUT: repeating them is harmless.
    Idempotent,
    /// A POST that creates something: repeat only what the server refused outright.
    Create,
}

/// Statuses that say "try again later".
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// Whether a failed attempt may be repeated, given what it was and how it failed.
/// `status` is `None` for a connection failure or timeout.
pub fn may_retry(class: RetryClass, status: Option<u16>) -> bool {
    match (class, status) {
        (RetryClass::Idempotent, None) => true,
        (RetryClass::Idempotent, Some(s)) => is_retryable_status(s),
        (RetryClass::Create, Some(429)) => true,
        (RetryClass::Create, _) => false,
    }
}

/// First backoff ceiling, in milliseconds.
pub const BACKOFF_BASE_MS: f64 = 250.0;
/// Largest backoff ceiling, in milliseconds.
pub const BACKOFF_CAP_MS: f64 = 8_000.0;

/// Exponential backoff with full jitter (AWS's "full jitter"): a uniform delay between zero and
/// `min(cap, base * 2^retry)`. Full jitter spreads clients that failed together, so they do not
/// come back together; `unit` is a uniform random number in `[0, 1)`.
pub fn backoff_ms(retry: u32, unit: f64) -> f64 {
    let ceiling = (BACKOFF_BASE_MS * 2f64.powi(retry.min(30) as i32)).min(BACKOFF_CAP_MS);
    ceiling * unit.clamp(0.0, 1.0)
}

/// The delay before the next attempt: the server's `Retry-After` when it sent one, else backoff.
/// `None` when the delay would end past the deadline, in which case retrying is pointless and the
/// failure is reported now.
pub fn next_delay_ms(
    retry: u32,
    unit: f64,
    retry_after_ms: Option<f64>,
    now_ms: f64,
    deadline_ms: f64,
) -> Option<f64> {
    let delay = retry_after_ms.unwrap_or_else(|| backoff_ms(retry, unit));
    if now_ms + delay > deadline_ms {
        return None;
    }
    Some(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_retry_on_transient_failures_only() {
        for status in [429, 502, 503, 504] {
            assert!(may_retry(RetryClass::Idempotent, Some(status)), "{status}");
        }
        for status in [400, 401, 403, 404, 409, 500, 501] {
            assert!(!may_retry(RetryClass::Idempotent, Some(status)), "{status}");
        }
        assert!(
            may_retry(RetryClass::Idempotent, None),
            "connection failures are retried"
        );
    }

    #[test]
    fn creates_retry_only_when_the_server_refused_outright() {
        assert!(may_retry(RetryClass::Create, Some(429)));
        for status in [500, 502, 503, 504] {
            assert!(!may_retry(RetryClass::Create, Some(status)), "{status}");
        }
        assert!(
            !may_retry(RetryClass::Create, None),
            "a lost connection may have created it"
        );
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        assert_eq!(backoff_ms(0, 0.999_999), 249.99975);
        assert_eq!(backoff_ms(1, 0.5), 250.0);
        assert_eq!(backoff_ms(3, 1.0), 2000.0);
        assert_eq!(backoff_ms(10, 1.0), BACKOFF_CAP_MS);
        assert_eq!(backoff_ms(100, 1.0), BACKOFF_CAP_MS);
        assert_eq!(backoff_ms(2, 0.0), 0.0);
    }

    #[test]
    fn retry_after_wins_but_never_past_the_deadline() {
        assert_eq!(
            next_delay_ms(0, 0.5, Some(2000.0), 0.0, 10_000.0),
            Some(2000.0)
        );
        assert_eq!(next_delay_ms(0, 0.5, Some(20_000.0), 0.0, 10_000.0), None);
        assert_eq!(next_delay_ms(1, 0.5, None, 0.0, 10_000.0), Some(250.0));
        assert_eq!(next_delay_ms(1, 0.5, None, 9_900.0, 10_000.0), None);
    }
}
