//! Parsers from raw SHOW output to the typed structs of `nines_model::replication`,
//! independent of the database driver: the caller turns result rows into [`Row`]s or a
//! [`VarMap`] and hands them here.
//!
//! * [`parse_version`]: `SELECT VERSION(), @@version_comment` -> [`ServerVersion`].
//! * [`parse_replica_status`]: rows of `SHOW ALL SLAVES STATUS` (MariaDB),
//!   `SHOW SLAVE STATUS` or `SHOW REPLICA STATUS` (MySQL, old and 8.0.22+ column names)
//!   -> [`ReplicaStatus`] per channel.
//! * [`parse_wsrep`]: `SHOW GLOBAL STATUS LIKE 'wsrep%'` and
//!   `SHOW GLOBAL VARIABLES LIKE 'wsrep%'` -> [`WsrepStatus`].
//! * [`status_counter`], [`var_bool`], [`var_str`]: single values of a [`VarMap`].
//! * [`parse_processlist_binlog_dumps`]: `SHOW PROCESSLIST` rows -> hosts of the
//!   replicas connected to this server.
//! * [`parse_grastate`], [`parse_wsrep_recover`], [`parse_wsrep_recover_gtid`]: Galera's
//!   `grastate.dat` and the output of `mariadbd --wsrep-recover`.

use std::collections::BTreeMap;

use nines_model::replication::{Flavor, IoThreadState, ReplicaStatus, ServerVersion, WsrepStatus};

/// One row of a multi-column result: column name -> value, `None` for SQL NULL.
/// Columns are looked up by exact name first, then case-insensitively.
pub type Row = BTreeMap<String, Option<String>>;

/// `Variable_name -> Value` of SHOW GLOBAL STATUS / SHOW GLOBAL VARIABLES. Build it with
/// [`var_map`], which lowercases the names; lookups lowercase the name they are given
/// (and fall back to a case-insensitive scan for maps built otherwise).
pub type VarMap = BTreeMap<String, String>;

/// A result that could not be turned into its typed form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A required column is absent; `column` lists the accepted names.
    #[error("row {row}: missing column {column}")]
    MissingColumn { row: usize, column: String },
    /// A column holds a value of the wrong shape (e.g. a port that is not a number).
    #[error("row {row}: column {column} has an invalid value `{value}`")]
    BadValue {
        row: usize,
        column: String,
        value: String,
    },
}

/// Builds a [`VarMap`] from `(Variable_name, Value)` pairs, lowercasing the names.
pub fn var_map<I, K, V>(pairs: I) -> VarMap
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: Into<String>,
{
    pairs
        .into_iter()
        .map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.into()))
        .collect()
}

