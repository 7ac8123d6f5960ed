//! Notification decisions: which channel hears of which alarm, when a channel's queued
//! notifications go out (a burst is grouped into one message), how a failed delivery is
//! retried, and what the messages say (JSON for webhooks, text for Slack and e-mail).
//!
//! Grouping follows Alertmanager's `group_wait` / `group_interval`: the first
//! notification of a quiet channel waits [`GROUP_WAIT`] for others of the same burst;
//! while the channel sent something within the last [`GROUP_INTERVAL`], what comes next
//! waits until that interval has passed since the last send, so a storm of alarms is a
//! few messages, not hundreds. Either way a notification leaves within
//! [`GROUP_INTERVAL`] of being queued.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Severity;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Sent,
    /// Given up after its retries.
    Failed,
}

crate::topology::str_enum!(DeliveryState { Pending => "pending", Sent => "sent", Failed => "failed" });

/// How long the first notification of a quiet channel waits for the rest of its burst.
pub const GROUP_WAIT: Duration = Duration::seconds(5);
/// The shortest time between two messages to one channel while alarms keep coming.
pub const GROUP_INTERVAL: Duration = Duration::seconds(10);
/// At most this many alarms in one message (the rest in the next).
pub const MAX_GROUP: usize = 50;

/// Waits before each retry of a failed delivery; after the last, it is given up
/// (about 40 minutes after the first attempt).
const RETRY_WAITS: [i64; 8] = [5, 15, 30, 60, 120, 300, 600, 1200];

/// What a channel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// An HTTP POST of a JSON object, optionally signed (HMAC-SHA256).
    Webhook,
    /// A Slack-compatible incoming webhook (`{"text": …}`).
    Slack,
    /// E-mail over SMTP.
    Email,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::Email => "email",
        }
    }
}

impl std::fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ChannelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "webhook" => Ok(Self::Webhook),
            "slack" => Ok(Self::Slack),
            "email" => Ok(Self::Email),
            other => Err(format!(
                "`{other}` is not a channel kind: webhook, slack or email"
            )),
        }
    }
}

/// What happened to an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Raised,
    Cleared,
    /// A sample sent by `nines notify test`.
    Test,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raised => "raised",
            Self::Cleared => "cleared",
            Self::Test => "test",
        }
    }
}

impl std::str::FromStr for Event {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "raised" => Ok(Self::Raised),
            "cleared" => Ok(Self::Cleared),
            "test" => Ok(Self::Test),
            other => Err(format!("`{other}` is not a notification event")),
        }
    }
}

/// One alarm's news, as a channel receives it (also the webhook's JSON object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Notice {
    pub event: Event,
    pub alarm_id: Option<i64>,
    pub cluster: String,
    pub node: Option<String>,
    pub kind: String,
    pub severity: Severity,
    pub title: String,
    pub message: String,
    pub raised_at: DateTime<Utc>,
    pub cleared_at: Option<DateTime<Utc>>,
}

/// Whether a channel with these filters hears of an alarm: at least its minimum
/// severity (a clear is sent where the raise was), and of its cluster when it has one.
pub fn wants(
    min_severity: Severity,
    cluster_filter: Option<&str>,
    severity: Severity,
    cluster: &str,
) -> bool {
    severity >= min_severity && cluster_filter.is_none_or(|c| c == cluster)
}

/// Whether a channel's queued notifications go out now: `oldest` is when the oldest of
/// them was queued, `last_sent` when the channel last sent a message.
pub fn batch_due(
    oldest: DateTime<Utc>,
    last_sent: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    if now - oldest >= GROUP_INTERVAL {
        return true;
    }
    match last_sent {
        Some(t) if now - t < GROUP_INTERVAL => false,
        _ => now - oldest >= GROUP_WAIT,
    }
}

/// When to try a delivery again after its `attempts`-th failure; None: give up.
pub fn retry_after(attempts: u32) -> Option<Duration> {
    let i = usize::try_from(attempts.checked_sub(1)?).ok()?;
    RETRY_WAITS.get(i).map(|s| Duration::seconds(*s))
}

