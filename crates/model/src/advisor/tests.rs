//! A table test per built-in rule: facts in, the rule's verdict out.

use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::api::HostStatus;
use crate::replication::{IoThreadState, ReplicaStatus};

fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + s, 0).single().unwrap()
}

/// A sample at `t(at)` with variables and status counters.
fn sample(at: i64, vars: &[(&str, &str)], status: &[(&str, f64)]) -> AdvisorSample {
    AdvisorSample {
        at: t(at),
        variables: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        status: status
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        server_unix_time: t(at).timestamp() as f64,
        round_trip_ms: 2.0,
        ..Default::default()
    }
}

fn node<'a>(addr: &str, role: Role, s: Option<&'a AdvisorSample>) -> NodeFacts<'a> {
    NodeFacts {
        address: addr.into(),
        role,
        sample: s,
        prev: None,
        server: None,
        host: None,
    }
}

fn cluster<'a>(t: ClusterType, nodes: Vec<NodeFacts<'a>>) -> ClusterFacts<'a> {
    ClusterFacts {
        name: "shop".into(),
        cluster_type: t,
        semi_sync: false,
        nodes,
        backups: BackupFacts {
            last_completed: Some((super::tests::t(-60), Some(true))),
            schedule_every: Some(Duration::days(1)),
        },
        now: super::tests::t(0),
    }
}

/// The verdicts of one rule: (node, status), or None when it could not check.
fn run(id: &str, c: &ClusterFacts<'_>) -> Option<Vec<(Option<String>, Status)>> {
    let r = rules::RULES.iter().find(|r| r.id == id).expect("rule");
    let check = (r.check)(c)?;
    Some(if check.findings.is_empty() {
        vec![(None, Status::Ok)]
    } else {
        check
            .findings
            .into_iter()
            .map(|f| (f.node, f.status))
            .collect()
    })
}

/// A rule's verdicts, as `run` gives them.
type Verdicts = Option<Vec<(Option<String>, Status)>>;
/// Counters by name.
type Counters<'a> = Vec<(&'a str, f64)>;
/// Variables by name.
type Vars<'a> = Vec<(&'a str, &'a str)>;

const A: &str = "10.0.0.1:3306";
const B: &str = "10.0.0.2:3306";

fn ok() -> Option<Vec<(Option<String>, Status)>> {
    Some(vec![(None, Status::Ok)])
}

fn at(node: &str, s: Status) -> Option<Vec<(Option<String>, Status)>> {
    Some(vec![(Some(node.to_string()), s)])
}

fn whole(s: Status) -> Option<Vec<(Option<String>, Status)>> {
    Some(vec![(None, s)])
}

/// One node of `role` with a sample of `vars` and `status`; the rule's verdict.
fn one(
    id: &str,
    t: ClusterType,
    role: Role,
    vars: &[(&str, &str)],
    status: &[(&str, f64)],
) -> Option<Vec<(Option<String>, Status)>> {
    let s = sample(0, vars, status);
    run(id, &cluster(t, vec![node(A, role, Some(&s))]))
}

/// One node with two samples 60 s apart: counters at `before` then `after`.
fn rate(
    id: &str,
    t: ClusterType,
    before: &[(&str, f64)],
    after: &[(&str, f64)],
) -> Option<Vec<(Option<String>, Status)>> {
    let prev = sample(-60, &[], before);
    let now = sample(0, &[], after);
    let mut n = node(A, Role::Primary, Some(&now));
    n.prev = Some(&prev);
    run(id, &cluster(t, vec![n]))
}

use ClusterType::{Galera, Replication, Standalone};
use Status::{Critical, Ok as Fine, Warning};