/// The value of a variable, by case-insensitive name.
pub fn var_str<'a>(vars: &'a VarMap, name: &str) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    vars.get(&lower)
        .or_else(|| {
            vars.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        .map(String::as_str)
}

/// A numeric status counter or gauge (`Uptime`, `Threads_connected`…); None when absent
/// or not an unsigned integer.
pub fn status_counter(status: &VarMap, name: &str) -> Option<u64> {
    var_str(status, name)?.trim().parse().ok()
}

/// A boolean variable or status: ON/OFF, 1/0, YES/NO, TRUE/FALSE (any case); None when
/// absent or anything else.
pub fn var_bool(vars: &VarMap, name: &str) -> Option<bool> {
    parse_bool(var_str(vars, name)?)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_uppercase().as_str() {
        "ON" | "1" | "YES" | "TRUE" => Some(true),
        "OFF" | "0" | "NO" | "FALSE" => Some(false),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Version
// ---------------------------------------------------------------------------------------

/// Parses `VERSION()` and `@@version_comment` into a [`ServerVersion`].
///
/// MariaDB is recognised by "MariaDB" in either string (`10.11.6-MariaDB-log`,
/// `10.11.19-MariaDB-0+deb12u1-log` with comment `Debian 12`); anything else is MySQL
/// (including Percona Server). The `5.5.5-` prefix MariaDB sends to clients over the
/// protocol (`5.5.5-10.11.6-MariaDB`) is skipped for the numbers; `text` keeps the
/// string as given. Missing numbers are 0.
pub fn parse_version(version: &str, version_comment: &str) -> ServerVersion {
    let text = version.trim();
    let is_maria = |s: &str| s.to_ascii_lowercase().contains("mariadb");
    let flavor = if is_maria(text) || is_maria(version_comment) {
        Flavor::MariaDb
    } else {
        Flavor::MySql
    };
    let numbers = match text.strip_prefix("5.5.5-") {
        Some(rest) if flavor == Flavor::MariaDb => rest,
        _ => text,
    };
    let numeric: &str = numbers
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .unwrap_or_default();
    let mut parts = numeric.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    ServerVersion {
        flavor,
        major: parts.next().unwrap_or(0),
        minor: parts.next().unwrap_or(0),
        patch: parts.next().unwrap_or(0),
        text: text.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// Replica status
// ---------------------------------------------------------------------------------------

/// Column lookup in one row, trying each accepted name (old MariaDB/MySQL name first,
/// then the MySQL 8.0.22+ one).
struct Cols<'a> {
    row: &'a Row,
    index: usize,
}

impl<'a> Cols<'a> {
    /// The column's value: Some(None) for NULL, None when no such column.
    fn raw(&self, names: &[&str]) -> Option<Option<&'a str>> {
        for name in names {
            if let Some(v) = self.row.get(*name) {
                return Some(v.as_deref());
            }
        }
        for name in names {
            if let Some((_, v)) = self.row.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                return Some(v.as_deref());
            }
        }
        None
    }

    /// Non-NULL value, trimmed; None when absent or NULL.
    fn str(&self, names: &[&str]) -> Option<&'a str> {
        self.raw(names).flatten().map(str::trim)
    }

    fn string(&self, names: &[&str]) -> String {
        self.str(names).unwrap_or_default().to_owned()
    }

    fn required(&self, names: &[&str]) -> Result<String, ParseError> {
        match self.raw(names) {
            Some(v) => Ok(v.unwrap_or_default().trim().to_owned()),
            None => Err(ParseError::MissingColumn {
                row: self.index,
                column: names.join("/"),
            }),
        }
    }

    /// A number; None when the column is absent, NULL or empty, an error when it holds
    /// something else.
    fn num<T: std::str::FromStr>(&self, names: &[&str]) -> Result<Option<T>, ParseError> {
        match self.str(names) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| ParseError::BadValue {
                row: self.index,
                column: names.join("/"),
                value: v.to_owned(),
            }),
        }
    }

    /// A GTID set text with the newlines of SHOW output removed.
    fn gtids(&self, names: &[&str]) -> String {
        self.str(names)
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect()
    }
}

/// Parses the rows of `SHOW ALL SLAVES STATUS` (MariaDB), `SHOW SLAVE STATUS` or
/// `SHOW REPLICA STATUS` (MySQL) into one [`ReplicaStatus`] per row (channel).
///
/// Columns are read by name; both the old names (`Master_Host`, `Slave_IO_Running`,
/// `Seconds_Behind_Master`…) and the MySQL 8.0.22+ ones (`Source_Host`,
/// `Replica_IO_Running`, `Seconds_Behind_Source`…) are accepted. Only the host column is
/// required; other absent columns take defaults (0, "", None). A number column holding
/// something that is not a number is an error.
///
/// * `io_state`: `Yes` -> Running, `Connecting` -> Connecting, anything else -> Stopped.
/// * `using_gtid`: MariaDB `Using_Gtid` as is; MySQL `Auto_Position` 1 -> "Yes", else "No".
/// * `received_gtids`: MariaDB `Gtid_IO_Pos`, MySQL `Retrieved_Gtid_Set`;
///   `executed_gtids`: MySQL `Executed_Gtid_Set`, "" on MariaDB. Whitespace (the
///   newlines MySQL puts after each comma) is removed.
pub fn parse_replica_status(rows: &[Row]) -> Result<Vec<ReplicaStatus>, ParseError> {
    rows.iter()
        .enumerate()
        .map(|(index, row)| replica_status(&Cols { row, index }))
        .collect()
}

