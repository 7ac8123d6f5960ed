//! The parsers of `nines_access::server::parse` against recorded SHOW output.
//!
//! Fixtures live in `tests/fixtures/` (see its README.md): the MariaDB 10.11 and Galera
//! ones were captured from real servers with `mariadb -E`; the MySQL 8.0/8.4 ones are
//! written by hand from the documented column lists (marked so in their header).
//!
//! Format: vertical output as `mariadb -E` / `mysql ... \G` prints it,
//!
//! ```text
//! *************************** 1. row ***************************
//!       Column_name: value
//! Other_column_name: first line of a multi-line value,
//! continuation line
//! ```
//!
//! Column names are right-aligned, so within one row every `Name: ` has its colon in the
//! same place; a line without a name there continues the previous value (MySQL wraps
//! GTID sets after each comma). `NULL` is SQL NULL. Lines before the first row header
//! that start with `#` are comments.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use nines_access::server::parse::{
    Grastate, Row, VarMap, parse_grastate, parse_processlist_binlog_dumps, parse_replica_status,
    parse_version, parse_wsrep, parse_wsrep_recover, parse_wsrep_recover_gtid, status_counter,
    var_bool, var_map, var_str,
};
use nines_model::gtid::{GtidSet, MariaDbGtid, MariaDbGtidPos, MySqlGtidSet};
use nines_model::replication::{Flavor, IoThreadState, ReplicaStatus, WsrepStatus};

// --- loader ---------------------------------------------------------------------------

fn fixture(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Rows of vertical output, values exactly as printed (`NULL` kept as text).
fn vertical_raw(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut rows: Vec<BTreeMap<String, String>> = Vec::new();
    let mut colon: Option<usize> = None;
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("***") && line.contains(". row ") && line.ends_with("***") {
            rows.push(BTreeMap::new());
            colon = None;
            last = None;
            continue;
        }
        let Some(row) = rows.last_mut() else {
            assert!(
                line.starts_with('#') || line.trim().is_empty(),
                "text before the first row: {line:?}"
            );
            continue;
        };
        let at = *colon.get_or_insert_with(|| line.find(':').expect("a `Name: value` line"));
        let name = line.get(..at).map(str::trim_start);
        let is_column = line.as_bytes().get(at) == Some(&b':')
            && matches!(line.as_bytes().get(at + 1), None | Some(b' '))
            && name.is_some_and(|n| {
                !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
        if is_column {
            let name = name.expect("checked").to_owned();
            let value = line.get(at + 2..).unwrap_or_default().to_owned();
            assert!(
                row.insert(name.clone(), value).is_none(),
                "column {name} twice in a row"
            );
            last = Some(name);
        } else {
            let col = last.as_ref().expect("a continuation line after a column");
            let value = row.get_mut(col).expect("the previous column");
            value.push('\n');
            value.push_str(line);
        }
    }
    rows
}

/// Rows of vertical output for the parsers: `NULL` becomes None.
fn rows(path: &str) -> Vec<Row> {
    vertical_raw(&fixture(path))
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|(k, v)| {
                    let v = (v != "NULL").then_some(v);
                    (k, v)
                })
                .collect()
        })
        .collect()
}

/// A `Variable_name` / `Value` result as a [`VarMap`].
fn vars(path: &str) -> VarMap {
    var_map(vertical_raw(&fixture(path)).into_iter().map(|mut r| {
        let name = r.remove("Variable_name").expect("Variable_name column");
        let value = r.remove("Value").expect("Value column");
        (name, value)
    }))
}

/// One-row result as column -> value.
fn single(path: &str) -> BTreeMap<String, String> {
    let mut r = vertical_raw(&fixture(path));
    assert_eq!(r.len(), 1, "{path}");
    r.remove(0)
}

fn replicas(path: &str) -> Vec<ReplicaStatus> {
    parse_replica_status(&rows(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn loader_handles_continuations_and_nulls() {
    let r = rows("mysql-8.0/show_replica_status_two_channels.txt");
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].len(), 60);
    assert_eq!(r[0]["SQL_Remaining_Delay"], None);
    assert_eq!(r[0]["Channel_Name"].as_deref(), Some(""));
    assert_eq!(
        r[0]["Executed_Gtid_Set"].as_deref(),
        Some(
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-3211,\n\
             4a6f2e31-62c1-11ee-8c99-0242ac120002:1-27,\n\
             8d1a4b0c-9f2e-11ee-a1b2-0242ac120003:1-5"
        )
    );
    assert_eq!(r[0]["Auto_Position"].as_deref(), Some("1"));
    let m = rows("mariadb-10.11/show_all_slaves_status_healthy.txt");
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].len(), 62);
    assert_eq!(m[0]["SQL_Remaining_Delay"], None);
}

