//! The bodies of a sandbox's process calls (start, list, get, kill, signal, stdin, output) and of
//! the lifecycle calls beyond create and delete (suspend, resume, status, update, checkpoint, one
//! sandbox's snapshots). Same shape as `methods`: arguments are read and checked first (a bad one
//! rejects before any request), then the core runs the call.
//!
//! Every call here is described by an [`Op`] and run by the one async body of [`run`]: each
//! distinct async body costs its own state machine and promise glue in the wasm (about a
//! kilobyte each), and these calls differ only in the request they send and the shape of
//! the answer.

use std::rc::Rc;

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::JsValue;
use web_sys::AbortSignal;

use tensorlake_snapshots_core::api::Api;
use tensorlake_snapshots_core::args::{self, ArgError};
use tensorlake_snapshots_core::call::Call;
use tensorlake_snapshots_core::models;
use tensorlake_snapshots_core::platform::{Method, RequestBody};
use tensorlake_snapshots_core::processes::{self, ProcessSpec, SandboxUpdate};
use tensorlake_snapshots_core::routes::{self, RunSpec};

use crate::wasm::js_platform::Shared;
use crate::wasm::methods::{call, id_and_signal};
use crate::wasm::options::{self, Raw};
use crate::wasm::plain::plain;
use crate::wasm::process_options::{self as popts, process_arg, user_arg, wait_ms};
use crate::wasm::sandbox_methods::SandboxHandle;
use crate::wasm::to_js;

/// What a call's answer becomes.
#[derive(Clone, Copy)]
pub enum Shape {
    /// The JSON object, camelCased (`ProcessInfo`, `OutputResponse`, `SendSignalResponse`).
    Plain,
    /// The `processes` array of the answer, camelCased.
    Processes,
    /// `undefined`.
    Nothing,
    /// The `status` string of a sandbox.
    Status,
    /// `SandboxInfo`.
    Sandbox,
}

