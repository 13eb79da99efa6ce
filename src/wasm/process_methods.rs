//! The bodies of a sandbox's process calls (start, list, get, kill, signal, stdin, output) and of
//! the lifecycle calls beyond create and delete (suspend, resume, status, update, checkpoint, one
//! sandbox's snapshots). Same shape as `methods`: arguments are read and checked first (a bad one
//! rejects before any request), then the core runs the call.

use std::rc::Rc;

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::JsValue;
use web_sys::AbortSignal;

use tensorlake_snapshots_core::api::Api;
use tensorlake_snapshots_core::args::{self, ArgError};
use tensorlake_snapshots_core::platform::{Method, RequestBody};
use tensorlake_snapshots_core::processes::{self, ProcessSpec, SandboxUpdate};
use tensorlake_snapshots_core::retry::RetryClass;
use tensorlake_snapshots_core::routes::RunSpec;

use crate::wasm::js_platform::Shared;
use crate::wasm::methods::{call, id_and_signal};
use crate::wasm::options::{self, SignalOnly};
use crate::wasm::plain::plain;
use crate::wasm::process_options::{
    process_arg, user_arg, wait_ms, CheckpointOptions, StartProcessOptions, SuspendResumeOptions, UpdateOptions,
};
use crate::wasm::sandbox_methods::SandboxHandle;
use crate::wasm::to_js;

/// What a process call's answer becomes.
#[derive(Clone, Copy)]
enum Shape {
    /// The JSON object, camelCased (`ProcessInfo`, `OutputResponse`, `SendSignalResponse`).
    Plain,
    /// The `processes` array of the answer, camelCased.
    Processes,
    /// `undefined`.
    Nothing,
}

/// One request to the sandbox's own API, fully built by the argument checks.
struct ProcessRequest {
    method: Method,
    url: String,
    body: RequestBody,
    class: RetryClass,
    shape: Shape,
}

type Parsed = Result<(ProcessRequest, Option<AbortSignal>), ArgError>;

/// Sends a checked request and shapes its answer. Not generic, so every process call shares
/// this one body.
fn send(handle: &Rc<SandboxHandle>, parsed: Parsed) -> Promise {
    let target = handle.target.clone();
    call(&handle.shared, move || parsed, |host, req: ProcessRequest| async move {
        let api = Api::new(&host, &host.shared.cfg);
        let json = api.sandbox_json(&target, req.method, req.url, req.body, req.class).await?;
        Ok(match (req.shape, json) {
            (Shape::Nothing, _) | (_, None) => JsValue::UNDEFINED,
            (Shape::Plain, Some(json)) => plain(&json),
            (Shape::Processes, Some(json)) => match Reflect::get(&json, &"processes".into()) {
                Ok(list) if js_sys::Array::is_array(&list) => plain(&list),
                _ => js_sys::Array::new().into(),
            },
        })
    })
}

fn signal_of(options: &JsValue) -> Result<Option<AbortSignal>, ArgError> {
    options::parse::<SignalOnly>(options, "options")?.signal.signal()
}

/// A call on one process: `process` read, then `build(url prefix)` with the options' signal.
fn on_process(handle: &Rc<SandboxHandle>, process: &JsValue, options: &JsValue, suffix: &str, method: Method, class: RetryClass, shape: Shape, body: RequestBody) -> Promise {
    let parsed = (|| {
        let process = process_arg(process)?;
        let url = processes::process(&handle.target.base, &process, suffix);
        Ok((ProcessRequest { method, url, body, class, shape }, signal_of(options)?))
    })();
    send(handle, parsed)
}

/// `sandbox.startProcess(command, { args, env, workingDir, stdinMode, user, name, signal })`.
pub fn start_process(handle: &Rc<SandboxHandle>, command: &JsValue, options: &JsValue) -> Promise {
    let parsed = (|| {
        let command = options::required_string(command, "command")?;
        if command.trim().is_empty() {
            return Err(ArgError::type_error("command", "must be a non-empty string"));
        }
        let opts: StartProcessOptions = options::parse(options, "options")?;
        let stdin = opts.stdin_mode.string("stdinMode")?;
        let stdin_pipe = match stdin.as_deref() {
            None => false,
            Some(mode) => args::one_of("stdinMode", mode, &["closed", "pipe"])? == "pipe",
        };
        let spec = ProcessSpec {
            run: RunSpec {
                command,
                args: opts.args.string_array("args")?.unwrap_or_default(),
                env: opts.env.string_map("env")?,
                working_dir: opts.working_dir.string("workingDir")?,
                timeout_s: None,
                user: user_arg(&opts.user)?,
            },
            stdin_pipe,
            name: opts.name.string("name")?.map(|n| args::id("name", &n)).transpose()?,
        };
        let url = processes::processes(&handle.target.base);
        let body = RequestBody::Json(processes::start_body(&spec));
        Ok((ProcessRequest { method: Method::Post, url, body, class: RetryClass::Create, shape: Shape::Plain }, opts.signal.signal()?))
    })();
    send(handle, parsed)
}

