//! The built-in advisor rules: each a pure function of [`ClusterFacts`] with its
//! thresholds written here and in docs/monitoring.md, and table tests in `tests.rs`.

use std::collections::{BTreeMap, BTreeSet};

use super::{AdvisorSample, Check, ClusterFacts, Finding, NodeFacts, Status};
use crate::replication::IoThreadState;
use crate::{ClusterType, Role};

/// One built-in rule.
pub struct Rule {
    /// Stable id; the alarm kind is `advisor.<id>`.
    pub id: &'static str,
    pub title: &'static str,
    /// The thresholds, in words.
    pub threshold: &'static str,
    pub advice: &'static str,
    pub applies: fn(ClusterType) -> bool,
    /// None: cannot be checked this time (no data).
    pub check: fn(&ClusterFacts<'_>) -> Option<Check>,
}

fn any(_: ClusterType) -> bool {
    true
}
fn galera(t: ClusterType) -> bool {
    t == ClusterType::Galera
}
fn replication(t: ClusterType) -> bool {
    t == ClusterType::Replication
}
fn replicated(t: ClusterType) -> bool {
    t != ClusterType::Standalone
}

/// Takes writes: a primary, a standalone server, any Galera node.
fn writer(n: &NodeFacts<'_>) -> bool {
    matches!(n.role, Role::Primary | Role::Standalone | Role::Galera)
}

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

/// The worse of two thresholds `x` passes (upward).
fn above(x: f64, warn: f64, crit: f64) -> Option<Status> {
    if x > crit {
        Some(Status::Critical)
    } else if x > warn {
        Some(Status::Warning)
    } else {
        None
    }
}

/// The worse of two thresholds `x` falls under.
fn below(x: f64, warn: f64, crit: f64) -> Option<Status> {
    if x < crit {
        Some(Status::Critical)
    } else if x < warn {
        Some(Status::Warning)
    } else {
        None
    }
}

/// Per sampled node: a finding from `f`, or nothing. None when no node was sampled.
fn per_node(
    c: &ClusterFacts<'_>,
    ok: &str,
    f: impl Fn(&NodeFacts<'_>, &AdvisorSample) -> Option<(Status, String)>,
) -> Option<Check> {
    let mut seen = false;
    let mut out = Vec::new();
    for (n, s) in c.sampled() {
        seen = true;
        if let Some((st, msg)) = f(n, s) {
            out.push(Finding::node(n, st, msg));
        }
    }
    seen.then(|| Check {
        findings: out,
        ok: ok.to_string(),
    })
}

/// Per sampled node with a previous sample: a finding from `f(now, prev, seconds)`.
fn per_node_rate(
    c: &ClusterFacts<'_>,
    ok: &str,
    f: impl Fn(&NodeFacts<'_>, &AdvisorSample, &AdvisorSample, f64) -> Option<(Status, String)>,
) -> Option<Check> {
    let mut seen = false;
    let mut out = Vec::new();
    for n in &c.nodes {
        let (Some(now), Some(prev)) = (n.sample, n.prev) else {
            continue;
        };
        let secs = now.seconds_since(prev);
        if secs < 1.0 {
            continue;
        }
        seen = true;
        if let Some((st, msg)) = f(n, now, prev, secs) {
            out.push(Finding::node(n, st, msg));
        }
    }
    seen.then(|| Check {
        findings: out,
        ok: ok.to_string(),
    })
}

/// Per node with host metrics.
fn per_host(
    c: &ClusterFacts<'_>,
    ok: &str,
    f: impl Fn(&NodeFacts<'_>, &crate::api::HostStatus) -> Option<(Status, String)>,
) -> Option<Check> {
    let mut seen = false;
    let mut out = Vec::new();
    for n in &c.nodes {
        let Some(h) = n.host else { continue };
        seen = true;
        if let Some((st, msg)) = f(n, h) {
            out.push(Finding::node(n, st, msg));
        }
    }
    seen.then(|| Check {
        findings: out,
        ok: ok.to_string(),
    })
}

fn galera_without_pk(c: &ClusterFacts<'_>) -> Option<Check> {
    let list = c
        .sampled()
        .find_map(|(_, s)| s.tables_without_pk.as_ref())?;
    if list.is_empty() {
        return Check::ok("every InnoDB table has a primary key");
    }
    let shown: Vec<&str> = list.iter().take(20).map(String::as_str).collect();
    let more = list.len().saturating_sub(shown.len());
    Check::found(
        vec![Finding::cluster(
            Status::Warning,
            format!(
                "{} InnoDB table(s) without a primary key: {}{}.",
                list.len(),
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ),
        )],
        "",
    )
}

fn disk_space(c: &ClusterFacts<'_>) -> Option<Check> {
    per_host(c, "every data directory's file system has room", |_, h| {
        let (Some(free), Some(total)) = (h.disk_free_bytes, h.disk_total_bytes) else {
            return None;
        };
        if total == 0 {
            return None;
        }
        let f = free as f64 / total as f64;
        below(f, 0.10, 0.05).map(|st| {
            (
                st,
                format!(
                    "the data directory's file system has {} free ({} GiB of {} GiB).",
                    pct(f),
                    free >> 30,
                    total >> 30
                ),
            )
        })
    })
}

fn memory(c: &ClusterFacts<'_>) -> Option<Check> {
    per_host(c, "every host has memory available", |_, h| {
        if h.mem_total_bytes == 0 {
            return None;
        }
        let f = h.mem_available_bytes as f64 / h.mem_total_bytes as f64;
        below(f, 0.10, 0.05).map(|st| {
            (
                st,
                format!(
                    "the host has {} of its memory available ({} MiB of {} MiB).",
                    pct(f),
                    h.mem_available_bytes >> 20,
                    h.mem_total_bytes >> 20
                ),
            )
        })
    })
}

fn iowait(c: &ClusterFacts<'_>) -> Option<Check> {
    per_host(c, "no host waits long on its disks", |_, h| {
        let w = h.cpu_iowait?;
        above(w, 0.20, 0.40).map(|st| {
            (
                st,
                format!("the host's CPUs spend {} waiting for I/O.", pct(w)),
            )
        })
    })
}

fn buffer_pool_hits(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node_rate(
        c,
        "the InnoDB buffer pools serve reads from memory",
        |_, now, prev, _| {
            let req = now.grew(prev, "innodb_buffer_pool_read_requests")?;
            let disk = now.grew(prev, "innodb_buffer_pool_reads")?;
            if req < 10_000.0 {
                return None;
            }
            let hit = 1.0 - disk / req;
            below(hit, 0.99, 0.95).map(|st| {
                (
                    st,
                    format!(
                        "the buffer pool hit ratio was {} over the last interval ({disk:.0} of {req:.0} page reads went to disk).",
                        pct(hit)
                    ),
                )
            })
        },
    )
}

fn connections(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node(c, "connections are well below max_connections", |_, s| {
        let used = s.stat("threads_connected")?;
        let max = s.var_u64("max_connections")? as f64;
        if max <= 0.0 {
            return None;
        }
        above(used / max, 0.80, 0.95).map(|st| {
            (
                st,
                format!(
                    "{used:.0} connections of max_connections {max:.0} ({}).",
                    pct(used / max)
                ),
            )
        })
    })
}

fn replica_writable(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node(c, "every replica is read-only", |n, s| {
        (n.role == Role::Replica && s.var_on("read_only") == Some(false)).then(|| {
            (
                Status::Critical,
                "the replica is writable (read_only=OFF): a write there diverges it from its primary and blocks a clean failover.".to_string(),
            )
        })
    })
}

fn replication_lag(c: &ClusterFacts<'_>) -> Option<Check> {
    let mut seen = false;
    let mut out = Vec::new();
    for n in &c.nodes {
        let Some(s) = n.server else { continue };
        if n.role != Role::Replica {
            continue;
        }
        seen = true;
        let lag = s.replication.iter().filter_map(|r| r.seconds_behind).max();
        if let Some(lag) = lag
            && let Some(st) = above(lag as f64, 60.0, 300.0)
        {
            out.push(Finding::node(
                n,
                st,
                format!("the replica is {lag} s behind its source."),
            ));
        }
    }
    seen.then(|| Check {
        findings: out,
        ok: "every replica is within 60 s of its source".into(),
    })
}

fn semi_sync(c: &ClusterFacts<'_>) -> Option<Check> {
    if !c.semi_sync {
        return Check::ok(
            "semi-synchronous replication is not configured (a failover may lose the last commits the primary acknowledged)",
        );
    }
    let (n, s) = c.sampled().find(|(n, _)| n.role == Role::Primary)?;
    let enabled = s.var_on("rpl_semi_sync_master_enabled") == Some(true);
    let active = s
        .status
        .get("rpl_semi_sync_master_status")
        .is_some_and(|v| v.eq_ignore_ascii_case("ON"));
    if enabled && active {
        return Check::ok("the primary waits for a replica's acknowledgement");
    }
    Check::found(
        vec![Finding::node(
            n,
            Status::Warning,
            if enabled {
                "semi-synchronous replication is enabled but fell back to asynchronous: no replica acknowledged in time.".into()
            } else {
                "semi-synchronous replication is configured but off on the primary (rpl_semi_sync_master_enabled=OFF).".into()
            },
        )],
        "",
    )
}

fn binlog_off(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node(c, "binary logging is on everywhere", |n, s| {
        (s.var_on("log_bin") == Some(false)).then(|| {
            if n.role == Role::Primary {
                (
                    Status::Critical,
                    "binary logging is off on the primary: replicas receive nothing, and no point in time can be restored.".to_string(),
                )
            } else {
                (
                    Status::Warning,
                    "binary logging is off: this node cannot become a primary others replicate from.".to_string(),
                )
            }
        })
    })
}

fn flush_log(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node(
        c,
        "InnoDB flushes its log at every commit on the writers",
        |n, s| {
            if !writer(n) {
                return None;
            }
            let v = s.var_u64("innodb_flush_log_at_trx_commit")?;
            // Galera's durability is the other members': 2 is an accepted trade there.
            let unsafe_value = if n.role == Role::Galera {
                v == 0
            } else {
                v != 1
            };
            unsafe_value.then(|| {
            (
                Status::Warning,
                format!(
                    "innodb_flush_log_at_trx_commit={v}: a crash of the host can lose up to a second of acknowledged commits."
                ),
            )
        })
        },
    )
}

fn sync_binlog(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node(
        c,
        "the primary syncs its binary log at every commit",
        |n, s| {
            if n.role != Role::Primary {
                return None;
            }
            let v = s.var_u64("sync_binlog")?;
            (v != 1).then(|| {
            (
                Status::Warning,
                format!(
                    "sync_binlog={v}: after a host crash the binary log can lack commits InnoDB has, and replicas diverge."
                ),
            )
        })
        },
    )
}

fn flow_control(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node_rate(
        c,
        "no Galera node is held back by flow control",
        |_, now, prev, secs| {
            let paused = now.grew(prev, "wsrep_flow_control_paused_ns")? / 1e9;
            let f = paused / secs;
            above(f, 0.10, 0.50).map(|st| {
                (
                    st,
                    format!(
                        "replication was paused by flow control {} of the last {secs:.0} s: a slow member holds every writer back.",
                        pct(f)
                    ),
                )
            })
        },
    )
}

fn cert_failures(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node_rate(
        c,
        "few Galera transactions fail certification",
        |_, now, prev, _| {
            let failed = now.grew(prev, "wsrep_local_cert_failures")?;
            let commits = now.grew(prev, "wsrep_local_commits")?;
            if failed + commits < 100.0 {
                return None;
            }
            let f = failed / (failed + commits);
            above(f, 0.01, 0.05).map(|st| {
                (
                    st,
                    format!(
                        "{failed:.0} of {:.0} local transactions failed certification ({}): writers conflict on the same rows from several nodes.",
                        failed + commits,
                        pct(f)
                    ),
                )
            })
        },
    )
}

fn recent_backup(c: &ClusterFacts<'_>) -> Option<Check> {
    let b = &c.backups;
    let expected = b
        .schedule_every
        .map(|p| p + p / 2 + chrono::Duration::hours(1))
        .unwrap_or_else(|| chrono::Duration::days(7));
    let finding = match (b.last_completed, b.schedule_every) {
        (None, None) => {
            Some("the cluster has no completed backup and no backup schedule.".to_string())
        }
        (None, Some(_)) => {
            Some("the cluster's schedule has produced no completed backup yet.".to_string())
        }
        (Some((at, _)), _) if c.now - at > expected => Some(format!(
            "the newest completed backup finished {} h ago (expected within {} h).",
            (c.now - at).num_hours(),
            expected.num_hours()
        )),
        _ => None,
    };
    match finding {
        Some(m) => Check::found(vec![Finding::cluster(Status::Warning, m)], ""),
        None => Check::ok("a recent backup exists"),
    }
}

fn backup_verified(c: &ClusterFacts<'_>) -> Option<Check> {
    let (at, verified) = c.backups.last_completed?;
    match verified {
        Some(true) => Check::ok("the newest backup is verified"),
        Some(false) => Check::found(
            vec![Finding::cluster(
                Status::Critical,
                "the newest completed backup failed its verification.".into(),
            )],
            "",
        ),
        None if c.now - at > chrono::Duration::hours(1) => Check::found(
            vec![Finding::cluster(
                Status::Warning,
                "the newest completed backup has not been verified for over an hour.".into(),
            )],
            "",
        ),
        None => Check::ok("the newest backup is being verified"),
    }
}

/// `wsrep_provider_options` as key → value.
fn provider_options(s: &str) -> BTreeMap<String, String> {
    s.split(';')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// Options that differ between members by nature (their own addresses).
fn per_member_option(k: &str) -> bool {
    k.starts_with("base_")
        || k.starts_with("gmcast.listen_addr")
        || k.starts_with("ist.recv")
        || k == "gcache.dir"
        || k == "gcache.name"
        || k == "gmcast.segment"
        || k.starts_with("socket.")
        || k == "pc.bootstrap"
}

fn provider_drift(c: &ClusterFacts<'_>) -> Option<Check> {
    let opts: Vec<(&NodeFacts<'_>, BTreeMap<String, String>)> = c
        .sampled()
        .filter_map(|(n, s)| Some((n, provider_options(s.var("wsrep_provider_options")?))))
        .collect();
    if opts.len() < 2 {
        return None;
    }
    let keys: BTreeSet<&String> = opts.iter().flat_map(|(_, o)| o.keys()).collect();
    let mut differ = Vec::new();
    for k in keys {
        if per_member_option(k) {
            continue;
        }
        let values: BTreeSet<Option<&String>> = opts.iter().map(|(_, o)| o.get(k)).collect();
        if values.len() > 1 {
            let shown: Vec<String> = opts
                .iter()
                .map(|(n, o)| {
                    format!(
                        "{}={}",
                        n.address,
                        o.get(k).map(String::as_str).unwrap_or("(unset)")
                    )
                })
                .collect();
            differ.push(format!("{k} ({})", shown.join(", ")));
        }
    }
    if differ.is_empty() {
        return Check::ok("every member has the same wsrep_provider_options");
    }
    Check::found(
        vec![Finding::cluster(
            Status::Warning,
            format!(
                "wsrep_provider_options differ between members: {}.",
                differ.join("; ")
            ),
        )],
        "",
    )
}

fn version_drift(c: &ClusterFacts<'_>) -> Option<Check> {
    let versions: BTreeMap<String, Vec<&str>> =
        c.sampled().fold(BTreeMap::new(), |mut m, (n, s)| {
            if let Some(v) = s.var("version") {
                m.entry(v.to_string()).or_default().push(n.address.as_str());
            }
            m
        });
    if versions.is_empty() {
        return None;
    }
    if versions.len() == 1 {
        return Check::ok("every server runs the same version");
    }
    let shown: Vec<String> = versions
        .iter()
        .map(|(v, ns)| format!("{v} on {}", ns.join(", ")))
        .collect();
    Check::found(
        vec![Finding::cluster(
            Status::Warning,
            format!("the servers run different versions: {}.", shown.join("; ")),
        )],
        "",
    )
}

fn clock_drift(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node(
        c,
        "every server's clock agrees with the controller's within 1 s",
        |_, s| {
            if s.server_unix_time <= 0.0 {
                return None;
            }
            let off = s.clock_offset();
            // What the round trip leaves uncertain is not counted against the server.
            let sure = off.abs() - s.round_trip_ms / 2000.0;
            above(sure, 1.0, 5.0).map(|st| {
                (
                    st,
                    format!(
                        "the server's clock is {:.1} s {} the controller's.",
                        off.abs(),
                        if off > 0.0 { "ahead of" } else { "behind" }
                    ),
                )
            })
        },
    )
}

fn long_transactions(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node(
        c,
        "no transaction has been open for over a minute",
        |_, s| {
            let (secs, id) = s.oldest_trx?;
            above(secs as f64, 60.0, 600.0).map(|st| {
            (
                st,
                format!(
                    "a transaction has been open for {secs} s (connection {id}): it holds locks and keeps purge from removing old row versions."
                ),
            )
        })
        },
    )
}

fn deadlocks(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node_rate(c, "deadlocks are rare", |_, now, prev, secs| {
        let d = now.grew(prev, "innodb_deadlocks")?;
        let per_min = d * 60.0 / secs;
        above(per_min, 1.0, 10.0).map(|st| {
            (
                st,
                format!("{per_min:.1} deadlocks a minute over the last {secs:.0} s."),
            )
        })
    })
}

fn tmp_disk_tables(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node_rate(c, "few temporary tables go to disk", |_, now, prev, _| {
        let disk = now.grew(prev, "created_tmp_disk_tables")?;
        let all = now.grew(prev, "created_tmp_tables")?;
        if all < 100.0 {
            return None;
        }
        let f = disk / all;
        above(f, 0.25, 0.75).map(|st| {
            (
                st,
                format!(
                    "{} of the last interval's {all:.0} temporary tables were written to disk.",
                    pct(f)
                ),
            )
        })
    })
}

fn table_definitions(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node(c, "the table definition cache holds every table", |_, s| {
        let cache = s.var_u64("table_definition_cache")?;
        (s.user_tables > cache).then(|| {
                (
                    Status::Warning,
                    format!(
                        "{} tables but table_definition_cache is {cache}: definitions are evicted and reread.",
                        s.user_tables
                    ),
                )
            })
    })
}

fn open_files(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node(c, "open files are well below open_files_limit", |_, s| {
        let open = s.stat("open_files")?;
        let limit = s.var_u64("open_files_limit")? as f64;
        if limit <= 0.0 {
            return None;
        }
        above(open / limit, 0.85, 0.95).map(|st| {
            (
                st,
                format!("{open:.0} files open of open_files_limit {limit:.0}."),
            )
        })
    })
}

fn aborted_connects(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node_rate(c, "few connection attempts fail", |_, now, prev, secs| {
        let n = now.grew(prev, "aborted_connects")?;
        let per_min = n * 60.0 / secs;
        above(per_min, 10.0, 100.0).map(|st| {
            (
                st,
                format!(
                    "{per_min:.0} failed connection attempts a minute (wrong passwords, unknown hosts, or a scan)."
                ),
            )
        })
    })
}

fn log_waits(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node_rate(
        c,
        "the InnoDB log buffer is large enough",
        |_, now, prev, _| {
            let w = now.grew(prev, "innodb_log_waits")?;
            (w > 0.0).then(|| {
                (
                    Status::Warning,
                    format!(
                        "{w:.0} waits for the log buffer to flush in the last interval: innodb_log_buffer_size is too small for the write load."
                    ),
                )
            })
        },
    )
}

fn table_cache_misses(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node_rate(
        c,
        "the table open cache serves most opens",
        |_, now, prev, _| {
            let miss = now.grew(prev, "table_open_cache_misses")?;
            let hit = now.grew(prev, "table_open_cache_hits")?;
            if miss + hit < 1000.0 {
                return None;
            }
            let f = miss / (miss + hit);
            above(f, 0.10, 0.50).map(|st| {
                (
                    st,
                    format!("{} of table opens missed the table open cache.", pct(f)),
                )
            })
        },
    )
}

fn even_galera(c: &ClusterFacts<'_>) -> Option<Check> {
    let n = c.nodes.len();
    if n.is_multiple_of(2) {
        Check::found(
            vec![Finding::cluster(
                Status::Warning,
                format!(
                    "the cluster has {n} members: a network split in half leaves neither side with a majority, and the whole cluster stops taking writes."
                ),
            )],
            "",
        )
    } else {
        Check::ok(format!(
            "{n} members: a majority survives any minority's loss"
        ))
    }
}

fn replication_gtid(c: &ClusterFacts<'_>) -> Option<Check> {
    let mut seen = false;
    let mut out = Vec::new();
    for n in &c.nodes {
        let Some(s) = n.server else { continue };
        for r in &s.replication {
            seen = true;
            if r.using_gtid.eq_ignore_ascii_case("no") {
                out.push(Finding::node(
                    n,
                    Status::Warning,
                    format!(
                        "replication{} from {}:{} uses binlog file positions, not GTIDs: a failover cannot repoint it safely.",
                        if r.channel.is_empty() {
                            String::new()
                        } else {
                            format!(" channel {}", r.channel)
                        },
                        r.source_host,
                        r.source_port
                    ),
                ));
            }
        }
    }
    seen.then(|| Check {
        findings: out,
        ok: "every replica replicates by GTID".into(),
    })
}

fn binlog_format(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node(c, "binary logs are row-based", |_, s| {
        let f = s.var("binlog_format")?;
        (!f.eq_ignore_ascii_case("ROW")).then(|| {
            (
                Status::Warning,
                format!(
                    "binlog_format={f}: statement-based events can apply differently on other nodes (and Galera needs ROW)."
                ),
            )
        })
    })
}

fn query_cache(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node(c, "the query cache is off", |_, s| {
        let on = s
            .var("query_cache_type")
            .is_some_and(|v| !v.eq_ignore_ascii_case("OFF") && v != "0");
        let size = s.var_u64("query_cache_size").unwrap_or(0);
        (on && size > 0).then(|| {
            (
                Status::Warning,
                format!(
                    "the query cache is on ({} MiB): its global lock serialises writers.",
                    size >> 20
                ),
            )
        })
    })
}

fn packet_sizes(c: &ClusterFacts<'_>) -> Option<Check> {
    let primary = c
        .sampled()
        .find(|(n, _)| n.role == Role::Primary)
        .and_then(|(_, s)| s.var_u64("max_allowed_packet"))?;
    per_node(
        c,
        "replicas accept the primary's largest packets",
        |n, s| {
            if n.role != Role::Replica {
                return None;
            }
            let mine = s.var_u64("slave_max_allowed_packet")?;
            (mine < primary).then(|| {
                (
                    Status::Warning,
                    format!(
                        "slave_max_allowed_packet {mine} is below the primary's max_allowed_packet {primary}: a large event stops replication."
                    ),
                )
            })
        },
    )
}

fn performance_schema(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node(
        c,
        "performance_schema is on (the query monitor reads it)",
        |_, s| {
            (s.var_on("performance_schema") == Some(false)).then(|| {
                (
                    Status::Warning,
                    "performance_schema is off: the query monitor cannot see this server's queries.".to_string(),
                )
            })
        },
    )
}

fn digests_lost(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node_rate(
        c,
        "the statement digest table has room for every query shape",
        |_, now, prev, _| {
            let lost = now.grew(prev, "performance_schema_digest_lost")?;
            (lost > 0.0).then(|| {
                (
                    Status::Warning,
                    format!(
                        "{lost:.0} statements could not be counted in the full digest table: top queries are incomplete."
                    ),
                )
            })
        },
    )
}

fn replica_io(c: &ClusterFacts<'_>) -> Option<Check> {
    let mut seen = false;
    let mut out = Vec::new();
    for n in &c.nodes {
        let Some(s) = n.server else { continue };
        if n.role != Role::Replica {
            continue;
        }
        seen = true;
        for r in &s.replication {
            if r.io_state == IoThreadState::Connecting {
                out.push(Finding::node(
                    n,
                    Status::Warning,
                    format!(
                        "the replica keeps reconnecting to {}:{}{}.",
                        r.source_host,
                        r.source_port,
                        if r.last_io_error.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", r.last_io_error)
                        }
                    ),
                ));
            }
        }
    }
    seen.then(|| Check {
        findings: out,
        ok: "every replica is connected to its source".into(),
    })
}

fn max_connections_errors(c: &ClusterFacts<'_>) -> Option<Check> {
    per_node_rate(
        c,
        "no connection was refused for lack of a slot",
        |_, now, prev, _| {
            let n = now.grew(prev, "connection_errors_max_connections")?;
            (n > 0.0).then(|| {
                (
                    Status::Critical,
                    format!(
                        "{n:.0} connections were refused in the last interval because max_connections was reached."
                    ),
                )
            })
        },
    )
}

/// Every built-in rule (docs/monitoring.md lists them with these thresholds).
pub const RULES: &[Rule] = &[
    Rule {
        id: "galera_table_without_pk",
        title: "Galera table without a primary key",
        threshold: "any InnoDB base table outside the system schemas without a PRIMARY KEY: warning",
        advice: "Add a primary key (an AUTO_INCREMENT id if nothing else fits): Galera certifies and applies rows by key, and without one deletes and updates can diverge or crawl.",
        applies: galera,
        check: galera_without_pk,
    },
    Rule {
        id: "disk_space",
        title: "data directory file system full",
        threshold: "free space under 10 %: warning; under 5 %: critical",
        advice: "Free space (old binlogs, backups, logs) or grow the file system before the server stops on a full disk.",
        applies: any,
        check: disk_space,
    },
    Rule {
        id: "memory_available",
        title: "host memory short",
        threshold: "available memory under 10 %: warning; under 5 %: critical",
        advice: "Lower innodb_buffer_pool_size or move other services off the host: the kernel's OOM killer picks the largest process, the database.",
        applies: any,
        check: memory,
    },
    Rule {
        id: "cpu_iowait",
        title: "host waiting on disks",
        threshold: "CPU time in I/O wait over 20 %: warning; over 40 %: critical",
        advice: "Look for a disk near saturation (iostat): a larger buffer pool, faster storage, or fewer flushes (innodb_io_capacity) help.",
        applies: any,
        check: iowait,
    },
    Rule {
        id: "buffer_pool_hit_ratio",
        title: "InnoDB buffer pool hit ratio",
        threshold: "over at least 10 000 page reads in the interval, hit ratio under 99 %: warning; under 95 %: critical",
        advice: "Raise innodb_buffer_pool_size toward the working set (up to about 70 % of a dedicated host's memory), or find the queries scanning large tables (nines query top).",
        applies: any,
        check: buffer_pool_hits,
    },
    Rule {
        id: "connections_near_max",
        title: "connections near max_connections",
        threshold: "Threads_connected over 80 % of max_connections: warning; over 95 %: critical",
        advice: "Use a connection pool in the applications, find idle connections left open, or raise max_connections (each costs memory).",
        applies: any,
        check: connections,
    },
    Rule {
        id: "max_connections_refused",
        title: "connections refused at max_connections",
        threshold: "any Connection_errors_max_connections in the interval: critical",
        advice: "Clients are being turned away: raise max_connections or fix the pool that holds connections.",
        applies: any,
        check: max_connections_errors,
    },
    Rule {
        id: "replica_writable",
        title: "replica writable",
        threshold: "a replica with read_only=OFF: critical",
        advice: "SET GLOBAL read_only=ON on the replica (nines deploys replicas read-only); check that no application writes there.",
        applies: replication,
        check: replica_writable,
    },
    Rule {
        id: "replication_lag",
        title: "replication lag",
        threshold: "Seconds_Behind_Master over 60: warning; over 300: critical",
        advice: "Look for long transactions on the primary, a slow disk on the replica, or single-threaded apply (slave_parallel_threads).",
        applies: replication,
        check: replication_lag,
    },
    Rule {
        id: "replica_reconnecting",
        title: "replica not connected to its source",
        threshold: "a replica's IO thread in Connecting: warning",
        advice: "Check the network path and the replication account's password between replica and source.",
        applies: replication,
        check: replica_io,
    },
    Rule {
        id: "semi_sync_off",
        title: "semi-synchronous replication off",
        threshold: "configured but off, or fallen back to asynchronous: warning",
        advice: "Check that at least one replica is connected and acknowledging (rpl_semi_sync_slave_enabled, network latency under rpl_semi_sync_master_timeout).",
        applies: replication,
        check: semi_sync,
    },
    Rule {
        id: "binlog_off",
        title: "binary logging off",
        threshold: "log_bin=OFF on a primary: critical; on another replication node: warning",
        advice: "Enable log_bin (and log_slave_updates on replicas) and restart: without binary logs there is no replication, promotion or point-in-time restore.",
        applies: replication,
        check: binlog_off,
    },
    Rule {
        id: "flush_log_at_trx_commit",
        title: "InnoDB log not flushed at commit",
        threshold: "innodb_flush_log_at_trx_commit other than 1 on a primary or standalone server, or 0 on a Galera node: warning",
        advice: "Set innodb_flush_log_at_trx_commit=1 where a commit must survive a host crash.",
        applies: any,
        check: flush_log,
    },
    Rule {
        id: "sync_binlog",
        title: "binary log not synced at commit",
        threshold: "sync_binlog other than 1 on a primary: warning",
        advice: "Set sync_binlog=1 so that the binary log never lacks a commit InnoDB kept.",
        applies: replication,
        check: sync_binlog,
    },
    Rule {
        id: "galera_flow_control",
        title: "Galera flow control",
        threshold: "paused over 10 % of the interval: warning; over 50 %: critical",
        advice: "Find the member that falls behind (wsrep_local_recv_queue): a slower disk or CPU, a long apply; raise wsrep_slave_threads, or move reads off it.",
        applies: galera,
        check: flow_control,
    },
    Rule {
        id: "galera_cert_failures",
        title: "Galera certification failures",
        threshold: "over at least 100 local transactions, more than 1 % failing certification: warning; 5 %: critical",
        advice: "Send writes for the same rows to one node (nines load balancers use one writer), or retry deadlocks in the application.",
        applies: galera,
        check: cert_failures,
    },
    Rule {
        id: "galera_even_size",
        title: "Galera cluster with an even number of members",
        threshold: "2, 4, … members: warning",
        advice: "Add a member (or a garbd arbitrator) so that one side of any split keeps a majority.",
        applies: galera,
        check: even_galera,
    },
    Rule {
        id: "galera_provider_options_drift",
        title: "wsrep_provider_options differ between members",
        threshold: "any option other than a member's own address differing: warning",
        advice: "Make the members' wsrep_provider_options the same (gcache.size above all: a smaller gcache turns rejoins into full state transfers).",
        applies: galera,
        check: provider_drift,
    },
    Rule {
        id: "version_drift",
        title: "different server versions",
        threshold: "members reporting different versions: warning",
        advice: "Finish the rolling upgrade: mixed versions are meant to last only while one is under way.",
        applies: replicated,
        check: version_drift,
    },
    Rule {
        id: "no_recent_backup",
        title: "no recent backup",
        threshold: "no completed backup within 1.5 times the shortest schedule period plus an hour (7 days without a schedule), or none at all: warning",
        advice: "Add a schedule (nines backup schedule create) or run nines backup create; look at the backup jobs' errors.",
        applies: any,
        check: recent_backup,
    },
    Rule {
        id: "backup_not_verified",
        title: "newest backup not verified",
        threshold: "the newest completed backup failed verification: critical; unverified for over an hour: warning",
        advice: "Run nines backup verify ID and read its note; a backup that does not restore is no backup.",
        applies: any,
        check: backup_verified,
    },
    Rule {
        id: "clock_drift",
        title: "server clock off",
        threshold: "a server's clock more than 1 s from the controller's (beyond the round trip's uncertainty): warning; 5 s: critical",
        advice: "Run NTP (chrony) on every host: point-in-time restores, TLS and Galera's timeouts rely on clocks that agree.",
        applies: any,
        check: clock_drift,
    },
    Rule {
        id: "long_transaction",
        title: "long-running transaction",
        threshold: "a transaction open over 60 s: warning; over 600 s: critical",
        advice: "Find the connection (SHOW PROCESSLIST) and its application; a transaction left open holds locks and grows the undo log.",
        applies: any,
        check: long_transactions,
    },
    Rule {
        id: "deadlocks",
        title: "deadlocks",
        threshold: "over 1 a minute: warning; over 10: critical",
        advice: "SHOW ENGINE INNODB STATUS shows the latest; take locks in the same order in every code path and keep transactions short.",
        applies: any,
        check: deadlocks,
    },
    Rule {
        id: "tmp_disk_tables",
        title: "temporary tables on disk",
        threshold: "over at least 100 temporary tables, more than 25 % on disk: warning; 75 %: critical",
        advice: "Raise tmp_table_size and max_heap_table_size together, or find the queries sorting or grouping large results (nines query top).",
        applies: any,
        check: tmp_disk_tables,
    },
    Rule {
        id: "table_definition_cache",
        title: "more tables than the table definition cache",
        threshold: "user tables above table_definition_cache: warning",
        advice: "Raise table_definition_cache above the number of tables.",
        applies: any,
        check: table_definitions,
    },
    Rule {
        id: "table_open_cache",
        title: "table open cache misses",
        threshold: "over at least 1000 opens, more than 10 % missing the cache: warning; 50 %: critical",
        advice: "Raise table_open_cache (and open_files_limit with it).",
        applies: any,
        check: table_cache_misses,
    },
    Rule {
        id: "open_files",
        title: "open files near the limit",
        threshold: "Open_files over 85 % of open_files_limit: warning; over 95 %: critical",
        advice: "Raise open_files_limit (and the service's LimitNOFILE).",
        applies: any,
        check: open_files,
    },
    Rule {
        id: "aborted_connects",
        title: "failed connection attempts",
        threshold: "over 10 a minute: warning; over 100: critical",
        advice: "Look at the error log for the client addresses: a wrong password in an application, or someone trying.",
        applies: any,
        check: aborted_connects,
    },
    Rule {
        id: "innodb_log_waits",
        title: "InnoDB log buffer waits",
        threshold: "any Innodb_log_waits in the interval: warning",
        advice: "Raise innodb_log_buffer_size.",
        applies: any,
        check: log_waits,
    },
    Rule {
        id: "replication_without_gtid",
        title: "replication by file position",
        threshold: "a replica with Using_Gtid=No: warning",
        advice: "CHANGE MASTER TO MASTER_USE_GTID=slave_pos: nines fails over and repoints replicas by GTID.",
        applies: replication,
        check: replication_gtid,
    },
    Rule {
        id: "binlog_format",
        title: "binary log format not ROW",
        threshold: "binlog_format other than ROW: warning",
        advice: "Set binlog_format=ROW.",
        applies: replicated,
        check: binlog_format,
    },
    Rule {
        id: "query_cache",
        title: "query cache on",
        threshold: "query_cache_type on with a non-zero query_cache_size: warning",
        advice: "Set query_cache_type=OFF and query_cache_size=0: its lock serialises writes, and Galera nodes cannot use it safely with writes elsewhere.",
        applies: any,
        check: query_cache,
    },
    Rule {
        id: "replica_packet_size",
        title: "replica packet limit below the primary's",
        threshold: "a replica's slave_max_allowed_packet below the primary's max_allowed_packet: warning",
        advice: "Raise slave_max_allowed_packet on the replicas to at least the primary's max_allowed_packet.",
        applies: replication,
        check: packet_sizes,
    },
    Rule {
        id: "performance_schema_off",
        title: "performance_schema off",
        threshold: "performance_schema=OFF: warning",
        advice: "Set performance_schema=ON (a restart): nines deploys it on; the query monitor needs it.",
        applies: any,
        check: performance_schema,
    },
    Rule {
        id: "digests_lost",
        title: "statement digest table full",
        threshold: "any Performance_schema_digest_lost in the interval: warning",
        advice: "Raise performance_schema_digests_size, or TRUNCATE performance_schema.events_statements_summary_by_digest after reading it.",
        applies: any,
        check: digests_lost,
    },
];
