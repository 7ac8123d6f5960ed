//! A cluster's HA policy: the switches and limits every HA decision reads.
//!
//! The defaults aim at the contract of the HA issue: a primary frozen for 1 s never causes
//! a failover, a killed primary is replaced within about 2 s at a 1 s probe interval, and
//! nothing is promoted, bootstrapped or restarted when it could lose data or make two
//! writers. Each field says why its default is what it is. Durations serialize as whole
//! milliseconds so that a stored policy stays readable.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;

/// How far behind a replica may be and still be promoted by an automatic failover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CandidateLagLimit {
    /// Largest Seconds_Behind_Master of a candidate (its unapplied relay log, which the
    /// failover must apply before promoting, so this bounds the failover's duration).
    /// None: no limit. Default 10 s, matching [`HaPolicy::relay_log_apply_timeout`].
    pub max_seconds_behind: Option<u64>,
    /// Largest number of transactions the primary reported in its last sample that the
    /// chosen candidate never received: those are lost by the failover. None: no limit.
    /// Default 0: an automatic failover never knowingly loses a transaction
    /// (mariadb-operator#209 promoted a lagging replica and lost data; ha.md target 5).
    pub max_missing_transactions: Option<u64>,
}

impl Default for CandidateLagLimit {
    fn default() -> Self {
        Self {
            max_seconds_behind: Some(10),
            max_missing_transactions: Some(0),
        }
    }
}

/// The switches and limits of automatic recovery for one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HaPolicy {
    /// Whether nines repairs the cluster by itself (failover, Galera recovery, restarts).
    /// Default on: the product's point; `cluster recovery disable` turns it off.
    pub automatic_recovery: bool,
    /// After an automatic failover, no other one until this much time has passed or a
    /// person acknowledges it. Default 5 min: long enough for the old primary's rejoin
    /// (target <= 30 s), the repointing of every replica and a person to read the first
    /// failover's alarm, so a new primary that dies of the same cause (a query of death,
    /// a full disk) is not failed over in a ping-pong. orchestrator blocks for 1 h
    /// because it has no other brake; nines also has [`Self::daily_failover_budget`],
    /// which bounds a cascade, so the window need not leave the cluster unprotected for
    /// an hour.
    #[serde(with = "millis")]
    pub failover_block_window: Duration,
    /// Automatic failovers allowed in any 24 h, acknowledged or not; beyond it a person
    /// decides. Default 3, replication-manager's advice (`failover-limit=3`).
    pub daily_failover_budget: u32,
    /// How far behind a candidate may be.
    pub max_candidate_lag: CandidateLagLimit,
    /// Replicas never promoted automatically (reporting or backup replicas, another DC).
    pub excluded_candidates: Vec<Endpoint>,
    /// Preference order among candidates that received exactly the same transactions;
    /// unlisted replicas come after listed ones. Never beats a more advanced replica.
    pub preferred_candidates: Vec<Endpoint>,
    /// The cluster promises that acknowledged commits survive a failover (semi-sync
    /// AFTER_SYNC): refuse an automatic failover when that promise may have been broken
    /// (the primary had fallen back to asynchronous replication, or a replica that may
    /// hold the only copy of an acknowledged commit is unreachable). Default off, since
    /// only clusters deployed with semi-sync can keep it; deploy turns it on with them.
    pub require_semi_sync_ack: bool,
    /// Consecutive timed-out probes before the primary is suspected. A refused
    /// connection (nothing listens) is suspected at once. Default 2: a primary frozen
    /// for 1 s (SIGSTOP, a stall) misses at most one 1 s probe.
    pub suspect_after_timeouts: u32,
    /// Heartbeat periods during which a replica whose IO thread still says Running must
    /// see neither a heartbeat nor an event before it confirms the primary's death.
    /// Default 2 (ha.md 2a): one lost heartbeat is jitter, two is silence.
    pub confirm_heartbeat_periods: u32,
    /// How long a failover waits for the candidate to apply its relay log before giving
    /// up (the runtime's bound; never promote before it is applied). Default 10 s.
    #[serde(with = "millis")]
    pub relay_log_apply_timeout: Duration,
    /// Largest lag, in seconds, of a switchover candidate. Default 1 s (ha.md 2b): the
    /// primary is read-only while the candidate catches up.
    pub switchover_max_lag_seconds: u64,
    /// Oldest transaction allowed on the primary when a switchover starts: it would be
    /// killed by the demotion. Default 10 s (replication-manager cancels above 10 s).
    #[serde(with = "millis")]
    pub switchover_max_transaction_age: Duration,
    /// How long a node whose server died is left alone before nines restarts it (systemd
    /// or mysqld_safe may restart it first). Default 5 s: longer than a failover takes
    /// to confirm a dead primary (about 1 s), so a replication primary is failed over
    /// before anything restarts it.
    #[serde(with = "millis")]
    pub restart_grace: Duration,
    /// Wait after a failed restart before the next one, doubled after each. Default 10 s.
    #[serde(with = "millis")]
    pub restart_backoff: Duration,
    /// Restarts of one outage before nines gives up and raises an alarm. Default 3.
    pub max_restart_attempts: u32,
    /// How long a Galera cluster may have no Primary component, with some server still
    /// running, before nines recovers it. Default 10 s (ha.md 2c), longer than Galera's
    /// own suspect timeout (5 s), so that a cluster that can heal itself (pc.recovery,
    /// a short partition) does so first.
    #[serde(with = "millis")]
    pub galera_no_primary_timeout: Duration,
}