#[test]
fn every_rule_has_an_id_threshold_and_advice_and_there_are_at_least_thirty() {
    let mut ids: Vec<&str> = rules::RULES.iter().map(|r| r.id).collect();
    assert!(ids.len() >= 30, "{}", ids.len());
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), rules::RULES.len(), "duplicate ids");
    for r in rules::RULES {
        assert!(!r.advice.is_empty() && !r.threshold.is_empty(), "{}", r.id);
        // Every id is a valid alarm kind.
        let k: crate::alarm::AlarmKind = format!("advisor.{}", r.id).parse().unwrap();
        assert_eq!(k, crate::alarm::AlarmKind::Advisor(r.id.to_string()));
    }
}

#[test]
fn galera_tables_without_a_primary_key_are_named() {
    let mut s = sample(0, &[], &[]);
    s.tables_without_pk = Some(vec!["app.log".into(), "app.audit".into()]);
    let c = cluster(Galera, vec![node(A, Role::Galera, Some(&s))]);
    assert_eq!(run("galera_table_without_pk", &c), whole(Warning));
    let msg = &(rules::RULES[0].check)(&c).unwrap().findings[0].message;
    assert!(
        msg.contains("app.log") && msg.contains("app.audit"),
        "{msg}"
    );
    s.tables_without_pk = Some(vec![]);
    let c = cluster(Galera, vec![node(A, Role::Galera, Some(&s))]);
    assert_eq!(run("galera_table_without_pk", &c), ok());
    s.tables_without_pk = None;
    let c = cluster(Galera, vec![node(A, Role::Galera, Some(&s))]);
    assert_eq!(run("galera_table_without_pk", &c), None);
}

fn host(free: u64, total: u64, avail: u64, iowait: Option<f64>) -> HostStatus {
    HostStatus {
        at: t(0),
        cpu_count: 2,
        cpu_busy: Some(0.1),
        cpu_iowait: iowait,
        mem_total_bytes: 100,
        mem_available_bytes: avail,
        load1: 0.5,
        disk_free_bytes: Some(free),
        disk_total_bytes: Some(total),
    }
}

#[test]
fn host_rules_read_disk_memory_and_iowait() {
    let cases = [
        ("disk_space", host(50, 100, 50, None), ok()),
        ("disk_space", host(8, 100, 50, None), at(A, Warning)),
        ("disk_space", host(4, 100, 50, None), at(A, Critical)),
        ("memory_available", host(50, 100, 20, None), ok()),
        ("memory_available", host(50, 100, 9, None), at(A, Warning)),
        ("memory_available", host(50, 100, 3, None), at(A, Critical)),
        ("cpu_iowait", host(50, 100, 50, Some(0.05)), ok()),
        ("cpu_iowait", host(50, 100, 50, Some(0.25)), at(A, Warning)),
        ("cpu_iowait", host(50, 100, 50, Some(0.5)), at(A, Critical)),
    ];
    for (id, h, want) in cases {
        let mut n = node(A, Role::Primary, None);
        n.host = Some(&h);
        assert_eq!(run(id, &cluster(Replication, vec![n])), want, "{id} {h:?}");
    }
    // No host metrics (no host access): not checked.
    let c = cluster(Replication, vec![node(A, Role::Primary, None)]);
    assert_eq!(run("disk_space", &c), None);
}

