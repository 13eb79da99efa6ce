//! Client configuration: defaults, environment fallbacks, validation and the routing rules of
//! wire-protocol §1.2 (which host and path prefix lifecycle calls go to).

use crate::args::{self, ArgError};
use crate::url::BaseUrl;

/// Default `maxResponseBytes`: 64 MiB, room for a listing of about 100,000 snapshots.
pub const DEFAULT_MAX_RESPONSE_BYTES: f64 = 67_108_864.0;
/// The production API URL, used when neither the options nor the environment name one.
pub const DEFAULT_API_URL: &str = "https://api.tensorlake.ai";
/// The namespace the official SDKs use by default.
pub const DEFAULT_NAMESPACE: &str = "default";
/// The local server's address, the default of `SandboxClient.forLocalhost()`.
pub const LOCALHOST_API_URL: &str = "http://127.0.0.1:8900";
/// Per-request timeout when none is given, in seconds (the official SDKs' 300 s).
pub const DEFAULT_REQUEST_TIMEOUT_S: f64 = 300.0;
/// Retries after the first attempt when none is given.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// A credential. Its `Debug` never shows the value, so it cannot leak through a log or a panic
/// message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    /// The raw value, for the one place that needs it: the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Why this value cannot go into an `Authorization: Bearer` header, if it cannot: HTTP header
    /// values are visible ASCII and spaces (RFC 9110 §5.5), and `fetch` refuses anything else at
    /// send time, which would otherwise surface as a network error after every retry. The message
    /// never repeats the value.
    pub fn header_problem(&self) -> Option<&'static str> {
        if self.0.bytes().any(|b| b == b'\r' || b == b'\n') {
            Some("must not contain line breaks")
        } else if self.0.bytes().any(|b| b < 0x20 || b == 0x7f) {
            Some("must not contain control characters")
        } else if !self.0.is_ascii() {
            Some("must contain only ASCII characters")
        } else {
            None
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// What the caller passed, already read out of the JS options object. `None` means absent.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// `apiUrl`.
    pub api_url: Option<String>,
    /// `apiKey`.
    pub api_key: Option<Secret>,
    /// `namespace`.
    pub namespace: Option<String>,
    /// `organizationId`.
    pub organization_id: Option<String>,
    /// `projectId`.
    pub project_id: Option<String>,
    /// `requestTimeout`, in seconds.
    pub request_timeout_s: Option<f64>,
    /// `maxRetries`.
    pub max_retries: Option<f64>,
    /// `maxResponseBytes`.
    pub max_response_bytes: Option<f64>,
}

/// Fallbacks read from the process environment (Node, Deno, Bun); all `None` in a browser.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `TENSORLAKE_API_URL`.
    pub api_url: Option<String>,
    /// `TENSORLAKE_API_KEY`.
    pub api_key: Option<Secret>,
    /// `INDEXIFY_NAMESPACE`.
    pub namespace: Option<String>,
}

/// A validated, resolved configuration. Cheap to clone; shared by every call of a client.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The API URL as configured, normalised (no trailing slash).
    pub api_url: String,
    /// Base for lifecycle calls (sandboxes, snapshots), without a trailing slash.
    pub lifecycle_base: String,
    /// `/v1/namespaces/{ns}` against a local server, empty against the cloud.
    pub path_prefix: String,
    /// The namespace.
    pub namespace: String,
    /// True when the API URL is a loopback address.
    pub is_local: bool,
    /// The API key, if one was configured.
    pub api_key: Option<Secret>,
    /// `X-Forwarded-Organization-Id` / `X-Forwarded-Project-Id`, sent only when both are set.
    pub scope: Option<(String, String)>,
    /// Timeout of each HTTP request, in milliseconds.
    pub request_timeout_ms: f64,
    /// Retries after the first attempt for retryable failures.
    pub max_retries: u32,
    /// The largest response body read, in decoded bytes; past it a call fails with
    /// `RESPONSE_TOO_LARGE` and the transport stops reading.
    pub max_response_bytes: f64,
}