impl Default for HaPolicy {
    fn default() -> Self {
        Self {
            automatic_recovery: true,
            failover_block_window: Duration::minutes(5),
            daily_failover_budget: 3,
            max_candidate_lag: CandidateLagLimit::default(),
            excluded_candidates: Vec::new(),
            preferred_candidates: Vec::new(),
            require_semi_sync_ack: false,
            suspect_after_timeouts: 2,
            confirm_heartbeat_periods: 2,
            relay_log_apply_timeout: Duration::seconds(10),
            switchover_max_lag_seconds: 1,
            switchover_max_transaction_age: Duration::seconds(10),
            restart_grace: Duration::seconds(5),
            restart_backoff: Duration::seconds(10),
            max_restart_attempts: 3,
            galera_no_primary_timeout: Duration::seconds(10),
        }
    }
}

/// The bounds [`HaPolicy::validate`] holds a per-cluster policy to, inclusive. Each says
/// why; durations are what the API's JSON gives in milliseconds.
pub mod bounds {
    use chrono::Duration;

    /// [`super::HaPolicy::failover_block_window`]: 0 (off: only the daily budget brakes)
    /// to 24 h, the span of failovers the reconciler looks back at (a longer window
    /// would not see the failover it is meant to wait after).
    pub const FAILOVER_BLOCK_WINDOW: (Duration, Duration) = (Duration::zero(), Duration::hours(24));
    /// [`super::HaPolicy::daily_failover_budget`]: 1 (0 would forbid every automatic
    /// failover: switch recovery off for that) to 24 (more than one an hour is a cascade
    /// a person must look at).
    pub const DAILY_FAILOVER_BUDGET: (u32, u32) = (1, 24);
    /// [`super::HaPolicy::suspect_after_timeouts`]: 1 (a primary stalled for one probe
    /// is suspected) to 10 (beyond, a hung primary goes unreplaced for too long).
    pub const SUSPECT_AFTER_TIMEOUTS: (u32, u32) = (1, 10);
    /// [`super::HaPolicy::confirm_heartbeat_periods`]: 1 to 4. The monitor keeps 6
    /// samples per node, 5 s at a 1 s probe: silence for more periods could never be
    /// seen, and only a disconnect would confirm.
    pub const CONFIRM_HEARTBEAT_PERIODS: (u32, u32) = (1, 4);
    /// [`super::HaPolicy::relay_log_apply_timeout`]: 1 s to 10 min; the failover's
    /// write outage lasts up to this long.
    pub const RELAY_LOG_APPLY_TIMEOUT: (Duration, Duration) =
        (Duration::seconds(1), Duration::minutes(10));
    /// [`super::CandidateLagLimit::max_seconds_behind`]: at most 24 h when set (null:
    /// no limit).
    pub const MAX_SECONDS_BEHIND: u64 = 86_400;
    /// [`super::HaPolicy::switchover_max_lag_seconds`]: 0 to 300; the primary is
    /// read-only while the candidate catches up.
    pub const SWITCHOVER_MAX_LAG_SECONDS: u64 = 300;
    /// [`super::HaPolicy::switchover_max_transaction_age`]: 1 s to 1 h.
    pub const SWITCHOVER_MAX_TRANSACTION_AGE: (Duration, Duration) =
        (Duration::seconds(1), Duration::hours(1));
    /// [`super::HaPolicy::restart_grace`]: 1 s to 1 h. Keep it above the failover's
    /// confirmation (about 1 s), or a dead primary may be restarted instead of failed over.
    pub const RESTART_GRACE: (Duration, Duration) = (Duration::seconds(1), Duration::hours(1));
    /// [`super::HaPolicy::restart_backoff`]: 1 s to 1 h (doubled after each restart).
    pub const RESTART_BACKOFF: (Duration, Duration) = (Duration::seconds(1), Duration::hours(1));
    /// [`super::HaPolicy::max_restart_attempts`]: 1 to 20.
    pub const MAX_RESTART_ATTEMPTS: (u32, u32) = (1, 20);
    /// [`super::HaPolicy::galera_no_primary_timeout`]: 5 s, Galera's own suspect timeout
    /// (below it nines would race a cluster healing itself), to 1 h.
    pub const GALERA_NO_PRIMARY_TIMEOUT: (Duration, Duration) =
        (Duration::seconds(5), Duration::hours(1));
}

