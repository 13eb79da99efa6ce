//! The seam between the pure core and the JavaScript host.
//!
//! Everything the core needs from the outside world (sending a request, sleeping, the clock,
//! randomness, parsed JSON) goes through [`Platform`]. The wasm build implements it with `fetch`,
//! timers and `JSON.parse`; native tests implement it with scripted fakes, so the retry policy, the
//! waiter and the decoders run under `cargo test` exactly as they run in a browser.

#![allow(async_fn_in_trait)] // single-threaded wasm: the futures are deliberately not `Send`

/// Every JSON object key the client reads. An enum rather than strings so the wasm side can keep
/// one interned JS string per key instead of re-encoding the key for every field of every object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
#[allow(missing_docs)] // each variant is its wire name, given by `wire()`
pub enum Key {
    Id,
    SnapshotId,
    SandboxId,
    Namespace,
    BaseImage,
    Status,
    SnapshotType,
    Error,
    SnapshotUri,
    SnapshotFormatVersion,
    SizeBytes,
    RootfsDiskBytes,
    CreatedAt,
    Snapshots,
    Sandboxes,
    Items,
    Image,
    Resources,
    Cpus,
    MemoryMb,
    DiskMb,
    EphemeralDiskMb,
    SandboxUrl,
    RoutingHint,
    Name,
    TerminatedAt,
    TimeoutSecs,
    Entrypoint,
    TerminationReason,
    ErrorDetails,
    Reason,
    Message,
    Detail,
    Code,
    Pid,
    Line,
    Stream,
    ExitCode,
    Signal,
    Path,
    Entries,
    IsDir,
    Size,
    ModifiedAt,
}

impl Key {
    /// Every key, in discriminant order (the wasm side builds its interned table from this).
    pub const ALL: [Key; 44] = [
        Key::Id,
        Key::SnapshotId,
        Key::SandboxId,
        Key::Namespace,
        Key::BaseImage,
        Key::Status,
        Key::SnapshotType,
        Key::Error,
        Key::SnapshotUri,
        Key::SnapshotFormatVersion,
        Key::SizeBytes,
        Key::RootfsDiskBytes,
        Key::CreatedAt,
        Key::Snapshots,
        Key::Sandboxes,
        Key::Items,
        Key::Image,
        Key::Resources,
        Key::Cpus,
        Key::MemoryMb,
        Key::DiskMb,
        Key::EphemeralDiskMb,
        Key::SandboxUrl,
        Key::RoutingHint,
        Key::Name,
        Key::TerminatedAt,
        Key::TimeoutSecs,
        Key::Entrypoint,
        Key::TerminationReason,
        Key::ErrorDetails,
        Key::Reason,
        Key::Message,
        Key::Detail,
        Key::Code,
        Key::Pid,
        Key::Line,
        Key::Stream,
        Key::ExitCode,
        Key::Signal,
        Key::Path,
        Key::Entries,
        Key::IsDir,
        Key::Size,
        Key::ModifiedAt,
    ];

    /// The key as it appears on the wire.
    pub fn wire(self) -> &'static str {
        match self {
            Key::Id => "id",
            Key::SnapshotId => "snapshot_id",
            Key::SandboxId => "sandbox_id",
            Key::Namespace => "namespace",
            Key::BaseImage => "base_image",
            Key::Status => "status",
            Key::SnapshotType => "snapshot_type",
            Key::Error => "error",
            Key::SnapshotUri => "snapshot_uri",
            Key::SnapshotFormatVersion => "snapshot_format_version",
            Key::SizeBytes => "size_bytes",
            Key::RootfsDiskBytes => "rootfs_disk_bytes",
            Key::CreatedAt => "created_at",
            Key::Snapshots => "snapshots",
            Key::Sandboxes => "sandboxes",
            Key::Items => "items",
            Key::Image => "image",
            Key::Resources => "resources",
            Key::Cpus => "cpus",
            Key::MemoryMb => "memory_mb",
            Key::DiskMb => "disk_mb",
            Key::EphemeralDiskMb => "ephemeral_disk_mb",
            Key::SandboxUrl => "sandbox_url",
            Key::RoutingHint => "routing_hint",
            Key::Name => "name",
            Key::TerminatedAt => "terminated_at",
            Key::TimeoutSecs => "timeout_secs",
            Key::Entrypoint => "entrypoint",
            Key::TerminationReason => "termination_reason",
            Key::ErrorDetails => "error_details",
            Key::Reason => "reason",
            Key::Message => "message",
            Key::Detail => "detail",
            Key::Code => "code",
            Key::Pid => "pid",
            Key::Line => "line",
            Key::Stream => "stream",
            Key::ExitCode => "exit_code",
            Key::Signal => "signal",
            Key::Path => "path",
            Key::Entries => "entries",
            Key::IsDir => "is_dir",
            Key::Size => "size",
            Key::ModifiedAt => "modified_at",
        }
    }
}