#[test]
fn rate_rules_compare_two_samples() {
    let cases: Vec<(&str, Counters, Counters, Verdicts)> = vec![
        (
            "buffer_pool_hit_ratio",
            vec![
                ("innodb_buffer_pool_read_requests", 0.0),
                ("innodb_buffer_pool_reads", 0.0),
            ],
            vec![
                ("innodb_buffer_pool_read_requests", 100_000.0),
                ("innodb_buffer_pool_reads", 100.0),
            ],
            ok(),
        ),
        (
            "buffer_pool_hit_ratio",
            vec![
                ("innodb_buffer_pool_read_requests", 0.0),
                ("innodb_buffer_pool_reads", 0.0),
            ],
            vec![
                ("innodb_buffer_pool_read_requests", 100_000.0),
                ("innodb_buffer_pool_reads", 2_000.0),
            ],
            at(A, Warning),
        ),
        (
            "buffer_pool_hit_ratio",
            vec![
                ("innodb_buffer_pool_read_requests", 0.0),
                ("innodb_buffer_pool_reads", 0.0),
            ],
            vec![
                ("innodb_buffer_pool_read_requests", 100_000.0),
                ("innodb_buffer_pool_reads", 10_000.0),
            ],
            at(A, Critical),
        ),
        // Too few reads to judge.
        (
            "buffer_pool_hit_ratio",
            vec![
                ("innodb_buffer_pool_read_requests", 0.0),
                ("innodb_buffer_pool_reads", 0.0),
            ],
            vec![
                ("innodb_buffer_pool_read_requests", 100.0),
                ("innodb_buffer_pool_reads", 90.0),
            ],
            ok(),
        ),
        (
            "deadlocks",
            vec![("innodb_deadlocks", 10.0)],
            vec![("innodb_deadlocks", 10.0)],
            ok(),
        ),
        (
            "deadlocks",
            vec![("innodb_deadlocks", 10.0)],
            vec![("innodb_deadlocks", 15.0)],
            at(A, Warning),
        ),
        (
            "deadlocks",
            vec![("innodb_deadlocks", 10.0)],
            vec![("innodb_deadlocks", 40.0)],
            at(A, Critical),
        ),
        // A counter that went back (a restart) says nothing.
        (
            "deadlocks",
            vec![("innodb_deadlocks", 100.0)],
            vec![("innodb_deadlocks", 3.0)],
            ok(),
        ),
        (
            "tmp_disk_tables",
            vec![
                ("created_tmp_tables", 0.0),
                ("created_tmp_disk_tables", 0.0),
            ],
            vec![
                ("created_tmp_tables", 1000.0),
                ("created_tmp_disk_tables", 100.0),
            ],
            ok(),
        ),
        (
            "tmp_disk_tables",
            vec![
                ("created_tmp_tables", 0.0),
                ("created_tmp_disk_tables", 0.0),
            ],
            vec![
                ("created_tmp_tables", 1000.0),
                ("created_tmp_disk_tables", 500.0),
            ],
            at(A, Warning),
        ),
        (
            "aborted_connects",
            vec![("aborted_connects", 0.0)],
            vec![("aborted_connects", 5.0)],
            ok(),
        ),
        (
            "aborted_connects",
            vec![("aborted_connects", 0.0)],
            vec![("aborted_connects", 50.0)],
            at(A, Warning),
        ),
        (
            "aborted_connects",
            vec![("aborted_connects", 0.0)],
            vec![("aborted_connects", 500.0)],
            at(A, Critical),
        ),
        (
            "innodb_log_waits",
            vec![("innodb_log_waits", 3.0)],
            vec![("innodb_log_waits", 3.0)],
            ok(),
        ),
        (
            "innodb_log_waits",
            vec![("innodb_log_waits", 3.0)],
            vec![("innodb_log_waits", 4.0)],
            at(A, Warning),
        ),
        (
            "table_open_cache",
            vec![
                ("table_open_cache_hits", 0.0),
                ("table_open_cache_misses", 0.0),
            ],
            vec![
                ("table_open_cache_hits", 10_000.0),
                ("table_open_cache_misses", 100.0),
            ],
            ok(),
        ),
        (
            "table_open_cache",
            vec![
                ("table_open_cache_hits", 0.0),
                ("table_open_cache_misses", 0.0),
            ],
            vec![
                ("table_open_cache_hits", 1_000.0),
                ("table_open_cache_misses", 500.0),
            ],
            at(A, Warning),
        ),
        (
            "max_connections_refused",
            vec![("connection_errors_max_connections", 2.0)],
            vec![("connection_errors_max_connections", 2.0)],
            ok(),
        ),
        (
            "max_connections_refused",
            vec![("connection_errors_max_connections", 2.0)],
            vec![("connection_errors_max_connections", 3.0)],
            at(A, Critical),
        ),
        (
            "digests_lost",
            vec![("performance_schema_digest_lost", 0.0)],
            vec![("performance_schema_digest_lost", 7.0)],
            at(A, Warning),
        ),
        (
            "galera_flow_control",
            vec![("wsrep_flow_control_paused_ns", 0.0)],
            vec![("wsrep_flow_control_paused_ns", 1e9)],
            ok(),
        ),
        (
            "galera_flow_control",
            vec![("wsrep_flow_control_paused_ns", 0.0)],
            vec![("wsrep_flow_control_paused_ns", 12e9)],
            at(A, Warning),
        ),
        (
            "galera_flow_control",
            vec![("wsrep_flow_control_paused_ns", 0.0)],
            vec![("wsrep_flow_control_paused_ns", 40e9)],
            at(A, Critical),
        ),
        (
            "galera_cert_failures",
            vec![
                ("wsrep_local_cert_failures", 0.0),
                ("wsrep_local_commits", 0.0),
            ],
            vec![
                ("wsrep_local_cert_failures", 1.0),
                ("wsrep_local_commits", 1000.0),
            ],
            ok(),
        ),
        (
            "galera_cert_failures",
            vec![
                ("wsrep_local_cert_failures", 0.0),
                ("wsrep_local_commits", 0.0),
            ],
            vec![
                ("wsrep_local_cert_failures", 30.0),
                ("wsrep_local_commits", 1000.0),
            ],
            at(A, Warning),
        ),
        (
            "galera_cert_failures",
            vec![
                ("wsrep_local_cert_failures", 0.0),
                ("wsrep_local_commits", 0.0),
            ],
            vec![
                ("wsrep_local_cert_failures", 100.0),
                ("wsrep_local_commits", 1000.0),
            ],
            at(A, Critical),
        ),
    ];
    for (id, before, after, want) in cases {
        let ty = if id.starts_with("galera") {
            Galera
        } else {
            Standalone
        };
        assert_eq!(
            rate(id, ty, &before, &after),
            want,
            "{id} {before:?} → {after:?}"
        );
    }
    // Without a previous sample a rate rule cannot check.
    assert_eq!(
        one("deadlocks", Standalone, Role::Standalone, &[], &[]),
        None
    );
}

