//! User rules: a SQL query returning one number, compared with a warning and a critical
//! threshold (above or below), with a message, run every so often on chosen nodes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Status;
use crate::Role;
use crate::input::InputError;

/// Which way a value goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Too high: at or above the thresholds.
    Above,
    /// Too low: at or below the thresholds.
    Below,
}

/// The nodes a user rule runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeSelector {
    All,
    /// The writers: the primary, a standalone server, every Galera node.
    Primary,
    Replicas,
    /// These nodes (host:port).
    Nodes(Vec<String>),
}

impl NodeSelector {
    pub fn picks(&self, address: &str, role: Role) -> bool {
        match self {
            Self::All => true,
            Self::Primary => matches!(role, Role::Primary | Role::Standalone | Role::Galera),
            Self::Replicas => role == Role::Replica,
            Self::Nodes(list) => list.iter().any(|a| a == address),
        }
    }
}

/// A user rule as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserRule {
    /// 1-64 letters, digits, `_`, `-`; its alarm kind is `advisor.user_<name>`.
    pub name: String,
    /// One statement returning one number (first column of the first row).
    pub sql: String,
    pub direction: Direction,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    /// What a failing result says; `{value}` is replaced by the number.
    pub message: String,
    /// Seconds between runs (at least 10).
    pub every_seconds: u64,
    pub nodes: NodeSelector,
}

impl UserRule {
    /// The rule id results and alarms carry.
    pub fn id(&self) -> String {
        format!("user_{}", self.name)
    }

    /// Checks a rule before it is stored; the error names the field.
    pub fn validate(&self) -> Result<(), InputError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 58
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !name_ok {
            return Err(InputError::new(
                "name",
                format!(
                    "name `{}` must be 1-58 letters, digits, `_` or `-`",
                    crate::input::printable(&self.name)
                ),
            ));
        }
        let sql = self.sql.trim();
        if sql.is_empty() || sql.len() > 4096 {
            return Err(InputError::new("sql", "sql must be 1-4096 characters"));
        }
        if sql.trim_end_matches(';').contains(';') {
            return Err(InputError::new(
                "sql",
                "sql must be one statement (no `;` inside)",
            ));
        }
        let first = sql
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if !matches!(first.as_str(), "SELECT" | "SHOW" | "WITH" | "(SELECT") {
            return Err(InputError::new(
                "sql",
                "sql must be a query (SELECT, WITH or SHOW); it runs in a read-only transaction",
            ));
        }
        if self.warning.is_none() && self.critical.is_none() {
            return Err(InputError::new(
                "warning",
                "give a warning threshold, a critical threshold, or both",
            ));
        }
        for (field, v) in [("warning", self.warning), ("critical", self.critical)] {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(InputError::new(field, format!("{field} must be a number")));
            }
        }
        if let (Some(w), Some(c)) = (self.warning, self.critical) {
            let ordered = match self.direction {
                Direction::Above => c >= w,
                Direction::Below => c <= w,
            };
            if !ordered {
                return Err(InputError::new(
                    "critical",
                    format!(
                        "critical {c} must be {} the warning threshold {w}",
                        match self.direction {
                            Direction::Above => "at or above",
                            Direction::Below => "at or below",
                        }
                    ),
                ));
            }
        }
        crate::input::Text::parse("message", &self.message)?;
        if self.message.trim().is_empty() {
            return Err(InputError::new("message", "message must not be empty"));
        }
        if !(10..=86_400).contains(&self.every_seconds) {
            return Err(InputError::new("every", "every must be from 10 s to 1 day"));
        }
        if let NodeSelector::Nodes(list) = &self.nodes {
            crate::input::node_list("nodes", list)?;
        }
        Ok(())
    }

    /// The verdict on a value the query returned.
    pub fn verdict(&self, value: f64) -> (Status, String) {
        let past = |t: Option<f64>| {
            t.is_some_and(|t| match self.direction {
                Direction::Above => value >= t,
                Direction::Below => value <= t,
            })
        };
        let status = if past(self.critical) {
            Status::Critical
        } else if past(self.warning) {
            Status::Warning
        } else {
            Status::Ok
        };
        let shown = if value.fract() == 0.0 && value.abs() < 1e15 {
            format!("{}", value as i64)
        } else {
            format!("{value:.3}")
        };
        let message = if status == Status::Ok {
            format!("{shown} (within the thresholds)")
        } else {
            self.message.replace("{value}", &shown)
        };
        (status, message)
    }
}

