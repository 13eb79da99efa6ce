//! tensorlake-snapshots: the Tensorlake Sandbox snapshot API for JavaScript, from one small
//! WebAssembly module that runs in browsers, workers, Node, Deno and Bun.
//!
//! This crate is the wasm binding. The pure core is the `tensorlake-snapshots-core` crate
//! (`core/`), which `cargo test` runs natively through its `Platform` seam; `src/wasm/` implements
//! that seam with `fetch`, timers and `JSON.parse`, and this file is the thin `#[wasm_bindgen]`
//! facade that JS sees. Each export only forwards to `wasm::methods` or `wasm::sandbox_methods`,
//! which read the arguments and call the core.
#![deny(missing_docs)]

#[cfg(target_arch = "wasm32")]
mod wasm;
#[cfg(target_arch = "wasm32")]
pub use facade::*;

#[cfg(target_arch = "wasm32")]
mod facade {
    use std::rc::Rc;

    use js_sys::Promise;
    use wasm_bindgen::prelude::*;

    use crate::wasm::methods::{self, Watch};
    use crate::wasm::sandbox_methods::{self, SandboxHandle};
    use crate::wasm::js_platform::Shared;

    /// A client for the Tensorlake Sandbox API: snapshots, sandboxes, and waiting for both.
    ///
    /// Options, all optional: `apiUrl` (default `TENSORLAKE_API_URL` in Node, else
    /// `https://api.tensorlake.ai`), `apiKey` (default `TENSORLAKE_API_KEY`), `namespace`
    /// (default `INDEXIFY_NAMESPACE`, else `default`), `organizationId` + `projectId`,
    /// `requestTimeout` (seconds per request, default 300), `maxRetries` (default 3),
    /// `maxResponseBytes` (the largest response body accepted, default 64 MiB), `tokenProvider` (a
    /// function returning a bearer token or a promise of one, called per request), `fetch` (a
    /// fetch implementation to use instead of the global one), `httpAgent` (Node: the
    /// `http.Agent` or `https.Agent` requests go through, a proxy agent for one) and
    /// `dangerouslyAllowBrowser` (allow `apiKey` in a browser).
    #[wasm_bindgen]
    pub struct SandboxClient {
        pub(crate) shared: Rc<Shared>,
    }

    fn wrap_sandbox(handle: SandboxHandle) -> JsValue {
        Sandbox { inner: Rc::new(handle) }.into()
    }

    #[wasm_bindgen]
    impl SandboxClient {
        /// Creates a client. Throws `TypeError`/`RangeError` for a bad option, and a
        /// `SandboxError` (code `BROWSER_API_KEY`) for an `apiKey` in a browser without
        /// `dangerouslyAllowBrowser`.
        #[wasm_bindgen(constructor)]
        pub fn new(
            #[wasm_bindgen(unchecked_optional_param_type = "SandboxClientOptions")] options: &JsValue,
        ) -> Result<SandboxClient, JsValue> {
            methods::new_client(options, false).map(|shared| SandboxClient { shared })
        }

        /// A client for a local server: `apiUrl` defaults to `http://127.0.0.1:8900`, the
        /// namespace to `default`, and the environment is not consulted.
        #[wasm_bindgen(js_name = forLocalhost)]
        pub fn for_localhost(
            #[wasm_bindgen(unchecked_optional_param_type = "SandboxClientOptions")] options: &JsValue,
        ) -> Result<SandboxClient, JsValue> {
            methods::new_client(options, true).map(|shared| SandboxClient { shared })
        }

        /// Starts a snapshot of a running sandbox and returns at once with its id and status
        /// (`in_progress`). The request is never sent twice: after an ambiguous failure the
        /// client looks for the snapshot it may have created instead.
        #[wasm_bindgen(unchecked_return_type = "Promise<Traced<CreateSnapshotResult>>")]
        pub fn snapshot(
            &self,
            #[wasm_bindgen(unchecked_param_type = "string")] sandbox_id: &JsValue,
            #[wasm_bindgen(unchecked_optional_param_type = "SnapshotOptions")] options: &JsValue,
        ) -> Promise {
            methods::snapshot(&self.shared, sandbox_id, options)
        }

        /// Fetches one snapshot. Rejects with `SnapshotNotFoundError` if there is none.
        #[wasm_bindgen(js_name = getSnapshot, unchecked_return_type = "Promise<Traced<SnapshotInfo>>")]
        pub fn get_snapshot(
            &self,
            #[wasm_bindgen(unchecked_param_type = "string")] snapshot_id: &JsValue,
            #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
        ) -> Promise {
            methods::get_snapshot(&self.shared, snapshot_id, options)
        }