#[test]
fn variable_rules_read_the_configuration() {
    let cases: Vec<(&str, ClusterType, Role, Vars, Counters, Verdicts)> = vec![
        (
            "connections_near_max",
            Standalone,
            Role::Standalone,
            vec![("max_connections", "100")],
            vec![("threads_connected", 50.0)],
            ok(),
        ),
        (
            "connections_near_max",
            Standalone,
            Role::Standalone,
            vec![("max_connections", "100")],
            vec![("threads_connected", 85.0)],
            at(A, Warning),
        ),
        (
            "connections_near_max",
            Standalone,
            Role::Standalone,
            vec![("max_connections", "100")],
            vec![("threads_connected", 99.0)],
            at(A, Critical),
        ),
        (
            "replica_writable",
            Replication,
            Role::Replica,
            vec![("read_only", "ON")],
            vec![],
            ok(),
        ),
        (
            "replica_writable",
            Replication,
            Role::Replica,
            vec![("read_only", "OFF")],
            vec![],
            at(A, Critical),
        ),
        (
            "replica_writable",
            Replication,
            Role::Primary,
            vec![("read_only", "OFF")],
            vec![],
            ok(),
        ),
        (
            "binlog_off",
            Replication,
            Role::Primary,
            vec![("log_bin", "ON")],
            vec![],
            ok(),
        ),
        (
            "binlog_off",
            Replication,
            Role::Primary,
            vec![("log_bin", "OFF")],
            vec![],
            at(A, Critical),
        ),
        (
            "binlog_off",
            Replication,
            Role::Replica,
            vec![("log_bin", "OFF")],
            vec![],
            at(A, Warning),
        ),
        (
            "flush_log_at_trx_commit",
            Replication,
            Role::Primary,
            vec![("innodb_flush_log_at_trx_commit", "1")],
            vec![],
            ok(),
        ),
        (
            "flush_log_at_trx_commit",
            Replication,
            Role::Primary,
            vec![("innodb_flush_log_at_trx_commit", "2")],
            vec![],
            at(A, Warning),
        ),
        (
            "flush_log_at_trx_commit",
            Replication,
            Role::Replica,
            vec![("innodb_flush_log_at_trx_commit", "2")],
            vec![],
            ok(),
        ),
        (
            "flush_log_at_trx_commit",
            Galera,
            Role::Galera,
            vec![("innodb_flush_log_at_trx_commit", "2")],
            vec![],
            ok(),
        ),
        (
            "flush_log_at_trx_commit",
            Galera,
            Role::Galera,
            vec![("innodb_flush_log_at_trx_commit", "0")],
            vec![],
            at(A, Warning),
        ),
        (
            "sync_binlog",
            Replication,
            Role::Primary,
            vec![("sync_binlog", "1")],
            vec![],
            ok(),
        ),
        (
            "sync_binlog",
            Replication,
            Role::Primary,
            vec![("sync_binlog", "0")],
            vec![],
            at(A, Warning),
        ),
        (
            "sync_binlog",
            Replication,
            Role::Replica,
            vec![("sync_binlog", "0")],
            vec![],
            ok(),
        ),
        (
            "table_definition_cache",
            Standalone,
            Role::Standalone,
            vec![("table_definition_cache", "400")],
            vec![],
            ok(),
        ),
        (
            "open_files",
            Standalone,
            Role::Standalone,
            vec![("open_files_limit", "1000")],
            vec![("open_files", 100.0)],
            ok(),
        ),
        (
            "open_files",
            Standalone,
            Role::Standalone,
            vec![("open_files_limit", "1000")],
            vec![("open_files", 900.0)],
            at(A, Warning),
        ),
        (
            "open_files",
            Standalone,
            Role::Standalone,
            vec![("open_files_limit", "1000")],
            vec![("open_files", 990.0)],
            at(A, Critical),
        ),
        (
            "binlog_format",
            Galera,
            Role::Galera,
            vec![("binlog_format", "ROW")],
            vec![],
            ok(),
        ),
        (
            "binlog_format",
            Galera,
            Role::Galera,
            vec![("binlog_format", "MIXED")],
            vec![],
            at(A, Warning),
        ),
        (
            "query_cache",
            Standalone,
            Role::Standalone,
            vec![("query_cache_type", "OFF"), ("query_cache_size", "1048576")],
            vec![],
            ok(),
        ),
        (
            "query_cache",
            Standalone,
            Role::Standalone,
            vec![("query_cache_type", "ON"), ("query_cache_size", "1048576")],
            vec![],
            at(A, Warning),
        ),
        (
            "query_cache",
            Standalone,
            Role::Standalone,
            vec![("query_cache_type", "ON"), ("query_cache_size", "0")],
            vec![],
            ok(),
        ),
        (
            "performance_schema_off",
            Standalone,
            Role::Standalone,
            vec![("performance_schema", "ON")],
            vec![],
            ok(),
        ),
        (
            "performance_schema_off",
            Standalone,
            Role::Standalone,
            vec![("performance_schema", "OFF")],
            vec![],
            at(A, Warning),
        ),
    ];
    for (id, ty, role, vars, status, want) in cases {
        assert_eq!(
            one(id, ty, role, &vars, &status),
            want,
            "{id} {role:?} {vars:?} {status:?}"
        );
    }
    let mut many = sample(0, &[("table_definition_cache", "400")], &[]);
    many.user_tables = 401;
    let c = cluster(Standalone, vec![node(A, Role::Standalone, Some(&many))]);
    assert_eq!(run("table_definition_cache", &c), at(A, Warning));
}