fn replica_status(c: &Cols<'_>) -> Result<ReplicaStatus, ParseError> {
    let source_host = c.required(&["Master_Host", "Source_Host"])?;
    let io_state = match c.str(&["Slave_IO_Running", "Replica_IO_Running"]) {
        Some(v) if v.eq_ignore_ascii_case("yes") => IoThreadState::Running,
        Some(v) if v.eq_ignore_ascii_case("connecting") => IoThreadState::Connecting,
        _ => IoThreadState::Stopped,
    };
    let sql_running = c
        .str(&["Slave_SQL_Running", "Replica_SQL_Running"])
        .is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    let using_gtid = match c.str(&["Using_Gtid"]) {
        Some(v) => v.to_owned(),
        None => match c.num::<u32>(&["Auto_Position"])? {
            Some(1) => "Yes".to_owned(),
            _ => "No".to_owned(),
        },
    };
    let received_gtids = if c.raw(&["Gtid_IO_Pos"]).is_some() {
        c.gtids(&["Gtid_IO_Pos"])
    } else {
        c.gtids(&["Retrieved_Gtid_Set"])
    };
    Ok(ReplicaStatus {
        channel: c.string(&["Connection_name", "Channel_Name"]),
        source_host,
        source_port: c.num(&["Master_Port", "Source_Port"])?.unwrap_or(0),
        io_state,
        sql_running,
        seconds_behind: c.num(&["Seconds_Behind_Master", "Seconds_Behind_Source"])?,
        last_io_errno: c.num(&["Last_IO_Errno"])?.unwrap_or(0),
        last_io_error: c.string(&["Last_IO_Error"]),
        last_sql_errno: c.num(&["Last_SQL_Errno"])?.unwrap_or(0),
        last_sql_error: c.string(&["Last_SQL_Error"]),
        using_gtid,
        received_gtids,
        executed_gtids: c.gtids(&["Executed_Gtid_Set"]),
        sql_delay: c.num(&["SQL_Delay"])?.unwrap_or(0),
        source_server_id: c
            .num(&["Master_Server_Id", "Source_Server_Id"])?
            .unwrap_or(0),
        heartbeat_period: c.num(&["Slave_heartbeat_period", "Replica_heartbeat_period"])?,
        received_heartbeats: c
            .num(&["Slave_received_heartbeats", "Replica_received_heartbeats"])?,
        exec_source_log_file: c.string(&["Relay_Master_Log_File", "Relay_Source_Log_File"]),
        exec_source_log_pos: c
            .num(&["Exec_Master_Log_Pos", "Exec_Source_Log_Pos"])?
            .unwrap_or(0),
        read_source_log_file: c.string(&["Master_Log_File", "Source_Log_File"]),
        read_source_log_pos: c
            .num(&["Read_Master_Log_Pos", "Read_Source_Log_Pos"])?
            .unwrap_or(0),
    })
}

// ---------------------------------------------------------------------------------------
// Galera
// ---------------------------------------------------------------------------------------

/// Parses Galera status (`SHOW GLOBAL STATUS LIKE 'wsrep%'`) and variables
/// (`SHOW GLOBAL VARIABLES LIKE 'wsrep%'`) into a [`WsrepStatus`].
///
/// `enabled` needs variable `wsrep_on` = ON, a `wsrep_ready` status and a loaded provider
/// (status `wsrep_provider_name` non-empty; where that status is absent, variable
/// `wsrep_provider` other than `none`). Absent values default to "", 0, false, and -1
/// for `last_committed` (Galera's "undefined" seqno). `incoming_addresses` lists
/// `wsrep_incoming_addresses` split on commas, without empty and `AUTO` entries.
pub fn parse_wsrep(status: &VarMap, variables: &VarMap) -> WsrepStatus {
    let s = |name| var_str(status, name).map(str::trim).unwrap_or_default();
    let provider_loaded = match var_str(status, "wsrep_provider_name") {
        Some(name) => !name.trim().is_empty(),
        None => var_str(variables, "wsrep_provider")
            .map(str::trim)
            .is_some_and(|p| !p.is_empty() && !p.eq_ignore_ascii_case("none")),
    };
    let enabled = var_bool(variables, "wsrep_on") == Some(true)
        && var_str(status, "wsrep_ready").is_some()
        && provider_loaded;
    WsrepStatus {
        enabled,
        local_state: s("wsrep_local_state_comment").to_owned(),
        cluster_status: s("wsrep_cluster_status").to_owned(),
        cluster_size: s("wsrep_cluster_size").parse().unwrap_or(0),
        cluster_state_uuid: s("wsrep_cluster_state_uuid").to_owned(),
        last_committed: s("wsrep_last_committed").parse().unwrap_or(-1),
        ready: var_bool(status, "wsrep_ready").unwrap_or(false),
        connected: var_bool(status, "wsrep_connected").unwrap_or(false),
        incoming_addresses: s("wsrep_incoming_addresses")
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty() && !a.eq_ignore_ascii_case("AUTO"))
            .map(str::to_owned)
            .collect(),
        recv_queue: status_counter(status, "wsrep_local_recv_queue").unwrap_or(0),
        flow_control_paused: s("wsrep_flow_control_paused")
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .unwrap_or(0.0),
    }
}