// --- versions -------------------------------------------------------------------------

#[test]
fn versions_from_fixtures() {
    let cases = [
        (
            "mariadb-10.11/primary_select_version_gtid.txt",
            Flavor::MariaDb,
            (10, 11, 19),
        ),
        (
            "galera-mariadb-10.11/node1_single_select_version_gtid.txt",
            Flavor::MariaDb,
            (10, 11, 19),
        ),
        ("mysql-8.0/select_version.txt", Flavor::MySql, (8, 0, 36)),
        ("mysql-8.4/select_version.txt", Flavor::MySql, (8, 4, 2)),
    ];
    for (path, flavor, (major, minor, patch)) in cases {
        let r = single(path);
        let v = parse_version(&r["version"], &r["version_comment"]);
        assert_eq!(v.flavor, flavor, "{path}");
        assert_eq!((v.major, v.minor, v.patch), (major, minor, patch), "{path}");
        assert_eq!(v.text, r["version"], "{path}");
    }
    let r = single("mariadb-10.11/primary_select_version_gtid.txt");
    assert_eq!(r["version"], "10.11.19-MariaDB-0+deb12u1-log");
    assert_eq!(r["version_comment"], "Debian 12");
    // The same server as seen through the protocol greeting.
    let v = parse_version(&format!("5.5.5-{}", r["version"]), "");
    assert_eq!(
        (v.flavor, v.major, v.minor, v.patch),
        (Flavor::MariaDb, 10, 11, 19)
    );
}

// --- replica status: MariaDB (real) ----------------------------------------------------