/// The webhook body: the first notice's fields at the top (what a receiver of single
/// alarms reads), every notice of the message in `alarms`, and their count.
pub fn webhook_body(notices: &[Notice], sent_at: DateTime<Utc>) -> serde_json::Value {
    let mut top = notices
        .first()
        .and_then(|n| serde_json::to_value(n).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    if let Some(o) = top.as_object_mut() {
        o.insert("count".into(), serde_json::json!(notices.len()));
        o.insert(
            "alarms".into(),
            serde_json::to_value(notices).unwrap_or_default(),
        );
        o.insert("sent_at".into(), serde_json::json!(sent_at));
        o.insert("source".into(), serde_json::json!("nines"));
    }
    top
}

fn line(n: &Notice) -> String {
    let what = match n.event {
        Event::Raised => "RAISED",
        Event::Cleared => "CLEARED",
        Event::Test => "TEST",
    };
    format!(
        "[{} {}] {}",
        n.severity.as_str().to_uppercase(),
        what,
        n.title
    )
}

/// A subject line and a text body for Slack and e-mail.
pub fn text(notices: &[Notice]) -> (String, String) {
    let subject = match notices {
        [one] => format!("nines: {}", line(one)),
        many => {
            let raised = many.iter().filter(|n| n.event == Event::Raised).count();
            let cleared = many.iter().filter(|n| n.event == Event::Cleared).count();
            let worst = many
                .iter()
                .map(|n| n.severity)
                .max()
                .unwrap_or(Severity::Info);
            format!(
                "nines: {} alarms ({raised} raised, {cleared} cleared; worst {worst})",
                many.len()
            )
        }
    };
    let mut body = String::new();
    for n in notices {
        body.push_str(&line(n));
        body.push('\n');
        body.push_str(&n.message);
        body.push('\n');
        body.push_str(&format!(
            "cluster {}{}, kind {}, raised {}{}\n\n",
            n.cluster,
            n.node
                .as_deref()
                .map(|x| format!(", node {x}"))
                .unwrap_or_default(),
            n.kind,
            n.raised_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            n.cleared_at
                .map(|t| format!(
                    ", cleared {}",
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ))
                .unwrap_or_default()
        ));
    }
    (subject, body.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0).single().unwrap()
    }

    fn notice(event: Event, severity: Severity, title: &str) -> Notice {
        Notice {
            event,
            alarm_id: Some(7),
            cluster: "shop".into(),
            node: Some("10.0.0.1:3306".into()),
            kind: "node_down".into(),
            severity,
            title: title.into(),
            message: "does not answer".into(),
            raised_at: t(0),
            cleared_at: None,
        }
    }

    #[test]
    fn channels_hear_what_their_filters_let_through() {
        use Severity::*;
        let cases = [
            (Warning, None, Critical, "shop", true),
            (Warning, None, Warning, "shop", true),
            (Warning, None, Info, "shop", false),
            (Critical, None, Warning, "shop", false),
            (Info, Some("shop"), Info, "shop", true),
            (Info, Some("shop"), Critical, "crm", false),
        ];
        for (min, filter, sev, cluster, want) in cases {
            assert_eq!(
                wants(min, filter, sev, cluster),
                want,
                "{min:?} {filter:?} {sev:?} {cluster}"
            );
        }
    }

    #[test]
    fn a_burst_waits_briefly_and_a_storm_is_spaced() {
        let cases = [
            // A quiet channel: the first notice waits GROUP_WAIT for its burst.
            (t(10), None, t(14), false),
            (t(10), None, t(15), true),
            // Sent 3 s ago: what comes next waits until GROUP_INTERVAL since that send...
            (t(20), Some(t(18)), t(21), false),
            (t(20), Some(t(18)), t(28), true),
            // ...and never longer than GROUP_INTERVAL after it was queued.
            (t(20), Some(t(29)), t(30), true),
            // The last send long ago: the channel is quiet again.
            (t(100), Some(t(50)), t(105), true),
            (t(100), Some(t(50)), t(103), false),
        ];
        for (oldest, last, now, want) in cases {
            assert_eq!(
                batch_due(oldest, last, now),
                want,
                "{oldest} {last:?} {now}"
            );
        }
    }

    #[test]
    fn failed_deliveries_back_off_then_give_up() {
        assert_eq!(retry_after(0), None);
        assert_eq!(retry_after(1), Some(Duration::seconds(5)));
        assert_eq!(retry_after(2), Some(Duration::seconds(15)));
        assert_eq!(retry_after(8), Some(Duration::seconds(1200)));
        assert_eq!(retry_after(9), None);
        let total: i64 = (1..=8).map(|a| retry_after(a).unwrap().num_seconds()).sum();
        assert!((2000..3000).contains(&total), "{total}");
    }

    #[test]
    fn a_webhook_body_has_the_first_alarm_on_top_and_all_of_them_inside() {
        let one = notice(Event::Raised, Severity::Critical, "node down: a");
        let two = notice(Event::Cleared, Severity::Warning, "semi-sync: b");
        let b = webhook_body(&[one.clone(), two], t(5));
        assert_eq!(b["event"], "raised");
        assert_eq!(b["severity"], "critical");
        assert_eq!(b["cluster"], "shop");
        assert_eq!(b["node"], "10.0.0.1:3306");
        assert_eq!(b["title"], "node down: a");
        assert_eq!(b["count"], 2);
        assert_eq!(b["alarms"][1]["event"], "cleared");
        let single = webhook_body(&[one], t(5));
        assert_eq!(single["count"], 1);
        assert_eq!(single["message"], "does not answer");
    }

    #[test]
    fn text_names_one_alarm_or_counts_many() {
        let one = notice(Event::Raised, Severity::Critical, "node down: a");
        let (s, body) = text(std::slice::from_ref(&one));
        assert_eq!(s, "nines: [CRITICAL RAISED] node down: a");
        assert!(body.contains("does not answer"), "{body}");
        assert!(body.contains("node 10.0.0.1:3306"), "{body}");
        let two = notice(Event::Cleared, Severity::Warning, "x");
        let (s, _) = text(&[one, two]);
        assert_eq!(s, "nines: 2 alarms (1 raised, 1 cleared; worst critical)");
    }
}