/// Galera's saved state, `grastate.dat` in the datadir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grastate {
    /// The cluster state uuid ("" when the file has none).
    pub uuid: String,
    /// The last committed seqno at a clean shutdown; -1 while running, after a crash, or
    /// when absent.
    pub seqno: i64,
    /// `safe_to_bootstrap` (file version 2.1+); None in older files.
    pub safe_to_bootstrap: Option<bool>,
}

/// Parses `grastate.dat`:
///
/// ```text
/// # GALERA saved state
/// version: 2.1
/// uuid:    5611f113-e7cf-11f1-ac6a-ae103769cd24
/// seqno:   4
/// safe_to_bootstrap: 1
/// ```
///
/// Unknown keys and comments are ignored; absent or malformed values take the defaults
/// documented on [`Grastate`].
pub fn parse_grastate(text: &str) -> Grastate {
    let mut g = Grastate {
        uuid: String::new(),
        seqno: -1,
        safe_to_bootstrap: None,
    };
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "uuid" => g.uuid = value.to_owned(),
            "seqno" => g.seqno = value.parse().unwrap_or(-1),
            "safe_to_bootstrap" => g.safe_to_bootstrap = parse_bool(value),
            _ => {}
        }
    }
    g
}

/// The text after the last "WSREP: Recovered position" in `mariadbd --wsrep-recover`
/// output: `uuid:seqno`, followed by `,domain-server-seq` where wsrep_gtid_mode is on.
fn recovered_position(log_text: &str) -> Option<&str> {
    const MARK: &str = "WSREP: Recovered position";
    let line = log_text.lines().rev().find(|l| l.contains(MARK))?;
    let (_, rest) = line.split_once(MARK)?;
    let rest = rest.trim_start();
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    rest.split_whitespace().next()
}

/// Finds the `WSREP: Recovered position: uuid:seqno[,gtid]` line of
/// `mariadbd --wsrep-recover` output (the last one, if several) and returns the cluster
/// state uuid and seqno. None when there is no such line or it is malformed.
pub fn parse_wsrep_recover(log_text: &str) -> Option<(String, i64)> {
    let pos = recovered_position(log_text)?;
    let pos = pos.split(',').next()?;
    let (uuid, seqno) = pos.rsplit_once(':')?;
    if uuid.is_empty() {
        return None;
    }
    Some((uuid.to_owned(), seqno.parse().ok()?))
}

/// The MariaDB GTID position that `mariadbd --wsrep-recover` appends to the recovered
/// position when wsrep_gtid_mode is on (`...:7,9-3-3` -> `9-3-3`).
pub fn parse_wsrep_recover_gtid(log_text: &str) -> Option<String> {
    let pos = recovered_position(log_text)?;
    let (_, gtid) = pos.split_once(',')?;
    let gtid = gtid.trim();
    (!gtid.is_empty()).then(|| gtid.to_owned())
}

// ---------------------------------------------------------------------------------------
// Processlist
// ---------------------------------------------------------------------------------------