#[test]
fn mariadb_all_slaves_status_healthy() {
    let r = replicas("mariadb-10.11/show_all_slaves_status_healthy.txt");
    assert_eq!(
        r,
        vec![ReplicaStatus {
            channel: String::new(),
            source_host: "127.0.0.5".into(),
            source_port: 3306,
            io_state: IoThreadState::Running,
            sql_running: true,
            seconds_behind: Some(0),
            last_io_errno: 0,
            last_io_error: String::new(),
            last_sql_errno: 0,
            last_sql_error: String::new(),
            using_gtid: "Slave_Pos".into(),
            received_gtids: "1-1-1,0-1-5".into(),
            executed_gtids: String::new(),
            sql_delay: 0,
            source_server_id: 1,
            heartbeat_period: Some(5.0),
            received_heartbeats: Some(3),
            exec_source_log_file: "mariadb-bin.000001".into(),
            exec_source_log_pos: 1428,
            read_source_log_file: "mariadb-bin.000001".into(),
            read_source_log_pos: 1428,
        }]
    );
    // The replica has applied everything it received, and matches the primary.
    let replica = single("mariadb-10.11/replica_select_version_gtid.txt");
    let primary = single("mariadb-10.11/primary_select_version_gtid.txt");
    let received = MariaDbGtidPos::parse(&r[0].received_gtids).unwrap();
    let slave_pos = MariaDbGtidPos::parse(&replica["gtid_slave_pos"]).unwrap();
    let primary_pos = MariaDbGtidPos::parse(&primary["gtid_binlog_pos"]).unwrap();
    assert_eq!(received, slave_pos);
    assert_eq!(received.to_string(), "0-1-5,1-1-1");
    assert!(slave_pos.contains(&primary_pos) && primary_pos.contains(&slave_pos));
    assert!(
        MariaDbGtidPos::parse(&primary["gtid_slave_pos"])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn mariadb_all_slaves_status_broken() {
    let r = replicas("mariadb-10.11/show_all_slaves_status_broken.txt");
    assert_eq!(r.len(), 2);

    // Default connection: the applier stopped on a duplicate key.
    let d = &r[0];
    assert_eq!(d.channel, "");
    assert_eq!((d.source_host.as_str(), d.source_port), ("127.0.0.5", 3306));
    assert_eq!(d.io_state, IoThreadState::Running);
    assert!(!d.sql_running);
    assert_eq!(d.seconds_behind, None);
    assert_eq!(d.last_sql_errno, 1062);
    assert!(
        d.last_sql_error
            .contains("Duplicate entry '10' for key 'PRIMARY'"),
        "{}",
        d.last_sql_error
    );
    assert_eq!((d.last_io_errno, d.last_io_error.as_str()), (0, ""));
    assert_eq!(d.using_gtid, "Slave_Pos");
    assert_eq!(d.received_gtids, "1-1-1,0-1-7");
    assert_eq!(d.read_source_log_pos, 1882);
    assert_eq!(d.exec_source_log_pos, 1428);
    assert_eq!(d.received_heartbeats, Some(4));
    assert_eq!(d.source_server_id, 1);

    // Named connection to a port where nothing listens.
    let n = &r[1];
    assert_eq!(n.channel, "dead");
    assert_eq!(n.source_port, 3399);
    assert_eq!(n.io_state, IoThreadState::Connecting);
    assert!(n.sql_running);
    assert_eq!(n.seconds_behind, None);
    assert_eq!(n.last_io_errno, 2003);
    assert!(n.last_io_error.contains("Connection refused"));
    assert_eq!(n.using_gtid, "Current_Pos");
    assert_eq!(n.source_server_id, 0);
    assert_eq!(n.heartbeat_period, Some(30.0));
    assert_eq!(n.read_source_log_file, "");
    assert_eq!(
        (n.exec_source_log_file.as_str(), n.exec_source_log_pos),
        ("", 4)
    );

    // The local write that caused it shows as an errant transaction: the replica's
    // current position has a GTID of its own (server 2) beyond what it replicated.
    let s = single("mariadb-10.11/replica_broken_select_version_gtid.txt");
    let current = MariaDbGtidPos::parse(&s["gtid_current_pos"]).unwrap();
    let slave = MariaDbGtidPos::parse(&s["gtid_slave_pos"]).unwrap();
    assert_eq!(current.ahead_of(&slave), vec![MariaDbGtid::new(0, 2, 6)]);
    let received = MariaDbGtidPos::parse(&d.received_gtids).unwrap();
    assert!(received.contains(&slave));
    assert!(!slave.contains(&received));
    assert_eq!(received.difference(&slave).to_string(), "0-1-7");
}

#[test]
fn mariadb_show_slave_status_without_connection_name() {
    let r = replicas("mariadb-10.11/show_slave_status_broken.txt");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].channel, "");
    assert_eq!(r[0].last_sql_errno, 1062);
    assert_eq!(r[0].received_gtids, "1-1-1,0-1-7");
    // SHOW SLAVE STATUS has no heartbeat columns: defaults.
    assert_eq!(r[0].heartbeat_period, None);
    assert_eq!(r[0].received_heartbeats, None);
}

#[test]
fn mariadb_primary_has_no_replication() {
    assert!(rows("mariadb-10.11/show_all_slaves_status_primary_empty.txt").is_empty());
    assert!(replicas("mariadb-10.11/show_all_slaves_status_primary_empty.txt").is_empty());
}

// --- replica status: MySQL (from documentation) ---------------------------------------

const U_A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

