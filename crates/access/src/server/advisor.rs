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