#[test]
fn cluster_rules_compare_members() {
    let opts = |gcache: &str, me: &str| {
        sample(
            0,
            &[
                (
                    "wsrep_provider_options",
                    &*format!(
                        "base_host = {me}; gcache.size = {gcache}; gmcast.listen_addr = tcp://{me}:4567; evs.suspect_timeout = PT5S"
                    ),
                ),
                ("version", "10.11.19-MariaDB"),
            ],
            &[],
        )
    };
    let (a, b) = (opts("128M", "10.0.0.1"), opts("128M", "10.0.0.2"));
    let c = cluster(
        Galera,
        vec![
            node(A, Role::Galera, Some(&a)),
            node(B, Role::Galera, Some(&b)),
        ],
    );
    assert_eq!(run("galera_provider_options_drift", &c), ok());
    assert_eq!(run("version_drift", &c), ok());
    let b2 = opts("1G", "10.0.0.2");
    let c = cluster(
        Galera,
        vec![
            node(A, Role::Galera, Some(&a)),
            node(B, Role::Galera, Some(&b2)),
        ],
    );
    assert_eq!(run("galera_provider_options_drift", &c), whole(Warning));
    let r = rules::RULES
        .iter()
        .find(|r| r.id == "galera_provider_options_drift")
        .unwrap();
    let msg = &(r.check)(&c).unwrap().findings[0].message;
    assert!(
        msg.contains("gcache.size") && !msg.contains("base_host"),
        "{msg}"
    );
    let mut old = sample(0, &[("version", "10.6.20-MariaDB")], &[]);
    old.variables
        .insert("wsrep_provider_options".into(), "gcache.size = 128M".into());
    let c = cluster(
        Galera,
        vec![
            node(A, Role::Galera, Some(&a)),
            node(B, Role::Galera, Some(&old)),
        ],
    );
    assert_eq!(run("version_drift", &c), whole(Warning));
    // Even and odd Galera sizes.
    assert_eq!(run("galera_even_size", &c), whole(Warning));
    let three = cluster(
        Galera,
        vec![
            node(A, Role::Galera, None),
            node(B, Role::Galera, None),
            node("10.0.0.3:3306", Role::Galera, None),
        ],
    );
    assert_eq!(run("galera_even_size", &three), ok());
}

