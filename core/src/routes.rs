//! Endpoint URLs and request bodies (wire-protocol §2, §3, §5). Ids are percent-encoded: an id is
//! data, and must never be able to change which route a request reaches.

use crate::config::Config;
use crate::json_out::{self, Object};
use crate::url::{encode_component, encode_component_into, BaseUrl};

fn lifecycle(cfg: &Config, tail: &str) -> String {
    lifecycle_id(cfg, tail, "", "")
}

/// `{P}{head}{id, percent-encoded}{tail}`, written straight into one string: these URLs are built
/// on every call, and `format!` costs several times more here.
fn lifecycle_id(cfg: &Config, head: &str, id: &str, tail: &str) -> String {
    let mut url = String::with_capacity(cfg.lifecycle_base.len() + cfg.path_prefix.len() + head.len() + id.len() * 3 + tail.len());
    url.push_str(&cfg.lifecycle_base);
    url.push_str(&cfg.path_prefix);
    url.push_str(head);
    encode_component_into(&mut url, id);
    url.push_str(tail);
    url
}

/// `{P}/snapshots`.
pub fn snapshots(cfg: &Config) -> String {
    lifecycle(cfg, "/snapshots")
}

/// `{P}/snapshots/{id}`.
pub fn snapshot(cfg: &Config, snapshot_id: &str) -> String {
    lifecycle_id(cfg, "/snapshots/", snapshot_id, "")
}

/// `{P}/sandboxes/{id}/snapshot` (create).
pub fn create_snapshot(cfg: &Config, sandbox_id: &str) -> String {
    lifecycle_id(cfg, "/sandboxes/", sandbox_id, "/snapshot")
}

/// `{P}/sandboxes`.
pub fn sandboxes(cfg: &Config) -> String {
    lifecycle(cfg, "/sandboxes")
}

/// `{P}/sandboxes/{id}`.
pub fn sandbox(cfg: &Config, sandbox_id: &str) -> String {
    lifecycle_id(cfg, "/sandboxes/", sandbox_id, "")
}

/// Where a sandbox's own API (processes, files) lives, following wire-protocol §5.1: the server's
/// `sandbox_url` as given for a local server, its origin (path dropped) otherwise. Without a
/// `sandbox_url`, a local server is its own proxy; a cloud one leaves no safe guess.
pub fn sandbox_api_base(cfg: &Config, sandbox_url: Option<&str>) -> Result<String, String> {
    match sandbox_url {
        Some(url) => {
            let parsed = BaseUrl::parse(url).map_err(|why| format!("the server's sandbox_url is unusable: {why}"))?;
            Ok(if parsed.is_local() { parsed.to_base_string() } else { parsed.origin() })
        }
        None if cfg.is_local => Ok(cfg.api_url.clone()),
        None => Err("the server's response did not include sandbox_url; refusing to guess where the sandbox is".into()),
    }
}

/// `POST /api/v1/processes/run`.
pub fn process_run(base: &str) -> String {
    format!("{base}/api/v1/processes/run")
}

/// `/api/v1/files?path=…` (read, write, delete).
pub fn file(base: &str, path: &str) -> String {
    format!("{base}/api/v1/files?path={}", encode_component(path))
}

/// `GET /api/v1/files/list?path=…`.
pub fn directory(base: &str, path: &str) -> String {
    format!("{base}/api/v1/files/list?path={}", encode_component(path))
}

/// What a new sandbox should be; `None` fields are left to the server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SandboxSpec {
    /// Container image.
    pub image: Option<String>,
    /// CPUs.
    pub cpus: Option<f64>,
    /// Memory in MiB.
    pub memory_mb: Option<f64>,
    /// Disk in MiB.
    pub disk_mb: Option<f64>,
    /// Idle timeout in seconds.
    pub timeout_secs: Option<f64>,
    /// Entrypoint argv.
    pub entrypoint: Option<Vec<String>>,
    /// Restore from this snapshot.
    pub snapshot_id: Option<String>,
    /// A name (named sandboxes can be suspended and resumed).
    pub name: Option<String>,
    /// The network policy, as JSON (see `processes::network_body`).
    pub network: Option<String>,
}

