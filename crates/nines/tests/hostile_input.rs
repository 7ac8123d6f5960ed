//! Hostile and careless input against a running controller (issue 13): node actions on
//! `..`, `.`, an empty or a slashed address; every mutating route fed values each layer
//! below would choke on; slow clients; the controller's own files. Every refusal names
//! the field, and nothing is written: no job, no cluster, no window, no event, no file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{Controller, password_file, stderr, stdout};
use nines_testkit::MariaDbServer;
use serde_json::{Value, json};

/// A request sent as raw bytes (no client library normalises its path), with its status
/// and JSON body.
fn raw(ctl: &Controller, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let addr = ctl.url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        ctl.token,
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

/// What a refusal must leave unchanged: jobs, clusters, events, maintenance windows.
async fn footprint(ctl: &Controller) -> (usize, Value, usize, Value) {
    let (_, jobs) = ctl.get("/api/v1/jobs").await;
    let (_, clusters) = ctl.get("/api/v1/clusters").await;
    let (_, events) = ctl.get("/api/v1/events?limit=10000").await;
    let (_, shop) = ctl.get("/api/v1/clusters/shop").await;
    (
        jobs.as_array().map_or(0, Vec::len),
        clusters,
        events.as_array().map_or(0, Vec::len),
        shop["maintenance"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_actions_on_dot_dot_and_every_hostile_value_are_refused_and_change_nothing() {
    let server = MariaDbServer::start(Default::default())
        .await
        .expect("server");
    let ctl = Controller::start().await;
    let pw = password_file(ctl.data_dir(), server.password());
    let out = ctl.import("shop", &server.endpoint(), server.user(), &pw, &["--local"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let before = footprint(&ctl).await;

    // The CLI refuses node actions on what is no node address, naming it.
    for action in ["stop", "start", "restart", "remove"] {
        for node in ["..", ".", "", "a/b"] {
            let out = ctl.cli(&["node", action, "--cluster", "shop", "--node", node]);
            assert!(!out.status.success(), "node {action} {node:?} succeeded");
            let err = stderr(&out);
            assert!(
                err.contains("node") && (node.is_empty() || err.contains(&format!("`{node}"))),
                "node {action} {node:?}: {err}"
            );
        }
    }
    // The API does too, however the path is spelled.
    for (method, path) in [
        ("POST", "/api/v1/clusters/shop/nodes/../stop"),
        ("POST", "/api/v1/clusters/shop/nodes/%2E%2E/stop"),
        ("POST", "/api/v1/clusters/shop/nodes/%2e%2e/restart"),
        ("POST", "/api/v1/clusters/shop/nodes/./start"),
        ("DELETE", "/api/v1/clusters/shop/nodes/..?mode=stop"),
        ("DELETE", "/api/v1/clusters/shop/nodes/a%2Fb"),
        ("POST", "/api/v1/clusters/shop/nodes/..%2F..%2Fetc/stop"),
    ] {
        let (s, e) = raw(&ctl, method, path, None);
        assert_eq!(s, 400, "{method} {path}: {e}");
        assert_eq!(e["field"], "node", "{method} {path}: {e}");
        assert!(
            e["error"].as_str().unwrap().contains("address"),
            "{method} {path}: {e}"
        );
    }
    for (method, path) in [
        ("POST", "/api/v1/clusters/../stop"),
        ("POST", "/api/v1/clusters/%2E%2E/stop"),
        ("DELETE", "/api/v1/clusters/.?purge=true"),
    ] {
        let (s, e) = raw(&ctl, method, path, None);
        assert_eq!(s, 400, "{method} {path}: {e}");
        assert_eq!(e["field"], "name", "{method} {path}: {e}");
    }

    // Every mutating route with values a layer below would misread.
    let base = tempfile::tempdir().unwrap();
    let b = base.path().display().to_string();
    let create = |extra: Value| {
        let mut v = json!({
            "name": "fresh", "type": "standalone", "nodes": ["127.0.0.200:3399"],
            "datadir": format!("{b}/{{host}}_{{port}}"), "db_admin_user": "dba",
            "db_admin_password": "Pw-123456", "local": true
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v.to_string()
    };
    let many: Vec<String> = (0..65)
        .map(|i| format!("10.9.{}.{}", i / 200, i % 200 + 1))
        .collect();
    let long_reason = "r".repeat(1025);
    // (method, path, body, field named)
    let cases: Vec<(&str, String, String, &str)> = vec![
        (
            "POST",
            "/api/v1/clusters".into(),
            create(json!({"datadir": format!("{b}/x#y/{{host}}")})),
            "datadir",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            create(json!({"datadir": format!("{b}/x;y/{{host}}")})),
            "datadir",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            create(json!({"datadir": format!("{b}/x%y/{{host}}")})),
            "datadir",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            create(json!({"datadir": format!("{b}/x\ny/{{host}}")})),
            "datadir",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            create(json!({"datadir": format!("{b}/x|y/{{host}}")})),
            "datadir",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            create(json!({"datadir": format!("{b}/x&y/{{host}}")})),
            "datadir",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            create(json!({"datadir": format!("{b}/x>y/{{host}}")})),
            "datadir",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            create(json!({"datadir": format!("{b}/{{host}}/{{port}}"), "nodes": ["..:3399"]})),
            "nodes",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            create(json!({"datadir": format!("{b}/{{host}}/{{port}}"), "nodes": [".:3399"]})),
            "nodes",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            create(json!({"name": "import"})),
            "name",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            create(json!({"name": ".."})),
            "name",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            create(json!({"name": "a/b"})),
            "name",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            create(json!({"db_admin_user": "nines_monitor"})),
            "db_admin_user",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            create(json!({"db_admin_user": "nines_admin"})),
            "db_admin_user",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            create(json!({"type": "galera", "nodes": many})),
            "nodes",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            create(
                json!({"config_template": "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}"}),
            ),
            "config_template",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            create(
                json!({"config_template": "{% for a in range(500) %}{{ 'x' * 100000 }}{% endfor %}"}),
            ),
            "config_template",
        ),
        (
            "POST",
            "/api/v1/clusters".into(),
            create(json!({"local": false, "ssh": {"user": "-oProxyCommand=touch /tmp/x"}})),
            "ssh.user",
        ),
        (
            "POST",
            "/api/v1/clusters/import".into(),
            json!({"name": "..", "seed": "127.0.0.1", "db_user": "u", "db_password": "p"})
                .to_string(),
            "name",
        ),
        (
            "POST",
            "/api/v1/clusters/import".into(),
            json!({"name": "ok", "seed": "..", "db_user": "u", "db_password": "p"}).to_string(),
            "seed",
        ),
        (
            "POST",
            "/api/v1/clusters/import".into(),
            json!({"name": "ok", "seed": "127.0.0.1", "db_user": "a'b", "db_password": "p"})
                .to_string(),
            "db_user",
        ),
        (
            "POST",
            "/api/v1/clusters/shop/nodes".into(),
            json!({"node": ".."}).to_string(),
            "node",
        ),
        (
            "POST",
            "/api/v1/clusters/shop/nodes".into(),
            json!({"node": "127.0.0.9", "source": "a/b"}).to_string(),
            "source",
        ),
        (
            "PUT",
            "/api/v1/clusters/shop/maintenance".into(),
            json!({"reason": long_reason}).to_string(),
            "reason",
        ),
        (
            "PUT",
            "/api/v1/clusters/shop/maintenance".into(),
            json!({"reason": "ok\u{1b}[2J"}).to_string(),
            "reason",
        ),
        (
            "PUT",
            "/api/v1/clusters/shop/maintenance".into(),
            json!({"reason": "disk", "duration": "0.0000000001ms"}).to_string(),
            "duration",
        ),
        (
            "PUT",
            "/api/v1/clusters/shop/maintenance".into(),
            json!({"reason": "disk", "node": ".."}).to_string(),
            "node",
        ),
        (
            "DELETE",
            "/api/v1/clusters/shop/maintenance?reason=%1B%5B2J".into(),
            String::new(),
            "reason",
        ),
        (
            "POST",
            "/api/v1/clusters/shop/failover".into(),
            json!({"to": ".."}).to_string(),
            "to",
        ),
        (
            "POST",
            "/api/v1/clusters/shop/switchover".into(),
            json!({"to": "."}).to_string(),
            "to",
        ),
        (
            "POST",
            "/api/v1/clusters/shop/recover".into(),
            json!({"bootstrap_from": "..", "force": true}).to_string(),
            "bootstrap_from",
        ),
        (
            "PUT",
            "/api/v1/clusters/shop/ha-policy".into(),
            json!({"restart_backoff": -5}).to_string(),
            "restart_backoff",
        ),
        (
            "PUT",
            "/api/v1/clusters/shop/ha-policy".into(),
            json!({"no_such_knob": 1}).to_string(),
            "no_such_knob",
        ),
        (
            "PUT",
            "/api/v1/clusters/shop/recovery".into(),
            json!({"enabled": "yes"}).to_string(),
            "",
        ),
        (
            "POST",
            "/api/v1/clusters/%00/start".into(),
            String::new(),
            "name",
        ),
        (
            "POST",
            "/api/v1/clusters/a%0Ab/rolling-restart".into(),
            String::new(),
            "name",
        ),
        (
            "POST",
            "/api/v1/clusters/import/failovers/acknowledge".into(),
            String::new(),
            "name",
        ),
        (
            "POST",
            "/api/v1/jobs/1%20OR%201=1/cancel".into(),
            String::new(),
            "",
        ),
        (
            "POST",
            "/api/v1/clusters/shop/load-balancers".into(),
            json!({"host": "..", "local": true}).to_string(),
            "host",
        ),
        (
            "POST",
            "/api/v1/clusters/shop/load-balancers".into(),
            json!({"host": "127.0.0.9", "local": true, "vip": "127.0.0.10", "keepalived": true})
                .to_string(),
            "vip",
        ),
        (
            "POST",
            "/api/v1/clusters/shop/load-balancers".into(),
            json!({"host": "127.0.0.9", "local": true, "vip": "10.0.0.1/24; reboot", "keepalived": true})
                .to_string(),
            "vip",
        ),
        (
            "POST",
            "/api/v1/clusters/shop/load-balancers".into(),
            json!({"host": "127.0.0.9", "local": true, "keepalived": true}).to_string(),
            "vip",
        ),
        (
            "POST",
            "/api/v1/clusters/shop/load-balancers".into(),
            json!({"host": "127.0.0.9", "local": true, "vip": "10.0.0.100"}).to_string(),
            "keepalived",
        ),
        (
            "POST",
            "/api/v1/clusters/shop/load-balancers".into(),
            json!({"host": "127.0.0.9", "local": true, "max_replica_lag_seconds": 0}).to_string(),
            "max_replica_lag_seconds",
        ),
        (
            "POST",
            "/api/v1/clusters/shop/load-balancers".into(),
            json!({"host": "127.0.0.9", "local": true, "rw_port": 3307}).to_string(),
            "ro_port",
        ),
        (
            "PUT",
            "/api/v1/clusters/shop/load-balancers/..".into(),
            json!({"max_replica_lag_seconds": 5}).to_string(),
            "",
        ),
        (
            "POST",
            "/api/v1/clusters/shop/load-balancers/127.0.0.9/restart".into(),
            String::new(),
            "",
        ),
        (
            "POST",
            "/api/v1/users".into(),
            json!({"name": "..", "role": "viewer", "password": "long-enough-pw"}).to_string(),
            "name",
        ),
        (
            "POST",
            "/api/v1/users".into(),
            json!({"name": "admin", "role": "viewer", "password": "long-enough-pw"}).to_string(),
            "name",
        ),
        (
            "POST",
            "/api/v1/users".into(),
            json!({"name": "eve", "role": "viewer", "password": "tab\tinside-pw"}).to_string(),
            "password",
        ),
        (
            "POST",
            "/api/v1/tokens".into(),
            json!({"user": "a/b", "name": "x"}).to_string(),
            "user",
        ),
        (
            "POST",
            "/api/v1/tokens".into(),
            json!({"user": "nobody", "name": "x\u{1b}[2J"}).to_string(),
            "name",
        ),
        (
            "GET",
            "/api/v1/audit?since=forever".into(),
            String::new(),
            "since",
        ),
    ];
    for (method, path, body, field) in &cases {
        let body = (!body.is_empty()).then_some(body.as_str());
        let (s, e) = raw(&ctl, method, path, body);
        assert!((400..500).contains(&s), "{method} {path} {body:?}: {s} {e}");
        if !field.is_empty() {
            assert_eq!(e["field"], *field, "{method} {path} {body:?}: {s} {e}");
        }
        assert!(
            s == 404 || s == 405 || !e["error"].as_str().unwrap_or("").is_empty(),
            "{method} {path}: {s} {e}"
        );
    }
    // The controller still answers at once (no template kept its workers busy).
    let started = Instant::now();
    let (s, _) = ctl.get("/healthz").await;
    assert_eq!(s, 200);
    assert!(started.elapsed() < Duration::from_secs(2));

    assert_eq!(
        footprint(&ctl).await,
        before,
        "a refused request changed something"
    );
    let left: Vec<_> = std::fs::read_dir(base.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "files created under the datadir base: {left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_the_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let ctl = Controller::start().await;
    let addr = ctl.url.trim_start_matches("http://").to_string();

    // One connection that sends nothing, one that trickles half a header: both are
    // closed by the server after its header-read deadline (15 s), not held for ever.
    let mut silent = std::net::TcpStream::connect(&addr).unwrap();
    let mut trickle = std::net::TcpStream::connect(&addr).unwrap();
    trickle
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    for s in [&mut silent, &mut trickle] {
        s.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
    }
    let started = Instant::now();
    for (name, s) in [("silent", &mut silent), ("trickling", &mut trickle)] {
        let mut buf = Vec::new();
        // EOF (or a reset) ends the read; a read timeout would be an error of its own.
        let r = s.read_to_end(&mut buf);
        assert!(
            !matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
            "{name} connection still open after {:?}",
            started.elapsed()
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    // Meanwhile and after, others are served.
    let (s, _) = ctl.get("/healthz").await;
    assert_eq!(s, 200);

    // Nothing under the controller's data directory is readable by other users.
    let dir = ctl.data_dir().to_path_buf();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode(&dir) & 0o077,
        0,
        "{} is {:o}",
        dir.display(),
        mode(&dir)
    );
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        // The harness's own capture of the controller's output is not nines's file.
        if p.file_name().is_some_and(|n| n == "controller.log") {
            continue;
        }
        assert_eq!(mode(&p) & 0o077, 0, "{} is {:o}", p.display(), mode(&p));
        seen += 1;
    }
    assert!(seen >= 3, "expected the store, its key and the admin token");
}
