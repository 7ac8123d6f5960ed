//! Backups on real servers deployed by nines: full, incremental and logical backups taken,
//! checked and restored with every row back; a corrupted chunk caught by verification and
//! refused by a restore, naming the backup and the chunk; a restore over a serving
//! cluster refused without --force; no row in plain text in the repository; an S3
//! round trip through a real S3-compatible server (moto).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{ADMIN_PW, Controller, DeployDir, create_cluster, sql, stderr, stdout, wait_until};
use serde_json::Value;

const MARKER: &str = "plaintext-row-marker-7f3a";

/// Inserts rows `from..=to` into app.t, each carrying [`MARKER`].
async fn insert(addr: &str, from: u32, to: u32) {
    let values: Vec<String> = (from..=to)
        .map(|i| format!("({i}, '{MARKER}-{i}')"))
        .collect();
    sql(
        addr,
        "dba",
        ADMIN_PW,
        &format!("INSERT INTO app.t VALUES {}", values.join(",")),
    )
    .await
    .expect("insert");
}

async fn ids(addr: &str) -> Vec<u32> {
    sql(addr, "dba", ADMIN_PW, "SELECT id FROM app.t ORDER BY id")
        .await
        .expect("select")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect()
}

fn range(from: u32, to: u32) -> Vec<u32> {
    (from..=to).collect()
}

/// `backup create ... -o json --wait`: the backup's object.
fn take(ctl: &Controller, cluster: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "-o",
        "json",
        "backup",
        "create",
        "--cluster",
        cluster,
        "--wait",
    ];
    args.extend_from_slice(extra);
    let out = ctl.cli(&args);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

