//! The bodies of the exported methods that create or use a sandbox handle: `createSandbox`,
//! `createAndConnect`, `connect`, the sandbox lookups, and the handle's `run` and file methods.
//! Same shape as `methods`: arguments first (rejecting before any request), then the core.

use std::rc::Rc;

use js_sys::Promise;
use web_sys::AbortSignal;
use wasm_bindgen::JsValue;

use tensorlake_snapshots_core::api::{Api, SandboxTarget};
use tensorlake_snapshots_core::args::{self, ArgError};
use tensorlake_snapshots_core::error::Error;
use tensorlake_snapshots_core::routes::{self, RunSpec, SandboxSpec};
use crate::wasm::js_json::JsJson;
use crate::wasm::js_platform::{JsHost, Shared};
use crate::wasm::methods::{call, id_and_signal};
use crate::wasm::options::{self, CreateAndConnectOptions, CreateSandboxOptions, RunOptions, SignalOnly};
use crate::wasm::to_js;

/// A sandbox handle's state: the client it came from, and where its own API is.
pub struct SandboxHandle {
    /// The client.
    pub shared: Rc<Shared>,
    /// The sandbox's id and API base.
    pub target: SandboxTarget,
}

fn sandbox_spec(opts: &CreateSandboxOptions) -> Result<SandboxSpec, ArgError> {
    Ok(SandboxSpec {
        image: opts.image.string("image")?,
        cpus: opts.cpus.number("cpus")?.map(|v| args::positive("cpus", v)).transpose()?,
        memory_mb: opts.memory_mb.number("memoryMb")?.map(|v| args::positive_integer("memoryMb", v)).transpose()?,
        disk_mb: opts.disk_mb.number("diskMb")?.map(|v| args::positive_integer("diskMb", v)).transpose()?,
        timeout_secs: opts.timeout_secs.number("timeoutSecs")?.map(|v| args::positive_integer("timeoutSecs", v)).transpose()?,
        entrypoint: opts.entrypoint.string_array("entrypoint")?,
        snapshot_id: opts.snapshot_id.string("snapshotId")?.map(|s| args::id("snapshotId", &s)).transpose()?,
        name: opts.name.string("name")?,
        network: tensorlake_snapshots_core::processes::network_body(
            opts.allow_internet_access.boolean("allowInternetAccess")?,
            &opts.allow_out.string_array("allowOut")?.unwrap_or_default(),
            &opts.deny_out.string_array("denyOut")?.unwrap_or_default(),
        ),
    })
}

/// `client.createSandbox(options)`: the server's answer, without waiting for `running`.
pub fn create_sandbox(shared: &Rc<Shared>, options: &JsValue) -> Promise {
    let parse = || {
        let opts: CreateSandboxOptions = options::parse(options, "options")?;
        Ok((sandbox_spec(&opts)?, opts.signal.signal()?))
    };
    call(shared, parse, |host, spec| async move {
        let record = Api::new(&host, &host.shared.cfg).create_sandbox(&spec).await?;
        Ok(to_js::sandbox(&record))
    })
}

/// Default `startupTimeout` of `createAndConnect`, seconds (the SDKs' 300 s).
const DEFAULT_STARTUP_TIMEOUT_S: f64 = 300.0;

/// `client.createAndConnect(options)`: creates, waits for `running`, returns the handle.
pub fn create_and_connect(shared: &Rc<Shared>, options: &JsValue, wrap: fn(SandboxHandle) -> JsValue) -> Promise {
    let parse = || {
        let (startup, opts) = options::parse::<CreateAndConnectOptions>(options, "options")?.split();
        let startup = startup.number("startupTimeout")?.unwrap_or(DEFAULT_STARTUP_TIMEOUT_S);
        let startup = args::seconds("startupTimeout", startup)?;
        Ok(((sandbox_spec(&opts)?, startup), opts.signal.signal()?))
    };
    call(shared, parse, move |host, (spec, startup_s)| async move {
        let mut created = None;
        let started = Api::new(&host, &host.shared.cfg).start_sandbox(&spec, startup_s * 1000.0, &mut created).await;
        if let (Err(Error::Aborted), Some(id)) = (&started, created) {
            // The call rejects with the signal's reason, so the caller has no handle to the
            // sandbox: it is deleted, as after a startup timeout, by a request the fired signal
            // does not cancel.
            // A task of its own (its promise is dropped; it never rejects, so nothing goes unhandled).
            let _ = call(&host.shared, || Ok((id, None)), |detached, id: String| async move {
                let _ = Api::new(&detached, &detached.shared.cfg).delete_sandbox(&id).await;
                Ok(JsValue::UNDEFINED)
            });
        }
        Ok(wrap(handle_for(&host, &started?)?))
    })
}

fn handle_for(host: &JsHost, record: &tensorlake_snapshots_core::models::SandboxRecord<JsJson>) -> Result<SandboxHandle, Error<JsHost>> {
    let sandbox_id = record.sandbox_id.as_string().unwrap_or_default();
    let url = record.sandbox_url.as_ref().and_then(|u| u.as_string());
    let base = routes::sandbox_api_base(&host.shared.cfg, url.as_deref()).map_err(|why| Error::Sandbox {
        message: format!("Cannot connect to sandbox {sandbox_id}: {why}"),
        code: "NO_SANDBOX_URL",
        sandbox_id: Some(sandbox_id.clone()),
        trace_id: None,
    })?;
    Ok(SandboxHandle { shared: host.shared.clone(), target: SandboxTarget { sandbox_id, base } })
}