/// The official SDKs' resources for a fresh sandbox.
pub const DEFAULT_CPUS: f64 = 1.0;
/// The official SDKs' memory for a fresh sandbox, in MiB.
pub const DEFAULT_MEMORY_MB: f64 = 1024.0;

/// The body of `POST {P}/sandboxes` (wire-protocol §3.1). A fresh sandbox gets the SDKs' default
/// resources; a restore sends only the resources the caller gave, so the server inherits the rest
/// from the snapshot (§3.2) — which is also the only way a memory snapshot can be restored.
pub fn create_sandbox_body(spec: &SandboxSpec) -> String {
    let restoring = spec.snapshot_id.is_some();
    let (cpus, memory) = if restoring {
        (spec.cpus, spec.memory_mb)
    } else {
        (
            Some(spec.cpus.unwrap_or(DEFAULT_CPUS)),
            Some(spec.memory_mb.unwrap_or(DEFAULT_MEMORY_MB)),
        )
    };
    let resources = Object::new()
        .num("cpus", cpus)
        .num("memory_mb", memory)
        .num("disk_mb", spec.disk_mb);
    let resources = if resources.is_empty() {
        None
    } else {
        Some(resources.finish())
    };
    Object::new()
        .str("image", spec.image.as_deref())
        .raw("resources", resources)
        .num("timeout_secs", spec.timeout_secs)
        .raw(
            "entrypoint",
            spec.entrypoint.as_deref().map(json_out::string_array),
        )
        .raw("network", spec.network.clone())
        .str("snapshot_id", spec.snapshot_id.as_deref())
        .str("name", spec.name.as_deref())
        .finish()
}

/// The body of `POST {P}/sandboxes/{id}/snapshot`: none at all unless a type was chosen, exactly
/// as the SDKs send it, so the server applies its default.
pub fn create_snapshot_body(snapshot_type: Option<&str>) -> Option<String> {
    snapshot_type.map(|t| Object::new().str("snapshot_type", Some(t)).finish())
}

/// A command to run in a sandbox (wire-protocol §5.2).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSpec {
    /// The program; it is exec'd directly, not through a shell.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables, in the caller's order.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// Server-enforced time limit, in seconds.
    pub timeout_s: Option<f64>,
    /// The user to run as, as a JSON value (`"root"`, `"1000:100"`, `{"uid":1000}`).
    pub user: Option<String>,
}

/// The body of `POST /api/v1/processes/run`; empty collections are omitted like the TS SDK does.
pub fn run_body(spec: &RunSpec) -> String {
    run_fields(spec).finish()
}