/// `sandbox.listProcesses({ signal })`.
pub fn list_processes(handle: &Rc<SandboxHandle>, options: &JsValue) -> Promise {
    let parsed = signal_of(options).map(|signal| {
        let url = processes::processes(&handle.target.base);
        (ProcessRequest { method: Method::Get, url, body: RequestBody::Empty, class: RetryClass::Idempotent, shape: Shape::Processes }, signal)
    });
    send(handle, parsed)
}

/// `sandbox.getProcess(pidOrName, { signal })`.
pub fn get_process(handle: &Rc<SandboxHandle>, process: &JsValue, options: &JsValue) -> Promise {
    on_process(handle, process, options, "", Method::Get, RetryClass::Idempotent, Shape::Plain, RequestBody::Empty)
}

/// `sandbox.killProcess(pidOrName, { signal })`.
pub fn kill_process(handle: &Rc<SandboxHandle>, process: &JsValue, options: &JsValue) -> Promise {
    on_process(handle, process, options, "", Method::Delete, RetryClass::Idempotent, Shape::Nothing, RequestBody::Empty)
}

/// `sandbox.sendSignal(pidOrName, signal, { signal })`: a signal number from 1 to 64.
pub fn send_signal(handle: &Rc<SandboxHandle>, process: &JsValue, number: &JsValue, options: &JsValue) -> Promise {
    let Some(n) = number.as_f64() else {
        return on_error(ArgError::type_error("signal", "must be a signal number (15 for SIGTERM, 9 for SIGKILL)"));
    };
    if n.fract() != 0.0 || !(1.0..=64.0).contains(&n) {
        return on_error(ArgError::range_error("signal", "must be an integer from 1 to 64"));
    }
    let body = RequestBody::Json(processes::signal_body(n));
    on_process(handle, process, options, "/signal", Method::Post, RetryClass::Create, Shape::Plain, body)
}

fn on_error(err: ArgError) -> Promise {
    Promise::reject(&crate::wasm::errors::arg_error(&err))
}

/// `sandbox.writeStdin(pidOrName, data, { signal })`: bytes (or a string, as UTF-8).
pub fn write_stdin(handle: &Rc<SandboxHandle>, process: &JsValue, data: &JsValue, options: &JsValue) -> Promise {
    match options::bytes(data, "data") {
        Ok(bytes) => on_process(handle, process, options, "/stdin", Method::Post, RetryClass::Create, Shape::Nothing, RequestBody::Bytes(bytes)),
        Err(err) => on_error(err),
    }
}

/// `sandbox.closeStdin(pidOrName, { signal })`.
pub fn close_stdin(handle: &Rc<SandboxHandle>, process: &JsValue, options: &JsValue) -> Promise {
    on_process(handle, process, options, "/stdin/close", Method::Post, RetryClass::Create, Shape::Nothing, RequestBody::Empty)
}

/// `sandbox.getStdout` / `getStderr` / `getOutput(pidOrName, { signal })`: `{ pid, lines, lineCount }`.
pub fn get_output(handle: &Rc<SandboxHandle>, process: &JsValue, options: &JsValue, stream: &str) -> Promise {
    on_process(handle, process, options, stream, Method::Get, RetryClass::Idempotent, Shape::Plain, RequestBody::Empty)
}

/// `suspend(options)` / `resume(options)`: the request, then (unless `wait: false`) polling until
/// the sandbox is `suspended` / `running`. Resolves to `undefined`, as the official SDK's do.
pub fn suspend_or_resume(shared: &Rc<Shared>, sandbox_id: &JsValue, options: &JsValue, resume: bool) -> Promise {
    let parse = || {
        let (id, _) = id_and_signal(sandbox_id, "sandboxId", &JsValue::UNDEFINED)?;
        let opts: SuspendResumeOptions = options::parse(options, "options")?;
        Ok(((id, wait_ms(&opts.wait, &opts.timeout, &opts.poll_interval)?), opts.signal.signal()?))
    };
    call(shared, parse, move |host, (id, wait)| async move {
        let api = Api::new(&host, &host.shared.cfg);
        let (action, wanted) = if resume { ("resume", "running") } else { ("suspend", "suspended") };
        api.sandbox_action_post(&id, action).await?;
        if let Some((timeout_ms, poll_ms)) = wait {
            api.wait_for_sandbox(&id, wanted, timeout_ms, poll_ms).await?;
        }
        Ok(JsValue::UNDEFINED)
    })
}