/// `client.connect(sandboxId, { signal })`: looks the sandbox up and returns its handle.
pub fn connect(shared: &Rc<Shared>, sandbox_id: &JsValue, options: &JsValue, wrap: fn(SandboxHandle) -> JsValue) -> Promise {
    call(shared, || id_and_signal(sandbox_id, "sandboxId", options), move |host, id| async move {
        let record = Api::new(&host, &host.shared.cfg).get_sandbox(&id).await?;
        Ok(wrap(handle_for(&host, &record)?))
    })
}

/// `client.getSandbox(sandboxId, { signal })`.
pub fn get_sandbox(shared: &Rc<Shared>, sandbox_id: &JsValue, options: &JsValue) -> Promise {
    call(shared, || id_and_signal(sandbox_id, "sandboxId", options), |host, id| async move {
        let record = Api::new(&host, &host.shared.cfg).get_sandbox(&id).await?;
        Ok(to_js::sandbox(&record))
    })
}

/// `client.listSandboxes({ signal })`.
pub fn list_sandboxes(shared: &Rc<Shared>, options: &JsValue) -> Promise {
    call(shared, || Ok(((), options::parse::<SignalOnly>(options, "options")?.signal.signal()?)), |host, ()| async move {
        let list = Api::new(&host, &host.shared.cfg).list_sandboxes().await?;
        Ok(to_js::sandboxes(&list))
    })
}

/// `client.deleteSandbox(sandboxId, { signal })`.
pub fn delete_sandbox(shared: &Rc<Shared>, sandbox_id: &JsValue, options: &JsValue) -> Promise {
    call(shared, || id_and_signal(sandbox_id, "sandboxId", options), |host, id| async move {
        Api::new(&host, &host.shared.cfg).delete_sandbox(&id).await?;
        Ok(JsValue::UNDEFINED)
    })
}

/// `sandbox.run(command, { args, env, workingDir, timeout, signal })`, and `commands.run`
/// (which passes `shell = true` to run `sh -c command`).
pub fn run(handle: &Rc<SandboxHandle>, command: &JsValue, options: &JsValue, shell: bool) -> Promise {
    let parse = || {
        let command = options::required_string(command, "command")?;
        if command.trim().is_empty() {
            return Err(ArgError::type_error("command", "must be a non-empty string"));
        }
        let opts: RunOptions = options::parse(options, "options")?;
        let args = opts.args.string_array("args")?.unwrap_or_default();
        let (command, args) = if shell {
            if !args.is_empty() {
                let why = "commands.run takes one shell command string; put arguments in it, or use sandbox.run";
                return Err(ArgError::type_error("args", why));
            }
            ("sh".to_string(), vec!["-c".to_string(), command])
        } else {
            (command, args)
        };
        let spec = RunSpec {
            command,
            args,
            env: opts.env.string_map("env")?,
            working_dir: opts.working_dir.string("workingDir")?,
            timeout_s: opts.timeout.number("timeout")?.map(|t| args::wire_quantity("timeout", t)).transpose()?,
            user: crate::wasm::process_options::user_arg(&opts.user)?,
        };
        Ok((spec, opts.signal.signal()?))
    };
    let target = handle.target.clone();
    call(&handle.shared, parse, |host, spec| async move {
        let out = Api::new(&host, &host.shared.cfg).run(&target, &spec).await?;
        Ok(to_js::command(&out))
    })
}

fn path_arg(path: &JsValue) -> Result<String, ArgError> {
    let path = options::required_string(path, "path")?;
    if path.is_empty() {
        return Err(ArgError::type_error("path", "must be a non-empty string"));
    }
    Ok(path)
}

fn path_and_signal(path: &JsValue, options: &JsValue) -> Result<(String, Option<AbortSignal>), ArgError> {
    Ok((path_arg(path)?, options::parse::<SignalOnly>(options, "options")?.signal.signal()?))
}

/// `sandbox.readFile(path, { signal })` → `Uint8Array`.
pub fn read_file(handle: &Rc<SandboxHandle>, path: &JsValue, options: &JsValue) -> Promise {
    let target = handle.target.clone();
    call(&handle.shared, || path_and_signal(path, options), |host, path| async move {
        let body = Api::new(&host, &host.shared.cfg).read_file(&target, &path).await?;
        Ok(body.into_js())
    })
}

/// `sandbox.writeFile(path, data, { signal })`.
pub fn write_file(handle: &Rc<SandboxHandle>, path: &JsValue, data: &JsValue, options: &JsValue) -> Promise {
    let parse = || {
        let (path, signal) = path_and_signal(path, options)?;
        Ok(((path, options::bytes(data, "data")?), signal))
    };
    let target = handle.target.clone();
    call(&handle.shared, parse, |host, (path, bytes)| async move {
        Api::new(&host, &host.shared.cfg).write_file(&target, &path, bytes).await?;
        Ok(JsValue::UNDEFINED)
    })
}

/// `sandbox.deleteFile(path, { signal })`.
pub fn delete_file(handle: &Rc<SandboxHandle>, path: &JsValue, options: &JsValue) -> Promise {
    let target = handle.target.clone();
    call(&handle.shared, || path_and_signal(path, options), |host, path| async move {
        Api::new(&host, &host.shared.cfg).delete_file(&target, &path).await?;
        Ok(JsValue::UNDEFINED)
    })
}

/// `sandbox.listDirectory(path, { signal })`.
pub fn list_directory(handle: &Rc<SandboxHandle>, path: &JsValue, options: &JsValue) -> Promise {
    let target = handle.target.clone();
    call(&handle.shared, || path_and_signal(path, options), |host, path| async move {
        let entries = Api::new(&host, &host.shared.cfg).list_directory(&target, &path).await?;
        Ok(to_js::directory(&entries))
    })
}
