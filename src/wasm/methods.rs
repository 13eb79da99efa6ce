//! The bodies of the client's exported methods (constructor, snapshots, waits, sandbox lookups):
//! read the JS arguments, validate them (rejecting before any request), run the core operation,
//! convert the result. `lib.rs` only forwards to these; a sandbox handle's own methods (and
//! creating one) are in `sandbox_methods`, on the helpers defined here.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use js_sys::{Function, Promise};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::AbortSignal;

use tensorlake_snapshots_core::args::{self, ArgError};
use tensorlake_snapshots_core::config::{ClientOptions, Config, Environment, Secret, LOCALHOST_API_URL};
use tensorlake_snapshots_core::error::Error;
use tensorlake_snapshots_core::call::Budget;
use tensorlake_snapshots_core::api::Api;
use tensorlake_snapshots_core::wait::{self, WaitOptions, WaitSpec, Waiter};
use crate::wasm::errors::{self, arg_error};
use crate::wasm::js_platform::{Auth, JsHost, Shared};
use crate::wasm::options::{
    self, ClientOptionsJs, ListSnapshotsOptions, Raw, SignalOnly, SnapshotAndWaitOptions, SnapshotOptions, WaitOptionsJs,
};
use crate::wasm::{driver, env, to_js};

/// Result of an async body.
pub(crate) type Outcome = Result<JsValue, Error<JsHost>>;

/// Runs an async body as a Promise, turning its error into the JS error to reject with.
fn spawn(shared: Rc<Shared>, signal: Option<AbortSignal>, body: impl Future<Output = Outcome> + 'static) -> Promise {
    // Boxed so that every export shares one promise adapter instead of monomorphising its own
    // (about 25 KB of wasm).
    run_boxed(shared, signal, Box::pin(body))
}

fn run_boxed(shared: Rc<Shared>, signal: Option<AbortSignal>, body: Pin<Box<dyn Future<Output = Outcome>>>) -> Promise {
    // Driven from JS (src/wasm/driver.rs) rather than by `future_to_promise`: fewer promise
    // bridges and no closures made per call.
    driver::run(Box::pin(async move { body.await.map(crate::wasm::plain::attach).map_err(|err| errors::to_js(err, signal.as_ref(), &shared)) }))
}

/// A promise already rejected with an argument error: async methods never throw synchronously.
fn reject(err: ArgError) -> Promise {
    Promise::reject(&arg_error(&err))
}

fn host(shared: &Rc<Shared>, signal: &Option<AbortSignal>) -> JsHost {
    JsHost { shared: shared.clone(), signal: signal.clone() }
}

fn id_arg(value: &JsValue, param: &str) -> Result<String, ArgError> {
    // Checked before the string is copied into wasm memory: a string of hundreds of millions of
    // characters would otherwise exhaust it. UTF-16 units never outnumber UTF-8 bytes.
    if let Some(text) = value.dyn_ref::<js_sys::JsString>() {
        if text.length() as usize > args::MAX_ID_BYTES {
            return Err(ArgError::type_error(param, "must be at most 1024 bytes long"));
        }
    }
    args::id(param, &options::required_string(value, param)?)
}

/// Parses the arguments, then runs `body` on a host bound to the call's signal. An argument error
/// rejects the promise before any request is sent: async methods never throw synchronously.
pub(crate) fn call<A, Fut>(
    shared: &Rc<Shared>,
    parse: impl FnOnce() -> Result<(A, Option<AbortSignal>), ArgError>,
    body: impl FnOnce(JsHost, A) -> Fut,
) -> Promise
where
    Fut: Future<Output = Outcome> + 'static,
{
    match parse() {
        Ok((args, signal)) => {
            let host = host(shared, &signal);
            spawn(shared.clone(), signal, body(host, args))
        }
        Err(e) => reject(e),
    }
}

/// The commonest arguments: an id, and options holding only `signal`.
pub(crate) fn id_and_signal(id: &JsValue, param: &str, options: &JsValue) -> Result<(String, Option<AbortSignal>), ArgError> {
    Ok((id_arg(id, param)?, options::parse::<SignalOnly>(options, "options")?.signal.signal()?))
}