impl Config {
    /// Resolves options over environment over defaults, and applies the routing rules.
    pub fn resolve(options: ClientOptions, env: Environment) -> Result<Config, ArgError> {
        let api_url_raw = non_empty(options.api_url)
            .or_else(|| non_empty(env.api_url))
            .unwrap_or_else(|| DEFAULT_API_URL.to_string());
        let base =
            BaseUrl::parse(&api_url_raw).map_err(|why| ArgError::type_error("apiUrl", &why))?;
        let namespace = non_empty(options.namespace)
            .or_else(|| non_empty(env.namespace))
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        // A path segment like an id: '..' would send requests to another route.
        let namespace = args::id("namespace", &namespace)?;
        // Surrounding whitespace cannot be part of a header value (HTTP strips it): a key read
        // from a file ends in a newline, which was refused as a line break.
        let api_key = options
            .api_key
            .or(env.api_key)
            .map(|key| Secret::new(key.expose().trim().to_string()))
            .filter(|key| !key.expose().is_empty());
        if let Some(problem) = api_key.as_ref().and_then(Secret::header_problem) {
            return Err(ArgError::type_error("apiKey", problem));
        }
        let request_timeout_s = match options.request_timeout_s {
            Some(s) => args::positive_seconds("requestTimeout", s)?,
            None => DEFAULT_REQUEST_TIMEOUT_S,
        };
        let max_response_bytes = match options.max_response_bytes {
            // One message for both ends of the range (10 and 1e20 were told different ranges).
            Some(n) if (1024.0..=2147483647.0).contains(&n) && n.fract() == 0.0 => n,
            Some(_) => return Err(ArgError::range_error("maxResponseBytes", "must be a whole number of bytes from 1024 to 2147483647")),
            None => DEFAULT_MAX_RESPONSE_BYTES,
        };
        let max_retries = match options.max_retries {
            Some(n) => args::small_count("maxRetries", n, 20)?,
            None => DEFAULT_MAX_RETRIES,
        };
        let scope = match (
            non_empty(options.organization_id),
            non_empty(options.project_id),
        ) {
            (Some(org), Some(project)) => Some((org, project)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ArgError::type_error(
                    "projectId",
                    "organizationId needs projectId too",
                ))
            }
            (None, Some(_)) => {
                return Err(ArgError::type_error(
                    "organizationId",
                    "projectId needs organizationId too",
                ))
            }
        };
        let is_local = base.is_local();
        Ok(Config {
            api_url: base.to_base_string(),
            lifecycle_base: lifecycle_base(&base),
            path_prefix: if is_local {
                format!(
                    "/v1/namespaces/{}",
                    crate::url::encode_component(&namespace)
                )
            } else {
                String::new()
            },
            namespace,
            is_local,
            api_key,
            scope,
            request_timeout_ms: request_timeout_s * 1000.0,
            max_retries,
            max_response_bytes,
        })
    }
}