        /// Lists the namespace's snapshots, or one sandbox's with `{ sandboxId }`.
        #[wasm_bindgen(js_name = listSnapshots, unchecked_return_type = "Promise<Traced<SnapshotInfo[]>>")]
        pub fn list_snapshots(
            &self,
            #[wasm_bindgen(unchecked_optional_param_type = "ListSnapshotsOptions")] options: &JsValue,
        ) -> Promise {
            methods::list_snapshots(&self.shared, options)
        }

        /// Deletes a snapshot.
        #[wasm_bindgen(js_name = deleteSnapshot, unchecked_return_type = "Promise<void>")]
        pub fn delete_snapshot(
            &self,
            #[wasm_bindgen(unchecked_param_type = "string")] snapshot_id: &JsValue,
            #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
        ) -> Promise {
            methods::delete_snapshot(&self.shared, snapshot_id, options)
        }

        /// Snapshots a sandbox and waits until the snapshot reaches `waitUntil` (default
        /// `local_ready`). Rejects with `SnapshotFailedError` or `WaitTimeoutError`; with
        /// `signal.reason` when aborted.
        #[wasm_bindgen(js_name = snapshotAndWait, unchecked_return_type = "Promise<Traced<SnapshotInfo>>")]
        pub fn snapshot_and_wait(
            &self,
            #[wasm_bindgen(unchecked_param_type = "string")] sandbox_id: &JsValue,
            #[wasm_bindgen(unchecked_optional_param_type = "SnapshotAndWaitOptions")] options: &JsValue,
        ) -> Promise {
            methods::snapshot_and_wait(&self.shared, sandbox_id, options)
        }

        /// Waits for an existing snapshot to reach `waitUntil`.
        #[wasm_bindgen(js_name = waitForSnapshot, unchecked_return_type = "Promise<Traced<SnapshotInfo>>")]
        pub fn wait_for_snapshot(
            &self,
            #[wasm_bindgen(unchecked_param_type = "string")] snapshot_id: &JsValue,
            #[wasm_bindgen(unchecked_optional_param_type = "WaitOptions")] options: &JsValue,
        ) -> Promise {
            methods::wait_for_snapshot(&self.shared, snapshot_id, options)
        }

        /// Yields the snapshot each time its status changes, and ends when it reaches
        /// `waitUntil`. Use with `for await`.
        #[wasm_bindgen(js_name = watchSnapshot, unchecked_return_type = "AsyncIterableIterator<SnapshotInfo>")]
        pub fn watch_snapshot(
            &self,
            #[wasm_bindgen(unchecked_param_type = "string")] snapshot_id: &JsValue,
            #[wasm_bindgen(unchecked_optional_param_type = "WaitOptions")] options: &JsValue,
        ) -> Result<JsValue, JsValue> {
            let state = methods::watch_snapshot(&self.shared, snapshot_id, options).map_err(|e| crate::wasm::errors::arg_error(&e))?;
            Ok(SnapshotWatch::install(SnapshotWatch { state }))
        }

        /// Creates a sandbox (or restores one, with `snapshotId`) and returns what the server
        /// reports, without waiting for it to run.
        #[wasm_bindgen(js_name = createSandbox, unchecked_return_type = "Promise<Traced<SandboxInfo>>")]
        pub fn create_sandbox(
            &self,
            #[wasm_bindgen(unchecked_optional_param_type = "CreateSandboxOptions")] options: &JsValue,
        ) -> Promise {
            sandbox_methods::create_sandbox(&self.shared, options)
        }

        /// Creates a sandbox (or restores one, with `snapshotId`), waits until it runs
        /// (`startupTimeout`, default 300 s) and returns a handle to it.
        #[wasm_bindgen(js_name = createAndConnect, unchecked_return_type = "Promise<Traced<Sandbox>>")]
        pub fn create_and_connect(
            &self,
            #[wasm_bindgen(unchecked_optional_param_type = "CreateAndConnectOptions")] options: &JsValue,
        ) -> Promise {
            sandbox_methods::create_and_connect(&self.shared, options, wrap_sandbox)
        }

        /// Returns a handle to an existing sandbox.
        #[wasm_bindgen(unchecked_return_type = "Promise<Traced<Sandbox>>")]
        pub fn connect(
            &self,
            #[wasm_bindgen(unchecked_param_type = "string")] sandbox_id: &JsValue,
            #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
        ) -> Promise {
            sandbox_methods::connect(&self.shared, sandbox_id, options, wrap_sandbox)
        }

        /// Fetches one sandbox. Rejects with `SandboxNotFoundError` if there is none.
        #[wasm_bindgen(js_name = getSandbox, unchecked_return_type = "Promise<Traced<SandboxInfo>>")]
        pub fn get_sandbox(
            &self,
            #[wasm_bindgen(unchecked_param_type = "string")] sandbox_id: &JsValue,
            #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
        ) -> Promise {
            sandbox_methods::get_sandbox(&self.shared, sandbox_id, options)
        }