#[test]
fn clocks_transactions_and_backups() {
    let mut s = sample(0, &[], &[]);
    s.server_unix_time += 0.4;
    let c = cluster(Standalone, vec![node(A, Role::Standalone, Some(&s))]);
    assert_eq!(run("clock_drift", &c), ok());
    s.server_unix_time += 2.0;
    let c = cluster(Standalone, vec![node(A, Role::Standalone, Some(&s))]);
    assert_eq!(run("clock_drift", &c), at(A, Warning));
    s.server_unix_time -= 20.0;
    let c = cluster(Standalone, vec![node(A, Role::Standalone, Some(&s))]);
    assert_eq!(run("clock_drift", &c), at(A, Critical));
    // A slow round trip leaves the offset uncertain: not counted. The server read its
    // clock half a round trip before the answer came; 1.5 s off from that moment, with
    // 1 s of it uncertain.
    let mut slow = sample(0, &[], &[]);
    slow.round_trip_ms = 2000.0;
    slow.server_unix_time = slow.server_unix_time - 1.0 + 1.5;
    let c = cluster(Standalone, vec![node(A, Role::Standalone, Some(&slow))]);
    assert_eq!(run("clock_drift", &c), ok());

    for (trx, want) in [
        (None, ok()),
        (Some((30, 7)), ok()),
        (Some((120, 7)), at(A, Warning)),
        (Some((3600, 7)), at(A, Critical)),
    ] {
        let mut s = sample(0, &[], &[]);
        s.oldest_trx = trx;
        let c = cluster(Standalone, vec![node(A, Role::Standalone, Some(&s))]);
        assert_eq!(run("long_transaction", &c), want, "{trx:?}");
    }

    let backups = |last: Option<(i64, Option<bool>)>, every: Option<i64>| BackupFacts {
        last_completed: last.map(|(h, v)| (t(-h * 3600), v)),
        schedule_every: every.map(Duration::hours),
    };
    let cases = [
        ("no_recent_backup", backups(None, None), whole(Warning)),
        ("no_recent_backup", backups(None, Some(24)), whole(Warning)),
        (
            "no_recent_backup",
            backups(Some((20, Some(true))), Some(24)),
            ok(),
        ),
        (
            "no_recent_backup",
            backups(Some((40, Some(true))), Some(24)),
            whole(Warning),
        ),
        (
            "no_recent_backup",
            backups(Some((100, Some(true))), None),
            ok(),
        ),
        (
            "no_recent_backup",
            backups(Some((200, Some(true))), None),
            whole(Warning),
        ),
        ("backup_not_verified", backups(None, None), None),
        (
            "backup_not_verified",
            backups(Some((2, Some(true))), None),
            ok(),
        ),
        (
            "backup_not_verified",
            backups(Some((2, Some(false))), None),
            whole(Critical),
        ),
        (
            "backup_not_verified",
            backups(Some((2, None)), None),
            whole(Warning),
        ),
        ("backup_not_verified", backups(Some((0, None)), None), ok()),
    ];
    for (id, b, want) in cases {
        let mut c = cluster(Standalone, vec![node(A, Role::Standalone, None)]);
        c.backups = b.clone();
        assert_eq!(run(id, &c), want, "{id} {b:?}");
    }
}