/// The number a query's first column holds; an error naming what came back otherwise.
pub fn number(first_cell: Option<&str>) -> Result<f64, String> {
    let Some(cell) = first_cell else {
        return Err("the query returned no row (or NULL)".into());
    };
    cell.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            format!(
                "the query returned `{}`, not a number",
                crate::input::printable(&cell.chars().take(64).collect::<String>())
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(direction: Direction, warning: Option<f64>, critical: Option<f64>) -> UserRule {
        UserRule {
            name: "orders_backlog".into(),
            sql: "SELECT COUNT(*) FROM shop.orders WHERE state='new'".into(),
            direction,
            warning,
            critical,
            message: "{value} orders waiting".into(),
            every_seconds: 60,
            nodes: NodeSelector::Primary,
        }
    }

    #[test]
    fn values_are_judged_against_the_thresholds_in_their_direction() {
        use Direction::*;
        use Status::*;
        let cases = [
            (rule(Above, Some(10.0), Some(100.0)), 5.0, Ok),
            (rule(Above, Some(10.0), Some(100.0)), 10.0, Warning),
            (rule(Above, Some(10.0), Some(100.0)), 150.0, Critical),
            (rule(Above, None, Some(100.0)), 50.0, Ok),
            (rule(Below, Some(2.0), Some(1.0)), 3.0, Ok),
            (rule(Below, Some(2.0), Some(1.0)), 2.0, Warning),
            (rule(Below, Some(2.0), Some(1.0)), 0.0, Critical),
        ];
        for (r, v, want) in cases {
            assert_eq!(r.verdict(v).0, want, "{:?} {v}", r.direction);
        }
        assert_eq!(
            rule(Above, Some(10.0), None).verdict(12.0).1,
            "12 orders waiting"
        );
        assert_eq!(rule(Above, Some(10.0), None).id(), "user_orders_backlog");
    }

    #[test]
    fn bad_rules_are_refused_naming_the_field() {
        let field = |r: UserRule| r.validate().unwrap_err().field;
        let ok = rule(Direction::Above, Some(1.0), Some(2.0));
        assert!(ok.validate().is_ok());
        assert_eq!(
            field(UserRule {
                name: "a b".into(),
                ..ok.clone()
            }),
            "name"
        );
        assert_eq!(
            field(UserRule {
                sql: "DELETE FROM t".into(),
                ..ok.clone()
            }),
            "sql"
        );
        assert_eq!(
            field(UserRule {
                sql: "SELECT 1; DROP TABLE t".into(),
                ..ok.clone()
            }),
            "sql"
        );
        assert_eq!(field(rule(Direction::Above, None, None)), "warning");
        assert_eq!(
            field(rule(Direction::Above, Some(5.0), Some(1.0))),
            "critical"
        );
        assert_eq!(
            field(UserRule {
                every_seconds: 1,
                ..ok.clone()
            }),
            "every"
        );
        assert_eq!(
            field(UserRule {
                nodes: NodeSelector::Nodes(vec!["..".into()]),
                ..ok
            }),
            "nodes"
        );
    }

    #[test]
    fn a_query_answer_must_be_one_number() {
        assert_eq!(number(Some(" 42 ")), Ok(42.0));
        assert_eq!(number(Some("0.5")), Ok(0.5));
        assert!(number(None).unwrap_err().contains("no row"));
        assert!(number(Some("abc")).unwrap_err().contains("not a number"));
        assert!(number(Some("inf")).is_err());
    }
}