/// `sandbox.status({ signal })`: the status string.
pub fn status(shared: &Rc<Shared>, sandbox_id: &JsValue, options: &JsValue) -> Promise {
    call(shared, || id_and_signal(sandbox_id, "sandboxId", options), |host, id| async move {
        let record = Api::new(&host, &host.shared.cfg).get_sandbox(&id).await?;
        Ok(record.status.0)
    })
}

/// `update(options)`: `{ name, exposedPorts, allowUnauthenticatedAccess }` → `SandboxInfo`.
pub fn update(shared: &Rc<Shared>, sandbox_id: &JsValue, options: &JsValue) -> Promise {
    let parse = || {
        let (id, _) = id_and_signal(sandbox_id, "sandboxId", &JsValue::UNDEFINED)?;
        let opts: UpdateOptions = options::parse(options, "options")?;
        let ports = match opts.exposed_ports.get() {
            None => None,
            Some(value) => {
                let bad = || ArgError::type_error("exposedPorts", "must be an array of port numbers");
                if !js_sys::Array::is_array(&value) {
                    return Err(bad());
                }
                let ports = js_sys::Array::from(&value).iter().map(|p| p.as_f64().ok_or_else(bad)).collect::<Result<Vec<f64>, _>>()?;
                if ports.iter().any(|p| p.fract() != 0.0 || !(1.0..=65535.0).contains(p)) {
                    return Err(ArgError::range_error("exposedPorts", "must hold integers from 1 to 65535"));
                }
                Some(ports)
            }
        };
        let update = SandboxUpdate {
            name: opts.name.string("name")?.map(|n| args::id("name", &n)).transpose()?,
            exposed_ports: ports,
            allow_unauthenticated_access: opts.allow_unauthenticated_access.boolean("allowUnauthenticatedAccess")?,
        };
        Ok(((id, update), opts.signal.signal()?))
    };
    call(shared, parse, |host, (id, update)| async move {
        let record = Api::new(&host, &host.shared.cfg).update_sandbox(&id, &update).await?;
        Ok(to_js::sandbox(&record))
    })
}

/// `sandbox.listSnapshots({ signal })` and `client.listSnapshots({ sandboxId })`.
pub fn sandbox_snapshots(shared: &Rc<Shared>, sandbox_id: &str, signal: Option<AbortSignal>) -> Promise {
    let id = sandbox_id.to_string();
    call(shared, move || Ok((id, signal)), |host, id| async move {
        let list = Api::new(&host, &host.shared.cfg).sandbox_snapshots(&id).await?;
        Ok(to_js::snapshots(list))
    })
}

/// `sandbox.checkpoint({ checkpointType, wait, timeout, pollInterval, waitUntil, signal })`: a
/// snapshot of this sandbox, waited for until `waitUntil` (default `local_ready`) as
/// `snapshotAndWait` waits; with `wait: false`, the request alone, resolving to `undefined`.
pub fn checkpoint(shared: &Rc<Shared>, sandbox_id: &str, options: &JsValue) -> Promise {
    let checked = (|| {
        let opts: CheckpointOptions = options::parse(options, "options")?;
        let kind = opts.checkpoint_type.string("checkpointType")?;
        let kind = kind.map(|k| args::one_of("checkpointType", &k, &["memory", "filesystem"])).transpose()?;
        let wait = opts.wait.boolean("wait")?.unwrap_or(true);
        let timing = [("timeout", opts.timeout.get()), ("pollInterval", opts.poll_interval.get()), ("waitUntil", opts.wait_until.get())];
        if !wait && timing.iter().any(|(_, v)| v.is_some()) {
            return Err(ArgError::type_error("wait", "must be true (the default) with timeout, pollInterval or waitUntil"));
        }
        Ok((kind, wait, timing, opts.signal))
    })();
    let (kind, wait, timing, signal) = match checked {
        Ok(checked) => checked,
        Err(err) => return on_error(err),
    };
    if wait {
        // `snapshotAndWait`'s own checks read the timing options, which keep their names.
        let forwarded = Object::new();
        let kind = kind.map(JsValue::from);
        for (key, value) in timing.into_iter().chain([("snapshotType", kind), ("signal", signal.get())]) {
            if let Some(value) = value {
                let _ = Reflect::set(&forwarded, &key.into(), &value);
            }
        }
        return crate::wasm::methods::snapshot_and_wait(shared, &sandbox_id.into(), &forwarded);
    }
    let id = sandbox_id.to_string();
    call(shared, move || Ok((id, signal.signal()?)), move |host, id| async move {
        Api::new(&host, &host.shared.cfg).create_snapshot(&id, kind).await?;
        Ok(JsValue::UNDEFINED)
    })
}
