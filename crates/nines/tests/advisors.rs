//! Advisors on real servers: rules that find what is wrong (a Galera table without a
//! primary key, drifting provider options, connections near the limit; a writable
//! replica, unsafe durability settings, no backup), user rules with thresholds, results
//! with history, and alarms raised for failing rules and cleared once fixed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{ADMIN_PW, Controller, DeployDir, create_cluster, sql, stderr, stdout, wait_until};
use serde_json::Value;

fn results(ctl: &Controller, cluster: &str) -> Vec<Value> {
    ctl.json(&["advisor", "run", "--cluster", cluster])
        .as_array()
        .unwrap()
        .clone()
}

fn result<'a>(list: &'a [Value], rule: &str, node: Option<&str>) -> Option<&'a Value> {
    list.iter()
        .find(|r| r["rule"] == rule && node.is_none_or(|n| r["node"] == n))
}

fn status(list: &[Value], rule: &str, node: Option<&str>) -> String {
    result(list, rule, node)
        .map(|r| r["status"].as_str().unwrap().to_string())
        .unwrap_or_else(|| format!("no result for {rule}: {list:?}"))
}

fn advisor_alarms(ctl: &Controller, cluster: &str) -> Vec<Value> {
    ctl.json(&["alarm", "list", "--cluster", cluster])
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"].as_str().unwrap().starts_with("advisor."))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn galera_rules_find_a_table_without_a_key_and_drifting_options() {
    let leases = nines_testkit::lease_addresses(3).expect("leases");
    let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let ctl = Controller::start().await;
    let dir = DeployDir::new();
    let out = create_cluster(
        &ctl,
        "gadv",
        "galera",
        &addrs.join(","),
        &dir.template(),
        &["--local"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    sql(
        &addrs[0],
        "dba",
        ADMIN_PW,
        "CREATE DATABASE app; CREATE TABLE app.keyed (id INT PRIMARY KEY) ENGINE=InnoDB; \
         CREATE TABLE app.events (at DATETIME, what TEXT) ENGINE=InnoDB",
    )
    .await
    .unwrap();

    // The contract's shape, and the table named.
    let list = results(&ctl, "gadv");
    for r in &list {
        for f in ["rule", "status", "message", "advice", "checked_at"] {
            assert!(!r[f].is_null(), "{f} missing: {r}");
        }
    }
    let pk = result(&list, "galera_table_without_pk", None).expect("pk rule");
    assert_eq!(pk["status"], "warning", "{pk}");
    let msg = pk["message"].as_str().unwrap();
    assert!(
        msg.contains("app.events") && !msg.contains("app.keyed"),
        "{msg}"
    );
    assert!(pk["advice"].as_str().unwrap().contains("primary key"));
    // A deployed cluster has performance_schema on and row-based binlogs, three members.
    assert_eq!(status(&list, "performance_schema_off", None), "ok");
    assert_eq!(status(&list, "binlog_format", None), "ok");
    assert_eq!(status(&list, "galera_even_size", None), "ok");
    assert_eq!(status(&list, "galera_provider_options_drift", None), "ok");

    // The failing rule is an alarm naming the table; fixing the table clears it.
    let alarm = advisor_alarms(&ctl, "gadv")
        .into_iter()
        .find(|a| a["kind"] == "advisor.galera_table_without_pk")
        .expect("alarm");
    assert_eq!(alarm["severity"], "warning");
    assert!(alarm["message"].as_str().unwrap().contains("app.events"));

    // One member's provider options drift.
    sql(
        &addrs[1],
        "dba",
        ADMIN_PW,
        "SET GLOBAL wsrep_provider_options='gcs.fc_limit=150'",
    )
    .await
    .unwrap();
    // Connections near max_connections on one node.
    sql(&addrs[2], "dba", ADMIN_PW, "SET GLOBAL max_connections=8")
        .await
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..7 {
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(addrs[2].clone())
            .tcp_port(3306)
            .user(Some("dba"))
            .pass(Some(ADMIN_PW));
        held.push(mysql_async::Conn::new(opts).await.unwrap());
    }
    let list = results(&ctl, "gadv");
    let drift = result(&list, "galera_provider_options_drift", None).unwrap();
    assert_eq!(drift["status"], "warning", "{drift}");
    assert!(
        drift["message"].as_str().unwrap().contains("gcs.fc_limit"),
        "{drift}"
    );
    let near = result(
        &list,
        "connections_near_max",
        Some(&format!("{}:3306", addrs[2])),
    )
    .unwrap();
    assert_ne!(near["status"], "ok", "{near}");
    for c in held {
        c.disconnect().await.unwrap();
    }

    // Fixed: the table gets a key, the options agree again; the alarms clear and the
    // history shows both changes.
    sql(
        &addrs[0],
        "dba",
        ADMIN_PW,
        "ALTER TABLE app.events ADD COLUMN id INT AUTO_INCREMENT PRIMARY KEY",
    )
    .await
    .unwrap();
    sql(
        &addrs[1],
        "dba",
        ADMIN_PW,
        "SET GLOBAL wsrep_provider_options='gcs.fc_limit=16'",
    )
    .await
    .unwrap();
    let list = results(&ctl, "gadv");
    assert_eq!(status(&list, "galera_table_without_pk", None), "ok");
    let fixed = wait_until(Duration::from_secs(10), || async {
        !advisor_alarms(&ctl, "gadv")
            .iter()
            .any(|a| a["kind"] == "advisor.galera_table_without_pk")
    })
    .await;
    assert!(fixed, "{:?}", advisor_alarms(&ctl, "gadv"));
    let history = ctl.json(&["advisor", "history", "--cluster", "gadv"]);
    let pk_changes: Vec<&Value> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["rule"] == "galera_table_without_pk")
        .collect();
    // Newest first: fixed, then found. (A periodic run before the table existed may
    // have recorded an earlier `ok` below them.)
    assert_eq!(
        pk_changes
            .iter()
            .take(2)
            .map(|h| h["status"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["ok", "warning"],
        "{history}"
    );
    drop(leases);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_rules_and_user_rules_judge_real_settings() {
    let leases = nines_testkit::lease_addresses(2).expect("leases");
    let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let ctl = Controller::start().await;
    let dir = DeployDir::new();
    let out = create_cluster(
        &ctl,
        "radv",
        "replication",
        &addrs.join(","),
        &dir.template(),
        &["--local"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let (primary, replica) = (format!("{}:3306", addrs[0]), format!("{}:3306", addrs[1]));
    let list = results(&ctl, "radv");
    for rule in [
        "replica_writable",
        "sync_binlog",
        "flush_log_at_trx_commit",
        "binlog_off",
    ] {
        assert_eq!(status(&list, rule, None), "ok", "{rule}");
    }
    // A new cluster has no backup: said, with the way out.
    let b = result(&list, "no_recent_backup", None).unwrap();
    assert_eq!(b["status"], "warning");
    assert!(b["advice"].as_str().unwrap().contains("nines backup"));

    // Someone makes the replica writable and loosens the primary's durability.
    sql(&addrs[1], "dba", ADMIN_PW, "SET GLOBAL read_only=OFF")
        .await
        .unwrap();
    sql(
        &addrs[0],
        "dba",
        ADMIN_PW,
        "SET GLOBAL sync_binlog=0; SET GLOBAL innodb_flush_log_at_trx_commit=2",
    )
    .await
    .unwrap();
    let list = results(&ctl, "radv");
    assert_eq!(
        status(&list, "replica_writable", Some(&replica)),
        "critical"
    );
    assert_eq!(status(&list, "sync_binlog", Some(&primary)), "warning");
    assert_eq!(
        status(&list, "flush_log_at_trx_commit", Some(&primary)),
        "warning"
    );
    let alarms = advisor_alarms(&ctl, "radv");
    let writable = alarms
        .iter()
        .find(|a| a["kind"] == "advisor.replica_writable")
        .expect("alarm");
    assert_eq!(
        (writable["severity"].as_str(), writable["node"].as_str()),
        (Some("critical"), Some(replica.as_str()))
    );

    // A user rule: rows waiting in a queue table, on the primary only.
    sql(
        &addrs[0],
        "dba",
        ADMIN_PW,
        "CREATE DATABASE app; CREATE TABLE app.queue (id INT PRIMARY KEY)",
    )
    .await
    .unwrap();
    // Bad rules are refused naming the field.
    let out = ctl.cli(&[
        "advisor",
        "rule",
        "add",
        "--cluster",
        "radv",
        "--name",
        "bad",
        "--sql",
        "DELETE FROM app.queue",
        "--warning",
        "1",
        "--message",
        "x",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("sql"), "{}", stderr(&out));
    let out = ctl.cli(&[
        "advisor",
        "rule",
        "add",
        "--cluster",
        "radv",
        "--name",
        "queue",
        "--sql",
        "SELECT COUNT(*) FROM app.queue",
        "--warning",
        "3",
        "--critical",
        "10",
        "--message",
        "{value} jobs waiting in app.queue",
        "--nodes",
        "primary",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let list = results(&ctl, "radv");
    assert_eq!(status(&list, "user_queue", Some(&primary)), "ok");
    assert!(
        result(&list, "user_queue", Some(&replica)).is_none(),
        "ran on the replica"
    );
    sql(
        &addrs[0],
        "dba",
        ADMIN_PW,
        "INSERT INTO app.queue VALUES (1),(2),(3),(4)",
    )
    .await
    .unwrap();
    let list = results(&ctl, "radv");
    let q = result(&list, "user_queue", Some(&primary)).unwrap();
    assert_eq!(q["status"], "warning", "{q}");
    assert_eq!(q["message"], "4 jobs waiting in app.queue");
    assert!(
        advisor_alarms(&ctl, "radv")
            .iter()
            .any(|a| a["kind"] == "advisor.user_queue" && a["severity"] == "warning")
    );

    // Put right: the alarms clear at the next run; the deleted rule's alarm goes with it.
    sql(&addrs[1], "dba", ADMIN_PW, "SET GLOBAL read_only=ON")
        .await
        .unwrap();
    sql(
        &addrs[0],
        "dba",
        ADMIN_PW,
        "SET GLOBAL sync_binlog=1; SET GLOBAL innodb_flush_log_at_trx_commit=1",
    )
    .await
    .unwrap();
    let out = ctl.cli(&["advisor", "rule", "delete", "--cluster", "radv", "queue"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let list = results(&ctl, "radv");
    assert_eq!(status(&list, "replica_writable", None), "ok");
    // The host rules (disk, memory, I/O wait) judge the machine the test runs on, which a test
    // cannot put right: a CI runner with a nearly full disk raises them. Left out here;
    // their thresholds have table tests in the model.
    let left: Vec<String> = advisor_alarms(&ctl, "radv")
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_string())
        .filter(|k| {
            ![
                "advisor.disk_space",
                "advisor.memory_available",
                "advisor.cpu_iowait",
            ]
            .contains(&k.as_str())
        })
        .collect();
    assert_eq!(
        left,
        vec!["advisor.no_recent_backup".to_string()],
        "{left:?}"
    );

    // The query monitor: a query run 25 times between two reads is found with that count,
    // on the cluster and on its node; nines's own probes are not among the queries.
    for i in 0..25 {
        sql(
            &addrs[0],
            "dba",
            ADMIN_PW,
            &format!("SELECT id FROM app.queue WHERE id = {i}"),
        )
        .await
        .unwrap();
    }
    results(&ctl, "radv");
    let top = ctl.json(&["query", "top", "--cluster", "radv", "--limit", "50"]);
    let found = top
        .as_array()
        .unwrap()
        .iter()
        .find(|q| {
            q["digest_text"]
                .as_str()
                .is_some_and(|t| t.contains("`app` . `queue`") && t.starts_with("SELECT"))
        })
        .unwrap_or_else(|| panic!("not in the top: {top}"))
        .clone();
    assert_eq!(found["count"], 25, "{found}");
    for f in ["digest", "total_time_ms", "avg_time_ms", "rows_examined"] {
        assert!(!found[f].is_null(), "{f}: {found}");
    }
    assert!(found["node"].is_null());
    assert!(
        !top.as_array().unwrap().iter().any(|q| q["digest_text"]
            .as_str()
            .is_some_and(|t| t.contains("SHOW GLOBAL STATUS"))),
        "nines's own probes counted: {top}"
    );
    // What runs after the last advisor run is counted when someone asks (the digests are
    // read again, at most every 5 s).
    for i in 0..5 {
        sql(
            &addrs[0],
            "dba",
            ADMIN_PW,
            &format!("SELECT id FROM app.queue WHERE id = {i}"),
        )
        .await
        .unwrap();
    }
    let counted = wait_until(Duration::from_secs(15), || async {
        ctl.json(&["query", "top", "--cluster", "radv", "--limit", "50"])
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["digest"] == found["digest"] && q["count"] == 30)
    })
    .await;
    assert!(
        counted,
        "{}",
        ctl.json(&["query", "top", "--cluster", "radv"])
    );
    let on_primary = ctl.json(&["query", "top", "--cluster", "radv", "--node", &primary]);
    assert!(
        on_primary
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["digest"] == found["digest"] && q["node"] == primary.as_str()),
        "{on_primary}"
    );

    // Metric series for charts: per node and for the cluster, one point per step.
    let fetch = || {
        ctl.json(&[
            "metrics",
            "--cluster",
            "radv",
            "--series",
            "queries_per_second,replication_lag_seconds",
            "--since",
            "2m",
            "--step",
            "1s",
        ])
    };
    let values = |m: &Value, name: &str, node: Option<&str>| -> Vec<f64> {
        m["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name && node.map_or(s["node"].is_null(), |n| s["node"] == n))
            .unwrap_or_else(|| panic!("{name} {node:?}: {m}"))["points"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["value"].as_f64())
            .collect()
    };
    // Rates need two probes; a few seconds of them.
    let charted = wait_until(Duration::from_secs(15), || async {
        let m = fetch();
        let qps = values(&m, "queries_per_second", None);
        qps.len() >= 3 && qps.iter().any(|v| *v > 0.0)
    })
    .await;
    let m = fetch();
    assert!(charted, "{m}");
    assert_eq!(m["step_seconds"], 1.0);
    assert!(
        values(&m, "replication_lag_seconds", Some(&replica)).contains(&0.0),
        "{m}"
    );
    // The cluster's rate is its nodes' sum.
    let (p, r, c) = (
        values(&m, "queries_per_second", Some(&primary)),
        values(&m, "queries_per_second", Some(&replica)),
        values(&m, "queries_per_second", None),
    );
    assert!(c.iter().sum::<f64>() >= p.iter().sum::<f64>() + r.iter().sum::<f64>() - 1e-6);
    let out = ctl.cli(&["metrics", "--cluster", "radv", "--series", "nonsense"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("series"), "{}", stderr(&out));
    drop(leases);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_server_without_performance_schema_is_told_not_shown_nothing() {
    let server = nines_testkit::MariaDbServer::start(nines_testkit::ServerOptions::new())
        .await
        .expect("server");
    let ctl = Controller::start().await;
    let pw = common::password_file(ctl.data_dir(), server.password());
    let out = ctl.import("solo", &server.endpoint(), server.user(), &pw, &["--local"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let list = results(&ctl, "solo");
    assert_eq!(status(&list, "performance_schema_off", None), "warning");
    let out = ctl.cli(&["query", "top", "--cluster", "solo"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("performance_schema is off on"),
        "{}",
        stderr(&out)
    );
}