/// A parsed JSON value, wherever it lives. In wasm it is a JS value from `JSON.parse`, so strings
/// the client only passes through are never copied into Rust.
///
/// The `*_field` methods read a member of a value that is known not to be `null` (an object the
/// caller checked, or a value another read returned, since reads never return `null`). In wasm
/// they are one plain property access each, the hot path of decoding a 10,000-snapshot listing;
/// `get` also accepts `null` and is for everything else.
pub trait Json: Clone {
    /// The member `key` of an object; `None` when absent, `null`, or when `self` is no object.
    fn get(&self, key: Key) -> Option<Self>;
    /// Like `get`, for a `self` that is not `null` (see the trait docs).
    fn field(&self, key: Key) -> Option<Self> {
        self.get(key)
    }
    /// The member `key` if it is a string (same precondition as `field`).
    fn string_field(&self, key: Key) -> Option<Self> {
        self.field(key).filter(Self::is_string)
    }
    /// The member `key` if it is a number (same precondition as `field`).
    fn number_field(&self, key: Key) -> Option<f64> {
        self.field(key).and_then(|v| v.as_f64())
    }
    /// True for a string.
    fn is_string(&self) -> bool;
    /// A copy of the string, if this is one.
    fn as_string(&self) -> Option<String>;
    /// The number, if this is one.
    fn as_f64(&self) -> Option<f64>;
    /// The boolean, if this is one.
    fn as_bool(&self) -> Option<bool>;
    /// True for a non-array object.
    fn is_object(&self) -> bool;
    /// The elements, if this is an array.
    fn elements(&self) -> Option<Vec<Self>>;
}

/// A fully read response body. Reading happens inside [`Platform::send`], so a connection that
/// drops mid-body is a transport failure the retry policy sees, not a surprise afterwards.
pub trait Body {
    /// The JSON type `parse_json` produces.
    type Json: Json;
    /// The body as text (invalid UTF-8 replaced), for error messages and SSE streams.
    fn text(&self) -> String;
    /// At most the first `max_chars` characters of the body as text: what an error message
    /// needs, without copying a whole error page into the client's memory.
    fn text_prefix(&self, max_chars: usize) -> String {
        self.text().chars().take(max_chars).collect()
    }
    /// The body parsed as JSON; the error says why it is not JSON.
    fn parse_json(&self) -> Result<Self::Json, String>;
}

/// HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Patch,
}

impl Method {
    /// The method name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
        }
    }
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestBody {
    /// No body at all (`Content-Length: 0`), as the SDKs send empty POSTs.
    Empty,
    /// A JSON document; sent with `Content-Type: application/json`.
    Json(String),
    /// Raw bytes; sent with `Content-Type: application/octet-stream`.
    Bytes(Vec<u8>),
}

/// How a successful response body should be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Text (JSON or an SSE stream) to be parsed by the core.
    Text,
    /// Bytes handed to the caller untouched (file downloads).
    Bytes,
}

/// One HTTP request, ready to send. It borrows the URL and body of its call, so a retry or a
/// poll allocates only its own headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Request<'a> {
    /// Method.
    pub method: Method,
    /// Absolute URL, ids already percent-encoded.
    pub url: &'a str,
    /// Body.
    pub body: &'a RequestBody,
    /// How to read a 2xx body.
    pub expect: Expect,
    /// Every header but `Authorization` (which the host adds, since a token provider may be
    /// asynchronous) and `User-Agent` (which only some hosts may set).
    pub headers: Vec<(&'static str, String)>,
    /// The fresh `traceparent` of this attempt (also in `headers`).
    pub traceparent: String,
    /// This attempt's timeout, in milliseconds.
    pub timeout_ms: f64,
}

impl Request<'_> {
    /// The value of a header, by its exact name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

/// A response whose body has been read.
#[derive(Debug, Clone)]
pub struct Response<B> {
    /// HTTP status.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: B,
}

/// Why a request produced no response.
#[derive(Debug, Clone, PartialEq)]
pub enum SendError<C> {
    /// The caller's `AbortSignal` fired.
    Aborted,
    /// The attempt ran past its timeout.
    TimedOut {
        /// The host's error object.
        cause: C,
    },
    /// The connection failed or dropped, before or during the body.
    Network {
        /// The host's description.
        message: String,
        /// The host's error object.
        cause: C,
        /// No connection could be made (refused, no such host): nothing was sent, so the request
        /// did not take effect and may be sent again whatever it is.
        unsent: bool,
    },
    /// The response was larger than the client accepts (`maxResponseBytes`). The transport
    /// stopped reading it at the limit.
    TooLarge {
        /// The limit, in bytes.
        limit: f64,
    },
    /// No usable credential could be had (a `tokenProvider` threw, or returned something that
    /// cannot be a bearer token). Nothing was sent, and trying again would not help.
    Credentials {
        /// What went wrong, without the credential.
        message: String,
    },
}

/// The caller's `AbortSignal` fired during a sleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aborted;

/// What the core needs from its host. See the module docs.
pub trait Platform {
    /// Parsed JSON.
    type Json: Json;
    /// A read response body.
    type Body: Body<Json = Self::Json>;
    /// The host's error value for transport failures (a JS `Error` in wasm).
    type Cause: Clone;

    /// Sends one request and reads its whole body. Never retries.
    async fn send(&self, request: &Request)
        -> Result<Response<Self::Body>, SendError<Self::Cause>>;
    /// Sleeps, unless the caller's signal fires first.
    async fn sleep(&self, ms: f64) -> Result<(), Aborted>;
    /// Wall-clock time, epoch milliseconds.
    fn now_ms(&self) -> f64;
    /// A uniformly random 32-bit value (jitter and trace ids; not for secrets).
    fn random_u32(&self) -> u32;
    /// Parses one JSON document (SSE frames arrive as text).
    fn parse_json(&self, text: &str) -> Result<Self::Json, String>;
    /// Removes any credential this client holds from text that came from a server, in case a
    /// misbehaving server echoes a header back into an error message.
    fn redact(&self, text: String) -> String;
}

/// A uniformly random number in `[0, 1)` from the platform's 32-bit source.
pub fn random_unit<P: Platform>(p: &P) -> f64 {
    f64::from(p.random_u32()) / 4_294_967_296.0
}