/// The fields of [`HaPolicy`] that are durations (whole milliseconds in JSON), as
/// [`HaPolicy::entries`] names them.
pub const DURATION_FIELDS: &[&str] = &[
    "failover_block_window",
    "relay_log_apply_timeout",
    "switchover_max_transaction_age",
    "restart_grace",
    "restart_backoff",
    "galera_no_primary_timeout",
];

/// The fields of [`HaPolicy`] that are whole seconds in JSON, as [`HaPolicy::entries`]
/// names them (and shows as durations).
pub const SECONDS_FIELDS: &[&str] = &[
    "max_candidate_lag.max_seconds_behind",
    "switchover_max_lag_seconds",
];

/// What is wrong with a policy or a change to it, naming the field as the API's JSON
/// spells it (`max_candidate_lag.max_seconds_behind` for a nested one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PolicyError {
    pub field: String,
    pub message: String,
}

impl PolicyError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// `ms` as the shortest of `2h`, `15m`, `10s`, `2500ms` (what `parse_duration` reads).
pub fn human_millis(ms: i64) -> String {
    match ms {
        0 => "0s".to_string(),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

fn check_range<T: PartialOrd + Copy>(
    errors: &mut Vec<PolicyError>,
    field: &str,
    value: T,
    (min, max): (T, T),
    show: impl Fn(T) -> String,
) {
    if value < min || value > max {
        errors.push(PolicyError::new(
            field,
            format!(
                "{} is out of bounds: it must be between {} and {}",
                show(value),
                show(min),
                show(max)
            ),
        ));
    }
}

fn span(d: Duration) -> String {
    human_millis(d.num_milliseconds())
}

/// Every leaf of a JSON object as (dotted path, value), objects walked in key order.
fn leaves(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&path, v, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

/// A policy value as people read it: durations (and seconds) as `5m`, lists comma-separated, no limit
/// and empty lists as `none`.
fn describe(field: &str, v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "none".to_string(),
        Value::Number(n) if DURATION_FIELDS.contains(&field) => match n.as_i64() {
            Some(ms) => human_millis(ms),
            None => n.to_string(),
        },
        Value::Number(n) if SECONDS_FIELDS.contains(&field) => {
            match n.as_i64().and_then(|s| s.checked_mul(1000)) {
                Some(ms) => human_millis(ms),
                None => n.to_string(),
            }
        }
        Value::Array(items) if items.is_empty() => "none".to_string(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Replaces the leaves of `target` named in `patch`, recursing into objects; a name
/// `target` does not have is an error naming it.
fn merge(
    target: &mut serde_json::Map<String, serde_json::Value>,
    patch: &serde_json::Map<String, serde_json::Value>,
    prefix: &str,
) -> Result<(), PolicyError> {
    for (k, v) in patch {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let Some(slot) = target.get_mut(k) else {
            let known: Vec<&str> = target.keys().map(String::as_str).collect();
            return Err(PolicyError::new(
                &path,
                format!(
                    "unknown field `{path}`, expected one of: {}",
                    known.join(", ")
                ),
            ));
        };
        match (slot, v) {
            (serde_json::Value::Object(inner), serde_json::Value::Object(p)) => {
                merge(inner, p, &path)?;
            }
            (slot, v) => *slot = v.clone(),
        }
    }
    Ok(())
}

impl HaPolicy {
    /// Checks a per-cluster policy against [`bounds`] and the cluster's `nodes`: excluded
    /// and preferred candidates must be nodes of the cluster, listed once, and none both
    /// excluded and preferred. Returns every problem found, each naming its field.
    pub fn validate(&self, nodes: &[Endpoint]) -> Result<(), Vec<PolicyError>> {
        let mut errors = Vec::new();
        let e = &mut errors;
        let n = |v: u32| v.to_string();
        check_range(
            e,
            "failover_block_window",
            self.failover_block_window,
            bounds::FAILOVER_BLOCK_WINDOW,
            span,
        );
        check_range(
            e,
            "daily_failover_budget",
            self.daily_failover_budget,
            bounds::DAILY_FAILOVER_BUDGET,
            n,
        );
        if let Some(s) = self.max_candidate_lag.max_seconds_behind {
            check_range(
                e,
                "max_candidate_lag.max_seconds_behind",
                s,
                (0, bounds::MAX_SECONDS_BEHIND),
                |v| format!("{v} s"),
            );
        }
        for (field, list) in [
            ("excluded_candidates", &self.excluded_candidates),
            ("preferred_candidates", &self.preferred_candidates),
        ] {
            let mut seen = Vec::new();
            for ep in list {
                if !nodes.contains(ep) {
                    e.push(PolicyError::new(
                        field,
                        format!("{ep} is not a node of the cluster"),
                    ));
                } else if seen.contains(&ep) {
                    e.push(PolicyError::new(field, format!("{ep} is listed twice")));
                }
                seen.push(ep);
            }
        }
        for ep in &self.preferred_candidates {
            if self.excluded_candidates.contains(ep) {
                e.push(PolicyError::new(
                    "preferred_candidates",
                    format!("{ep} is also in excluded_candidates: a node is either excluded from promotion or preferred, not both"),
                ));
            }
        }
        check_range(
            e,
            "suspect_after_timeouts",
            self.suspect_after_timeouts,
            bounds::SUSPECT_AFTER_TIMEOUTS,
            n,
        );
        check_range(
            e,
            "confirm_heartbeat_periods",
            self.confirm_heartbeat_periods,
            bounds::CONFIRM_HEARTBEAT_PERIODS,
            n,
        );
        check_range(
            e,
            "relay_log_apply_timeout",
            self.relay_log_apply_timeout,
            bounds::RELAY_LOG_APPLY_TIMEOUT,
            span,
        );
        check_range(
            e,
            "switchover_max_lag_seconds",
            self.switchover_max_lag_seconds,
            (0, bounds::SWITCHOVER_MAX_LAG_SECONDS),
            |v| format!("{v} s"),
        );
        check_range(
            e,
            "switchover_max_transaction_age",
            self.switchover_max_transaction_age,
            bounds::SWITCHOVER_MAX_TRANSACTION_AGE,
            span,
        );
        check_range(
            e,
            "restart_grace",
            self.restart_grace,
            bounds::RESTART_GRACE,
            span,
        );
        check_range(
            e,
            "restart_backoff",
            self.restart_backoff,
            bounds::RESTART_BACKOFF,
            span,
        );
        check_range(
            e,
            "max_restart_attempts",
            self.max_restart_attempts,
            bounds::MAX_RESTART_ATTEMPTS,
            n,
        );
        check_range(
            e,
            "galera_no_primary_timeout",
            self.galera_no_primary_timeout,
            bounds::GALERA_NO_PRIMARY_TIMEOUT,
            span,
        );
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// This policy with the fields of `patch` (a JSON object shaped like a policy, any
    /// subset of its fields, nested ones too: `{"max_candidate_lag": {"max_seconds_behind":
    /// 30}}`) replaced. An unknown field, or a value of the wrong type, is an error naming
    /// it. Nothing is validated against [`bounds`]: see [`Self::validate`].
    pub fn patched(
        &self,
        patch: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, PolicyError> {
        let mut merged = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) | Err(_) => {
                return Err(PolicyError::new("", "the policy cannot be written as JSON"));
            }
        };
        merge(&mut merged, patch, "")?;
        match serde_json::from_value(serde_json::Value::Object(merged)) {
            Ok(p) => Ok(p),
            Err(whole) => {
                // Find the changed field at fault: each alone onto a good policy.
                let mut changed = Vec::new();
                leaves("", &serde_json::Value::Object(patch.clone()), &mut changed);
                for (path, value) in changed {
                    let mut one = serde_json::Map::new();
                    let mut cursor = &mut one;
                    let parts: Vec<&str> = path.split('.').collect();
                    for (i, part) in parts.iter().enumerate() {
                        if i + 1 == parts.len() {
                            cursor.insert((*part).to_string(), value.clone());
                        } else {
                            let next = cursor
                                .entry((*part).to_string())
                                .or_insert_with(|| serde_json::Value::Object(Default::default()));
                            match next {
                                serde_json::Value::Object(m) => cursor = m,
                                _ => break,
                            }
                        }
                    }
                    let mut alone = match serde_json::to_value(Self::default()) {
                        Ok(serde_json::Value::Object(m)) => m,
                        _ => break,
                    };
                    if merge(&mut alone, &one, "").is_ok()
                        && let Err(e) =
                            serde_json::from_value::<Self>(serde_json::Value::Object(alone))
                    {
                        return Err(PolicyError::new(&path, e.to_string()));
                    }
                }
                Err(PolicyError::new("", whole.to_string()))
            }
        }
    }

    /// Every setting as (dotted field, value as people read it), in field-name order:
    /// durations as `5m`, no limit and empty lists as `none`.
    pub fn entries(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Ok(v) = serde_json::to_value(self) {
            leaves("", &v, &mut out);
        }
        out.into_iter()
            .map(|(k, v)| {
                let shown = describe(&k, &v);
                (k, shown)
            })
            .collect()
    }

    /// The JSON patch (for [`Self::patched`]) of the settings a person typed, as
    /// (dotted field, text) written the way [`Self::entries`] shows them: `5m` for a
    /// duration, `none` for no limit or an empty list, a comma-separated list, `true` or
    /// `false`. Only settings whose text differs from what `entries` shows are in it; an
    /// unknown field or a value that cannot be read is an error naming the field.
    pub fn patch_from_text(
        &self,
        typed: &[(String, String)],
    ) -> Result<serde_json::Map<String, serde_json::Value>, PolicyError> {
        use serde_json::Value;
        let mut current = Vec::new();
        if let Ok(v) = serde_json::to_value(self) {
            leaves("", &v, &mut current);
        }
        let mut patch = serde_json::Map::new();
        for (field, text) in typed {
            let text = text.trim();
            let Some((_, now)) = current.iter().find(|(k, _)| k == field) else {
                return Err(PolicyError::new(field, format!("unknown field `{field}`")));
            };
            if describe(field, now) == text {
                continue;
            }
            let duration = |scale: u128| -> Result<Value, PolicyError> {
                let d = crate::api::parse_duration(text).map_err(|e| PolicyError::new(field, e))?;
                Ok(Value::from((d.as_millis() / scale) as u64))
            };
            let number = || -> Result<Value, PolicyError> {
                text.parse::<u64>()
                    .map(Value::from)
                    .map_err(|_| PolicyError::new(field, format!("`{text}` is not a whole number")))
            };
            let value = if DURATION_FIELDS.contains(&field.as_str()) {
                duration(1)?
            } else if SECONDS_FIELDS.contains(&field.as_str()) {
                if text == "none" {
                    Value::Null
                } else {
                    duration(1000)?
                }
            } else {
                match now {
                    Value::Bool(_) => match text {
                        "true" | "on" | "yes" => Value::Bool(true),
                        "false" | "off" | "no" => Value::Bool(false),
                        _ => {
                            return Err(PolicyError::new(
                                field,
                                format!("`{text}` is not true or false"),
                            ));
                        }
                    },
                    Value::Array(_) => Value::Array(
                        text.split(',')
                            .map(str::trim)
                            .filter(|i| !i.is_empty() && *i != "none")
                            .map(|i| Value::String(i.to_string()))
                            .collect(),
                    ),
                    Value::String(_) => Value::String(text.to_string()),
                    // A number, or a limit that is off (null).
                    _ if text == "none" => Value::Null,
                    _ => number()?,
                }
            };
            // Nested fields (`max_candidate_lag.max_seconds_behind`) as nested objects.
            let mut parts = field.split('.').peekable();
            let mut cursor = &mut patch;
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    cursor.insert(part.to_string(), value);
                    break;
                }
                let next = cursor
                    .entry(part.to_string())
                    .or_insert_with(|| Value::Object(Default::default()));
                match next {
                    Value::Object(m) => cursor = m,
                    _ => return Err(PolicyError::new(field, "not a group of settings")),
                }
            }
        }
        Ok(patch)
    }

    /// What differs from `before` to `self`, one `field: old → new` per changed setting.
    pub fn changes_from(&self, before: &HaPolicy) -> Vec<String> {
        let old = before.entries();
        self.entries()
            .into_iter()
            .filter_map(|(k, new)| {
                let was = old
                    .iter()
                    .find(|(o, _)| *o == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                (was != new).then(|| format!("{k}: {was} → {new}"))
            })
            .collect()
    }
}

/// Serde for durations as whole milliseconds.
mod millis {
    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_milliseconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = i64::deserialize(d)?;
        Duration::try_milliseconds(ms)
            .filter(|d| *d >= Duration::zero())
            .ok_or_else(|| serde::de::Error::custom("duration out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_settings_become_a_patch_of_what_changed() {
        let p = HaPolicy::default();
        let t = |k: &str, v: &str| (k.to_string(), v.to_string());
        type Case = (
            Vec<(String, String)>,
            Result<serde_json::Value, &'static str>,
        );
        let cases: Vec<Case> = vec![
            // What entries shows, typed back: nothing changes.
            (p.entries(), Ok(serde_json::json!({}))),
            (
                vec![t("failover_block_window", "10m")],
                Ok(serde_json::json!({"failover_block_window": 600_000})),
            ),
            (
                vec![t("switchover_max_lag_seconds", "5s")],
                Ok(serde_json::json!({"switchover_max_lag_seconds": 5})),
            ),
            (
                vec![t("max_candidate_lag.max_seconds_behind", "none")],
                Ok(serde_json::json!({"max_candidate_lag": {"max_seconds_behind": null}})),
            ),
            (
                vec![t("max_candidate_lag.max_missing_transactions", " 4 ")],
                Ok(serde_json::json!({"max_candidate_lag": {"max_missing_transactions": 4}})),
            ),
            (
                vec![t("excluded_candidates", "10.0.0.2:3306, 10.0.0.3")],
                Ok(serde_json::json!({"excluded_candidates": ["10.0.0.2:3306", "10.0.0.3"]})),
            ),
            (
                vec![t("require_semi_sync_ack", "on")],
                Ok(serde_json::json!({"require_semi_sync_ack": true})),
            ),
            (
                vec![t("daily_failover_budget", "three")],
                Err("daily_failover_budget"),
            ),
            (vec![t("restart_grace", "5 parsecs")], Err("restart_grace")),
            (
                vec![t("require_semi_sync_ack", "maybe")],
                Err("require_semi_sync_ack"),
            ),
            (vec![t("no_such_setting", "1")], Err("no_such_setting")),
        ];
        for (typed, want) in cases {
            let got = p.patch_from_text(&typed);
            match (got, want) {
                (Ok(patch), Ok(want)) => {
                    assert_eq!(serde_json::Value::Object(patch.clone()), want, "{typed:?}");
                    // And the patch is one the policy takes.
                    assert!(p.patched(&patch).is_ok(), "{typed:?}");
                }
                (Err(e), Err(field)) => assert_eq!(e.field, field, "{typed:?}: {e}"),
                (got, want) => panic!("{typed:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn serializes_durations_as_millis_and_fills_defaults() {
        let p = HaPolicy::default();
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["failover_block_window"], 300_000);
        assert_eq!(json["restart_grace"], 5_000);
        let back: HaPolicy = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
        let partial: HaPolicy =
            serde_json::from_str(r#"{"automatic_recovery": false, "restart_grace": 2500}"#)
                .unwrap();
        assert!(!partial.automatic_recovery);
        assert_eq!(partial.restart_grace, Duration::milliseconds(2500));
        assert_eq!(partial.daily_failover_budget, 3);
        assert!(serde_json::from_str::<HaPolicy>(r#"{"restart_grace": -1}"#).is_err());
    }

    fn ep(s: &str) -> Endpoint {
        s.parse().unwrap()
    }

    fn nodes() -> Vec<Endpoint> {
        vec![
            ep("10.0.0.1:3306"),
            ep("10.0.0.2:3306"),
            ep("10.0.0.3:3306"),
        ]
    }

    fn fields_at_fault(p: &HaPolicy) -> Vec<String> {
        p.validate(&nodes())
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn the_default_policy_is_valid_and_so_are_the_bounds() {
        assert_eq!(HaPolicy::default().validate(&nodes()), Ok(()));
        assert_eq!(HaPolicy::default().validate(&[]), Ok(()));
        let low = HaPolicy {
            failover_block_window: bounds::FAILOVER_BLOCK_WINDOW.0,
            daily_failover_budget: bounds::DAILY_FAILOVER_BUDGET.0,
            max_candidate_lag: CandidateLagLimit {
                max_seconds_behind: Some(0),
                max_missing_transactions: None,
            },
            suspect_after_timeouts: bounds::SUSPECT_AFTER_TIMEOUTS.0,
            confirm_heartbeat_periods: bounds::CONFIRM_HEARTBEAT_PERIODS.0,
            relay_log_apply_timeout: bounds::RELAY_LOG_APPLY_TIMEOUT.0,
            switchover_max_lag_seconds: 0,
            switchover_max_transaction_age: bounds::SWITCHOVER_MAX_TRANSACTION_AGE.0,
            restart_grace: bounds::RESTART_GRACE.0,
            restart_backoff: bounds::RESTART_BACKOFF.0,
            max_restart_attempts: bounds::MAX_RESTART_ATTEMPTS.0,
            galera_no_primary_timeout: bounds::GALERA_NO_PRIMARY_TIMEOUT.0,
            ..HaPolicy::default()
        };
        assert_eq!(low.validate(&nodes()), Ok(()));
        let high = HaPolicy {
            failover_block_window: bounds::FAILOVER_BLOCK_WINDOW.1,
            daily_failover_budget: bounds::DAILY_FAILOVER_BUDGET.1,
            max_candidate_lag: CandidateLagLimit {
                max_seconds_behind: Some(bounds::MAX_SECONDS_BEHIND),
                max_missing_transactions: Some(u64::MAX),
            },
            suspect_after_timeouts: bounds::SUSPECT_AFTER_TIMEOUTS.1,
            confirm_heartbeat_periods: bounds::CONFIRM_HEARTBEAT_PERIODS.1,
            relay_log_apply_timeout: bounds::RELAY_LOG_APPLY_TIMEOUT.1,
            switchover_max_lag_seconds: bounds::SWITCHOVER_MAX_LAG_SECONDS,
            switchover_max_transaction_age: bounds::SWITCHOVER_MAX_TRANSACTION_AGE.1,
            restart_grace: bounds::RESTART_GRACE.1,
            restart_backoff: bounds::RESTART_BACKOFF.1,
            max_restart_attempts: bounds::MAX_RESTART_ATTEMPTS.1,
            galera_no_primary_timeout: bounds::GALERA_NO_PRIMARY_TIMEOUT.1,
            excluded_candidates: vec![ep("10.0.0.3:3306")],
            preferred_candidates: vec![ep("10.0.0.2:3306"), ep("10.0.0.1:3306")],
            ..HaPolicy::default()
        };
        assert_eq!(high.validate(&nodes()), Ok(()));
    }

    #[test]
    fn every_value_out_of_bounds_names_its_field() {
        let ms = Duration::milliseconds;
        let cases: Vec<(HaPolicy, &str)> = vec![
            (
                HaPolicy {
                    failover_block_window: Duration::hours(24) + ms(1),
                    ..HaPolicy::default()
                },
                "failover_block_window",
            ),
            (
                HaPolicy {
                    daily_failover_budget: 0,
                    ..HaPolicy::default()
                },
                "daily_failover_budget",
            ),
            (
                HaPolicy {
                    daily_failover_budget: 25,
                    ..HaPolicy::default()
                },
                "daily_failover_budget",
            ),
            (
                HaPolicy {
                    max_candidate_lag: CandidateLagLimit {
                        max_seconds_behind: Some(86_401),
                        max_missing_transactions: Some(0),
                    },
                    ..HaPolicy::default()
                },
                "max_candidate_lag.max_seconds_behind",
            ),
            (
                HaPolicy {
                    suspect_after_timeouts: 0,
                    ..HaPolicy::default()
                },
                "suspect_after_timeouts",
            ),
            (
                HaPolicy {
                    suspect_after_timeouts: 11,
                    ..HaPolicy::default()
                },
                "suspect_after_timeouts",
            ),
            (
                HaPolicy {
                    confirm_heartbeat_periods: 0,
                    ..HaPolicy::default()
                },
                "confirm_heartbeat_periods",
            ),
            (
                HaPolicy {
                    confirm_heartbeat_periods: 5,
                    ..HaPolicy::default()
                },
                "confirm_heartbeat_periods",
            ),
            (
                HaPolicy {
                    relay_log_apply_timeout: ms(999),
                    ..HaPolicy::default()
                },
                "relay_log_apply_timeout",
            ),
            (
                HaPolicy {
                    relay_log_apply_timeout: Duration::minutes(10) + ms(1),
                    ..HaPolicy::default()
                },
                "relay_log_apply_timeout",
            ),
            (
                HaPolicy {
                    switchover_max_lag_seconds: 301,
                    ..HaPolicy::default()
                },
                "switchover_max_lag_seconds",
            ),
            (
                HaPolicy {
                    switchover_max_transaction_age: Duration::zero(),
                    ..HaPolicy::default()
                },
                "switchover_max_transaction_age",
            ),
            (
                HaPolicy {
                    restart_grace: ms(500),
                    ..HaPolicy::default()
                },
                "restart_grace",
            ),
            (
                HaPolicy {
                    restart_backoff: Duration::hours(2),
                    ..HaPolicy::default()
                },
                "restart_backoff",
            ),
            (
                HaPolicy {
                    max_restart_attempts: 0,
                    ..HaPolicy::default()
                },
                "max_restart_attempts",
            ),
            (
                HaPolicy {
                    max_restart_attempts: 21,
                    ..HaPolicy::default()
                },
                "max_restart_attempts",
            ),
            (
                HaPolicy {
                    galera_no_primary_timeout: Duration::seconds(4),
                    ..HaPolicy::default()
                },
                "galera_no_primary_timeout",
            ),
        ];
        for (policy, field) in cases {
            let errors = policy.validate(&nodes()).unwrap_err();
            assert_eq!(errors.len(), 1, "{field}: {errors:?}");
            assert_eq!(errors[0].field, field);
            let text = errors[0].to_string();
            assert!(
                text.starts_with(&format!("{field}: ")) && text.contains("between"),
                "{text}"
            );
        }
    }

    #[test]
    fn candidates_must_be_nodes_listed_once_and_not_both_excluded_and_preferred() {
        let stranger = HaPolicy {
            excluded_candidates: vec![ep("10.0.0.9:3306")],
            ..HaPolicy::default()
        };
        let errors = stranger.validate(&nodes()).unwrap_err();
        assert_eq!(errors[0].field, "excluded_candidates");
        assert!(
            errors[0].message.contains("10.0.0.9:3306 is not a node"),
            "{errors:?}"
        );
        // Port matters: the same host on another port is another node.
        let other_port = HaPolicy {
            preferred_candidates: vec![ep("10.0.0.1:3307")],
            ..HaPolicy::default()
        };
        assert_eq!(fields_at_fault(&other_port), ["preferred_candidates"]);
        let twice = HaPolicy {
            preferred_candidates: vec![ep("10.0.0.2:3306"), ep("10.0.0.2:3306")],
            ..HaPolicy::default()
        };
        let errors = twice.validate(&nodes()).unwrap_err();
        assert!(errors[0].message.contains("listed twice"), "{errors:?}");
        let both = HaPolicy {
            excluded_candidates: vec![ep("10.0.0.2:3306")],
            preferred_candidates: vec![ep("10.0.0.2:3306")],
            ..HaPolicy::default()
        };
        let errors = both.validate(&nodes()).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "preferred_candidates");
        assert!(
            errors[0].message.contains("excluded_candidates"),
            "{errors:?}"
        );
        // Every problem is reported, not just the first.
        let many = HaPolicy {
            daily_failover_budget: 0,
            max_restart_attempts: 0,
            ..stranger
        };
        assert_eq!(
            fields_at_fault(&many),
            [
                "daily_failover_budget",
                "excluded_candidates",
                "max_restart_attempts"
            ]
        );
    }

    fn patch(json: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        match json {
            serde_json::Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn a_patch_replaces_only_its_fields_nested_ones_too() {
        let base = HaPolicy {
            daily_failover_budget: 5,
            ..HaPolicy::default()
        };
        let p = base
            .patched(&patch(serde_json::json!({
                "failover_block_window": 600_000,
                "excluded_candidates": ["10.0.0.3"],
                "max_candidate_lag": {"max_seconds_behind": null},
            })))
            .unwrap();
        assert_eq!(p.failover_block_window, Duration::minutes(10));
        assert_eq!(p.excluded_candidates, [ep("10.0.0.3:3306")]);
        assert_eq!(p.max_candidate_lag.max_seconds_behind, None);
        assert_eq!(p.max_candidate_lag.max_missing_transactions, Some(0));
        assert_eq!(p.daily_failover_budget, 5, "untouched fields are kept");
        assert_eq!(base.patched(&serde_json::Map::new()).unwrap(), base);
    }

    #[test]
    fn a_bad_patch_names_the_field() {
        let base = HaPolicy::default();
        for (json, field) in [
            (serde_json::json!({"colour": 1}), "colour"),
            (
                serde_json::json!({"max_candidate_lag": {"colour": 1}}),
                "max_candidate_lag.colour",
            ),
            (
                serde_json::json!({"restart_grace": 1000, "daily_failover_budget": -1}),
                "daily_failover_budget",
            ),
            (serde_json::json!({"restart_grace": "10s"}), "restart_grace"),
            (serde_json::json!({"restart_grace": -5}), "restart_grace"),
            (serde_json::json!({"restart_grace": null}), "restart_grace"),
            (
                serde_json::json!({"excluded_candidates": ["a b"]}),
                "excluded_candidates",
            ),
            (
                serde_json::json!({"max_candidate_lag": {"max_missing_transactions": "x"}}),
                "max_candidate_lag.max_missing_transactions",
            ),
            (
                serde_json::json!({"max_candidate_lag": 5}),
                "max_candidate_lag",
            ),
        ] {
            let e = base.patched(&patch(json.clone())).unwrap_err();
            assert_eq!(e.field, field, "{json}: {e}");
        }
        let e = base
            .patched(&patch(serde_json::json!({"colour": 1})))
            .unwrap_err();
        assert!(
            e.message.contains("unknown field `colour`") && e.message.contains("restart_grace"),
            "{e}"
        );
    }

    #[test]
    fn entries_and_changes_read_like_the_cli_flags() {
        let base = HaPolicy::default();
        let entries = base.entries();
        let get = |k: &str| {
            entries
                .iter()
                .find(|(f, _)| f == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("failover_block_window"), "5m");
        assert_eq!(get("relay_log_apply_timeout"), "10s");
        assert_eq!(get("excluded_candidates"), "none");
        assert_eq!(get("max_candidate_lag.max_seconds_behind"), "10s");
        assert_eq!(get("max_candidate_lag.max_missing_transactions"), "0");
        assert_eq!(get("switchover_max_lag_seconds"), "1s");
        assert_eq!(get("daily_failover_budget"), "3");
        // Every duration field exists and is shown as a duration.
        for f in DURATION_FIELDS.iter().chain(SECONDS_FIELDS) {
            assert!(entries.iter().any(|(k, _)| k == f), "{f}");
        }
        assert_eq!(human_millis(2500), "2500ms");
        assert_eq!(human_millis(7_200_000), "2h");
        let after = HaPolicy {
            daily_failover_budget: 5,
            excluded_candidates: vec![ep("10.0.0.3:3306"), ep("10.0.0.2:3306")],
            restart_grace: Duration::milliseconds(2500),
            ..base.clone()
        };
        assert_eq!(
            after.changes_from(&base),
            [
                "daily_failover_budget: 3 → 5",
                "excluded_candidates: none → 10.0.0.3:3306, 10.0.0.2:3306",
                "restart_grace: 5s → 2500ms",
            ]
        );
        assert!(base.changes_from(&base).is_empty());
    }
}