/// Where lifecycle calls go. Local servers are used as given; `api.*` hosts become `sandbox.*`, as
/// in the official SDKs. Any other host (a proxy, a staging server) is used as given too: the
/// official SDKs silently send such traffic to production instead, which is never what was meant.
fn lifecycle_base(base: &BaseUrl) -> String {
    if !base.is_local() {
        if let Some(rest) = base.host.strip_prefix("api.") {
            let moved = BaseUrl {
                host: format!("sandbox.{rest}"),
                ..base.clone()
            };
            return moved.to_base_string();
        }
    }
    base.to_base_string()
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> Config {
        let options = ClientOptions {
            api_url: Some(url.into()),
            ..Default::default()
        };
        Config::resolve(options, Environment::default()).unwrap()
    }

    #[test]
    fn keys_that_cannot_be_sent_are_refused_without_being_repeated() {
        for (key, why) in [
            ("tl_key\r\nX-Injected: 1", "line breaks"),
            ("tl_key\u{7}", "control characters"),
            ("tl_kéy", "ASCII"),
            ("tl_key_😀", "ASCII"),
        ] {
            let options = ClientOptions { api_key: Some(Secret::new(key.into())), ..Default::default() };
            let err = Config::resolve(options, Environment::default()).unwrap_err();
            assert_eq!(err.param, "apiKey");
            assert!(err.message.contains(why), "{}", err.message);
            assert!(!err.message.contains("tl_k"), "the key is never repeated: {}", err.message);
        }
    }

    #[test]
    fn a_key_with_surrounding_whitespace_is_trimmed_not_refused() {
        for raw in ["tl_key\n", "  tl_key\r\n", "\ttl_key "] {
            let options = ClientOptions { api_key: Some(Secret::new(raw.into())), ..Default::default() };
            let cfg = Config::resolve(options, Environment::default()).unwrap();
            assert_eq!(cfg.api_key.as_ref().map(Secret::expose), Some("tl_key"));
        }
    }

    #[test]
    fn max_response_bytes_out_of_range_names_the_same_range_at_both_ends() {
        for n in [0.0, 10.0, 1023.0, 1500.5, 2147483648.0, 1e20, f64::NAN, f64::INFINITY] {
            let options = ClientOptions { max_response_bytes: Some(n), ..Default::default() };
            let err = Config::resolve(options, Environment::default()).unwrap_err();
            assert_eq!(err.param, "maxResponseBytes");
            assert!(err.message.contains("from 1024 to 2147483647"), "{n}: {}", err.message);
        }
        for n in [1024.0, 2147483647.0] {
            let options = ClientOptions { max_response_bytes: Some(n), ..Default::default() };
            assert_eq!(Config::resolve(options, Environment::default()).unwrap().max_response_bytes, n);
        }
    }

    #[test]
    fn cloud_api_host_moves_to_the_sandbox_host_without_namespace_prefix() {
        let cfg = with_url("https://api.tensorlake.ai");
        assert_eq!(cfg.lifecycle_base, "https://sandbox.tensorlake.ai");
        assert_eq!(cfg.path_prefix, "");
        assert!(!cfg.is_local);
        let staging = with_url("https://api.staging.example.com:8443/base/");
        assert_eq!(
            staging.lifecycle_base,
            "https://sandbox.staging.example.com:8443/base"
        );
    }

    #[test]
    fn localhost_keeps_its_url_and_namespaces_paths() {
        let cfg = with_url("http://localhost:8900/");
        assert_eq!(cfg.lifecycle_base, "http://localhost:8900");
        assert_eq!(cfg.path_prefix, "/v1/namespaces/default");
        let cfg = with_url("http://127.0.0.1:8900");
        assert!(cfg.is_local);
    }

    #[test]
    fn any_other_host_is_used_as_given_not_sent_to_production() {
        let cfg = with_url("https://proxy.internal.example:9000/tl");
        assert_eq!(cfg.lifecycle_base, "https://proxy.internal.example:9000/tl");
        assert_eq!(cfg.path_prefix, "");
    }

    #[test]
    fn options_beat_environment_beats_defaults() {
        let env = Environment {
            api_url: Some("http://localhost:1234".into()),
            api_key: Some(Secret::new("env-key".into())),
            namespace: Some("envns".into()),
        };
        let cfg = Config::resolve(ClientOptions::default(), env.clone()).unwrap();
        assert_eq!(cfg.lifecycle_base, "http://localhost:1234");
        assert_eq!(cfg.namespace, "envns");
        assert_eq!(cfg.path_prefix, "/v1/namespaces/envns");
        assert_eq!(cfg.api_key.as_ref().map(Secret::expose), Some("env-key"));

        let options = ClientOptions {
            api_url: Some("http://127.0.0.1:9".into()),
            api_key: Some(Secret::new("opt-key".into())),
            namespace: Some("optns".into()),
            ..Default::default()
        };
        let cfg = Config::resolve(options, env).unwrap();
        assert_eq!(cfg.lifecycle_base, "http://127.0.0.1:9");
        assert_eq!(cfg.namespace, "optns");
        assert_eq!(cfg.api_key.as_ref().map(Secret::expose), Some("opt-key"));

        let cfg = Config::resolve(ClientOptions::default(), Environment::default()).unwrap();
        assert_eq!(cfg.api_url, DEFAULT_API_URL);
        assert_eq!(cfg.namespace, DEFAULT_NAMESPACE);
        assert_eq!(cfg.request_timeout_ms, 300_000.0);
        assert_eq!(cfg.max_retries, 3);
        assert!(cfg.api_key.is_none());
    }

    #[test]
    fn namespace_is_encoded_into_the_prefix() {
        let options = ClientOptions {
            api_url: Some("http://localhost:1".into()),
            namespace: Some("a/b".into()),
            ..Default::default()
        };
        let cfg = Config::resolve(options, Environment::default()).unwrap();
        assert_eq!(cfg.path_prefix, "/v1/namespaces/a%2Fb");
    }

    #[test]
    fn bad_options_name_the_parameter() {
        let bad_url = ClientOptions {
            api_url: Some("not a url".into()),
            ..Default::default()
        };
        let err = Config::resolve(bad_url, Environment::default()).unwrap_err();
        assert_eq!(err.param, "apiUrl");

        let bad_timeout = ClientOptions {
            request_timeout_s: Some(-1.0),
            ..Default::default()
        };
        let err = Config::resolve(bad_timeout, Environment::default()).unwrap_err();
        assert_eq!(err.param, "requestTimeout");
        assert!(err.is_range);

        let half_scope = ClientOptions {
            organization_id: Some("org".into()),
            ..Default::default()
        };
        assert_eq!(
            Config::resolve(half_scope, Environment::default())
                .unwrap_err()
                .param,
            "projectId"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let cfg = Config::resolve(
            ClientOptions {
                api_key: Some(Secret::new("tl_apiKey_SECRET".into())),
                ..Default::default()
            },
            Environment::default(),
        )
        .unwrap();
        assert!(!format!("{cfg:?}").contains("SECRET"));
    }
}
