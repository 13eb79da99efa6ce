//! The compiled module, called through its JS API, against a real local server: the same tests
//! run in Node and (with `WASM_BINDGEN_USE_BROWSER=1`) in headless Chromium. The server URL is
//! fixed at compile time by `TENSORLAKE_TEST_API_URL`, since wasm tests cannot read the
//! environment at run time.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Function, Object, Promise, Reflect};
use tensorlake_snapshots::SandboxClient;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

const API_URL: &str = match option_env!("TENSORLAKE_TEST_API_URL") {
    Some(url) => url,
    None => "http://127.0.0.1:8900",
};

fn object(pairs: &[(&str, JsValue)]) -> JsValue {
    let obj = Object::new();
    for (key, value) in pairs {
        Reflect::set(&obj, &(*key).into(), value).unwrap();
    }
    obj.into()
}

fn get(target: &JsValue, key: &str) -> JsValue {
    Reflect::get(target, &key.into()).unwrap()
}

/// Calls `target[method](...args)` as JS code would, and awaits the promise it returns.
async fn call(target: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let function: Function = get(target, method).dyn_into().unwrap();
    let promise: Promise = function.apply(target, &args.iter().collect::<Array>())?.dyn_into().unwrap();
    JsFuture::from(promise).await
}

fn client() -> JsValue {
    SandboxClient::for_localhost(&object(&[("apiUrl", API_URL.into())])).unwrap().into()
}

fn in_browser() -> bool {
    !get(&js_sys::global().into(), "document").is_undefined()
}

#[wasm_bindgen_test]
fn runs_in_the_environment_it_was_asked_for() {
    let expected = option_env!("WASM_BINDGEN_USE_BROWSER").is_some();
    assert_eq!(in_browser(), expected, "WASM_BINDGEN_USE_BROWSER decides where these tests run");
}

#[wasm_bindgen_test]
async fn documented_workflow_restores_the_file() {
    let client = client();
    let sandbox = call(&client, "createAndConnect", &[]).await.unwrap();
    let commands = get(&sandbox, "commands");
    let wrote = call(&commands, "run", &["mkdir -p /data && echo 'a,b' > /data/output.csv".into()]).await.unwrap();
    assert_eq!(get(&wrote, "exitCode").as_f64(), Some(0.0));

    let sandbox_id = get(&sandbox, "sandboxId");
    let options = object(&[("pollInterval", 0.02.into())]);
    let snapshot = call(&client, "snapshotAndWait", &[sandbox_id, options]).await.unwrap();
    let status = get(&snapshot, "status").as_string().unwrap();
    assert!(status == "local_ready" || status == "completed", "{status}");
    assert!(get(&snapshot, "createdAt").is_instance_of::<js_sys::Date>());
    let snapshot_id = get(&snapshot, "snapshotId");

    let restore = object(&[("snapshotId", snapshot_id.clone()), ("cpus", 4.0.into()), ("memoryMb", 2048.0.into())]);
    let restored = call(&client, "createAndConnect", &[restore]).await.unwrap();
    let info = call(&restored, "info", &[]).await.unwrap();
    assert_eq!(get(&get(&info, "resources"), "memoryMb").as_f64(), Some(2048.0));
    let cat = call(&get(&restored, "commands"), "run", &["cat /data/output.csv".into()]).await.unwrap();
    assert_eq!(get(&cat, "stdout").as_string().as_deref(), Some("a,b"));
    let bytes = call(&restored, "readFile", &["/data/output.csv".into()]).await.unwrap();
    assert_eq!(bytes.dyn_into::<js_sys::Uint8Array>().unwrap().to_vec(), b"a,b\n");

    call(&client, "deleteSnapshot", &[snapshot_id.clone()]).await.unwrap();
    let gone = call(&client, "getSnapshot", &[snapshot_id]).await.unwrap_err();
    assert_eq!(get(&gone, "name").as_string().as_deref(), Some("SnapshotNotFoundError"));
    assert_eq!(get(&gone, "statusCode").as_f64(), Some(404.0));
    call(&sandbox, "terminate", &[]).await.unwrap();
    call(&restored, "terminate", &[]).await.unwrap();
}

#[wasm_bindgen_test]
async fn abort_rejects_with_the_signal_reason() {
    let client = client();
    let sandbox = call(&client, "createAndConnect", &[]).await.unwrap();
    let controller = web_sys::AbortController::new().unwrap();
    let reason: JsValue = js_sys::Error::new("cancelled by test").into();
    controller.abort_with_reason(&reason);
    let options = object(&[("signal", controller.signal().into())]);
    let err = call(&client, "snapshotAndWait", &[get(&sandbox, "sandboxId"), options]).await.unwrap_err();
    assert!(err == reason, "rejects with the exact reason");
    call(&sandbox, "terminate", &[]).await.unwrap();
}

#[wasm_bindgen_test]
async fn bad_arguments_reject_with_type_and_range_errors() {
    let client = client();
    let err = call(&client, "getSnapshot", &["".into()]).await.unwrap_err();
    assert!(err.is_instance_of::<js_sys::TypeError>());
    let options = object(&[("timeout", (-1.0).into())]);
    let err = call(&client, "waitForSnapshot", &["snap".into(), options]).await.unwrap_err();
    assert!(err.is_instance_of::<js_sys::RangeError>());
}

#[wasm_bindgen_test]
fn an_api_key_in_a_browser_needs_explicit_consent() {
    let with_key = object(&[("apiUrl", API_URL.into()), ("apiKey", "tl_apiKey_x".into())]);
    let result = SandboxClient::new(&with_key);
    if in_browser() {
        let err = result.err().expect("a raw apiKey in a browser throws");
        assert_eq!(get(&err, "name").as_string().as_deref(), Some("SandboxError"));
        assert_eq!(get(&err, "code").as_string().as_deref(), Some("BROWSER_API_KEY"));
        let message = get(&err, "message").as_string().unwrap();
        assert!(message.contains("tokenProvider") && message.contains("dangerouslyAllowBrowser"), "{message}");
        assert!(!message.contains("tl_apiKey_x"));
        let consented = object(&[("apiUrl", API_URL.into()), ("apiKey", "tl_apiKey_x".into()), ("dangerouslyAllowBrowser", true.into())]);
        assert!(SandboxClient::new(&consented).is_ok());
    } else {
        assert!(result.is_ok(), "outside browsers an apiKey is normal");
    }
}