/// One call, fully checked: a request, what its answer becomes, and for suspend and resume the
/// status to wait for (`(sandbox id, status, timeout ms, poll ms)`).
struct Op {
    call: Call,
    shape: Shape,
    wait: Option<(String, &'static str, f64, f64)>,
}

type Parsed = Result<(Op, Option<AbortSignal>), ArgError>;

/// Runs a checked call (or rejects with its argument error).
#[inline(never)]
fn run(shared: &Rc<Shared>, parsed: Parsed) -> Promise {
    call(
        shared,
        move || parsed,
        |host, op: Op| async move {
            let api = Api::new(&host, &host.shared.cfg);
            let json = api.request_json(&op.call).await?;
            if let Some((id, wanted, timeout_ms, poll_ms)) = &op.wait {
                api.wait_for_sandbox(id, wanted, *timeout_ms, *poll_ms)
                    .await?;
            }
            let Some(json) = json else {
                return Ok(JsValue::UNDEFINED);
            };
            Ok(match op.shape {
                Shape::Nothing => JsValue::UNDEFINED,
                Shape::Plain => plain(&json),
                Shape::Processes => match Reflect::get(&json, &"processes".into()) {
                    Ok(list) if js_sys::Array::is_array(&list) => plain(&list),
                    _ => js_sys::Array::new().into(),
                },
                Shape::Status => Reflect::get(&json, &"status".into()).unwrap_or_default(),
                Shape::Sandbox => match models::sandbox(&json) {
                    Ok(record) => to_js::sandbox(&record),
                    Err(_) => plain(&json),
                },
            })
        },
    )
}

fn signal_of(options: &JsValue) -> Result<Option<AbortSignal>, ArgError> {
    popts::read(options, &["signal"]).and_then(|[signal]| signal.signal())
}

/// A call on one process of `handle`: `suffix` after its URL, `signal` from the options.
#[inline(never)]
pub fn on_process(
    handle: &Rc<SandboxHandle>,
    process: &JsValue,
    options: &JsValue,
    suffix: &str,
    method: Method,
    shape: Shape,
    body: Result<RequestBody, ArgError>,
) -> Promise {
    let target = &handle.target;
    let parsed = (|| {
        let url = processes::process(&target.base, &process_arg(process)?, suffix);
        let call = processes::process_call(target, method, url, body?);
        Ok((
            Op {
                call,
                shape,
                wait: None,
            },
            signal_of(options)?,
        ))
    })();
    run(&handle.shared, parsed)
}

/// `sandbox.startProcess(command, { args, env, workingDir, stdinMode, user, name, signal })`.
pub fn start_process(handle: &Rc<SandboxHandle>, command: &JsValue, options: &JsValue) -> Promise {
    let target = &handle.target;
    let parsed = (|| {
        let command = options::required_string(command, "command")?;
        if command.trim().is_empty() {
            return Err(ArgError::type_error(
                "command",
                "must be a non-empty string",
            ));
        }
        let [args, env, working_dir, stdin_mode, user, name, signal] =
            popts::read(options, &popts::START_PROCESS)?;
        let stdin_pipe = match stdin_mode.string("stdinMode")? {
            None => false,
            Some(mode) => args::one_of("stdinMode", &mode, &["closed", "pipe"])? == "pipe",
        };
        let spec = ProcessSpec {
            run: RunSpec {
                command,
                args: args.string_array("args")?.unwrap_or_default(),
                env: env.string_map("env")?,
                working_dir: working_dir.string("workingDir")?,
                timeout_s: None,
                user: user_arg(&user)?,
            },
            stdin_pipe,
            name: name
                .string("name")?
                .map(|n| args::id("name", &n))
                .transpose()?,
        };
        let body = RequestBody::Json(processes::start_body(&spec));
        let call = processes::process_call(
            target,
            Method::Post,
            processes::processes(&target.base),
            body,
        );
        Ok((
            Op {
                call,
                shape: Shape::Plain,
                wait: None,
            },
            signal.signal()?,
        ))
    })();
    run(&handle.shared, parsed)
}

/// `sandbox.listProcesses({ signal })`.
pub fn list_processes(handle: &Rc<SandboxHandle>, options: &JsValue) -> Promise {
    let target = &handle.target;
    let parsed = signal_of(options).map(|signal| {
        let call = processes::process_call(
            target,
            Method::Get,
            processes::processes(&target.base),
            RequestBody::Empty,
        );
        (
            Op {
                call,
                shape: Shape::Processes,
                wait: None,
            },
            signal,
        )
    });
    run(&handle.shared, parsed)
}

/// The body of `sendSignal`: a signal number from 1 to 64.
pub fn signal_body(number: &JsValue) -> Result<RequestBody, ArgError> {
    let n = number.as_f64().ok_or_else(|| {
        ArgError::type_error(
            "signal",
            "must be a signal number (15 for SIGTERM, 9 for SIGKILL)",
        )
    })?;
    if n.fract() != 0.0 || !(1.0..=64.0).contains(&n) {
        return Err(ArgError::range_error(
            "signal",
            "must be an integer from 1 to 64",
        ));
    }
    Ok(RequestBody::Json(processes::signal_body(n)))
}

/// The body of `writeStdin`: bytes, or a string as UTF-8.
pub fn stdin_body(data: &JsValue) -> Result<RequestBody, ArgError> {
    options::bytes(data, "data").map(RequestBody::Bytes)
}

/// `suspend(options)` / `resume(options)`: the request, then (unless `wait: false`) polling until
/// the sandbox is `suspended` / `running`. Resolves to `undefined`, as the official SDK's do.
pub fn suspend_or_resume(
    shared: &Rc<Shared>,
    sandbox_id: &JsValue,
    options: &JsValue,
    resume: bool,
) -> Promise {
    let parsed = (|| {
        let (id, _) = id_and_signal(sandbox_id, "sandboxId", &JsValue::UNDEFINED)?;
        let [wait, timeout, poll_interval, signal] = popts::read(options, &popts::SUSPEND_RESUME)?;
        let (action, wanted) = if resume {
            ("resume", "running")
        } else {
            ("suspend", "suspended")
        };
        let wait =
            wait_ms(&wait, &timeout, &poll_interval)?.map(|(t, p)| (id.clone(), wanted, t, p));
        let call = processes::sandbox_call(
            &id,
            Method::Post,
            processes::sandbox_action(&shared.cfg, &id, action),
            RequestBody::Empty,
        );
        Ok((
            Op {
                call,
                shape: Shape::Nothing,
                wait,
            },
            signal.signal()?,
        ))
    })();
    run(shared, parsed)
}

/// `sandbox.status({ signal })`: the status string.
pub fn status(shared: &Rc<Shared>, sandbox_id: &JsValue, options: &JsValue) -> Promise {
    let parsed = id_and_signal(sandbox_id, "sandboxId", options).map(|(id, signal)| {
        let call = processes::sandbox_call(
            &id,
            Method::Get,
            routes::sandbox(&shared.cfg, &id),
            RequestBody::Empty,
        );
        (
            Op {
                call,
                shape: Shape::Status,
                wait: None,
            },
            signal,
        )
    });
    run(shared, parsed)
}

fn ports(raw: &Raw) -> Result<Option<Vec<f64>>, ArgError> {
    let Some(value) = raw.get() else {
        return Ok(None);
    };
    let bad = || ArgError::type_error("exposedPorts", "must be an array of port numbers");
    if !js_sys::Array::is_array(&value) {
        return Err(bad());
    }
    let mut ports = Vec::new();
    for port in js_sys::Array::from(&value).iter() {
        ports.push(port.as_f64().ok_or_else(bad)?);
    }
    if ports
        .iter()
        .any(|p| p.fract() != 0.0 || !(1.0..=65535.0).contains(p))
    {
        return Err(ArgError::range_error(
            "exposedPorts",
            "must hold integers from 1 to 65535",
        ));
    }
    Ok(Some(ports))
}

/// `update(options)`: `{ name, exposedPorts, allowUnauthenticatedAccess }` → `SandboxInfo`.
pub fn update(shared: &Rc<Shared>, sandbox_id: &JsValue, options: &JsValue) -> Promise {
    let parsed = (|| {
        let (id, _) = id_and_signal(sandbox_id, "sandboxId", &JsValue::UNDEFINED)?;
        let [name, exposed_ports, allow, signal] = popts::read(options, &popts::UPDATE)?;
        let update = SandboxUpdate {
            name: name
                .string("name")?
                .map(|n| args::id("name", &n))
                .transpose()?,
            exposed_ports: ports(&exposed_ports)?,
            allow_unauthenticated_access: allow.boolean("allowUnauthenticatedAccess")?,
        };
        let body = RequestBody::Json(processes::update_body(&update));
        let call =
            processes::sandbox_call(&id, Method::Patch, routes::sandbox(&shared.cfg, &id), body);
        Ok((
            Op {
                call,
                shape: Shape::Sandbox,
                wait: None,
            },
            signal.signal()?,
        ))
    })();
    run(shared, parsed)
}

/// `sandbox.listSnapshots({ signal })`: `client.listSnapshots({ sandboxId, signal })` for this one.
pub fn own_snapshots(shared: &Rc<Shared>, sandbox_id: &str, options: &JsValue) -> Promise {
    let forwarded = Object::new();
    let checked = popts::read(options, &["signal"]).map(|[signal]| {
        let _ = Reflect::set(&forwarded, &"sandboxId".into(), &sandbox_id.into());
        if let Some(signal) = signal.get() {
            let _ = Reflect::set(&forwarded, &"signal".into(), &signal);
        }
    });
    match checked {
        Ok(()) => crate::wasm::methods::list_snapshots(shared, &forwarded),
        Err(err) => run(shared, Err(err)),
    }
}

/// `sandbox.checkpoint({ checkpointType, wait, timeout, pollInterval, waitUntil, signal })`: a
/// snapshot of this sandbox, waited for until `waitUntil` (default `local_ready`) as
/// `snapshotAndWait` waits; with `wait: false`, the request alone, resolving to
/// `{ snapshotId, status }` (the official SDK resolves to `undefined`, losing the id).
pub fn checkpoint(shared: &Rc<Shared>, sandbox_id: &str, options: &JsValue) -> Promise {
    let checked = (|| {
        let [kind, wait, timeout, poll_interval, wait_until, signal] =
            popts::read(options, &popts::CHECKPOINT)?;
        let kind = kind
            .string("checkpointType")?
            .map(|k| args::one_of("checkpointType", &k, &["memory", "filesystem"]))
            .transpose()?;
        let wait = wait.boolean("wait")?.unwrap_or(true);
        let timing = [
            ("timeout", timeout),
            ("pollInterval", poll_interval),
            ("waitUntil", wait_until),
        ];
        if !wait && timing.iter().any(|(_, v)| v.get().is_some()) {
            return Err(ArgError::type_error(
                "wait",
                "must be true (the default) with timeout, pollInterval or waitUntil",
            ));
        }
        Ok((kind, wait, timing, signal))
    })();
    let (kind, wait, timing, signal) = match checked {
        Ok(checked) => checked,
        Err(err) => return run(shared, Err(err)),
    };
    // `snapshotAndWait` (or `snapshot`) reads the forwarded options, whose names are the same.
    let forwarded = Object::new();
    let kind = Raw::new(kind.map_or(JsValue::UNDEFINED, JsValue::from));
    for (key, value) in timing
        .into_iter()
        .chain([("snapshotType", kind), ("signal", signal)])
    {
        if let Some(value) = value.get() {
            let _ = Reflect::set(&forwarded, &key.into(), &value);
        }
    }
    if wait {
        crate::wasm::methods::snapshot_and_wait(shared, &sandbox_id.into(), &forwarded)
    } else {
        crate::wasm::methods::snapshot(shared, &sandbox_id.into(), &forwarded)
    }
}