fn channel(io: IoThreadState, lag: Option<u64>, gtid: &str) -> ReplicaStatus {
    let mut c = crate::ha::testkit::channel(&crate::Endpoint::new("10.0.0.1", 3306), 1, "");
    c.io_state = io;
    c.seconds_behind = lag;
    c.using_gtid = gtid.into();
    c
}

#[test]
fn replication_rules_read_the_replicas_status() {
    let server = |r: ReplicaStatus| crate::snapshot::ServerSample {
        replication: vec![r],
        ..crate::ha::testkit::sample(crate::replication::Flavor::MariaDb, 2, "")
    };
    let cases = [
        (
            "replication_lag",
            channel(IoThreadState::Running, Some(5), "Slave_Pos"),
            ok(),
        ),
        (
            "replication_lag",
            channel(IoThreadState::Running, Some(90), "Slave_Pos"),
            at(B, Warning),
        ),
        (
            "replication_lag",
            channel(IoThreadState::Running, Some(900), "Slave_Pos"),
            at(B, Critical),
        ),
        (
            "replica_reconnecting",
            channel(IoThreadState::Running, Some(0), "Slave_Pos"),
            ok(),
        ),
        (
            "replica_reconnecting",
            channel(IoThreadState::Connecting, None, "Slave_Pos"),
            at(B, Warning),
        ),
        (
            "replication_without_gtid",
            channel(IoThreadState::Running, Some(0), "Slave_Pos"),
            ok(),
        ),
        (
            "replication_without_gtid",
            channel(IoThreadState::Running, Some(0), "No"),
            at(B, Warning),
        ),
    ];
    for (id, ch, want) in cases {
        let s = server(ch.clone());
        let mut n = node(B, Role::Replica, None);
        n.server = Some(&s);
        let c = cluster(Replication, vec![node(A, Role::Primary, None), n]);
        assert_eq!(run(id, &c), want, "{id} {ch:?}");
    }

    // Packet sizes: the replica must take what the primary may send.
    let p = sample(0, &[("max_allowed_packet", "67108864")], &[]);
    let small = sample(0, &[("slave_max_allowed_packet", "16777216")], &[]);
    let big = sample(0, &[("slave_max_allowed_packet", "1073741824")], &[]);
    let c = cluster(
        Replication,
        vec![
            node(A, Role::Primary, Some(&p)),
            node(B, Role::Replica, Some(&small)),
        ],
    );
    assert_eq!(run("replica_packet_size", &c), at(B, Warning));
    let c = cluster(
        Replication,
        vec![
            node(A, Role::Primary, Some(&p)),
            node(B, Role::Replica, Some(&big)),
        ],
    );
    assert_eq!(run("replica_packet_size", &c), ok());

    // Semi-sync: fine when not configured; configured, the primary must be acknowledged.
    let on = sample(0, &[("rpl_semi_sync_master_enabled", "ON")], &[]);
    let mut on = on;
    on.status
        .insert("rpl_semi_sync_master_status".into(), "ON".into());
    let mut fell = on.clone();
    fell.status
        .insert("rpl_semi_sync_master_status".into(), "OFF".into());
    let mut c = cluster(Replication, vec![node(A, Role::Primary, Some(&on))]);
    assert_eq!(run("semi_sync_off", &c), ok());
    c.semi_sync = true;
    assert_eq!(run("semi_sync_off", &c), ok());
    let mut c = cluster(Replication, vec![node(A, Role::Primary, Some(&fell))]);
    c.semi_sync = true;
    assert_eq!(run("semi_sync_off", &c), at(A, Warning));
}