/// Builds a client from constructor options. `localhost` applies `forLocalhost`'s defaults.
pub fn new_client(options: &JsValue, localhost: bool) -> Result<Rc<Shared>, JsValue> {
    let opts: ClientOptionsJs = options::parse(options, "options").map_err(|e| arg_error(&e))?;
    let read = || -> Result<(ClientOptions, Auth, Option<Function>, bool), ArgError> {
        let api_key = opts.api_key.string("apiKey")?.map(Secret::new);
        let token_provider = opts.token_provider.function("tokenProvider")?;
        if api_key.is_some() && token_provider.is_some() {
            return Err(ArgError::type_error("tokenProvider", "give either apiKey or tokenProvider, not both"));
        }
        let client_options = ClientOptions {
            api_url: opts.api_url.string("apiUrl")?.or_else(|| localhost.then(|| LOCALHOST_API_URL.to_string())),
            api_key: api_key.clone(),
            namespace: opts.namespace.string("namespace")?,
            organization_id: opts.organization_id.string("organizationId")?,
            project_id: opts.project_id.string("projectId")?,
            request_timeout_s: opts.request_timeout.number("requestTimeout")?,
            max_retries: opts.max_retries.number("maxRetries")?,
            max_response_bytes: opts.max_response_bytes.number("maxResponseBytes")?,
        };
        let auth = match token_provider {
            Some(provider) => Auth::Provider(provider),
            None => Auth::None,
        };
        let allow_browser = opts.dangerously_allow_browser.boolean("dangerouslyAllowBrowser")?.unwrap_or(false);
        let fetch = match (opts.fetch.function("fetch")?, opts.http_agent.get()) {
            (Some(_), Some(_)) => return Err(ArgError::type_error("httpAgent", "give either fetch or httpAgent, not both")),
            (Some(fetch), None) => Some(fetch),
            (None, Some(agent)) => Some(crate::wasm::js_platform::fetch_with_agent(&agent)?),
            (None, None) => crate::wasm::js_platform::default_fetch(),
        };
        Ok((client_options, auth, fetch, allow_browser))
    };
    let (client_options, auth, fetch, allow_browser) = read().map_err(|e| arg_error(&e))?;
    let explicit_key = client_options.api_key.is_some();
    let environment = if localhost { Environment::default() } else { env::environment() };
    let cfg = Config::resolve(client_options, environment).map_err(|e| arg_error(&e))?;
    if explicit_key && env::is_browser() && !allow_browser {
        return Err(errors::sandbox_error(
            "apiKey was passed in a browser, where every visitor of the page can read it. Pass tokenProvider (a function \
             that fetches a short-lived token from your server) or call the API through a server-side proxy. If you \
             understand the risk (a local demo, a personal tool), pass dangerouslyAllowBrowser: true. See the README, \
             \"Using it in a browser\".",
            "BROWSER_API_KEY",
        ));
    }
    let auth = match (&auth, &cfg.api_key) {
        (Auth::None, Some(key)) => Auth::Key(key.clone()),
        _ => auth,
    };
    let bearer = cfg.api_key.as_ref().map(|key| JsValue::from_str(&format!("Bearer {}", key.expose())));
    let user_agent = env::user_agent().map(|agent| JsValue::from_str(&agent));
    Ok(Rc::new(Shared { cfg, auth, fetch, tokens: RefCell::new(Vec::new()), user_agent, bearer }))
}

/// `client.toJSON()`: the configuration, with the credential reduced to whether there is one.
pub fn describe_client(shared: &Shared) -> JsValue {
    let obj = js_sys::Object::new();
    let set = |k: &str, v: JsValue| {
        let _ = js_sys::Reflect::set(&obj, &k.into(), &v);
    };
    set("apiUrl", shared.cfg.api_url.as_str().into());
    set("namespace", shared.cfg.namespace.as_str().into());
    set("credentials", match shared.auth {
        Auth::None => "none",
        Auth::Key(_) => "apiKey ([redacted])",
        Auth::Provider(_) => "tokenProvider",
    }.into());
    obj.into()
}