/// A cluster of `kind` with `n` nodes deployed by a new controller (started with `env`)
/// as `name`, with the table app.t; the leases keep its addresses until dropped.
async fn deployed(
    name: &str,
    kind: &str,
    n: usize,
    env: &[(&str, &str)],
) -> (
    Vec<nines_testkit::AddressLease>,
    Vec<String>,
    Controller,
    DeployDir,
) {
    let leases = nines_testkit::lease_addresses(n).expect("leases");
    let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let ctl = Controller::start_with_env(&[], env).await;
    let dir = DeployDir::new();
    let out = create_cluster(
        &ctl,
        name,
        kind,
        &addrs.join(","),
        &dir.template(),
        &["--local"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    sql(
        &addrs[0],
        "dba",
        ADMIN_PW,
        "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB",
    )
    .await
    .expect("schema");
    (leases, addrs, ctl, dir)
}

/// A standalone server deployed as `name` (see [`deployed`]).
async fn standalone(
    name: &str,
) -> (
    Vec<nines_testkit::AddressLease>,
    String,
    Controller,
    DeployDir,
) {
    let (leases, addrs, ctl, dir) = deployed(name, "standalone", 1, &[]).await;
    (leases, addrs[0].clone(), ctl, dir)
}

/// Every file under `dir`, recursively.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_incremental_and_logical_backups_restore_every_row_and_damage_is_refused() {
    let (leases, addr, ctl, dir) = standalone("bk").await;
    insert(&addr, 1, 100).await;

    // Full: taken, checked at once, with its GTID position.
    let full = take(&ctl, "bk", &[]);
    assert_eq!(full["method"], "full", "{full}");
    assert_eq!(full["state"], "completed", "{full}");
    assert_eq!(full["verified"], true, "{full}");
    assert_eq!(full["repo"], "local", "{full}");
    assert_eq!(full["node"], format!("{addr}:3306"), "{full}");
    assert!(full["size_bytes"].as_i64().unwrap() > 1 << 20, "{full}");
    assert!(
        full["stored_bytes"].as_i64().unwrap() < full["size_bytes"].as_i64().unwrap(),
        "compressed: {full}"
    );
    assert!(
        !full["gtid_position"].as_str().unwrap().is_empty(),
        "{full}"
    );
    assert!(full["parent_id"].is_null());

    // Incremental on top of it.
    insert(&addr, 101, 200).await;
    let inc = take(&ctl, "bk", &["--method", "incremental"]);
    assert_eq!(inc["method"], "incremental", "{inc}");
    assert_eq!(inc["parent_id"], full["id"], "{inc}");
    assert_eq!(inc["verified"], true, "{inc}");
    assert!(
        inc["size_bytes"].as_i64().unwrap() < full["size_bytes"].as_i64().unwrap(),
        "an incremental copies less: {inc} {full}"
    );

    // Logical.
    insert(&addr, 201, 300).await;
    let logical = take(&ctl, "bk", &["--method", "logical"]);
    assert_eq!(logical["method"], "logical", "{logical}");
    assert_eq!(logical["verified"], true, "{logical}");
    assert!(
        !logical["gtid_position"].as_str().unwrap().is_empty(),
        "{logical}"
    );

    let list = ctl.json(&["backup", "list", "--cluster", "bk"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    for b in list {
        for field in [
            "id",
            "method",
            "state",
            "node",
            "repo",
            "size_bytes",
            "started_at",
            "finished_at",
            "gtid_position",
            "parent_id",
            "verified",
        ] {
            assert!(b.get(field).is_some(), "{field} missing in {b}");
        }
    }

    // No row in plain text anywhere in the repository.
    let repo_dir = ctl.data_dir().join("backups");
    let stored = files(&repo_dir);
    assert!(stored.len() >= 6, "{stored:?}");
    for f in &stored {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
            "{} holds a row in plain text",
            f.display()
        );
    }

    // A verification restores each backup onto a throwaway server and counts its rows.
    for (b, rows) in [(&inc, 200), (&logical, 300)] {
        let id = b["id"].to_string();
        let out = ctl.cli(&["backup", "verify", &id, "--wait"]);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        let v = ctl.json(&["backup", "list", "--cluster", "bk"]);
        let v = v
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == b["id"])
            .unwrap()
            .clone();
        let note = v["verify_note"].as_str().unwrap();
        assert!(
            note.contains("throwaway server") && note.contains(&format!("1 tables, {rows} rows")),
            "{v}"
        );
    }
    // Nothing of the throwaway servers is left.
    let node_dir = format!("{}.nines", dir.datadir(&addr, 3306).display());
    assert!(std::path::Path::new(&node_dir).is_dir(), "{node_dir}");
    let left = std::fs::read_dir(&node_dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("verify-"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(left, 0);

    // Rows written after the backups; a restore over the serving server needs --force.
    insert(&addr, 301, 400).await;
    let id = inc["id"].to_string();
    let out = ctl.cli(&["backup", "restore", &id, "--cluster", "bk", "--wait"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(
        ids(&addr).await,
        range(1, 400),
        "a refused restore changed nothing"
    );

    // The incremental restores the state it was taken at: rows 1-200.
    let out = ctl.cli(&[
        "backup",
        "restore",
        &id,
        "--cluster",
        "bk",
        "--force",
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(ids(&addr).await, range(1, 200));

    // The logical backup restores rows 1-300.
    let id = logical["id"].to_string();
    let out = ctl.cli(&[
        "backup",
        "restore",
        &id,
        "--cluster",
        "bk",
        "--force",
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(ids(&addr).await, range(1, 300));

    // One flipped byte in a chunk of the full backup: verification fails naming it, the
    // restore is refused before anything is touched.
    let full_id = full["id"].as_i64().unwrap();
    let chunk = repo_dir.join(format!("bk/{full_id:08}/chunks/000001"));
    let mut bytes = std::fs::read(&chunk).unwrap();
    bytes[1000] ^= 0x5a;
    std::fs::write(&chunk, &bytes).unwrap();
    let out = ctl.cli(&["backup", "verify", &full_id.to_string(), "--wait"]);
    assert!(!out.status.success());
    let err = format!("{}{}", stdout(&out), stderr(&out));
    assert!(err.contains(&format!("backup {full_id}, chunk 1")), "{err}");
    let list = ctl.json(&["backup", "list", "--cluster", "bk"]);
    let f = list
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == full_id)
        .unwrap();
    assert_eq!(f["verified"], false, "{f}");
    let out = ctl.cli(&[
        "backup",
        "restore",
        &full_id.to_string(),
        "--cluster",
        "bk",
        "--force",
        "--wait",
    ]);
    assert!(!out.status.success());
    let err = format!("{}{}", stdout(&out), stderr(&out));
    assert!(err.contains(&format!("backup {full_id}, chunk 1")), "{err}");
    assert_eq!(
        ids(&addr).await,
        range(1, 300),
        "a refused restore changed nothing"
    );
    let events = ctl.json(&["events", "--cluster", "bk"]);
    assert!(
        events.as_array().unwrap().iter().any(
            |e| e["kind"] == "alarm" && e["message"].as_str().unwrap().contains("verification")
        ),
        "{events}"
    );
    drop(leases);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_round_trips_through_s3() {
    let s3 = nines_testkit::S3Server::start("nines-backups")
        .await
        .expect("moto");
    let (leases, addr, ctl, _dir) = standalone("s3c").await;
    insert(&addr, 1, 50).await;

    let keys = tempfile::tempdir().unwrap();
    let ak = keys.path().join("access");
    let sk = keys.path().join("secret");
    std::fs::write(&ak, &s3.access_key).unwrap();
    std::fs::write(&sk, &s3.secret_key).unwrap();
    // A wrong bucket is refused when the repository is added.
    let out = ctl.cli(&[
        "backup",
        "repo",
        "add",
        "nope",
        "--s3-endpoint",
        &s3.endpoint(),
        "--s3-bucket",
        "no-such-bucket",
        "--s3-access-key-file",
        ak.to_str().unwrap(),
        "--s3-secret-key-file",
        sk.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(stderr(&out).contains("s3_endpoint"), "{}", stderr(&out));
    let out = ctl.cli(&[
        "backup",
        "repo",
        "add",
        "s3",
        "--s3-endpoint",
        &s3.endpoint(),
        "--s3-bucket",
        &s3.bucket,
        "--s3-access-key-file",
        ak.to_str().unwrap(),
        "--s3-secret-key-file",
        sk.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let repos = ctl.json(&["backup", "repo", "list"]);
    let text = repos.to_string();
    assert!(
        text.contains("\"s3\"") && !text.contains(&s3.secret_key),
        "{text}"
    );

    let b = take(&ctl, "s3c", &["--repo", "s3"]);
    assert_eq!(b["repo"], "s3", "{b}");
    assert_eq!(b["verified"], true, "{b}");
    sql(&addr, "dba", ADMIN_PW, "DELETE FROM app.t WHERE id > 10")
        .await
        .unwrap();
    let out = ctl.cli(&[
        "backup",
        "restore",
        &b["id"].to_string(),
        "--cluster",
        "s3c",
        "--force",
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let back = wait_until(Duration::from_secs(10), || async {
        ids(&addr).await == range(1, 50)
    })
    .await;
    assert!(back, "{:?}", ids(&addr).await);
    drop(leases);
}

/// Every node's ids, once they agree (replication and Galera apply asynchronously).
async fn all_agree(addrs: &[String], want: &[u32]) -> bool {
    wait_until(Duration::from_secs(60), || async {
        for a in addrs {
            match sql(a, "dba", ADMIN_PW, "SELECT id FROM app.t ORDER BY id").await {
                Ok(rows) => {
                    let got: Vec<u32> = rows.iter().filter_map(|s| s.parse().ok()).collect();
                    if got != want {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
        true
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replication_cluster_is_restored_whole_and_rolled_forward() {
    restored_whole("replication", "rbk").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_galera_cluster_is_restored_whole_and_rolled_forward() {
    restored_whole("galera", "gbk").await;
}

/// A three-node cluster of `kind`: backed up, written to, restored rolled forward to the
/// last write (every row on every node), restored to the backup alone (its rows), and
/// taking writes everywhere again.
async fn restored_whole(kind: &str, name: &str) {
    {
        let n = 3;
        let leases = nines_testkit::lease_addresses(n).expect("leases");
        let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
        let ctl = Controller::start().await;
        let dir = DeployDir::new();
        let out = create_cluster(
            &ctl,
            name,
            kind,
            &addrs.join(","),
            &dir.template(),
            &["--local"],
        );
        assert!(
            out.status.success(),
            "{kind}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        sql(
            &addrs[0],
            "dba",
            ADMIN_PW,
            "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(64))",
        )
        .await
        .expect("schema");
        insert(&addrs[0], 1, 100).await;
        assert!(
            all_agree(&addrs, &range(1, 100)).await,
            "{kind}: not replicated"
        );
        // Wait until the monitor sees every node serving (the source choice reads it).
        let serving = wait_until(Duration::from_secs(30), || async {
            ctl.cluster(name)
                .await
                .is_some_and(|c| c["state"] == "healthy")
        })
        .await;
        assert!(serving, "{kind}: {:?}", ctl.cluster(name).await);

        let b = take(&ctl, name, &[]);
        assert_eq!(b["verified"], true, "{kind}: {b}");
        // Never the writer of a replication cluster; a Galera node is desynced for it.
        if kind == "replication" {
            assert_ne!(b["node"], format!("{}:3306", addrs[0]), "{b}");
        }
        insert(&addrs[0], 101, 150).await;
        // Rolled forward with the archived binlogs to the last write: every row, on every
        // node (Galera: archived from a Synced node, replayed before the joiners' SST).
        let written = chrono::Utc::now();
        let gtid = sql(&addrs[0], "dba", ADMIN_PW, "SELECT @@gtid_binlog_pos")
            .await
            .unwrap()[0]
            .clone();
        let caught_up = wait_until(Duration::from_secs(60), || async {
            let w = ctl.json(&["backup", "window", "--cluster", name]);
            w["latest"]
                .as_str()
                .and_then(|l| chrono::DateTime::parse_from_rfc3339(l).ok())
                .is_some_and(|l| l.with_timezone(&chrono::Utc) > written)
        })
        .await;
        assert!(
            caught_up,
            "{kind}: {}",
            ctl.json(&["backup", "window", "--cluster", name])
        );
        let out = ctl.cli(&[
            "backup",
            "restore",
            &b["id"].to_string(),
            "--cluster",
            name,
            "--force",
            "--until-gtid",
            &gtid,
            "--wait",
        ]);
        assert!(
            out.status.success(),
            "{kind}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            all_agree(&addrs, &range(1, 150)).await,
            "{kind}: rolled forward, the nodes do not all hold every row"
        );
        // Without a target: the backup's own rows.
        let out = ctl.cli(&[
            "backup",
            "restore",
            &b["id"].to_string(),
            "--cluster",
            name,
            "--force",
            "--wait",
        ]);
        assert!(
            out.status.success(),
            "{kind}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            all_agree(&addrs, &range(1, 100)).await,
            "{kind}: the nodes do not all hold the backup's rows"
        );
        // And the cluster takes writes again, everywhere.
        insert(&addrs[0], 101, 110).await;
        assert!(
            all_agree(&addrs, &range(1, 110)).await,
            "{kind}: not replicating after the restore"
        );
        drop(leases);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_and_retention_keeps_only_what_the_window_needs() {
    let leases = nines_testkit::lease_addresses(1).expect("leases");
    let addr = leases[0].addr();
    let ctl = Controller::start().await;
    let dir = DeployDir::new();
    let out = create_cluster(
        &ctl,
        "sch",
        "standalone",
        &addr,
        &dir.template(),
        &["--local"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // Bad schedules are refused naming the field.
    for (args, field) in [
        (vec!["--cron", "61 * * * *"], "cron"),
        (vec!["--cron", "0 3 * * *", "--tz", "Mars/Olympus"], "tz"),
        (
            vec!["--cron", "0 3 * * *", "--retention", "soon"],
            "retention",
        ),
    ] {
        let mut a = vec!["backup", "schedule", "create", "--cluster", "sch"];
        a.extend(args);
        let out = ctl.cli(&a);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains(&format!("field `{field}`")),
            "{}",
            stderr(&out)
        );
    }

    // Every 5 s, keeping a 2 s window: each backup lets the older ones go but the newest
    // full before the window.
    let s = ctl.json(&[
        "backup",
        "schedule",
        "create",
        "--cluster",
        "sch",
        "--cron",
        "*/5 * * * * *",
        "--retention",
        "2s",
    ]);
    let sid = s["id"].to_string();
    let scheduled = |ctl: &Controller| {
        ctl.json(&["job", "list", "--cluster", "sch"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["kind"] == "backup" && j["requested_by"] == "scheduler")
            .cloned()
            .collect::<Vec<Value>>()
    };
    let fired = wait_until(Duration::from_secs(90), || async {
        scheduled(&ctl)
            .iter()
            .filter(|j| j["state"] == "succeeded")
            .count()
            >= 3
    })
    .await;
    assert!(fired, "{:?}", scheduled(&ctl));
    let out = ctl.cli(&["backup", "schedule", "delete", &sid]);
    assert!(out.status.success(), "{}", stderr(&out));
    let idle = wait_until(Duration::from_secs(60), || async {
        scheduled(&ctl)
            .iter()
            .all(|j| j["state"] != "running" && j["state"] != "queued")
    })
    .await;
    assert!(idle);

    let taken = scheduled(&ctl)
        .iter()
        .filter(|j| j["state"] == "succeeded")
        .count();
    let list = ctl.json(&["backup", "list", "--cluster", "sch"]);
    let kept: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_i64().unwrap())
        .collect();
    assert!(
        !kept.is_empty() && kept.len() <= 2 && kept.len() < taken,
        "kept {kept:?} of {taken} taken"
    );
    // The repository holds exactly the kept backups.
    let mut stored: Vec<i64> = std::fs::read_dir(ctl.data_dir().join("backups/sch"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i64>().ok())
        .collect();
    stored.sort_unstable();
    let mut want = kept.clone();
    want.sort_unstable();
    assert_eq!(stored, want);
    let events = ctl.json(&["events", "--cluster", "sch", "--limit", "500"]);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "backup_purged"),
        "{events}"
    );
    drop(leases);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_in_time_restore_stops_exactly_between_two_writes() {
    use chrono::{DateTime, TimeZone, Utc};
    let (leases, addr, ctl, _dir) = standalone("pit").await;
    insert(&addr, 1, 10).await;
    let b = take(&ctl, "pit", &[]);
    assert_eq!(b["verified"], true, "{b}");

    // The first write; then, in a later second than it (binlogs keep whole seconds), the
    // time to restore to; then the second write, at or after that time.
    insert(&addr, 11, 11).await;
    let first_gtid = sql(&addr, "dba", ADMIN_PW, "SELECT @@gtid_binlog_pos")
        .await
        .unwrap()[0]
        .clone();
    let until: DateTime<Utc> = Utc
        .timestamp_opt(Utc::now().timestamp() + 2, 0)
        .single()
        .unwrap();
    let passed = wait_until(Duration::from_secs(5), || async { Utc::now() >= until }).await;
    assert!(passed);
    insert(&addr, 12, 12).await;
    let second_gtid = sql(&addr, "dba", ADMIN_PW, "SELECT @@gtid_binlog_pos")
        .await
        .unwrap()[0]
        .clone();
    let written = Utc::now();

    // The archive catches up: the window's latest point passes the second write and
    // stays within 10 s of now.
    let window = || ctl.json(&["backup", "window", "--cluster", "pit"]);
    let at = |v: &Value, k: &str| {
        DateTime::parse_from_rfc3339(v[k].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    let caught_up = wait_until(Duration::from_secs(30), || async {
        at(&window(), "latest") > written
    })
    .await;
    assert!(caught_up, "{}", window());
    let w = window();
    assert!((Utc::now() - at(&w, "latest")).num_seconds() <= 10, "{w}");
    assert!(at(&w, "earliest") <= at(&b, "finished_at"), "{w} {b}");

    // A time before the backup, and one past the archive, are refused naming `until`.
    let id = b["id"].to_string();
    for bad in ["2020-01-01T00:00:00Z", "2999-01-01T00:00:00Z", "yesterday"] {
        let out = ctl.cli(&[
            "backup",
            "restore",
            &id,
            "--cluster",
            "pit",
            "--force",
            "--until",
            bad,
        ]);
        assert!(!out.status.success(), "{bad}");
        assert!(
            stderr(&out).contains("field `until`"),
            "{bad}: {}",
            stderr(&out)
        );
    }

    // To the time between the writes: exactly the first.
    let out = ctl.cli(&[
        "backup",
        "restore",
        &id,
        "--cluster",
        "pit",
        "--force",
        "--until",
        &until.to_rfc3339(),
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(ids(&addr).await, range(1, 11));

    // To a GTID position: the first write's, then the second's.
    for (gtid, last) in [(&first_gtid, 11), (&second_gtid, 12)] {
        let out = ctl.cli(&[
            "backup",
            "restore",
            &id,
            "--cluster",
            "pit",
            "--force",
            "--until-gtid",
            gtid,
            "--wait",
        ]);
        assert!(
            out.status.success(),
            "{gtid}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(ids(&addr).await, range(1, last), "until GTID {gtid}");
    }
    drop(leases);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binlog_archive_follows_a_failover_and_a_restore_replays_both_primaries() {
    use chrono::{DateTime, Utc};
    let (leases, addrs, ctl, dir) = deployed("fo", "replication", 3, &[]).await;
    insert(&addrs[0], 1, 10).await;
    let healthy = || async {
        ctl.cluster("fo")
            .await
            .is_some_and(|c| c["state"] == "healthy")
    };
    assert!(wait_until(Duration::from_secs(30), healthy).await);
    let b = take(&ctl, "fo", &[]);
    assert_eq!(b["verified"], true, "{b}");
    insert(&addrs[0], 11, 20).await;

    // The primary dies; nines fails over; the new primary takes the next writes.
    assert!(common::wait_failover_armed(&ctl, "fo").await);
    common::kill_9_node(&dir, &addrs[0]);
    let new_primary = || async {
        ctl.nodes("fo")
            .await
            .into_iter()
            .find(|n| {
                n["role"] == "primary"
                    && n["state"] == "online"
                    && n["address"] != format!("{}:3306", addrs[0])
            })
            .and_then(|n| {
                n["address"]
                    .as_str()
                    .map(|a| a.trim_end_matches(":3306").to_string())
            })
    };
    let promoted = wait_until(Duration::from_secs(60), || async {
        new_primary().await.is_some()
    })
    .await;
    assert!(promoted, "{:?}", ctl.nodes("fo").await);
    let primary = new_primary().await.unwrap();
    insert(&primary, 21, 30).await;
    let written = Utc::now();
    let last_gtid = sql(&primary, "dba", ADMIN_PW, "SELECT @@gtid_binlog_pos")
        .await
        .unwrap()[0]
        .clone();
    // The archive follows the new primary and catches up past its writes.
    let caught_up = wait_until(Duration::from_secs(60), || async {
        let w = ctl.json(&["backup", "window", "--cluster", "fo"]);
        w["latest"]
            .as_str()
            .and_then(|l| DateTime::parse_from_rfc3339(l).ok())
            .is_some_and(|l| l.with_timezone(&Utc) > written)
    })
    .await;
    assert!(
        caught_up,
        "{}",
        ctl.json(&["backup", "window", "--cluster", "fo"])
    );
    // Once the old primary is back as a replica, restore the backup rolled forward to
    // the last write: every row of both primaries, once, on every node.
    assert!(
        wait_until(Duration::from_secs(90), healthy).await,
        "{:?}",
        ctl.cluster("fo").await
    );
    let out = ctl.cli(&[
        "backup",
        "restore",
        &b["id"].to_string(),
        "--cluster",
        "fo",
        "--force",
        "--until-gtid",
        &last_gtid,
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        all_agree(&addrs, &range(1, 30)).await,
        "not every row on every node"
    );
    drop(leases);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_replica_is_provisioned_from_a_stored_backup() {
    let leases = nines_testkit::lease_addresses(3).expect("leases");
    let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let ctl = Controller::start().await;
    let dir = DeployDir::new();
    let out = create_cluster(
        &ctl,
        "nr",
        "replication",
        &addrs[..2].join(","),
        &dir.template(),
        &["--local"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    sql(
        &addrs[0],
        "dba",
        ADMIN_PW,
        "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(64))",
    )
    .await
    .expect("schema");
    insert(&addrs[0], 1, 50).await;
    let healthy = wait_until(Duration::from_secs(30), || async {
        ctl.cluster("nr")
            .await
            .is_some_and(|c| c["state"] == "healthy")
    })
    .await;
    assert!(healthy);
    let b = take(&ctl, "nr", &[]);
    let logical = take(&ctl, "nr", &["--method", "logical"]);
    // Rows written after the backup reach the new replica by replication.
    insert(&addrs[0], 51, 60).await;

    let new_node = format!("{}:3306", addrs[2]);
    // A logical backup cannot make a replica; the refusal names the field.
    let out = ctl.cli(&[
        "node",
        "add",
        "--cluster",
        "nr",
        "--node",
        &new_node,
        "--from-backup",
        &logical["id"].to_string(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("field `from_backup`"),
        "{}",
        stderr(&out)
    );

    let out = ctl.cli(&[
        "node",
        "add",
        "--cluster",
        "nr",
        "--node",
        &new_node,
        "--from-backup",
        &b["id"].to_string(),
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains(&format!("restoring backup {}", b["id"])),
        "{}",
        stdout(&out)
    );
    assert!(
        all_agree(&addrs, &range(1, 60)).await,
        "the new replica does not hold every row"
    );
    insert(&addrs[0], 61, 70).await;
    assert!(
        all_agree(&addrs, &range(1, 70)).await,
        "the new replica does not replicate"
    );
    drop(leases);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_during_a_backup_is_not_delayed_by_it() {
    // The backup is held open at its stream (a test hold point) while the primary dies.
    let hold = tempfile::tempdir().unwrap();
    let release = hold.path().join("release");
    let release_s = release.display().to_string();
    let (leases, addrs, ctl, dir) = deployed(
        "fb",
        "replication",
        3,
        &[
            ("NINES_PAUSE_POINT", "backup_stream"),
            ("NINES_PAUSE_RELEASE", &release_s),
        ],
    )
    .await;
    insert(&addrs[0], 1, 10).await;
    assert!(common::wait_failover_armed(&ctl, "fb").await);

    let out = ctl.cli(&["backup", "create", "--cluster", "fb"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let job = |kind: &str| {
        ctl.json(&["job", "list", "--cluster", "fb"])
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["kind"] == kind)
            .cloned()
    };
    let held = wait_until(Duration::from_secs(30), || async {
        ctl.json(&["backup", "list", "--cluster", "fb"])
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["state"] == "running")
    })
    .await;
    assert!(held, "{:?}", job("backup"));

    common::kill_9_node(&dir, &addrs[0]);
    let failed_over = wait_until(Duration::from_secs(30), || async {
        job("failover").is_some_and(|j| j["state"] == "succeeded")
    })
    .await;
    assert!(failed_over, "{:?} {:?}", job("failover"), job("backup"));
    // The backup still runs: the failover did not wait for it.
    assert_eq!(job("backup").unwrap()["state"], "running");

    std::fs::write(&release, b"go").unwrap();
    let done = wait_until(Duration::from_secs(60), || async {
        job("backup").is_some_and(|j| j["state"] == "succeeded" || j["state"] == "failed")
    })
    .await;
    assert!(done);
    let (b, f) = (job("backup").unwrap(), job("failover").unwrap());
    assert_eq!(b["state"], "succeeded", "{b}");
    let at =
        |j: &Value, k: &str| chrono::DateTime::parse_from_rfc3339(j[k].as_str().unwrap()).unwrap();
    assert!(at(&f, "started_at") > at(&b, "started_at"), "{f} {b}");
    assert!(at(&f, "finished_at") < at(&b, "finished_at"), "{f} {b}");
    let backups = ctl.json(&["backup", "list", "--cluster", "fb"]);
    assert_eq!(backups[0]["state"], "completed", "{backups}");
    assert_eq!(backups[0]["verified"], true, "{backups}");
    drop(leases);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_cluster_is_backed_up_archived_and_restored_onto_a_new_server() {
    use nines_testkit::ReplicationTopology;
    let topo = ReplicationTopology::start(1, false)
        .await
        .expect("topology");
    let p = topo.primary();
    // The account nines is registered with has only what docs/backups.md lists.
    let ops_pw = "ops-backup-pw-31";
    for stmt in [
        "CREATE DATABASE app".to_string(),
        "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB".to_string(),
        format!("CREATE USER 'ops'@'%' IDENTIFIED BY '{ops_pw}'"),
        "GRANT SELECT, RELOAD, PROCESS, LOCK TABLES, SHOW VIEW, TRIGGER, EVENT, \
         BINLOG MONITOR, REPLICA MONITOR, REPLICATION MASTER ADMIN ON *.* TO 'ops'@'%'"
            .to_string(),
    ] {
        p.exec(&stmt).await.expect("setup");
    }
    let insert_at = |from: u32, to: u32| {
        let values: Vec<String> = (from..=to)
            .map(|i| format!("({i}, '{MARKER}-{i}')"))
            .collect();
        format!("INSERT INTO app.t VALUES {}", values.join(","))
    };
    p.exec(&insert_at(1, 50)).await.expect("insert");
    let ctl = Controller::start().await;
    let pw = common::password_file(ctl.data_dir(), ops_pw);
    let out = ctl.import("imp", &p.endpoint(), "ops", &pw, &["--local"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("registered replication cluster `imp` with 2 nodes"),
        "{}",
        stdout(&out)
    );
    let healthy = wait_until(Duration::from_secs(20), || async {
        ctl.cluster("imp")
            .await
            .is_some_and(|c| c["state"] == "healthy")
    })
    .await;
    assert!(healthy, "{:?}", ctl.cluster("imp").await);

    // A physical backup is read from the replica (never the primary unless asked), through
    // the registered account over TCP; checked at once (prepared beside the replica's data).
    let full = take(&ctl, "imp", &[]);
    assert_eq!(full["state"], "completed", "{full}");
    assert_eq!(
        full["node"],
        topo.replica(0).endpoint(),
        "{full} {}",
        stdout(&ctl.cli(&["job", "logs", &full["job_id"].to_string()]))
            + &ctl.json(&["node", "list", "--cluster", "imp"]).to_string()
    );
    assert_eq!(full["verified"], true, "{full}");
    assert!(
        !full["gtid_position"].as_str().unwrap_or("").is_empty(),
        "{full}"
    );
    let logical = take(&ctl, "imp", &["--method", "logical"]);
    assert_eq!(logical["state"], "completed", "{logical}");
    assert_eq!(logical["verified"], true, "{logical}");
    // The password went to the tools on their standard input: no job log shows it.
    for b in [&full, &logical] {
        let out = ctl.cli(&["job", "show", &b["job_id"].to_string()]);
        assert!(!stdout(&out).contains(ops_pw), "{}", stdout(&out));
    }

    // nines does not own the imported servers' services: a restore onto them is refused,
    // saying where a backup can go instead, and nothing is touched.
    let id = full["id"].to_string();
    let out = ctl.cli(&[
        "backup",
        "restore",
        &id,
        "--cluster",
        "imp",
        "--force",
        "--wait",
    ]);
    assert!(!out.status.success());
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(said.contains("was imported"), "{said}");
    let count: Option<u64> = p.query_first("SELECT COUNT(*) FROM app.t").await.unwrap();
    assert_eq!(count, Some(50));

    // The primary's binlogs are archived: a later write is inside the window.
    p.exec(&insert_at(51, 60)).await.expect("insert");
    let written = chrono::Utc::now();
    let latest = || {
        let w = ctl.json(&["backup", "window", "--cluster", "imp"]);
        w["latest"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let caught_up = wait_until(Duration::from_secs(30), || async {
        latest().is_some_and(|t| t > written)
    })
    .await;
    assert!(caught_up, "{:?}", latest());

    // Onto a new standalone server nines deploys: the backup, rolled forward to the last
    // write through the imported primary's archived binlogs.
    let lease = nines_testkit::lease_addresses(1).expect("lease");
    let addr = lease[0].addr();
    let dir = DeployDir::new();
    let out = create_cluster(
        &ctl,
        "copy",
        "standalone",
        &addr,
        &dir.template(),
        &["--local"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let gtid: Option<String> = p.query_first("SELECT @@gtid_binlog_pos").await.unwrap();
    let out = ctl.cli(&[
        "backup",
        "restore",
        &id,
        "--cluster",
        "copy",
        "--force",
        "--until-gtid",
        &gtid.unwrap(),
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // The rows, and the imported cluster's own accounts, came with the backup; nines's
    // accounts of `copy` were put back, so it still watches the restored server.
    let rows = sql(&addr, "ops", ops_pw, "SELECT id FROM app.t ORDER BY id")
        .await
        .expect("select as the imported account");
    let got: Vec<u32> = rows.iter().map(|r| r.parse().unwrap()).collect();
    assert_eq!(got, range(1, 60));
    assert_eq!(ids(&addr).await, range(1, 60));
    let watched = wait_until(Duration::from_secs(15), || async {
        ctl.cluster("copy")
            .await
            .is_some_and(|c| c["state"] == "healthy")
    })
    .await;
    assert!(watched, "{:?}", ctl.cluster("copy").await);
    drop(lease);
}
