//! The replication SQL dialects of MariaDB and MySQL 8: the statements that failover,
//! switchover, rejoin and provisioning send, by flavor, and the string literal that
//! quotes every value they carry. Text only; the operations that run them are in
//! nines-ops.
//!
//! | step | MariaDB | MySQL 8 |
//! |---|---|---|
//! | fence | `read_only=ON` | `super_read_only=ON` |
//! | stop receiving | `STOP SLAVE IO_THREAD` | `STOP REPLICA IO_THREAD` |
//! | wait for a set | `MASTER_GTID_WAIT` | `WAIT_FOR_EXECUTED_GTID_SET` |
//! | promote | `STOP SLAVE; RESET SLAVE ALL` | `STOP REPLICA; RESET REPLICA ALL` |
//! | repoint | `CHANGE MASTER TO … MASTER_USE_GTID=slave_pos` | `CHANGE REPLICATION SOURCE TO … SOURCE_AUTO_POSITION=1` |
//!
//! MySQL cannot be installed on the machines nines is tested on: its dialect is checked
//! as text here, and against recorded server output in the parsers' fixtures.

use nines_model::Endpoint;
use nines_model::replication::Flavor;

use super::conn::Credentials;

/// The statements of one flavor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect(pub Flavor);

impl Dialect {
    /// The variable that holds the server's executed GTID set.
    pub fn executed_var(self) -> &'static str {
        match self.0 {
            Flavor::MariaDb => "@@GLOBAL.gtid_current_pos",
            Flavor::MySql => "@@GLOBAL.gtid_executed",
        }
    }

    /// Makes the server refuse writes of ordinary accounts.
    pub fn fence(self) -> &'static str {
        match self.0 {
            Flavor::MariaDb => "SET GLOBAL read_only=ON",
            Flavor::MySql => "SET GLOBAL super_read_only=ON",
        }
    }

    /// Makes the server take writes.
    pub fn writable(self) -> &'static str {
        match self.0 {
            Flavor::MariaDb => "SET GLOBAL read_only=OFF",
            Flavor::MySql => "SET GLOBAL super_read_only=OFF; SET GLOBAL read_only=OFF",
        }
    }

    /// Stops receiving from the source (applying goes on).
    pub fn stop_io(self) -> &'static str {
        match self.0 {
            Flavor::MariaDb => "STOP SLAVE IO_THREAD",
            Flavor::MySql => "STOP REPLICA IO_THREAD",
        }
    }

    /// Starts both replication threads.
    pub fn start_replica(self) -> &'static str {
        match self.0 {
            Flavor::MariaDb => "START SLAVE",
            Flavor::MySql => "START REPLICA",
        }
    }

    /// Forgets the server's source: it replicates from nobody.
    pub fn reset_replica(self) -> &'static str {
        match self.0 {
            Flavor::MariaDb => "STOP SLAVE; RESET SLAVE ALL",
            Flavor::MySql => "STOP REPLICA; RESET REPLICA ALL",
        }
    }

    /// Switches the primary side of semi-synchronous replication on or off.
    pub fn semi_sync_primary(self, on: bool) -> String {
        let v = if on { "ON" } else { "OFF" };
        match self.0 {
            Flavor::MariaDb => format!("SET GLOBAL rpl_semi_sync_master_enabled={v}"),
            Flavor::MySql => format!("SET GLOBAL rpl_semi_sync_source_enabled={v}"),
        }
    }

    /// Waits until `set` is applied, at most `secs`; answers 0 once applied (MariaDB -1,
    /// MySQL 1 on timeout), aliased `v`.
    pub fn wait_applied(self, set: &str, secs: f64) -> String {
        let function = match self.0 {
            Flavor::MariaDb => "MASTER_GTID_WAIT",
            Flavor::MySql => "WAIT_FOR_EXECUTED_GTID_SET",
        };
        format!("SELECT {function}({}, {secs:.3}) AS v", sql_str(set))
    }

    /// The statements that make a server replicate from `source` by GTID, with
    /// `account` (None: keep the account it has). `own_history`: the server was a
    /// primary (its own binlog holds history its slave position lacks), so MariaDB must
    /// start from its current position.
    pub fn change_source(
        self,
        source: &Endpoint,
        account: Option<&Credentials>,
        own_history: bool,
    ) -> String {
        let account = |user: &str, password: &str| match account {
            Some(c) => format!(
                "{user}={}, {password}={}, ",
                sql_str(&c.user),
                sql_str(&c.password)
            ),
            None => String::new(),
        };
        match self.0 {
            Flavor::MariaDb => format!(
                "STOP SLAVE; {}CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={}, {}\
                 MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, \
                 MASTER_HEARTBEAT_PERIOD=1; START SLAVE",
                if own_history {
                    "SET GLOBAL gtid_slave_pos=@@GLOBAL.gtid_current_pos; "
                } else {
                    ""
                },
                sql_str(&source.host),
                source.port,
                account("MASTER_USER", "MASTER_PASSWORD")
            ),
            Flavor::MySql => format!(
                "STOP REPLICA; CHANGE REPLICATION SOURCE TO SOURCE_HOST={}, SOURCE_PORT={}, \
                 {}SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1, SOURCE_HEARTBEAT_PERIOD=1, \
                 GET_SOURCE_PUBLIC_KEY=1; START REPLICA",
                sql_str(&source.host),
                source.port,
                account("SOURCE_USER", "SOURCE_PASSWORD")
            ),
        }
    }
}

