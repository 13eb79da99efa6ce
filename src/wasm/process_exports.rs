//! The exported methods for processes, output streams and the sandbox lifecycle, on `Sandbox` and
//! `SandboxClient` (further `#[wasm_bindgen] impl` blocks of the facade's classes), and the
//! `ProcessOutputStream` iterator class. Each only forwards to `process_methods` or `follow`.

use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use crate::wasm::follow::{self, Follow};
use crate::wasm::process_methods::{self as pm, Shape};
use crate::wasm::process_options::process_arg;
use crate::{Sandbox, SandboxClient};
use tensorlake_snapshots_core::platform::{Method, RequestBody};

#[wasm_bindgen]
impl Sandbox {
    /// Starts a command in the background and resolves at once with its `ProcessInfo`.
    #[wasm_bindgen(js_name = startProcess, unchecked_return_type = "Promise<Traced<ProcessInfo>>")]
    pub fn start_process(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] command: &JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "StartProcessOptions")] options: &JsValue,
    ) -> Promise {
        pm::start_process(&self.inner, command, options)
    }

    /// The processes the sandbox knows, running and exited.
    #[wasm_bindgen(js_name = listProcesses, unchecked_return_type = "Promise<Traced<ProcessInfo[]>>")]
    pub fn list_processes(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
    ) -> Promise {
        pm::list_processes(&self.inner, options)
    }

    /// One process, by PID or by the name it was started with.
    #[wasm_bindgen(js_name = getProcess, unchecked_return_type = "Promise<Traced<ProcessInfo>>")]
    pub fn get_process(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number | string")] pid_or_name: &JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
    ) -> Promise {
        pm::on_process(
            &self.inner,
            pid_or_name,
            options,
            "",
            Method::Get,
            Shape::Plain,
            Ok(RequestBody::Empty),
        )
    }

    /// Kills a process and everything it started.
    #[wasm_bindgen(js_name = killProcess, unchecked_return_type = "Promise<void>")]
    pub fn kill_process(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number | string")] pid_or_name: &JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
    ) -> Promise {
        pm::on_process(
            &self.inner,
            pid_or_name,
            options,
            "",
            Method::Delete,
            Shape::Nothing,
            Ok(RequestBody::Empty),
        )
    }

    /// Sends a signal (15 for SIGTERM, 9 for SIGKILL) to a process.
    #[wasm_bindgen(js_name = sendSignal, unchecked_return_type = "Promise<Traced<SendSignalResponse>>")]
    pub fn send_signal(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number | string")] pid_or_name: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] signal: &JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
    ) -> Promise {
        pm::on_process(
            &self.inner,
            pid_or_name,
            options,
            "/signal",
            Method::Post,
            Shape::Plain,
            pm::signal_body(signal),
        )
    }

    /// Writes to the stdin of a process started with `stdinMode: 'pipe'`.
    #[wasm_bindgen(js_name = writeStdin, unchecked_return_type = "Promise<void>")]
    pub fn write_stdin(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number | string")] pid_or_name: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array | ArrayBuffer")] data: &JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
    ) -> Promise {
        pm::on_process(
            &self.inner,
            pid_or_name,
            options,
            "/stdin",
            Method::Post,
            Shape::Nothing,
            pm::stdin_body(data),
        )
    }

    /// Closes the stdin of a process (it reads end-of-file).
    #[wasm_bindgen(js_name = closeStdin, unchecked_return_type = "Promise<void>")]
    pub fn close_stdin(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number | string")] pid_or_name: &JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
    ) -> Promise {
        pm::on_process(
            &self.inner,
            pid_or_name,
            options,
            "/stdin/close",
            Method::Post,
            Shape::Nothing,
            Ok(RequestBody::Empty),
        )
    }

    /// The stdout lines kept so far.
    #[wasm_bindgen(js_name = getStdout, unchecked_return_type = "Promise<Traced<OutputResponse>>")]
    pub fn get_stdout(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number | string")] pid_or_name: &JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
    ) -> Promise {
        pm::on_process(
            &self.inner,
            pid_or_name,
            options,
            "/stdout",
            Method::Get,
            Shape::Plain,
            Ok(RequestBody::Empty),
        )
    }

    /// The stderr lines kept so far.
    #[wasm_bindgen(js_name = getStderr, unchecked_return_type = "Promise<Traced<OutputResponse>>")]
    pub fn get_stderr(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number | string")] pid_or_name: &JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
    ) -> Promise {
        pm::on_process(
            &self.inner,
            pid_or_name,
            options,
            "/stderr",
            Method::Get,
            Shape::Plain,
            Ok(RequestBody::Empty),
        )
    }

    /// The stdout and stderr lines kept so far, interleaved.
    #[wasm_bindgen(js_name = getOutput, unchecked_return_type = "Promise<Traced<OutputResponse>>")]
    pub fn get_output(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number | string")] pid_or_name: &JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
    ) -> Promise {
        pm::on_process(
            &self.inner,
            pid_or_name,
            options,
            "/output",
            Method::Get,
            Shape::Plain,
            Ok(RequestBody::Empty),
        )
    }

    /// Stdout lines as the process writes them (the kept ones first), until it exits. Use with
    /// `for await`; `break` or the signal closes the stream.
    #[wasm_bindgen(js_name = followStdout, unchecked_return_type = "AsyncIterableIterator<OutputEvent>")]
    pub fn follow_stdout(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number | string")] pid_or_name: &JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
    ) -> Result<JsValue, JsValue> {
        self.follow(pid_or_name, options, "stdout")
    }

    /// Stderr lines as the process writes them (see `followStdout`).
    #[wasm_bindgen(js_name = followStderr, unchecked_return_type = "AsyncIterableIterator<OutputEvent>")]
    pub fn follow_stderr(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number | string")] pid_or_name: &JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
    ) -> Result<JsValue, JsValue> {
        self.follow(pid_or_name, options, "stderr")
    }

    /// Stdout and stderr lines as the process writes them (see `followStdout`).
    #[wasm_bindgen(js_name = followOutput, unchecked_return_type = "AsyncIterableIterator<OutputEvent>")]
    pub fn follow_output(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number | string")] pid_or_name: &JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
    ) -> Result<JsValue, JsValue> {
        self.follow(pid_or_name, options, "output")
    }

    #[inline(never)]
    fn follow(
        &self,
        pid_or_name: &JsValue,
        options: &JsValue,
        stream: &str,
    ) -> Result<JsValue, JsValue> {
        let read = || {
            Ok((
                process_arg(pid_or_name)?,
                crate::wasm::process_options::read(options, &["signal"])
                    .and_then(|[s]| s.signal())?,
            ))
        };
        let (process, signal) = read().map_err(|e| crate::wasm::errors::arg_error(&e))?;
        let follow = Follow::new(
            self.inner.shared.clone(),
            &self.inner.target,
            &process,
            stream,
            signal,
        );
        Ok(ProcessOutputStream::install(ProcessOutputStream {
            state: Rc::new(follow),
        }))
    }

    /// Suspends this sandbox; by default waits until it is `suspended` (`{ wait, timeout, pollInterval }`).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn suspend(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "SuspendResumeOptions")] options: &JsValue,
    ) -> Promise {
        pm::suspend_or_resume(
            &self.inner.shared,
            &self.sandbox_id().into(),
            options,
            false,
        )
    }

    /// Resumes this sandbox; by default waits until it is `running`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn resume(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "SuspendResumeOptions")] options: &JsValue,
    ) -> Promise {
        pm::suspend_or_resume(&self.inner.shared, &self.sandbox_id().into(), options, true)
    }

    /// This sandbox's current status.
    #[wasm_bindgen(unchecked_return_type = "Promise<SandboxStatus>")]
    pub fn status(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
    ) -> Promise {
        pm::status(&self.inner.shared, &self.sandbox_id().into(), options)
    }

    /// Changes this sandbox's name, exposed ports or proxy access.
    #[wasm_bindgen(unchecked_return_type = "Promise<Traced<SandboxInfo>>")]
    pub fn update(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "UpdateSandboxOptions")] options: &JsValue,
    ) -> Promise {
        pm::update(&self.inner.shared, &self.sandbox_id().into(), options)
    }

    /// Snapshots this sandbox and waits until the snapshot is `local_ready` (by default); with
    /// `wait: false`, resolves to `{ snapshotId, status }` once the snapshot has started.
    #[wasm_bindgen(unchecked_return_type = "Promise<Traced<SnapshotInfo> | Traced<CreateSnapshotResult>>")]
    pub fn checkpoint(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "CheckpointOptions")] options: &JsValue,
    ) -> Promise {
        pm::checkpoint(&self.inner.shared, &self.inner.target.sandbox_id, options)
    }

    /// This sandbox's snapshots.
    #[wasm_bindgen(js_name = listSnapshots, unchecked_return_type = "Promise<Traced<SnapshotInfo[]>>")]
    pub fn list_snapshots(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
    ) -> Promise {
        pm::own_snapshots(&self.inner.shared, &self.inner.target.sandbox_id, options)
    }
}