        /// Lists the namespace's sandboxes.
        #[wasm_bindgen(js_name = listSandboxes, unchecked_return_type = "Promise<Traced<SandboxInfo[]>>")]
        pub fn list_sandboxes(
            &self,
            #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
        ) -> Promise {
            sandbox_methods::list_sandboxes(&self.shared, options)
        }

        /// Terminates a sandbox.
        #[wasm_bindgen(js_name = deleteSandbox, unchecked_return_type = "Promise<void>")]
        pub fn delete_sandbox(
            &self,
            #[wasm_bindgen(unchecked_param_type = "string")] sandbox_id: &JsValue,
            #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
        ) -> Promise {
            sandbox_methods::delete_sandbox(&self.shared, sandbox_id, options)
        }

        /// The configuration, for logs: API URL, namespace and the kind of credentials (never
        /// their value).
        #[wasm_bindgen(js_name = toJSON, unchecked_return_type = "{ apiUrl: string; namespace: string; credentials: string }")]
        pub fn to_json(&self) -> JsValue {
            methods::describe_client(&self.shared)
        }

        /// `SandboxClient(<apiUrl>, namespace <namespace>)`; never shows credentials.
        #[wasm_bindgen(js_name = toString)]
        pub fn to_string_js(&self) -> String {
            format!("SandboxClient({}, namespace {})", self.shared.cfg.api_url, self.shared.cfg.namespace)
        }
    }

    /// Installs the transport clients use when their options name no `fetch` (`undefined` keeps
    /// the global `fetch`), and the factory of the transport through a caller's `httpAgent`.
    /// Called once by the Node entry point; not part of the public API.
    #[wasm_bindgen(js_name = __setDefaultFetch, skip_typescript)]
    pub fn set_default_fetch(fetch: &JsValue, with_agent: &JsValue) {
        let function = fetch.clone().dyn_into::<js_sys::Function>().ok();
        crate::wasm::js_platform::DEFAULT_FETCH.with(|slot| *slot.borrow_mut() = function);
        let factory = with_agent.clone().dyn_into::<js_sys::Function>().ok();
        crate::wasm::js_platform::AGENT_FETCH.with(|slot| *slot.borrow_mut() = factory);
    }

    /// A handle to a running sandbox: run commands, move files, snapshot it, terminate it.
    #[wasm_bindgen]
    pub struct Sandbox {
        pub(crate) inner: Rc<SandboxHandle>,
    }

    #[wasm_bindgen]
    impl Sandbox {
        /// The sandbox id.
        #[wasm_bindgen(getter, js_name = sandboxId)]
        pub fn sandbox_id(&self) -> String {
            self.inner.target.sandbox_id.clone()
        }

        /// Shell commands: `sandbox.commands.run("ls -l /data")` runs `sh -c "ls -l /data"`.
        #[wasm_bindgen(getter)]
        pub fn commands(&self) -> Commands {
            Commands { inner: self.inner.clone() }
        }

        /// Runs a program (not through a shell) and resolves when it exits, with
        /// `{ exitCode, stdout, stderr }`. A non-zero exit code is a result, not an error.
        #[wasm_bindgen(unchecked_return_type = "Promise<Traced<CommandResult>>")]
        pub fn run(
            &self,
            #[wasm_bindgen(unchecked_param_type = "string")] command: &JsValue,
            #[wasm_bindgen(unchecked_optional_param_type = "RunOptions")] options: &JsValue,
        ) -> Promise {
            sandbox_methods::run(&self.inner, command, options, false)
        }

        /// Reads a file's bytes.
        #[wasm_bindgen(js_name = readFile, unchecked_return_type = "Promise<Traced<Uint8Array>>")]
        pub fn read_file(
            &self,
            #[wasm_bindgen(unchecked_param_type = "string")] path: &JsValue,
            #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
        ) -> Promise {
            sandbox_methods::read_file(&self.inner, path, options)
        }

        /// Writes a file (a string is written as UTF-8); parent directories are created.
        #[wasm_bindgen(js_name = writeFile, unchecked_return_type = "Promise<void>")]
        pub fn write_file(
            &self,
            #[wasm_bindgen(unchecked_param_type = "string")] path: &JsValue,
            #[wasm_bindgen(unchecked_param_type = "string | Uint8Array | ArrayBuffer")] data: &JsValue,
            #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
        ) -> Promise {
            sandbox_methods::write_file(&self.inner, path, data, options)
        }

        /// Deletes a file.
        #[wasm_bindgen(js_name = deleteFile, unchecked_return_type = "Promise<void>")]
        pub fn delete_file(
            &self,
            #[wasm_bindgen(unchecked_param_type = "string")] path: &JsValue,
            #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
        ) -> Promise {
            sandbox_methods::delete_file(&self.inner, path, options)
        }