/// From `SHOW PROCESSLIST` or `information_schema.PROCESSLIST` rows, the client hosts of
/// the binlog dump threads (`Command` = `Binlog Dump` or `Binlog Dump GTID`): the
/// replicas connected to this server. The `:port` suffix is removed (and the brackets of
/// `[v6]:port`). In row order, duplicates kept.
pub fn parse_processlist_binlog_dumps(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .enumerate()
        .filter_map(|(index, row)| {
            let c = Cols { row, index };
            let command = c.str(&["Command"])?;
            if !(command.eq_ignore_ascii_case("Binlog Dump")
                || command.eq_ignore_ascii_case("Binlog Dump GTID"))
            {
                return None;
            }
            Some(strip_port(c.str(&["Host"])?).to_owned())
        })
        .collect()
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    match host.rsplit_once(':') {
        Some((h, port))
            if !h.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            h
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, Option<&str>)]) -> Row {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn versions() {
        let cases = [
            (
                "10.11.19-MariaDB-0+deb12u1",
                "Debian 12",
                Flavor::MariaDb,
                (10, 11, 19),
            ),
            (
                "10.11.6-MariaDB-log",
                "MariaDB Server",
                Flavor::MariaDb,
                (10, 11, 6),
            ),
            ("5.5.5-10.11.6-MariaDB", "", Flavor::MariaDb, (10, 11, 6)),
            (
                "11.4.2-MariaDB",
                "mariadb.org binary distribution",
                Flavor::MariaDb,
                (11, 4, 2),
            ),
            (
                "8.0.36",
                "MySQL Community Server - GPL",
                Flavor::MySql,
                (8, 0, 36),
            ),
            (
                "8.4.2",
                "MySQL Community Server - GPL",
                Flavor::MySql,
                (8, 4, 2),
            ),
            (
                "8.0.36-28",
                "Percona Server (GPL), Release 28, Revision 47601f19",
                Flavor::MySql,
                (8, 0, 36),
            ),
            (
                "5.7.44-log",
                "MySQL Community Server (GPL)",
                Flavor::MySql,
                (5, 7, 44),
            ),
            ("5.5.5", "", Flavor::MySql, (5, 5, 5)),
            ("9.1", "", Flavor::MySql, (9, 1, 0)),
            ("", "", Flavor::MySql, (0, 0, 0)),
        ];
        for (v, c, flavor, (major, minor, patch)) in cases {
            let got = parse_version(v, c);
            assert_eq!(
                got,
                ServerVersion {
                    flavor,
                    major,
                    minor,
                    patch,
                    text: v.to_owned()
                },
                "{v}"
            );
        }
    }

    #[test]
    fn bools_and_counters() {
        let m = var_map([
            ("Uptime", "42"),
            ("wsrep_ready", "ON"),
            ("read_only", "off"),
            ("x", "yes"),
            ("y", "0"),
            ("z", "maybe"),
            ("neg", "-1"),
        ]);
        assert_eq!(status_counter(&m, "UPTIME"), Some(42));
        assert_eq!(status_counter(&m, "neg"), None);
        assert_eq!(status_counter(&m, "missing"), None);
        assert_eq!(var_bool(&m, "WSREP_READY"), Some(true));
        assert_eq!(var_bool(&m, "read_only"), Some(false));
        assert_eq!(var_bool(&m, "x"), Some(true));
        assert_eq!(var_bool(&m, "y"), Some(false));
        assert_eq!(var_bool(&m, "z"), None);
        // A map built without lowercasing still answers.
        let raw: VarMap = [("Threads_connected".to_owned(), "7".to_owned())].into();
        assert_eq!(status_counter(&raw, "threads_connected"), Some(7));
    }

    #[test]
    fn replica_status_minimal_and_errors() {
        let r = parse_replica_status(&[row(&[("Source_Host", Some("db1"))])]).unwrap();
        assert_eq!(r[0].source_host, "db1");
        assert_eq!(r[0].io_state, IoThreadState::Stopped);
        assert_eq!(r[0].using_gtid, "No");
        assert_eq!(r[0].seconds_behind, None);
        assert_eq!(r[0].heartbeat_period, None);
        let e = parse_replica_status(&[
            row(&[("Master_Host", Some("a"))]),
            row(&[("Master_Port", Some("3306"))]),
        ])
        .unwrap_err();
        assert_eq!(
            e,
            ParseError::MissingColumn {
                row: 1,
                column: "Master_Host/Source_Host".to_owned()
            }
        );
        assert!(e.to_string().contains("Master_Host"));
        let e = parse_replica_status(&[row(&[
            ("Master_Host", Some("a")),
            ("Master_Port", Some("x")),
        ])])
        .unwrap_err();
        assert!(
            matches!(e, ParseError::BadValue { ref value, .. } if value == "x"),
            "{e}"
        );
        assert!(parse_replica_status(&[]).unwrap().is_empty());
    }

    #[test]
    fn grastate_and_recover_edge_cases() {
        let g = parse_grastate("# GALERA saved state\nversion: 2.0\nuuid: abc\nseqno: x\n");
        assert_eq!(
            g,
            Grastate {
                uuid: "abc".to_owned(),
                seqno: -1,
                safe_to_bootstrap: None
            }
        );
        assert_eq!(
            parse_wsrep_recover(
                "[Note] WSREP: Recovered position 00000000-0000-0000-0000-000000000000:-1"
            ),
            Some(("00000000-0000-0000-0000-000000000000".to_owned(), -1))
        );
        assert_eq!(parse_wsrep_recover("no such line"), None);
        assert_eq!(
            parse_wsrep_recover("WSREP: Recovered position: garbage"),
            None
        );
        assert_eq!(
            parse_wsrep_recover_gtid("WSREP: Recovered position: u:5"),
            None
        );
    }

    #[test]
    fn host_ports() {
        assert_eq!(strip_port("10.0.0.5:43210"), "10.0.0.5");
        assert_eq!(strip_port("db2.example:3306"), "db2.example");
        assert_eq!(strip_port("localhost"), "localhost");
        assert_eq!(strip_port("[fd00::2]:5000"), "fd00::2");
        assert_eq!(strip_port("fd00::2:5000"), "fd00::2");
        assert_eq!(strip_port(""), "");
    }
}