#[wasm_bindgen]
impl SandboxClient {
    /// Suspends a sandbox; by default waits until it is `suspended`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn suspend(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] sandbox_id: &JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SuspendResumeOptions")] options: &JsValue,
    ) -> Promise {
        pm::suspend_or_resume(&self.shared, sandbox_id, options, false)
    }

    /// Resumes a sandbox; by default waits until it is `running`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn resume(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] sandbox_id: &JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SuspendResumeOptions")] options: &JsValue,
    ) -> Promise {
        pm::suspend_or_resume(&self.shared, sandbox_id, options, true)
    }

    /// Changes a sandbox's name, exposed ports or proxy access.
    #[wasm_bindgen(unchecked_return_type = "Promise<Traced<SandboxInfo>>")]
    pub fn update(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] sandbox_id: &JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "UpdateSandboxOptions")] options: &JsValue,
    ) -> Promise {
        pm::update(&self.shared, sandbox_id, options)
    }
}

/// The async iterator returned by `followStdout`, `followStderr` and `followOutput`.
#[wasm_bindgen]
pub struct ProcessOutputStream {
    state: Rc<Follow>,
}

impl ProcessOutputStream {
    /// Wraps the state, making the class async-iterable on first use (as `SnapshotWatch` does).
    fn install(stream: ProcessOutputStream) -> JsValue {
        let value: JsValue = stream.into();
        let proto = js_sys::Object::get_prototype_of(&value);
        let key: JsValue = js_sys::Symbol::async_iterator().into();
        if !js_sys::Reflect::has(&proto, &key).unwrap_or(true) {
            if let Ok(value_of) = js_sys::Reflect::get(
                &js_sys::Object::get_prototype_of(&js_sys::Object::new()),
                &"valueOf".into(),
            ) {
                let _ = js_sys::Reflect::set(&proto, &key, &value_of);
            }
        }
        value
    }
}

#[wasm_bindgen]
impl ProcessOutputStream {
    /// The next line (`{ value: { line, timestamp, stream }, done: false }`), or `{ done: true }`
    /// once the process has exited and its output is drained.
    #[wasm_bindgen(unchecked_return_type = "Promise<IteratorResult<OutputEvent, undefined>>")]
    pub fn next(&self) -> Promise {
        follow::next(&self.state)
    }

    /// Stops following and closes the connection (called by `break` in a `for await` loop).
    #[wasm_bindgen(
        js_name = "return",
        unchecked_return_type = "Promise<IteratorResult<OutputEvent, undefined>>"
    )]
    pub fn stop(&self) -> Promise {
        follow::stop(&self.state)
    }
}