#[test]
fn mysql80_replica_status_two_channels() {
    let r = replicas("mysql-8.0/show_replica_status_two_channels.txt");
    let executed = format!(
        "{U_A}:1-3211,4a6f2e31-62c1-11ee-8c99-0242ac120002:1-27,\
         8d1a4b0c-9f2e-11ee-a1b2-0242ac120003:1-5"
    );
    assert_eq!(
        r[0],
        ReplicaStatus {
            channel: String::new(),
            source_host: "10.0.0.11".into(),
            source_port: 3306,
            io_state: IoThreadState::Running,
            sql_running: true,
            seconds_behind: Some(0),
            last_io_errno: 0,
            last_io_error: String::new(),
            last_sql_errno: 0,
            last_sql_error: String::new(),
            using_gtid: "Yes".into(),
            received_gtids: format!("{U_A}:1285-3211"),
            executed_gtids: executed.clone(),
            sql_delay: 0,
            source_server_id: 11,
            heartbeat_period: None,
            received_heartbeats: None,
            exec_source_log_file: "binlog.000012".into(),
            exec_source_log_pos: 48211937,
            read_source_log_file: "binlog.000012".into(),
            read_source_log_pos: 48211937,
        }
    );
    let dc2 = &r[1];
    assert_eq!(dc2.channel, "dc2");
    assert_eq!(dc2.source_host, "10.1.0.21");
    assert_eq!(dc2.io_state, IoThreadState::Connecting);
    assert!(dc2.sql_running);
    assert_eq!(dc2.seconds_behind, None);
    assert_eq!(dc2.last_io_errno, 2003);
    assert!(dc2.last_io_error.starts_with("error connecting to source"));
    assert_eq!(dc2.sql_delay, 3600);
    assert_eq!(dc2.received_gtids, "");
    assert_eq!(dc2.executed_gtids, executed);

    let set = MySqlGtidSet::parse(&r[0].executed_gtids).unwrap();
    assert_eq!(set.count(), 3211 + 27 + 5);
    assert_eq!(set.to_string(), executed);
    let received = MySqlGtidSet::parse(&r[0].received_gtids).unwrap();
    assert!(set.contains(&received));
    assert!(MySqlGtidSet::parse(&dc2.received_gtids).unwrap().is_empty());
}

#[test]
fn mysql80_show_slave_status_old_names() {
    let r = replicas("mysql-8.0/show_slave_status_sql_error.txt");
    assert_eq!(r.len(), 1);
    let s = &r[0];
    assert_eq!(s.channel, "");
    assert_eq!(
        (s.source_host.as_str(), s.source_port),
        ("db1.example.internal", 3307)
    );
    assert_eq!(s.io_state, IoThreadState::Running);
    assert!(!s.sql_running);
    assert_eq!(s.seconds_behind, None);
    assert_eq!(s.last_sql_errno, 1062);
    assert!(s.last_sql_error.contains(&format!("'{U_A}:3212'")));
    assert_eq!(s.using_gtid, "No");
    assert_eq!(s.source_server_id, 11);
    assert_eq!(
        (s.read_source_log_pos, s.exec_source_log_pos),
        (48212290, 48211937)
    );
    // The transaction that failed: received but not executed.
    let received = MySqlGtidSet::parse(&s.received_gtids).unwrap();
    let executed = MySqlGtidSet::parse(&s.executed_gtids).unwrap();
    assert_eq!(
        received.difference(&executed).to_string(),
        format!("{U_A}:3212")
    );
}

#[test]
fn mysql84_replica_status_tagged_gtids() {
    let r = replicas("mysql-8.4/show_replica_status.txt");
    assert_eq!(r.len(), 1);
    let s = &r[0];
    assert_eq!(
        (s.source_host.as_str(), s.source_port),
        ("mysql-a.db.svc", 3306)
    );
    assert_eq!(s.io_state, IoThreadState::Running);
    assert!(s.sql_running);
    assert_eq!(s.seconds_behind, Some(3));
    assert_eq!(s.using_gtid, "Yes");
    assert_eq!(s.source_server_id, 101);
    assert_eq!(s.read_source_log_file, "mysql-a-bin.000003");
    assert_eq!(
        (s.read_source_log_pos, s.exec_source_log_pos),
        (912873, 910544)
    );
    let u = "9b2c2c7e-3c1a-11ef-8a55-0242ac130004";
    assert_eq!(s.received_gtids, format!("{u}:100-120:maint:1-2"));
    assert_eq!(
        s.executed_gtids,
        format!("{u}:1-118:maint:1-2,b5d6e7f8-3c1b-11ef-9f10-0242ac130005:1-9")
    );
    let received = GtidSet::parse(Flavor::MySql, &s.received_gtids).unwrap();
    let executed = GtidSet::parse(Flavor::MySql, &s.executed_gtids).unwrap();
    // Two received transactions are not applied yet.
    let pending = received.difference(&executed).unwrap();
    assert_eq!(pending.to_string(), format!("{u}:119-120"));
    assert!(!executed.contains(&received).unwrap());
    let m = pending.as_mysql().unwrap();
    assert_eq!(m.count(), 2);
    assert!(m.contains_gtid(u, None, 120));
    assert!(
        MySqlGtidSet::parse(&s.executed_gtids)
            .unwrap()
            .contains_gtid(u, Some("MAINT"), 2)
    );
}