/// The fields of [`run_body`], for bodies that add their own (starting a background process).
pub fn run_fields(spec: &RunSpec) -> Object {
    let env = if spec.env.is_empty() {
        None
    } else {
        let object = spec.env.iter().fold(Object::new(), |object, (k, v)| object.str(k, Some(v)));
        Some(object.finish())
    };
    Object::new()
        .str("command", Some(&spec.command))
        .raw(
            "args",
            if spec.args.is_empty() {
                None
            } else {
                Some(json_out::string_array(&spec.args))
            },
        )
        .raw("env", env)
        .str("working_dir", spec.working_dir.as_deref())
        .num("timeout", spec.timeout_s)
        .raw("user", spec.user.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClientOptions, Environment};
    use crate::testing::config;

    fn cloud() -> Config {
        Config::resolve(ClientOptions::default(), Environment::default()).unwrap()
    }

    #[test]
    fn lifecycle_urls_follow_the_routing_rules() {
        let local = config();
        assert_eq!(
            snapshot(&local, "snap-1"),
            "http://127.0.0.1:8900/v1/namespaces/default/snapshots/snap-1"
        );
        assert_eq!(
            create_snapshot(&local, "sbx-1"),
            "http://127.0.0.1:8900/v1/namespaces/default/sandboxes/sbx-1/snapshot"
        );
        assert_eq!(
            snapshots(&cloud()),
            "https://sandbox.tensorlake.ai/snapshots"
        );
        assert_eq!(
            sandbox(&cloud(), "sbx-1"),
            "https://sandbox.tensorlake.ai/sandboxes/sbx-1"
        );
    }

    #[test]
    fn ids_cannot_escape_their_path_segment() {
        assert_eq!(
            snapshot(&config(), "../sandboxes/x?y"),
            "http://127.0.0.1:8900/v1/namespaces/default/snapshots/..%2Fsandboxes%2Fx%3Fy"
        );
    }

    #[test]
    fn sandbox_api_base_per_section_5_1() {
        let local = config();
        assert_eq!(
            sandbox_api_base(&local, Some("http://127.0.0.1:8900/")).unwrap(),
            "http://127.0.0.1:8900"
        );
        assert_eq!(
            sandbox_api_base(&local, None).unwrap(),
            "http://127.0.0.1:8900"
        );
        assert_eq!(
            sandbox_api_base(
                &cloud(),
                Some("https://sbx-1.sandbox.tensorlake.ai/ignored/path")
            )
            .unwrap(),
            "https://sbx-1.sandbox.tensorlake.ai"
        );
        assert!(sandbox_api_base(&cloud(), None)
            .unwrap_err()
            .contains("sandbox_url"));
        assert_eq!(
            file("http://h", "/data/a b.csv"),
            "http://h/api/v1/files?path=%2Fdata%2Fa%20b.csv"
        );
    }

    #[test]
    fn fresh_sandboxes_get_default_resources() {
        assert_eq!(
            create_sandbox_body(&SandboxSpec::default()),
            r#"{"resources":{"cpus":1,"memory_mb":1024}}"#
        );
        let spec = SandboxSpec {
            image: Some("python:3.12".into()),
            cpus: Some(2.0),
            timeout_secs: Some(600.0),
            entrypoint: Some(vec!["python".into(), "app.py".into()]),
            name: Some("env".into()),
            ..Default::default()
        };
        assert_eq!(
            create_sandbox_body(&spec),
            r#"{"image":"python:3.12","resources":{"cpus":2,"memory_mb":1024},"timeout_secs":600,"entrypoint":["python","app.py"],"name":"env"}"#
        );
    }

    #[test]
    fn restores_omit_resources_not_given_so_they_are_inherited() {
        let spec = SandboxSpec {
            snapshot_id: Some("snap-1".into()),
            ..Default::default()
        };
        assert_eq!(create_sandbox_body(&spec), r#"{"snapshot_id":"snap-1"}"#);
        let spec = SandboxSpec {
            snapshot_id: Some("snap-1".into()),
            cpus: Some(4.0),
            memory_mb: Some(2048.0),
            ..Default::default()
        };
        assert_eq!(
            create_sandbox_body(&spec),
            r#"{"resources":{"cpus":4,"memory_mb":2048},"snapshot_id":"snap-1"}"#
        );
    }

    #[test]
    fn snapshot_body_is_absent_without_a_type() {
        assert_eq!(create_snapshot_body(None), None);
        assert_eq!(
            create_snapshot_body(Some("memory")).unwrap(),
            r#"{"snapshot_type":"memory"}"#
        );
    }

    #[test]
    fn run_bodies_omit_empty_parts() {
        let spec = RunSpec {
            command: "sh".into(),
            args: vec!["-c".into(), "echo \"hi\"".into()],
            ..Default::default()
        };
        assert_eq!(
            run_body(&spec),
            r#"{"command":"sh","args":["-c","echo \"hi\""]}"#
        );
        let spec = RunSpec {
            command: "env".into(),
            env: vec![("A".into(), "1".into())],
            working_dir: Some("/data".into()),
            timeout_s: Some(2.5),
            ..Default::default()
        };
        assert_eq!(
            run_body(&spec),
            r#"{"command":"env","env":{"A":"1"},"working_dir":"/data","timeout":2.5}"#
        );
    }
}