/// `client.snapshot(sandboxId, { snapshotType, signal })`.
pub fn snapshot(shared: &Rc<Shared>, sandbox_id: &JsValue, options: &JsValue) -> Promise {
    let parse = || {
        let id = id_arg(sandbox_id, "sandboxId")?;
        let opts: SnapshotOptions = options::parse(options, "options")?;
        Ok(((id, snapshot_type(&opts.snapshot_type)?), opts.signal.signal()?))
    };
    call(shared, parse, |host, (id, kind)| async move {
        let created = Api::new(&host, &host.shared.cfg).create_snapshot(&id, kind).await?;
        Ok(to_js::snapshot_created(&created))
    })
}

fn snapshot_type(value: &Raw) -> Result<Option<&'static str>, ArgError> {
    value.string("snapshotType")?.map(|t| args::one_of("snapshotType", &t, &["memory", "filesystem"])).transpose()
}

/// `client.getSnapshot(snapshotId, { signal })`.
pub fn get_snapshot(shared: &Rc<Shared>, snapshot_id: &JsValue, options: &JsValue) -> Promise {
    call(shared, || id_and_signal(snapshot_id, "snapshotId", options), |host, id| async move {
        let cfg = &host.shared.cfg;
        let (record, _) = Api::new(&host, cfg).get_snapshot(&id, Budget::standard(&host, cfg)).await?;
        Ok(to_js::snapshot(record))
    })
}

/// `client.listSnapshots({ sandboxId, signal })`.
pub fn list_snapshots(shared: &Rc<Shared>, options: &JsValue) -> Promise {
    let parse = || {
        let opts: ListSnapshotsOptions = options::parse(options, "options")?;
        let sandbox = opts.sandbox_id.string("sandboxId")?.map(|s| args::id("sandboxId", &s)).transpose()?;
        Ok((sandbox, opts.signal.signal()?))
    };
    call(shared, parse, |host, sandbox| async move {
        let list = Api::new(&host, &host.shared.cfg).list_snapshots(sandbox.as_deref()).await?;
        Ok(to_js::snapshots(list))
    })
}

/// `client.deleteSnapshot(snapshotId, { signal })`.
pub fn delete_snapshot(shared: &Rc<Shared>, snapshot_id: &JsValue, options: &JsValue) -> Promise {
    call(shared, || id_and_signal(snapshot_id, "snapshotId", options), |host, id| async move {
        Api::new(&host, &host.shared.cfg).delete_snapshot(&id).await?;
        Ok(JsValue::UNDEFINED)
    })
}

/// The options shared by every wait: timing and `onStatus` (and `signal`, returned beside them).
struct WaitArgs {
    options: WaitOptions,
    on_status: Option<Function>,
}

fn wait_args(opts: WaitOptionsJs) -> Result<(WaitArgs, Option<AbortSignal>), ArgError> {
    let options = WaitOptions::new(
        opts.timeout.number("timeout")?,
        opts.poll_interval.number("pollInterval")?,
        opts.wait_until.string("waitUntil")?.as_deref(),
    )?;
    Ok((WaitArgs { options, on_status: opts.on_status.function("onStatus")? }, opts.signal.signal()?))
}

async fn wait_to_end(host: &JsHost, spec: WaitSpec, started_ms: f64, on_status: Option<Function>) -> Outcome {
    let api = Api::new(host, &host.shared.cfg);
    let mut waiter = Waiter::new(spec, started_ms);
    let mut last = JsValue::UNDEFINED;
    wait::wait_for(&api, &mut waiter, |record| {
        last = to_js::snapshot(record.clone());
        match &on_status {
            Some(callback) => callback.call1(&JsValue::UNDEFINED, &last).map(|_| ()).map_err(Error::Callback),
            None => Ok(()),
        }
    })
    .await?;
    Ok(last)
}

/// `client.snapshotAndWait(sandboxId, { timeout, pollInterval, waitUntil, snapshotType, signal, onStatus })`.
pub fn snapshot_and_wait(shared: &Rc<Shared>, sandbox_id: &JsValue, options: &JsValue) -> Promise {
    let parse = || {
        let id = id_arg(sandbox_id, "sandboxId")?;
        let (kind, wait) = options::parse::<SnapshotAndWaitOptions>(options, "options")?.split();
        let (wait, signal) = wait_args(wait)?;
        Ok(((id, snapshot_type(&kind)?, wait), signal))
    };
    call(shared, parse, |host, (id, kind, wait)| async move {
        let started = tensorlake_snapshots_core::platform::Platform::now_ms(&host);
        // The wait's timeout bounds the whole call, the snapshot request and its recovery included.
        let deadline = started + wait.options.timeout_s * 1000.0;
        let created = Api::new(&host, &host.shared.cfg).until(deadline).create_snapshot(&id, kind).await?;
        let snapshot_id = created.snapshot_id.as_string().unwrap_or_default();
        wait_to_end(&host, WaitSpec::for_snapshot(snapshot_id, wait.options), started, wait.on_status).await
    })
}

