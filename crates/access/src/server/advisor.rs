//! The advisors' read of one server, about twice a minute (never on the monitor's
//! one-second path): every global variable and status counter, the oldest open InnoDB
//! transaction, how many user tables there are and, when asked, which InnoDB tables lack
//! a primary key; and the server's clock with the round trip that measured it.

use std::time::Instant;

use chrono::Utc;
use nines_model::advisor::AdvisorSample;

use super::conn::{ServerConn, ServerError};

/// Schemas that are the server's own.
const SYSTEM_SCHEMAS: &str = "'mysql','information_schema','performance_schema','sys'";

/// Reads an [`AdvisorSample`]; with `tables_without_pk`, also the InnoDB tables without
/// a primary key (the catalog query is the expensive part: one node per cluster asks).
pub async fn sample(
    conn: &mut ServerConn,
    tables_without_pk: bool,
) -> Result<AdvisorSample, ServerError> {
    let mut sets = conn
        .query_sets("SHOW GLOBAL VARIABLES; SHOW GLOBAL STATUS")
        .await?
        .into_iter();
    let variables = sets.next().map(|s| s.into_vars()).unwrap_or_default();
    let status = sets.next().map(|s| s.into_vars()).unwrap_or_default();
    let started = Instant::now();
    let clock = conn
        .query_rows("SELECT UNIX_TIMESTAMP(NOW(6)) AS t")
        .await?;
    let round_trip_ms = started.elapsed().as_secs_f64() * 1000.0;
    let at = Utc::now();
    let server_unix_time = cell(&clock, "t")
        .and_then(|t| t.parse::<f64>().ok())
        .unwrap_or(0.0);
    let trx = conn
        .query_rows(
            "SELECT TIMESTAMPDIFF(SECOND, trx_started, NOW()) AS age, trx_mysql_thread_id AS id \
             FROM information_schema.INNODB_TRX ORDER BY trx_started LIMIT 1",
        )
        .await?;
    let oldest_trx = match (cell(&trx, "age"), cell(&trx, "id")) {
        (Some(a), Some(i)) => a.parse().ok().zip(i.parse().ok()),
        _ => None,
    };
    let tables = conn
        .query_rows(&format!(
            "SELECT COUNT(*) AS n FROM information_schema.TABLES \
             WHERE TABLE_TYPE='BASE TABLE' AND TABLE_SCHEMA NOT IN ({SYSTEM_SCHEMAS})"
        ))
        .await?;
    let user_tables = cell(&tables, "n").and_then(|n| n.parse().ok()).unwrap_or(0);
    let tables_without_pk = if tables_without_pk {
        let rows = conn
            .query_rows(&format!(
                "SELECT CONCAT(t.TABLE_SCHEMA, '.', t.TABLE_NAME) AS name \
                 FROM information_schema.TABLES t \
                 LEFT JOIN information_schema.TABLE_CONSTRAINTS c \
                   ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME \
                  AND c.CONSTRAINT_TYPE = 'PRIMARY KEY' \
                 WHERE t.TABLE_TYPE = 'BASE TABLE' AND t.ENGINE = 'InnoDB' \
                   AND t.TABLE_SCHEMA NOT IN ({SYSTEM_SCHEMAS}) AND c.CONSTRAINT_NAME IS NULL \
                 ORDER BY name LIMIT 1000"
            ))
            .await?;
        Some(
            rows.iter()
                .filter_map(|r| r.get("name").cloned().flatten())
                .collect(),
        )
    } else {
        None
    };
    Ok(AdvisorSample {
        at,
        variables: variables.into_iter().collect(),
        status: status.into_iter().collect(),
        oldest_trx,
        user_tables,
        tables_without_pk,
        server_unix_time,
        round_trip_ms,
    })
}

fn cell<'a>(rows: &'a [super::parse::Row], col: &str) -> Option<&'a str> {
    rows.first()?.get(col)?.as_deref()
}

/// Every statement digest that ran since the server started (or the table was emptied),
/// from `performance_schema.events_statements_summary_by_digest`.
pub async fn digests(
    conn: &mut ServerConn,
) -> Result<Vec<nines_model::query::DigestRow>, ServerError> {
    let rows = conn
        .query_rows(
            "SELECT SCHEMA_NAME AS s, DIGEST AS d, DIGEST_TEXT AS t, COUNT_STAR AS c, \
             SUM_TIMER_WAIT AS w, MAX_TIMER_WAIT AS m, SUM_ROWS_EXAMINED AS e, SUM_ROWS_SENT AS r \
             FROM performance_schema.events_statements_summary_by_digest WHERE COUNT_STAR > 0",
        )
        .await?;
    let num = |r: &super::parse::Row, k: &str| -> u64 {
        r.get(k)
            .cloned()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(rows
        .iter()
        .map(|r| nines_model::query::DigestRow {
            schema: r.get("s").cloned().flatten().unwrap_or_default(),
            digest: r.get("d").cloned().flatten(),
            text: r.get("t").cloned().flatten().unwrap_or_default(),
            count: num(r, "c"),
            sum_timer_ps: num(r, "w"),
            max_timer_ps: num(r, "m"),
            rows_examined: num(r, "e"),
            rows_sent: num(r, "r"),
        })
        .collect())
}

/// Keeps nines's own connections (`users`) out of performance_schema, so that its probes
/// are not the server's top queries: future connections through `setup_actors`, current
/// ones through `threads.INSTRUMENTED`. Needs the right to change performance_schema.
pub async fn hide_users(conn: &mut ServerConn, users: &[&str]) -> Result<(), ServerError> {
    if users.is_empty() {
        return Ok(());
    }
    let quoted: Vec<String> = users
        .iter()
        .map(|u| super::replication::sql_str(u))
        .collect();
    let actors: Vec<String> = quoted
        .iter()
        .map(|u| format!("('%', {u}, '%', 'NO', 'NO')"))
        .collect();
    conn.exec(&format!(
        "INSERT IGNORE INTO performance_schema.setup_actors (HOST, USER, ROLE, ENABLED, HISTORY) VALUES {}",
        actors.join(", ")
    ))
    .await?;
    conn.exec(&format!(
        "UPDATE performance_schema.threads SET INSTRUMENTED = 'NO' \
         WHERE PROCESSLIST_USER IN ({}) AND INSTRUMENTED = 'YES'",
        quoted.join(", ")
    ))
    .await
}