// --- processlist ----------------------------------------------------------------------

#[test]
fn binlog_dump_clients() {
    assert_eq!(
        parse_processlist_binlog_dumps(&rows("mariadb-10.11/show_processlist_primary.txt")),
        vec!["127.0.0.1".to_owned()]
    );
    // information_schema.PROCESSLIST names its columns in capitals.
    assert_eq!(
        parse_processlist_binlog_dumps(&rows(
            "mariadb-10.11/information_schema_processlist_primary.txt"
        )),
        vec!["127.0.0.1".to_owned()]
    );
    assert_eq!(
        parse_processlist_binlog_dumps(&rows("mysql-8.0/show_processlist_source.txt")),
        vec![
            "10.0.0.12".to_owned(),
            "10.0.0.13".to_owned(),
            "db4.example.internal".to_owned()
        ]
    );
}

// --- status and variables -------------------------------------------------------------

#[test]
fn global_status_counters() {
    let st = vars("mariadb-10.11/show_global_status_primary.txt");
    assert!(st.len() > 500, "{}", st.len());
    assert_eq!(status_counter(&st, "Uptime"), Some(28));
    assert_eq!(status_counter(&st, "Threads_connected"), Some(2));
    assert_eq!(status_counter(&st, "slaves_connected"), Some(1));
    assert_eq!(status_counter(&st, "Com_insert"), Some(2));
    assert_eq!(status_counter(&st, "Binlog_snapshot_position"), Some(1428));
    assert_eq!(status_counter(&st, "Binlog_snapshot_file"), None);
    assert_eq!(status_counter(&st, "No_such_counter"), None);
    assert_eq!(
        var_str(&st, "binlog_snapshot_file"),
        Some("mariadb-bin.000001")
    );
    assert_eq!(var_bool(&st, "Rpl_semi_sync_master_status"), Some(false));

    let v = vars("mariadb-10.11/show_global_variables_replica_selected.txt");
    assert_eq!(var_bool(&v, "read_only"), Some(true));
    assert_eq!(var_bool(&v, "log_bin"), Some(true));
    assert_eq!(var_bool(&v, "LOG_SLAVE_UPDATES"), Some(true));
    assert_eq!(var_bool(&v, "gtid_strict_mode"), Some(false));
    assert_eq!(status_counter(&v, "server_id"), Some(2));
    assert_eq!(status_counter(&v, "port"), Some(3307));
    assert_eq!(var_str(&v, "report_host"), Some("127.0.0.5"));
}

// --- Galera ---------------------------------------------------------------------------

fn wsrep(dir: &str, status: &str, variables: &str) -> WsrepStatus {
    parse_wsrep(
        &vars(&format!("{dir}/{status}")),
        &vars(&format!("{dir}/{variables}")),
    )
}

#[test]
fn wsrep_on_a_plain_server() {
    let w = wsrep(
        "mariadb-10.11",
        "show_global_status_wsrep_standalone.txt",
        "show_global_variables_wsrep_standalone.txt",
    );
    assert_eq!(
        w,
        WsrepStatus {
            enabled: false,
            local_state: String::new(),
            cluster_status: "Disconnected".into(),
            cluster_size: 0,
            cluster_state_uuid: String::new(),
            last_committed: -1,
            ready: false,
            connected: false,
            incoming_addresses: vec![],
            recv_queue: 0,
            flow_control_paused: 0.0,
        }
    );
    assert!(!w.is_primary_component());
}

#[test]
fn wsrep_single_node_cluster() {
    let w = wsrep(
        "galera-mariadb-10.11",
        "node1_single_show_global_status_wsrep.txt",
        "node1_single_show_global_variables_wsrep.txt",
    );
    assert_eq!(
        w,
        WsrepStatus {
            enabled: true,
            local_state: "Synced".into(),
            cluster_status: "Primary".into(),
            cluster_size: 1,
            cluster_state_uuid: "5611f113-e7cf-11f1-ac6a-ae103769cd24".into(),
            last_committed: 4,
            ready: true,
            connected: true,
            incoming_addresses: vec!["127.0.0.5:3308".into()],
            recv_queue: 0,
            flow_control_paused: 0.0,
        }
    );
    assert!(w.is_primary_component() && w.is_synced());
}