/// A SQL string literal.
pub fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_source_by_flavor() {
        let src: Endpoint = "127.0.0.5:3307".parse().unwrap();
        let repl = Credentials {
            user: "repl".into(),
            password: "p'w".into(),
        };
        let mariadb = Dialect(Flavor::MariaDb);
        let m = mariadb.change_source(&src, Some(&repl), false);
        assert!(
            m.contains("MASTER_HOST='127.0.0.5', MASTER_PORT=3307"),
            "{m}"
        );
        assert!(m.contains("MASTER_PASSWORD='p''w'"), "{m}");
        assert!(m.contains("MASTER_USE_GTID=slave_pos"));
        assert!(!m.contains("gtid_slave_pos="));
        let own = mariadb.change_source(&src, Some(&repl), true);
        assert!(own.contains("SET GLOBAL gtid_slave_pos=@@GLOBAL.gtid_current_pos"));
        let y = Dialect(Flavor::MySql).change_source(&src, Some(&repl), true);
        assert!(
            y.contains("CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.5'"),
            "{y}"
        );
        assert!(y.contains("SOURCE_AUTO_POSITION=1"));
        assert!(!y.contains("gtid_slave_pos"));
        let i = mariadb.change_source(&src, None, false);
        assert!(!i.contains("MASTER_USER"), "{i}");
        assert!(
            i.contains("MASTER_PORT=3307, MASTER_USE_GTID=slave_pos"),
            "{i}"
        );
    }

    #[test]
    fn statements_by_flavor() {
        let (m, y) = (Dialect(Flavor::MariaDb), Dialect(Flavor::MySql));
        assert_eq!(m.fence(), "SET GLOBAL read_only=ON");
        assert_eq!(y.fence(), "SET GLOBAL super_read_only=ON");
        assert!(y.writable().contains("super_read_only=OFF"));
        assert_eq!(y.stop_io(), "STOP REPLICA IO_THREAD");
        assert_eq!(m.reset_replica(), "STOP SLAVE; RESET SLAVE ALL");
        assert_eq!(
            y.semi_sync_primary(true),
            "SET GLOBAL rpl_semi_sync_source_enabled=ON"
        );
        assert_eq!(
            m.wait_applied("0-1-5", 2.5),
            "SELECT MASTER_GTID_WAIT('0-1-5', 2.500) AS v"
        );
        assert!(
            y.wait_applied("u:1-5", 1.0)
                .starts_with("SELECT WAIT_FOR_EXECUTED_GTID_SET('u:1-5'")
        );
        assert_eq!(m.executed_var(), "@@GLOBAL.gtid_current_pos");
    }

    #[test]
    fn sql_strings_are_escaped() {
        assert_eq!(sql_str("a'b\\c"), "'a''b\\\\c'");
    }
}