        /// Lists a directory.
        #[wasm_bindgen(js_name = listDirectory, unchecked_return_type = "Promise<Traced<DirectoryEntry[]>>")]
        pub fn list_directory(
            &self,
            #[wasm_bindgen(unchecked_param_type = "string")] path: &JsValue,
            #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue,
        ) -> Promise {
            sandbox_methods::list_directory(&self.inner, path, options)
        }

        /// This sandbox's current record.
        #[wasm_bindgen(unchecked_return_type = "Promise<Traced<SandboxInfo>>")]
        pub fn info(&self, #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue) -> Promise {
            sandbox_methods::get_sandbox(&self.inner.shared, &self.sandbox_id().into(), options)
        }

        /// Starts a snapshot of this sandbox (see `SandboxClient.snapshot`).
        #[wasm_bindgen(unchecked_return_type = "Promise<Traced<CreateSnapshotResult>>")]
        pub fn snapshot(&self, #[wasm_bindgen(unchecked_optional_param_type = "SnapshotOptions")] options: &JsValue) -> Promise {
            methods::snapshot(&self.inner.shared, &self.sandbox_id().into(), options)
        }

        /// Snapshots this sandbox and waits (see `SandboxClient.snapshotAndWait`).
        #[wasm_bindgen(js_name = snapshotAndWait, unchecked_return_type = "Promise<Traced<SnapshotInfo>>")]
        pub fn snapshot_and_wait(
            &self,
            #[wasm_bindgen(unchecked_optional_param_type = "SnapshotAndWaitOptions")] options: &JsValue,
        ) -> Promise {
            methods::snapshot_and_wait(&self.inner.shared, &self.sandbox_id().into(), options)
        }

        /// Terminates this sandbox.
        #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
        pub fn terminate(&self, #[wasm_bindgen(unchecked_optional_param_type = "CallOptions")] options: &JsValue) -> Promise {
            sandbox_methods::delete_sandbox(&self.inner.shared, &self.sandbox_id().into(), options)
        }
    }

    /// `sandbox.commands`: shell commands in a sandbox.
    #[wasm_bindgen]
    pub struct Commands {
        inner: Rc<SandboxHandle>,
    }

    #[wasm_bindgen]
    impl Commands {
        /// Runs `sh -c shellCommand` and resolves with `{ exitCode, stdout, stderr }`.
        #[wasm_bindgen(unchecked_return_type = "Promise<Traced<CommandResult>>")]
        pub fn run(
            &self,
            #[wasm_bindgen(unchecked_param_type = "string")] shell_command: &JsValue,
            #[wasm_bindgen(unchecked_optional_param_type = "ShellRunOptions")] options: &JsValue,
        ) -> Promise {
            sandbox_methods::run(&self.inner, shell_command, options, true)
        }
    }

    /// The async iterator returned by `watchSnapshot`.
    #[wasm_bindgen]
    pub struct SnapshotWatch {
        state: Rc<Watch>,
    }

    impl SnapshotWatch {
        /// Wraps the state, making the class async-iterable on first use: its prototype's
        /// `[Symbol.asyncIterator]` becomes `Object.prototype.valueOf`, which returns `this`.
        fn install(watch: SnapshotWatch) -> JsValue {
            let value: JsValue = watch.into();
            let proto = js_sys::Object::get_prototype_of(&value);
            let key: JsValue = js_sys::Symbol::async_iterator().into();
            if !js_sys::Reflect::has(&proto, &key).unwrap_or(true) {
                if let Ok(value_of) = js_sys::Reflect::get(&js_sys::Object::get_prototype_of(&js_sys::Object::new()), &"valueOf".into()) {
                    let _ = js_sys::Reflect::set(&proto, &key, &value_of);
                }
            }
            value
        }
    }

    #[wasm_bindgen]
    impl SnapshotWatch {
        /// The snapshot at its next status (`{ value, done: false }`), or `{ done: true }` after
        /// the target status was yielded.
        #[wasm_bindgen(unchecked_return_type = "Promise<IteratorResult<SnapshotInfo, undefined>>")]
        pub fn next(&self) -> Promise {
            methods::watch_next(&self.state)
        }

        /// Stops watching (called by `break` in a `for await` loop).
        #[wasm_bindgen(js_name = "return", unchecked_return_type = "Promise<IteratorResult<SnapshotInfo, undefined>>")]
        pub fn stop(&self) -> Promise {
            methods::watch_return(&self.state)
        }
    }
}
// Talc instead of the default dlmalloc: about 3 KB smaller gzipped and faster (wasm is
// single-threaded here, which is what the dynamic wasm allocator assumes).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
