//! The API's contract: auth, bad input that registers nothing, the OpenAPI document
//! matching the routes, /metrics accepted by promtool, and a controller crash that keeps
//! clusters and closes interrupted jobs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Controller, password_file, stderr, stdout, wait_until};
use nines_testkit::{MariaDbServer, ReplicationTopology};
use serde_json::{Value, json};

async fn post(ctl: &Controller, path: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", ctl.url))
        .bearer_auth(&ctl.token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn put(ctl: &Controller, path: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .put(format!("{}{path}", ctl.url))
        .bearer_auth(&ctl.token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn delete(ctl: &Controller, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .delete(format!("{}{path}", ctl.url))
        .bearer_auth(&ctl.token)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_is_required_everywhere_but_healthz() {
    let ctl = Controller::start().await;
    let http = reqwest::Client::new();
    let h = http
        .get(format!("{}/healthz", ctl.url))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), 200);
    for path in [
        "/api/v1/clusters",
        "/metrics",
        "/api/openapi.json",
        "/api/v1/jobs",
    ] {
        let r = http.get(format!("{}{path}", ctl.url)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without token");
        let r = http
            .get(format!("{}{path}", ctl.url))
            .bearer_auth("not-the-token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong token");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(ctl.data_dir().join("admin.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_lists_every_route() {
    let ctl = Controller::start().await;
    let (s, doc) = ctl.get("/api/openapi.json").await;
    assert_eq!(s, 200);
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/api/v1/clusters", "get"),
        ("/api/v1/clusters", "post"),
        ("/api/v1/clusters/import", "post"),
        ("/api/v1/clusters/{name}", "get"),
        ("/api/v1/clusters/{name}", "delete"),
        ("/api/v1/clusters/{name}/stop", "post"),
        ("/api/v1/clusters/{name}/start", "post"),
        ("/api/v1/clusters/{name}/rolling-restart", "post"),
        ("/api/v1/clusters/{name}/nodes", "post"),
        ("/api/v1/clusters/{name}/nodes/{address}", "delete"),
        ("/api/v1/clusters/{name}/nodes/{address}/stop", "post"),
        ("/api/v1/clusters/{name}/nodes/{address}/start", "post"),
        ("/api/v1/clusters/{name}/nodes/{address}/restart", "post"),
        ("/api/v1/clusters/{name}/nodes/{address}/rejoin", "post"),
        ("/api/v1/clusters/{name}/failover", "post"),
        ("/api/v1/clusters/{name}/switchover", "post"),
        ("/api/v1/clusters/{name}/recover", "post"),
        ("/api/v1/clusters/{name}/failovers", "get"),
        ("/api/v1/clusters/{name}/failovers/acknowledge", "post"),
        ("/api/v1/clusters/{name}/maintenance", "put"),
        ("/api/v1/clusters/{name}/maintenance", "delete"),
        ("/api/v1/clusters/{name}/recovery", "put"),
        ("/api/v1/clusters/{name}/ha-policy", "get"),
        ("/api/v1/clusters/{name}/ha-policy", "put"),
        ("/api/v1/clusters/{name}/ha-policy", "delete"),
        ("/api/v1/nodes", "get"),
        ("/api/v1/events", "get"),
        ("/api/v1/jobs", "get"),
        ("/api/v1/jobs/{id}", "get"),
        ("/api/v1/jobs/{id}/logs", "get"),
        ("/api/v1/jobs/{id}/cancel", "post"),
        ("/api/v1/clusters/{name}/nodes/{address}/metrics", "get"),
        ("/metrics", "get"),
        ("/api/openapi.json", "get"),
        ("/api/v1/backup-repos", "get"),
        ("/api/v1/backup-repos", "post"),
        ("/api/v1/clusters/{name}/backups", "get"),
        ("/api/v1/clusters/{name}/backups", "post"),
        ("/api/v1/backups/{id}", "get"),
        ("/api/v1/backups/{id}/verify", "post"),
        ("/api/v1/backups/{id}/restore", "post"),
        ("/api/v1/clusters/{name}/backup-schedules", "post"),
        ("/api/v1/backup-schedules", "get"),
        ("/api/v1/backup-schedules/{id}", "delete"),
        ("/api/v1/clusters/{name}/backup-window", "get"),
        ("/api/v1/alarms", "get"),
        ("/api/v1/alarms/{id}/ack", "post"),
        ("/api/v1/alarm-silences", "get"),
        ("/api/v1/alarm-silences", "post"),
        ("/api/v1/alarm-silences/{id}", "delete"),
        ("/api/v1/notify-channels", "get"),
        ("/api/v1/notify-channels", "post"),
        ("/api/v1/notify-channels/{name}", "delete"),
        ("/api/v1/notify-channels/{name}/test", "post"),
        ("/api/v1/notify-channels/{name}/deliveries", "get"),
        ("/api/v1/clusters/{name}/advisors", "get"),
        ("/api/v1/clusters/{name}/advisors/run", "post"),
        ("/api/v1/clusters/{name}/advisors/history", "get"),
        ("/api/v1/clusters/{name}/advisor-rules", "get"),
        ("/api/v1/clusters/{name}/advisor-rules", "post"),
        ("/api/v1/clusters/{name}/advisor-rules/{rule}", "delete"),
        ("/api/v1/clusters/{name}/queries/top", "get"),
        ("/api/v1/clusters/{name}/metrics", "get"),
        ("/api/v1/clusters/{name}/load-balancers", "get"),
        ("/api/v1/clusters/{name}/load-balancers", "post"),
        ("/api/v1/clusters/{name}/load-balancers/{host}", "delete"),
        ("/api/v1/clusters/{name}/load-balancers/{host}", "put"),
        (
            "/api/v1/clusters/{name}/load-balancers/{host}/restart",
            "post",
        ),
        ("/api/v1/users", "get"),
        ("/api/v1/users", "post"),
        ("/api/v1/users/{name}", "delete"),
        ("/api/v1/users/{name}/password", "put"),
        ("/api/v1/tokens", "get"),
        ("/api/v1/tokens", "post"),
        ("/api/v1/tokens/{id}", "delete"),
        ("/api/v1/audit", "get"),
    ];
    // Every documented operation is expected, and every expected one documented.
    let documented: usize = paths
        .values()
        .map(|ops| ops.as_object().map(|o| o.len()).unwrap_or(0))
        .sum();
    assert_eq!(documented, expected.len(), "documented: {paths:?}");
    for (p, m) in expected {
        assert!(
            paths.get(p).and_then(|o| o.get(m)).is_some(),
            "{m} {p} not documented"
        );
    }
    // Every documented GET route without path parameters answers (not 404/405).
    for (p, ops) in paths {
        if ops.get("get").is_some() && !p.contains('{') {
            let (status, _) = ctl.get(p).await;
            assert!(status == 200, "{p} answered {status}");
        }
    }
    assert!(doc["components"]["schemas"]["ImportRequest"].is_object());
    for schema in [
        "FailoverRequest",
        "SwitchoverRequest",
        "FailoverView",
        "FailoversAcknowledged",
        "HaPolicyView",
        "BackupView",
        "RepoAddRequest",
        "ScheduleCreateRequest",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} not in the document"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors_and_registers_nothing() {
    let server = MariaDbServer::start(Default::default())
        .await
        .expect("server");
    let ctl = Controller::start().await;

    // Malformed JSON and missing or wrong fields: 4xx naming the field.
    let (s, e) = post(&ctl, "/api/v1/clusters/import", "{not json").await;
    assert_eq!(s, 400, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("malformed JSON"),
        "{e}"
    );
    let (s, e) = post(
        &ctl,
        "/api/v1/clusters/import",
        r#"{"name":"a","db_user":"u","db_password":"p"}"#,
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(e["field"], "seed", "{e}");
    let (s, e) = post(
        &ctl,
        "/api/v1/clusters/import",
        &json!({"name": "a", "seed": "127.0.0.1:99999", "db_user": "u", "db_password": "p"})
            .to_string(),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(e["field"], "seed", "{e}");
    let (s, e) = post(
        &ctl,
        "/api/v1/clusters/import",
        &json!({"name": "a b", "seed": "127.0.0.1", "db_user": "u", "db_password": "p"})
            .to_string(),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(e["field"], "name", "{e}");
    let (s, e) = post(
        &ctl,
        "/api/v1/clusters/import",
        &json!({"name": "a", "seed": "127.0.0.1", "db_user": "u", "db_password": "p", "colour": 1})
            .to_string(),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(e["field"], "colour", "{e}");

    // Unreachable seed: the job fails saying so.
    let dead = nines_testkit::lease_address().expect("lease");
    let pw = password_file(ctl.data_dir(), server.password());
    let out = ctl.import(
        "ghost",
        &format!("{}:3306", dead.addr()),
        server.user(),
        &pw,
        &[],
    );
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("unreachable") && stdout(&out).contains("refused"),
        "{}",
        stdout(&out)
    );

    // Wrong password: the job fails naming the user.
    let bad = password_file(ctl.data_dir(), "wrong-password");
    let out = ctl.import("wrongpw", &server.endpoint(), server.user(), &bad, &[]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("access denied"), "{}", stdout(&out));

    // Password file missing: the CLI says which flag.
    let out = ctl.cli(&[
        "cluster",
        "import",
        "--name",
        "x",
        "--seed",
        &server.endpoint(),
        "--db-user",
        "u",
        "--db-password-file",
        "/nonexistent/pw",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--db-password-file"),
        "{}",
        stderr(&out)
    );

    // Nothing registered, no secret left behind.
    let clusters = ctl.json(&["cluster", "list"]);
    assert_eq!(clusters.as_array().unwrap().len(), 0, "{clusters}");

    // A good import, then duplicates: same name, and the same node under another name.
    let out = ctl.import("solo", &server.endpoint(), server.user(), &pw, &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = ctl.import("solo", &server.endpoint(), server.user(), &pw, &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already exists") && stderr(&out).contains("name"),
        "{}",
        stderr(&out)
    );
    let out = ctl.import("solo2", &server.endpoint(), server.user(), &pw, &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already managed"), "{}", stderr(&out));
    let clusters = ctl.json(&["cluster", "list"]);
    assert_eq!(clusters.as_array().unwrap().len(), 1);
    assert_eq!(clusters[0]["type"], "standalone");

    let failed = ctl.json(&["job", "list", "--state", "failed"]);
    assert_eq!(failed.as_array().unwrap().len(), 2, "{failed}");
    let out = ctl.cli(&["job", "list", "--state", "bogus"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("state"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_a_crash_keeps_clusters_and_closes_jobs() {
    let server = MariaDbServer::start(Default::default())
        .await
        .expect("server");
    let mut ctl = Controller::start().await;
    let pw = password_file(ctl.data_dir(), server.password());
    let out = ctl.import("solo", &server.endpoint(), server.user(), &pw, &["--local"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        wait_until(Duration::from_secs(10), || async {
            ctl.cluster("solo")
                .await
                .is_some_and(|c| c["state"] == "healthy")
        })
        .await
    );
    // Rates need two samples; wait for one to show up in /metrics.
    assert!(
        wait_until(Duration::from_secs(10), || async {
            ctl.get_text("/metrics")
                .await
                .contains("nines_mysql_questions_total{")
        })
        .await
    );
    let text = ctl.get_text("/metrics").await;
    assert!(
        text.contains(&format!(
            "nines_node_up{{cluster=\"solo\",node=\"{}\"}} 1",
            server.endpoint()
        )),
        "{text}"
    );
    assert!(
        text.contains("nines_cluster_state{cluster=\"solo\",state=\"healthy\"} 1"),
        "{text}"
    );
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (package prometheus) must be installed");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let res = promtool.wait_with_output().unwrap();
    assert!(
        res.status.success(),
        "promtool rejected /metrics: {}{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );

    // Metric history of the node: raw points exist.
    let addr = server.endpoint();
    let (s, series) = ctl
        .get(&format!(
            "/api/v1/clusters/solo/nodes/{addr}/metrics?metric=threads_connected"
        ))
        .await;
    assert_eq!(s, 200, "{series}");
    assert!(
        !series[0]["points"].as_array().unwrap().is_empty(),
        "{series}"
    );

    // Leave a job "running" as a crashed controller would, then crash the controller.
    {
        use nines_store::Store;
        let store = nines_store::SqliteStore::open(ctl.data_dir())
            .await
            .unwrap();
        let spec = nines_model::job::JobSpec::ImportCluster {
            name: "interrupted".into(),
            seed: "127.0.0.1:3306".parse().unwrap(),
            db_user: "u".into(),
            db_password_secret: 0,
            host_access: Default::default(),
        };
        // Make it look like a job that another controller had claimed.
        let job = store.create_job(&spec, "test").await.unwrap();
        assert!(store.start_job(job.id).await.unwrap());
        store.close().await;
    }
    ctl.crash_and_restart().await;
    let jobs = ctl.json(&["job", "list"]);
    let interrupted = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["cluster"] == "interrupted")
        .unwrap()
        .clone();
    assert_eq!(interrupted["state"], "failed", "{interrupted}");
    assert!(
        interrupted["error"]
            .as_str()
            .unwrap()
            .contains("controller stopped"),
        "{interrupted}"
    );
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .all(|j| j["state"] != "running"),
        "{jobs}"
    );
    // The cluster is still registered and watched.
    assert!(
        wait_until(Duration::from_secs(10), || async {
            ctl.cluster("solo")
                .await
                .is_some_and(|c| c["state"] == "healthy")
        })
        .await,
        "cluster lost or not watched after restart: {:?}",
        ctl.cluster("solo").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_import_can_be_cancelled() {
    // A "server" that accepts connections and never answers: discovery hangs in the handshake.
    let lease = nines_testkit::lease_address().expect("lease");
    let listener = std::net::TcpListener::bind(format!("{}:3306", lease.addr())).expect("bind");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let ctl = Controller::start().await;
    let pw = password_file(ctl.data_dir(), "x");
    let seed = format!("{}:3306", lease.addr());
    let out = ctl.cli(&[
        "cluster",
        "import",
        "--name",
        "hang",
        "--seed",
        &seed,
        "--db-user",
        "u",
        "--db-password-file",
        pw.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().trim_start_matches("job ").to_string();
    let running = wait_until(Duration::from_secs(5), || async {
        let (_, j) = ctl.get(&format!("/api/v1/jobs/{id}")).await;
        j["state"] == "running"
    })
    .await;
    assert!(running);
    let out = ctl.cli(&["job", "cancel", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cancelled = wait_until(Duration::from_secs(3), || async {
        let (_, j) = ctl.get(&format!("/api/v1/jobs/{id}")).await;
        j["state"] == "cancelled"
    })
    .await;
    assert!(
        cancelled,
        "job not cancelled: {:?}",
        ctl.get(&format!("/api/v1/jobs/{id}")).await
    );
    // --follow on a cancelled job exits non-zero.
    let out = ctl.cli(&["job", "logs", &id, "--follow"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cancelled"), "{}", stderr(&out));
    assert_eq!(ctl.json(&["cluster", "list"]).as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_windows_are_shown_recorded_and_checked() {
    let server = MariaDbServer::start(Default::default())
        .await
        .expect("server");
    let ctl = Controller::start().await;
    let pw = password_file(ctl.data_dir(), server.password());
    let out = ctl.import("solo", &server.endpoint(), server.user(), &pw, &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let addr = server.endpoint();

    let out = ctl.cli(&[
        "maintenance",
        "on",
        "--cluster",
        "solo",
        "--for",
        "1h",
        "--reason",
        "kernel upgrade",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("until"), "{}", stdout(&out));
    let nodes = ctl.json(&["node", "list", "--cluster", "solo"]);
    assert_eq!(nodes[0]["maintenance"], "kernel upgrade");
    let out = ctl.cli(&[
        "maintenance",
        "on",
        "--cluster",
        "solo",
        "--node",
        &addr,
        "--reason",
        "disk swap",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let nodes = ctl.json(&["node", "list", "--cluster", "solo"]);
    assert_eq!(
        nodes[0]["maintenance"], "disk swap",
        "the node's own window names it"
    );
    let detail = ctl.json(&["cluster", "show", "solo"]);
    assert_eq!(detail["maintenance"].as_array().unwrap().len(), 2);

    // Bad input: unknown node, no reason, a bad duration.
    let out = ctl.cli(&[
        "maintenance",
        "on",
        "--cluster",
        "solo",
        "--node",
        "127.0.0.1:1",
        "--reason",
        "x",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    let out = ctl.cli(&["maintenance", "on", "--cluster", "solo", "--reason", " "]);
    assert!(stderr(&out).contains("field `reason`"), "{}", stderr(&out));
    let out = ctl.cli(&[
        "maintenance",
        "on",
        "--cluster",
        "solo",
        "--for",
        "soon",
        "--reason",
        "x",
    ]);
    assert!(
        stderr(&out).contains("field `duration`"),
        "{}",
        stderr(&out)
    );
    for long in ["100000000000d", "100000000000000000000d"] {
        let out = ctl.cli(&[
            "maintenance",
            "on",
            "--cluster",
            "solo",
            "--for",
            long,
            "--reason",
            "x",
        ]);
        assert!(
            stderr(&out).contains("too long") && stderr(&out).contains("field `duration`"),
            "{long}: {}",
            stderr(&out)
        );
    }

    let out = ctl.cli(&[
        "maintenance",
        "off",
        "--cluster",
        "solo",
        "--node",
        &addr,
        "--reason",
        "done",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = ctl.cli(&["maintenance", "off", "--cluster", "solo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let nodes = ctl.json(&["node", "list", "--cluster", "solo"]);
    assert!(nodes[0]["maintenance"].is_null(), "{}", nodes[0]);
    let out = ctl.cli(&["maintenance", "off", "--cluster", "solo"]);
    assert!(
        !out.status.success(),
        "ending a window that is not there is an error"
    );
    // Automatic recovery: on by default, switched off and on again.
    assert_eq!(ctl.cluster("solo").await.unwrap()["auto_recovery"], true);
    let off = ctl.json(&["cluster", "recovery", "disable", "--name", "solo"]);
    assert_eq!(off["auto_recovery"], false);
    assert_eq!(ctl.cluster("solo").await.unwrap()["auto_recovery"], false);
    let on = ctl.json(&["cluster", "recovery", "enable", "--name", "solo"]);
    assert_eq!(on["auto_recovery"], true);

    let events = ctl.json(&["events", "--cluster", "solo"]);
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "maintenance_on").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "maintenance_off").count(),
        2,
        "{kinds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_switchover_and_rejoin_check_their_input_before_queuing() {
    let (solo, topo) = tokio::join!(
        MariaDbServer::start(Default::default()),
        ReplicationTopology::start(1, false)
    );
    let solo = solo.expect("server");
    let topo = topo.expect("topology");
    let ctl = Controller::start().await;
    let pw = password_file(ctl.data_dir(), solo.password());
    let out = ctl.import("solo", &solo.endpoint(), solo.user(), &pw, &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let pw = password_file(ctl.data_dir(), topo.primary().password());
    let out = ctl.import(
        "shop",
        &topo.primary().endpoint(),
        topo.primary().user(),
        &pw,
        &[],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let primary = topo.primary().endpoint();
    let replica = topo.replica(0).endpoint();

    // Unknown cluster: 404 naming it, on every route and through the CLI.
    for path in [
        "/api/v1/clusters/nowhere/failover",
        "/api/v1/clusters/nowhere/switchover",
        "/api/v1/clusters/nowhere/recover",
        "/api/v1/clusters/nowhere/nodes/127.0.0.1:3306/rejoin",
    ] {
        let (s, e) = post(&ctl, path, "{}").await;
        assert_eq!(s, 404, "{path}: {e}");
        assert!(
            e["error"].as_str().unwrap().contains("cluster `nowhere`"),
            "{path}: {e}"
        );
    }
    let out = ctl.cli(&["cluster", "switchover", "--name", "nowhere"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cluster `nowhere` not found"),
        "{}",
        stderr(&out)
    );

    // Not a replication cluster: 400 saying what the cluster is.
    for path in [
        "/api/v1/clusters/solo/failover".to_string(),
        "/api/v1/clusters/solo/switchover".to_string(),
        format!("/api/v1/clusters/solo/nodes/{}/rejoin", solo.endpoint()),
    ] {
        let (s, e) = post(&ctl, &path, "{}").await;
        assert_eq!(s, 400, "{path}: {e}");
        let msg = e["error"].as_str().unwrap();
        assert!(
            msg.contains("replication clusters") && msg.contains("cluster `solo` is standalone"),
            "{path}: {e}"
        );
    }

    // Recovery by bootstrap is Galera's: 400 on other clusters; its node is checked.
    for c in ["solo", "shop"] {
        let (s, e) = post(&ctl, &format!("/api/v1/clusters/{c}/recover"), "{}").await;
        assert_eq!(s, 400, "{c}: {e}");
        assert!(
            e["error"]
                .as_str()
                .unwrap()
                .contains("applies to Galera clusters"),
            "{c}: {e}"
        );
    }
    let out = ctl.cli(&[
        "cluster",
        "recover",
        "--name",
        "shop",
        "--bootstrap-from",
        &replica,
        "--force",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cluster `shop` is replication"),
        "{}",
        stderr(&out)
    );

    // `to`: malformed, not a node of the cluster, already the primary.
    for route in ["failover", "switchover"] {
        let path = format!("/api/v1/clusters/shop/{route}");
        let (s, e) = post(&ctl, &path, r#"{"to":"127.0.0.1:99999"}"#).await;
        assert_eq!(s, 400, "{route}: {e}");
        assert_eq!(e["field"], "to", "{route}: {e}");
        let (s, e) = post(&ctl, &path, r#"{"to":""}"#).await;
        assert_eq!(s, 400, "{route}: {e}");
        assert_eq!(e["field"], "to", "{route}: {e}");
        let (s, e) = post(&ctl, &path, r#"{"to":"127.0.0.1:1"}"#).await;
        assert_eq!(s, 400, "{route}: {e}");
        assert_eq!(e["field"], "to", "{route}: {e}");
        let msg = e["error"].as_str().unwrap();
        assert!(
            msg.contains("127.0.0.1:1") && msg.contains("not a node of cluster `shop`"),
            "{route}: {e}"
        );
        let (s, e) = post(&ctl, &path, &json!({ "to": primary }).to_string()).await;
        assert_eq!(s, 409, "{route}: {e}");
        assert_eq!(e["field"], "to", "{route}: {e}");
        assert!(
            e["error"].as_str().unwrap().contains("already the primary"),
            "{route}: {e}"
        );
        // Unknown fields are refused, naming them.
        let (s, e) = post(
            &ctl,
            &path,
            &json!({ "to": replica, "colour": 1 }).to_string(),
        )
        .await;
        assert_eq!(s, 400, "{route}: {e}");
        assert_eq!(e["field"], "colour", "{route}: {e}");
    }
    // A switchover has no `force`; a failover's must be a boolean.
    let (s, e) = post(
        &ctl,
        "/api/v1/clusters/shop/switchover",
        r#"{"force":true}"#,
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["field"], "force", "{e}");
    let (s, e) = post(&ctl, "/api/v1/clusters/shop/failover", r#"{"force":"yes"}"#).await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["field"], "force", "{e}");
    let out = ctl.cli(&[
        "cluster",
        "failover",
        "--name",
        "shop",
        "--to",
        "127.0.0.1:1",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("127.0.0.1:1") && stderr(&out).contains("field `to`"),
        "{}",
        stderr(&out)
    );

    // Rejoin: the node must parse and belong to the cluster.
    let (s, e) = post(
        &ctl,
        "/api/v1/clusters/shop/nodes/127.0.0.1:99999/rejoin",
        "{}",
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["field"], "node", "{e}");
    let out = ctl.cli(&[
        "node",
        "rejoin",
        "--cluster",
        "shop",
        "--node",
        "127.0.0.1:1",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("node 127.0.0.1:1 in cluster `shop` not found"),
        "{}",
        stderr(&out)
    );

    // None of that queued anything.
    let jobs = ctl.json(&["job", "list", "--cluster", "shop"]);
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["kind"], "import_cluster");
    let requested_by = jobs[0]["requested_by"].clone();

    // A good request: 202 with the job, a manual failover by the caller, the named
    // replica's port defaulting to 3306. (Refused when it runs: the primary answers, as
    // the monitor has seen by the time the cluster is healthy.)
    assert!(
        wait_until(Duration::from_secs(10), || async {
            ctl.cluster("shop")
                .await
                .is_some_and(|c| c["state"] == "healthy")
        })
        .await,
        "{:?}",
        ctl.cluster("shop").await
    );
    let created = ctl.json(&[
        "cluster",
        "failover",
        "--name",
        "shop",
        "--to",
        &topo.replica(0).address(),
    ]);
    let id = created["job_id"].as_i64().expect("job_id");
    let (s, job) = ctl.get(&format!("/api/v1/jobs/{id}")).await;
    assert_eq!(s, 200, "{job}");
    assert_eq!(job["kind"], "failover", "{job}");
    assert_eq!(job["cluster"], "shop", "{job}");
    assert_eq!(job["requested_by"], requested_by, "{job}");
    assert_eq!(job["spec"]["to"], replica, "{job}");
    assert_eq!(job["spec"]["force"], false, "{job}");
    assert_eq!(job["spec"]["automatic"], false, "{job}");
    assert_eq!(job["spec"]["reasons"], json!([]), "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_history_is_listed_and_acknowledged() {
    let server = MariaDbServer::start(Default::default())
        .await
        .expect("server");
    let ctl = Controller::start().await;
    let pw = password_file(ctl.data_dir(), server.password());
    let out = ctl.import("solo", &server.endpoint(), server.user(), &pw, &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // Unknown cluster: 404 naming it, on both routes and through the CLI.
    let (s, e) = ctl.get("/api/v1/clusters/nowhere/failovers").await;
    assert_eq!(s, 404, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("cluster `nowhere`"),
        "{e}"
    );
    let (s, e) = post(&ctl, "/api/v1/clusters/nowhere/failovers/acknowledge", "").await;
    assert_eq!(s, 404, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("cluster `nowhere`"),
        "{e}"
    );
    let out = ctl.cli(&["cluster", "failovers", "--name", "nowhere"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cluster `nowhere` not found"),
        "{}",
        stderr(&out)
    );

    // A `since` that is not a duration: 400 naming it.
    for bad in ["soon", "0s", "5y", "", "100000000000000000000d"] {
        let (s, e) = ctl
            .get(&format!("/api/v1/clusters/solo/failovers?since={bad}"))
            .await;
        assert_eq!(s, 400, "since={bad}: {e}");
        assert_eq!(e["field"], "since", "since={bad}: {e}");
        assert!(
            e["error"].as_str().unwrap().contains("since"),
            "since={bad}: {e}"
        );
    }
    let out = ctl.cli(&["cluster", "failovers", "--name", "solo", "--since", "soon"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("field `since`"), "{}", stderr(&out));

    // No failovers yet: an empty list (default and explicit window), nothing to acknowledge.
    let (s, list) = ctl.get("/api/v1/clusters/solo/failovers").await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list, json!([]));
    let (s, list) = ctl.get("/api/v1/clusters/solo/failovers?since=7d").await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list, json!([]));
    assert_eq!(
        ctl.json(&["cluster", "failovers", "--name", "solo", "--since", "7d"]),
        json!([])
    );
    let out = ctl.cli(&["cluster", "failovers", "--name", "solo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for column in [
        "AT",
        "KIND",
        "AUTO",
        "OLD PRIMARY",
        "NEW PRIMARY",
        "JOB",
        "ACK",
    ] {
        assert!(stdout(&out).contains(column), "{}", stdout(&out));
    }
    let (s, done) = post(&ctl, "/api/v1/clusters/solo/failovers/acknowledge", "").await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done, json!({ "acknowledged": 0 }));
    assert_eq!(
        ctl.json(&["cluster", "failovers", "--name", "solo", "--acknowledge"]),
        json!({ "acknowledged": 0 })
    );
    let out = ctl.cli(&["cluster", "failovers", "--name", "solo", "--acknowledge"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("acknowledged 0 failover(s) of `solo`"),
        "{}",
        stdout(&out)
    );

    // Each acknowledgement is an event saying who.
    let events = ctl.json(&["events", "--cluster", "solo"]);
    let acks: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "failover_acknowledged")
        .collect();
    assert_eq!(acks.len(), 3, "{events}");
    let msg = acks[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("acknowledged 0 failover(s)") && msg.contains(" by "),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_policy_is_set_per_cluster_checked_and_reset() {
    let topo = ReplicationTopology::start(2, false)
        .await
        .expect("topology");
    let ctl = Controller::start().await;
    let pw = password_file(ctl.data_dir(), topo.primary().password());
    let out = ctl.import(
        "shop",
        &topo.primary().endpoint(),
        topo.primary().user(),
        &pw,
        &[],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let reporting = topo.replica(0).endpoint();
    let preferred = topo.replica(1).endpoint();
    let path = "/api/v1/clusters/shop/ha-policy";

    // Before anything is set: the controller's default.
    let shown = ctl.json(&["cluster", "ha-policy", "--name", "shop"]);
    assert_eq!(shown["source"], "controller default", "{shown}");
    let default = shown["policy"].clone();
    assert_eq!(default["daily_failover_budget"], 3, "{default}");
    assert_eq!(default["failover_block_window"], 300_000, "{default}");
    assert_eq!(default["automatic_recovery"], true, "{default}");
    let (s, got) = ctl.get(path).await;
    assert_eq!(s, 200, "{got}");
    assert_eq!(got, shown);

    // Set a few through the CLI: durations become milliseconds (seconds for the lag).
    let set = ctl.json(&[
        "cluster",
        "ha-policy",
        "--name",
        "shop",
        "--exclude-candidate",
        &reporting,
        "--prefer-candidate",
        &preferred,
        "--failover-block-window",
        "10m",
        "--daily-failover-budget",
        "5",
        "--relay-log-apply-timeout",
        "30s",
        "--max-candidate-lag",
        "30s",
    ]);
    assert_eq!(set["source"], "cluster", "{set}");
    let (s, got) = ctl.get(path).await;
    assert_eq!(s, 200, "{got}");
    assert_eq!(got, set);
    let policy = &got["policy"];
    assert_eq!(policy["excluded_candidates"], json!([reporting]));
    assert_eq!(policy["preferred_candidates"], json!([preferred]));
    assert_eq!(policy["failover_block_window"], 600_000);
    assert_eq!(policy["daily_failover_budget"], 5);
    assert_eq!(policy["relay_log_apply_timeout"], 30_000);
    assert_eq!(policy["max_candidate_lag"]["max_seconds_behind"], 30);
    let changed = [
        "excluded_candidates",
        "preferred_candidates",
        "failover_block_window",
        "daily_failover_budget",
        "relay_log_apply_timeout",
        "max_candidate_lag",
    ];
    for (k, v) in default.as_object().unwrap() {
        if !changed.contains(&k.as_str()) {
            assert_eq!(&policy[k], v, "{k} keeps its default");
        }
    }
    assert_eq!(
        policy["max_candidate_lag"]["max_missing_transactions"],
        default["max_candidate_lag"]["max_missing_transactions"]
    );
    // The table shows durations as the flags take them.
    let out = ctl.cli(&["cluster", "ha-policy", "--name", "shop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.contains("(cluster)"), "{table}");
    for line in [
        ("failover_block_window", "10m"),
        ("relay_log_apply_timeout", "30s"),
        ("max_candidate_lag.max_seconds_behind", "30s"),
        ("excluded_candidates", reporting.as_str()),
    ] {
        assert!(
            table
                .lines()
                .any(|l| l.contains(line.0) && l.contains(line.1)),
            "{line:?}: {table}"
        );
    }
    // A later change keeps the earlier ones.
    let again = ctl.json(&[
        "cluster",
        "ha-policy",
        "--name",
        "shop",
        "--restart-grace",
        "10s",
    ]);
    assert_eq!(again["policy"]["restart_grace"], 10_000);
    assert_eq!(again["policy"]["daily_failover_budget"], 5);

    // Bad values: 400 naming the field, and nothing changes.
    let unknown_node = r#"{"excluded_candidates":["127.0.0.1:1"]}"#.to_string();
    let both = json!({ "preferred_candidates": [reporting] }).to_string();
    for (body, field) in [
        (
            r#"{"daily_failover_budget":0}"#.to_string(),
            "daily_failover_budget",
        ),
        (unknown_node, "excluded_candidates"),
        (r#"{"colour":1}"#.to_string(), "colour"),
        (
            r#"{"max_candidate_lag":{"colour":1}}"#.to_string(),
            "max_candidate_lag.colour",
        ),
        (r#"{"restart_grace":"10s"}"#.to_string(), "restart_grace"),
        (
            r#"{"relay_log_apply_timeout":700000}"#.to_string(),
            "relay_log_apply_timeout",
        ),
        (
            r#"{"automatic_recovery":false}"#.to_string(),
            "automatic_recovery",
        ),
        (both, "preferred_candidates"),
    ] {
        let (s, e) = put(&ctl, path, &body).await;
        assert_eq!(s, 400, "{body}: {e}");
        assert_eq!(e["field"], field, "{body}: {e}");
        assert!(e["error"].as_str().unwrap().contains(field), "{body}: {e}");
    }
    let (s, e) = put(&ctl, path, "[1]").await;
    assert_eq!(s, 400, "{e}");
    let out = ctl.cli(&[
        "cluster",
        "ha-policy",
        "--name",
        "shop",
        "--daily-failover-budget",
        "0",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("field `daily_failover_budget`"),
        "{}",
        stderr(&out)
    );
    let out = ctl.cli(&[
        "cluster",
        "ha-policy",
        "--name",
        "shop",
        "--exclude-candidate",
        "127.0.0.1:1",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("127.0.0.1:1 is not a node")
            && stderr(&out).contains("field `excluded_candidates`"),
        "{}",
        stderr(&out)
    );
    let (_, unchanged) = ctl.get(path).await;
    assert_eq!(unchanged, again, "refused changes change nothing");

    // Unknown cluster: 404 on every method.
    let (s, e) = ctl.get("/api/v1/clusters/nowhere/ha-policy").await;
    assert_eq!(s, 404, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("cluster `nowhere`"),
        "{e}"
    );
    let (s, e) = put(&ctl, "/api/v1/clusters/nowhere/ha-policy", "{}").await;
    assert_eq!(s, 404, "{e}");
    let (s, e) = delete(&ctl, "/api/v1/clusters/nowhere/ha-policy").await;
    assert_eq!(s, 404, "{e}");

    // Reset: the default again, through the CLI and the API.
    let reset = ctl.json(&["cluster", "ha-policy", "--name", "shop", "--reset"]);
    assert_eq!(reset["source"], "controller default", "{reset}");
    assert_eq!(reset["policy"], default);
    assert_eq!(ctl.get(path).await.1, reset);
    let (s, again) = delete(&ctl, path).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again, reset);

    // Every change is an event saying what changed and who.
    let events = ctl.json(&["events", "--cluster", "shop"]);
    let mut changes: Vec<String> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "ha_policy")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    changes.reverse();
    assert_eq!(changes.len(), 4, "{changes:?}");
    assert!(
        changes[0].contains(" set by ")
            && changes[0].contains("daily_failover_budget: 3 → 5")
            && changes[0].contains(&format!("excluded_candidates: none → {reporting}")),
        "{changes:?}"
    );
    assert!(
        changes[1].contains("restart_grace: 5s → 10s"),
        "{changes:?}"
    );
    assert!(
        changes[2].contains("reset to the controller default by ")
            && changes[2].contains("daily_failover_budget: 5 → 3"),
        "{changes:?}"
    );
    assert!(changes[3].contains("no policy of its own"), "{changes:?}");
}