/// `client.waitForSnapshot(snapshotId, { timeout, pollInterval, waitUntil, signal, onStatus })`.
pub fn wait_for_snapshot(shared: &Rc<Shared>, snapshot_id: &JsValue, options: &JsValue) -> Promise {
    let parse = || {
        let id = id_arg(snapshot_id, "snapshotId")?;
        let (wait, signal) = wait_args(options::parse(options, "options")?)?;
        Ok(((id, wait), signal))
    };
    call(shared, parse, |host, (id, wait)| async move {
        let started = tensorlake_snapshots_core::platform::Platform::now_ms(&host);
        wait_to_end(&host, WaitSpec::for_snapshot(id, wait.options), started, wait.on_status).await
    })
}

/// The state behind a `watchSnapshot` iterator.
pub struct Watch {
    host: Rc<JsHost>,
    /// `None` while a `next()` is in flight (taken out so no borrow spans an await).
    waiter: RefCell<Option<Waiter<JsHost>>>,
    on_status: Option<Function>,
}

/// `client.watchSnapshot(snapshotId, options)`: validates the arguments (a bad one throws at
/// once, since this returns an iterator, not a promise) and creates the iterator's state.
pub fn watch_snapshot(shared: &Rc<Shared>, snapshot_id: &JsValue, options: &JsValue) -> Result<Rc<Watch>, ArgError> {
    let id = id_arg(snapshot_id, "snapshotId")?;
    let (wait, signal) = wait_args(options::parse(options, "options")?)?;
    let host = host(shared, &signal);
    let started = tensorlake_snapshots_core::platform::Platform::now_ms(&host);
    let waiter = Waiter::new(WaitSpec::for_snapshot(id, wait.options), started);
    Ok(Rc::new(Watch { host: Rc::new(host), waiter: RefCell::new(Some(waiter)), on_status: wait.on_status }))
}

fn iterator_result(value: JsValue, done: bool) -> JsValue {
    let obj = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&obj, &"value".into(), &value);
    let _ = js_sys::Reflect::set(&obj, &"done".into(), &done.into());
    obj.into()
}

/// The iterator's `next()`: the snapshot at its next status, until the target is reached.
pub fn watch_next(watch: &Rc<Watch>) -> Promise {
    let watch = watch.clone();
    let signal = watch.host.signal.clone();
    spawn(watch.host.shared.clone(), signal, async move {
        let taken = watch.waiter.borrow_mut().take();
        let Some(mut waiter) = taken else {
            return Err(Error::Sandbox {
                message: "watchSnapshot: next() was called before the previous next() settled".into(),
                code: "CONCURRENT_NEXT",
                sandbox_id: None,
                trace_id: None,
            });
        };
        let api = Api::new(watch.host.as_ref(), &watch.host.shared.cfg);
        let step = waiter.next_change(&api).await;
        *watch.waiter.borrow_mut() = Some(waiter);
        match step? {
            Some(record) => {
                let value = to_js::snapshot(record);
                if let Some(callback) = &watch.on_status {
                    callback.call1(&JsValue::UNDEFINED, &value).map_err(Error::Callback)?;
                }
                Ok(iterator_result(value, false))
            }
            None => Ok(iterator_result(JsValue::UNDEFINED, true)),
        }
    })
}

/// The iterator's `return()`: stops the wait (a `break` out of `for await`).
pub fn watch_return(watch: &Rc<Watch>) -> Promise {
    if let Some(waiter) = watch.waiter.borrow_mut().as_mut() {
        waiter.finish();
    }
    Promise::resolve(&iterator_result(JsValue::UNDEFINED, true))
}