#[test]
fn evaluation_gives_ok_or_findings_per_applicable_rule_and_alarms_for_findings() {
    let s = sample(0, &[("read_only", "OFF"), ("log_bin", "ON")], &[]);
    let c = cluster(Replication, vec![node(A, Role::Replica, Some(&s))]);
    let results = evaluate(&c);
    // Galera-only rules do not apply to a replication cluster.
    assert!(
        !results.iter().any(|r| r.rule.starts_with("galera")),
        "{results:?}"
    );
    let w = results
        .iter()
        .find(|r| r.rule == "replica_writable")
        .unwrap();
    assert_eq!((w.status, w.node.as_deref()), (Status::Critical, Some(A)));
    assert!(!w.advice.is_empty());
    let fine = results.iter().find(|r| r.rule == "binlog_off").unwrap();
    assert_eq!(fine.status, Status::Ok);
    let alarms = conditions("shop", &results);
    assert!(
        alarms
            .iter()
            .all(|a| a.key.kind.source() == crate::alarm::Source::Advisor)
    );
    let a = alarms
        .iter()
        .find(|a| a.key.kind == crate::alarm::AlarmKind::Advisor("replica_writable".into()))
        .unwrap();
    assert_eq!(a.severity, crate::alarm::Severity::Critical);
    assert_eq!(a.key.node.as_deref(), Some(A));
    assert!(a.message.contains("Advice:"), "{}", a.message);
    assert_eq!(a.title, format!("replica writable: {A} (shop)"));
    assert_eq!(
        alarms.len(),
        results.iter().filter(|r| r.status != Status::Ok).count()
    );
    let _ = Fine;
}

#[test]
fn docs_list_every_rule_with_its_thresholds_and_every_alarm_kind() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/monitoring.md"
    ))
    .expect("docs/monitoring.md");
    for r in rules::RULES {
        assert!(
            doc.contains(&format!("`{}`", r.id)),
            "{} not documented",
            r.id
        );
        assert!(
            doc.contains(r.threshold),
            "{}'s threshold not documented",
            r.id
        );
        assert!(doc.contains(r.advice), "{}'s advice not documented", r.id);
    }
    for k in crate::alarm::AlarmKind::BUILT_IN {
        assert!(
            doc.contains(&format!("`{k}`")),
            "alarm kind {k} not documented"
        );
    }
}

#[test]
fn every_rule_has_a_table_test() {
    let me = include_str!("tests.rs");
    for r in rules::RULES {
        assert!(
            me.contains(&format!("\"{}\"", r.id)),
            "no table test names {}",
            r.id
        );
    }
}