#[test]
fn wsrep_two_node_cluster() {
    let dir = "galera-mariadb-10.11";
    let both = vec!["127.0.0.5:3308".to_owned(), "127.0.0.5:3309".to_owned()];
    for (status, variables) in [
        (
            "node1_of_2_show_global_status_wsrep.txt",
            "node1_of_2_show_global_variables_wsrep.txt",
        ),
        (
            "node2_of_2_show_global_status_wsrep.txt",
            "node2_of_2_show_global_variables_wsrep.txt",
        ),
    ] {
        let w = wsrep(dir, status, variables);
        assert!(w.enabled, "{status}");
        assert_eq!(w.cluster_size, 2, "{status}");
        assert_eq!(w.incoming_addresses, both, "{status}");
        assert_eq!(w.cluster_state_uuid, "6e0ff0b3-e7cf-11f1-b5c9-ee5ab0640b4c");
        assert_eq!(w.last_committed, 4);
        assert!(w.is_primary_component() && w.is_synced() && w.ready && w.connected);
    }
    // Node 1 shut down: node 2 carries on alone (and committed one more event).
    let w = wsrep(
        dir,
        "node2_after_node1_left_show_global_status_wsrep.txt",
        "node2_of_2_show_global_variables_wsrep.txt",
    );
    assert_eq!(w.cluster_size, 1);
    assert_eq!(w.incoming_addresses, vec!["127.0.0.5:3309".to_owned()]);
    assert_eq!(w.last_committed, 5);
    assert!(w.is_primary_component());
    // The same status read with the wsrep variables of a plain server: not enabled.
    let plain = wsrep(
        dir,
        "node2_after_node1_left_show_global_status_wsrep.txt",
        "../mariadb-10.11/show_global_variables_wsrep_standalone.txt",
    );
    assert!(!plain.enabled);
}

#[test]
fn grastate_files() {
    let cases = [
        (
            "grastate_running.dat",
            "5611f113-e7cf-11f1-ac6a-ae103769cd24",
            -1,
            true,
        ),
        (
            "grastate_clean_shutdown.dat",
            "5611f113-e7cf-11f1-ac6a-ae103769cd24",
            4,
            true,
        ),
        (
            "grastate_after_kill9.dat",
            "5611f113-e7cf-11f1-ac6a-ae103769cd24",
            -1,
            true,
        ),
        (
            "grastate_node1_left_first.dat",
            "6e0ff0b3-e7cf-11f1-b5c9-ee5ab0640b4c",
            4,
            false,
        ),
        (
            "grastate_node2_left_last.dat",
            "6e0ff0b3-e7cf-11f1-b5c9-ee5ab0640b4c",
            5,
            true,
        ),
    ];
    for (file, uuid, seqno, safe) in cases {
        let g = parse_grastate(&fixture(&format!("galera-mariadb-10.11/{file}")));
        assert_eq!(
            g,
            Grastate {
                uuid: uuid.into(),
                seqno,
                safe_to_bootstrap: Some(safe)
            },
            "{file}"
        );
    }
}

#[test]
fn wsrep_recover_output() {
    let clean = fixture("galera-mariadb-10.11/wsrep_recover_after_clean_shutdown.log");
    assert_eq!(
        parse_wsrep_recover(&clean),
        Some(("5611f113-e7cf-11f1-ac6a-ae103769cd24".to_owned(), 4))
    );
    assert_eq!(parse_wsrep_recover_gtid(&clean).as_deref(), Some("9-3-3"));
    // After kill -9 grastate.dat says -1; recovery finds the real position in InnoDB.
    let crashed = fixture("galera-mariadb-10.11/wsrep_recover_after_kill9.log");
    assert_eq!(
        parse_wsrep_recover(&crashed),
        Some(("5611f113-e7cf-11f1-ac6a-ae103769cd24".to_owned(), 7))
    );
    assert_eq!(parse_wsrep_recover_gtid(&crashed).as_deref(), Some("0-0-0"));
    assert_eq!(
        parse_wsrep_recover(&fixture("galera-mariadb-10.11/grastate_running.dat")),
        None
    );
}
