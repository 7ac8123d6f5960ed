//! Alarms (list, acknowledge), silences, and notification channels (add, list, test,
//! delete, and their deliveries). Every value is checked here, before anything is
//! written; channel URLs are sealed as secrets and lists show only their scheme and host.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use nines_model::alarm::notify::ChannelKind;
use nines_model::alarm::{AlarmKind, Severity};
use nines_model::api::{
    AckRequest, AlarmView, ChannelAddRequest, ChannelTestResult, ChannelView, DeliveryView,
    SilenceRequest, SilenceView, parse_duration,
};
use nines_model::event::EventKind;
use nines_model::input::{ClusterName, Text};
use nines_store::{AlarmRecord, ChannelRecord, DeliveryState, NewChannel, SilenceRecord};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::auth::Caller;
use super::error::ApiErr;

/// The longest silence.
const MAX_SILENCE: TimeDelta = TimeDelta::days(30);

fn view(a: &AlarmRecord, silenced: bool) -> AlarmView {
    AlarmView {
        id: a.id,
        cluster: a.key.cluster.clone(),
        node: a.key.node.clone(),
        kind: a.key.kind.as_string(),
        severity: a.severity,
        title: a.title.clone(),
        message: a.message.clone(),
        raised_at: a.raised_at,
        updated_at: a.updated_at,
        cleared_at: a.cleared_at,
        acknowledged_by: a.acknowledged_by.clone(),
        acknowledged_at: a.acknowledged_at,
        ack_note: a.ack_note.clone(),
        silenced,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AlarmQuery {
    /// Only this cluster's alarms.
    pub cluster: Option<String>,
    /// Cleared alarms too (newest first).
    #[serde(default)]
    pub all: bool,
    /// At most this many (default 200, at most 5000).
    pub limit: Option<i64>,
}

/// Lists alarms, newest first: the active ones, or all with `all=true`.
#[utoipa::path(get, path = "/api/v1/alarms", tag = "alarms", params(AlarmQuery),
    responses((status = 200, body = Vec<AlarmView>), (status = 400, body = nines_model::api::ApiError)))]
pub async fn list_alarms(
    State(st): State<AppState>,
    Query(q): Query<AlarmQuery>,
) -> Result<Json<Vec<AlarmView>>, ApiErr> {
    let cluster = q
        .cluster
        .as_deref()
        .map(|c| ClusterName::parse("cluster", c))
        .transpose()?;
    let limit = q.limit.unwrap_or(200);
    if !(1..=5000).contains(&limit) {
        return Err(ApiErr::field("limit", "limit must be 1-5000"));
    }
    let list = st
        .store
        .list_alarms(cluster.as_ref().map(ClusterName::as_str), q.all, limit)
        .await?;
    Ok(Json(
        list.iter()
            .map(|a| view(a, a.cleared_at.is_none() && st.alarms.is_silenced(&a.key)))
            .collect(),
    ))
}

/// Acknowledges an alarm: who, when, and an optional note (recorded as an event).
#[utoipa::path(post, path = "/api/v1/alarms/{id}/ack", tag = "alarms",
    params(("id" = i64, Path)), request_body = AckRequest,
    responses((status = 200, body = AlarmView), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError)))]
pub async fn ack_alarm(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    body: Option<Json<AckRequest>>,
) -> Result<Json<AlarmView>, ApiErr> {
    let note = body
        .and_then(|Json(b)| b.note)
        .map(|n| Text::parse("note", &n))
        .transpose()?;
    let note = note.as_ref().map(Text::as_str).unwrap_or("");
    if st.store.alarm(id).await?.is_none() {
        return Err(ApiErr::not_found(format!("alarm {id}")));
    }
    let a = st.store.ack_alarm(id, &caller.0, note, Utc::now()).await?;
    st.store
        .add_event(
            &a.key.cluster,
            a.key.node.as_deref(),
            EventKind::AlarmAcknowledged,
            &format!(
                "alarm {id} ({}) acknowledged by {}{}",
                a.title,
                caller.0,
                if note.is_empty() {
                    String::new()
                } else {
                    format!(": {note}")
                }
            ),
        )
        .await?;
    let silenced = st.alarms.is_silenced(&a.key);
    Ok(Json(view(&a, silenced)))
}

fn silence_view(s: &SilenceRecord) -> SilenceView {
    SilenceView {
        id: s.id,
        kind: s.kind.as_string(),
        cluster: s.cluster.clone(),
        until: s.until,
        created_by: s.created_by.clone(),
        note: s.note.clone(),
        created_at: s.created_at,
    }
}

/// Silences an alarm kind (on one cluster, or all) for a time: its alarms are still
/// raised and listed, but no notification is sent.
#[utoipa::path(post, path = "/api/v1/alarm-silences", tag = "alarms",
    request_body = SilenceRequest,
    responses((status = 201, body = SilenceView), (status = 400, body = nines_model::api::ApiError)))]
pub async fn add_silence(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(req): Json<SilenceRequest>,
) -> Result<(StatusCode, Json<SilenceView>), ApiErr> {
    let kind: AlarmKind = req
        .kind
        .parse()
        .map_err(|e: String| ApiErr::field("kind", format!("kind: {e}")))?;
    let cluster = req
        .cluster
        .as_deref()
        .map(|c| ClusterName::parse("cluster", c))
        .transpose()?;
    let span = parse_duration(&req.duration)
        .ok()
        .and_then(|d| TimeDelta::from_std(d).ok())
        .filter(|d| *d >= TimeDelta::seconds(1) && *d <= MAX_SILENCE)
        .ok_or_else(|| {
            ApiErr::field(
                "duration",
                format!(
                    "duration `{}` must be a span from 1s to 30d, e.g. 2h",
                    nines_model::input::printable(&req.duration)
                ),
            )
        })?;
    let note = req
        .note
        .as_deref()
        .map(|n| Text::parse("note", n))
        .transpose()?;
    let s = st
        .store
        .add_silence(
            &kind,
            cluster.as_ref().map(ClusterName::as_str),
            Utc::now() + span,
            &caller.0,
            note.as_ref().map(Text::as_str).unwrap_or(""),
        )
        .await?;
    st.alarms.reload_silences().await?;
    Ok((StatusCode::CREATED, Json(silence_view(&s))))
}

/// The silences in force.
#[utoipa::path(get, path = "/api/v1/alarm-silences", tag = "alarms",
    responses((status = 200, body = Vec<SilenceView>)))]
pub async fn list_silences(State(st): State<AppState>) -> Result<Json<Vec<SilenceView>>, ApiErr> {
    let s = st.store.silences(Some(Utc::now())).await?;
    Ok(Json(s.iter().map(silence_view).collect()))
}

/// Ends a silence; answers the silence ended.
#[utoipa::path(delete, path = "/api/v1/alarm-silences/{id}", tag = "alarms",
    params(("id" = i64, Path)),
    responses((status = 200, body = SilenceView), (status = 404, body = nines_model::api::ApiError)))]
pub async fn delete_silence(
    State(st): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<SilenceView>, ApiErr> {
    let found = st
        .store
        .silences(None)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiErr::not_found(format!("silence {id}")))?;
    if !st.store.delete_silence(id).await? {
        return Err(ApiErr::not_found(format!("silence {id}")));
    }
    st.alarms.reload_silences().await?;
    Ok(Json(silence_view(&found)))
}

/// A URL a notification may be posted to: http or https with a host, without
/// whitespace; what lists show of it (scheme and host only: the path of a Slack URL is
/// its credential).
fn check_url(field: &str, s: &str) -> Result<String, ApiErr> {
    let bad = |why: &str| {
        ApiErr::field(
            field,
            format!(
                "{field} `{}` {why}",
                nines_model::input::printable(&s.chars().take(80).collect::<String>())
            ),
        )
    };
    if s.len() > 2048 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(
            "must be a URL of at most 2048 characters without spaces",
        ));
    }
    let u = reqwest_notify::Url::parse(s).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad("must be an http or https URL"));
    }
    let Some(host) = u.host_str() else {
        return Err(bad("has no host"));
    };
    Ok(match u.port() {
        Some(p) => format!("{}://{host}:{p}", u.scheme()),
        None => format!("{}://{host}", u.scheme()),
    })
}

fn check_mailbox(field: &str, s: &str) -> Result<(), ApiErr> {
    s.parse::<lettre::message::Mailbox>()
        .map(|_| ())
        .map_err(|e| {
            ApiErr::field(
                field,
                format!(
                    "{field} `{}` is not an e-mail address: {e}",
                    nines_model::input::printable(s)
                ),
            )
        })
}

/// What a channel request asks for, checked: kind, target, what lists show, SMTP server.
fn check_channel(req: &ChannelAddRequest) -> Result<(ChannelKind, String, String), ApiErr> {
    let given = [
        req.webhook.is_some(),
        req.slack.is_some(),
        req.email.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(ApiErr::field(
            "webhook",
            "give exactly one of webhook, slack or email",
        ));
    }
    if req.email.is_none() && (req.smtp.is_some() || req.from.is_some()) {
        return Err(ApiErr::field("smtp", "smtp and from go with email"));
    }
    if req.webhook.is_none() && req.hmac_key.is_some() {
        return Err(ApiErr::field("hmac_key", "hmac_key goes with webhook"));
    }
    if let Some(u) = &req.webhook {
        let shown = check_url("webhook", u)?;
        return Ok((ChannelKind::Webhook, u.clone(), shown));
    }
    if let Some(u) = &req.slack {
        let shown = check_url("slack", u)?;
        return Ok((ChannelKind::Slack, u.clone(), shown));
    }
    let to = req.email.clone().unwrap_or_default();
    let list: Vec<&str> = to
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    if list.is_empty() || list.len() > 20 {
        return Err(ApiErr::field("email", "email must name 1-20 recipients"));
    }
    for a in &list {
        check_mailbox("email", a)?;
    }
    let Some(smtp) = req.smtp.as_deref() else {
        return Err(ApiErr::field("smtp", "email needs smtp (HOST:PORT)"));
    };
    let ok = smtp.rsplit_once(':').is_some_and(|(h, p)| {
        !h.is_empty()
            && h.len() <= 253
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
            && p.parse::<u16>().is_ok_and(|p| p > 0)
    });
    if !ok {
        return Err(ApiErr::field(
            "smtp",
            format!(
                "smtp `{}` must be HOST:PORT",
                nines_model::input::printable(smtp)
            ),
        ));
    }
    if let Some(f) = &req.from {
        check_mailbox("from", f)?;
    }
    Ok((ChannelKind::Email, list.join(", "), list.join(", ")))
}

async fn channel_view(st: &AppState, c: &ChannelRecord) -> Result<ChannelView, ApiErr> {
    let recent = st.store.deliveries(c.id, 500).await?;
    let last = recent.first();
    Ok(ChannelView {
        name: c.name.clone(),
        kind: c.kind,
        target: c.shown_target.clone(),
        smtp: c.smtp.clone(),
        from: c.from_addr.clone(),
        signed: c.hmac_secret.is_some(),
        min_severity: c.min_severity,
        cluster: c.cluster.clone(),
        created_at: c.created_at,
        last_state: last.map(|d| d.state),
        last_error: last.and_then(|d| d.last_error.clone()),
        last_at: last.map(|d| d.sent_at.unwrap_or(d.next_at)),
        failed: recent
            .iter()
            .filter(|d| d.state == DeliveryState::Failed)
            .count() as u64,
    })
}

/// Adds a notification channel.
#[utoipa::path(post, path = "/api/v1/notify-channels", tag = "alarms",
    request_body = ChannelAddRequest,
    responses((status = 201, body = ChannelView), (status = 400, body = nines_model::api::ApiError),
              (status = 409, body = nines_model::api::ApiError)))]
pub async fn add_channel(
    State(st): State<AppState>,
    Json(req): Json<ChannelAddRequest>,
) -> Result<(StatusCode, Json<ChannelView>), ApiErr> {
    let name = ClusterName::parse("name", &req.name)?;
    let (kind, target, shown) = check_channel(&req)?;
    let cluster = req
        .cluster
        .as_deref()
        .map(|c| ClusterName::parse("cluster", c))
        .transpose()?;
    if let Some(k) = &req.hmac_key
        && (k.len() < 16 || k.len() > 512 || k.chars().any(char::is_control))
    {
        return Err(ApiErr::field(
            "hmac_key",
            "hmac_key must be 16-512 characters without control characters",
        ));
    }
    if st.store.channel(name.as_str()).await?.is_some() {
        return Err(ApiErr::conflict(
            "name",
            format!("a notification channel named `{name}` already exists"),
        ));
    }
    let target_secret = st.store.put_secret(&target).await?;
    let hmac_secret = match &req.hmac_key {
        Some(k) => Some(st.store.put_secret(k).await?),
        None => None,
    };
    let added = st
        .store
        .add_channel(&NewChannel {
            name: name.to_string(),
            kind,
            target_secret,
            shown_target: shown,
            smtp: req.smtp.clone(),
            from_addr: req.from.clone(),
            hmac_secret,
            min_severity: req.min_severity.unwrap_or(Severity::Warning),
            cluster: cluster.map(String::from),
        })
        .await;
    let c = match added {
        Ok(c) => c,
        Err(e) => {
            crate::log_store_error(
                "an unused secret",
                st.store.delete_secret(target_secret).await,
            );
            if let Some(h) = hmac_secret {
                crate::log_store_error("an unused secret", st.store.delete_secret(h).await);
            }
            return Err(e.into());
        }
    };
    st.alarms.reload_channels().await?;
    Ok((StatusCode::CREATED, Json(channel_view(&st, &c).await?)))
}

/// The notification channels, with their latest delivery.
#[utoipa::path(get, path = "/api/v1/notify-channels", tag = "alarms",
    responses((status = 200, body = Vec<ChannelView>)))]
pub async fn list_channels(State(st): State<AppState>) -> Result<Json<Vec<ChannelView>>, ApiErr> {
    let mut out = Vec::new();
    for c in st.store.channels().await? {
        out.push(channel_view(&st, &c).await?);
    }
    Ok(Json(out))
}

async fn named_channel(st: &AppState, name: &str) -> Result<ChannelRecord, ApiErr> {
    let name = ClusterName::parse("name", name)?;
    st.store
        .channel(name.as_str())
        .await?
        .ok_or_else(|| ApiErr::not_found(format!("notification channel `{name}`")))
}

/// Removes a channel, its keys and its deliveries; answers the channel removed.
#[utoipa::path(delete, path = "/api/v1/notify-channels/{name}", tag = "alarms",
    params(("name" = String, Path)),
    responses((status = 200, body = ChannelView), (status = 404, body = nines_model::api::ApiError)))]
pub async fn delete_channel(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ChannelView>, ApiErr> {
    let c = named_channel(&st, &name).await?;
    let shown = channel_view(&st, &c).await?;
    if let Some(c) = st.store.delete_channel(&c.name).await? {
        crate::log_store_error(
            "a channel's target",
            st.store.delete_secret(c.target_secret).await,
        );
        if let Some(h) = c.hmac_secret {
            crate::log_store_error("a channel's key", st.store.delete_secret(h).await);
        }
    }
    st.alarms.reload_channels().await?;
    Ok(Json(shown))
}

/// Sends a sample notification to a channel now and says whether it went.
#[utoipa::path(post, path = "/api/v1/notify-channels/{name}/test", tag = "alarms",
    params(("name" = String, Path)),
    responses((status = 200, body = ChannelTestResult), (status = 404, body = nines_model::api::ApiError)))]
pub async fn test_channel(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ChannelTestResult>, ApiErr> {
    let c = named_channel(&st, &name).await?;
    let notice = crate::alarms::sample_notice(&c.name, Utc::now());
    let r = crate::alarms::notifier::send_test(&st.store, &c, notice).await;
    Ok(Json(ChannelTestResult {
        sent: r.is_ok(),
        error: r.err(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct DeliveryQuery {
    /// At most this many (default 50, at most 1000).
    pub limit: Option<i64>,
}

/// A channel's deliveries, newest first: state, attempts, the last error.
#[utoipa::path(get, path = "/api/v1/notify-channels/{name}/deliveries", tag = "alarms",
    params(("name" = String, Path), DeliveryQuery),
    responses((status = 200, body = Vec<DeliveryView>), (status = 404, body = nines_model::api::ApiError)))]
pub async fn list_deliveries(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<DeliveryQuery>,
) -> Result<Json<Vec<DeliveryView>>, ApiErr> {
    let c = named_channel(&st, &name).await?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiErr::field("limit", "limit must be 1-1000"));
    }
    let ds = st.store.deliveries(c.id, limit).await?;
    Ok(Json(
        ds.into_iter()
            .map(|d| DeliveryView {
                id: d.id,
                alarm_id: d.alarm_id,
                event: d.notice.event,
                title: d.notice.title,
                state: d.state,
                attempts: d.attempts,
                queued_at: d.queued_at,
                next_at: d.next_at,
                sent_at: d.sent_at,
                last_error: d.last_error,
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_shown_without_their_path() {
        assert_eq!(
            check_url("slack", "https://hooks.example.com/services/T0/B0/secret").unwrap(),
            "https://hooks.example.com"
        );
        assert_eq!(
            check_url("webhook", "http://127.0.0.1:9000/hook").unwrap(),
            "http://127.0.0.1:9000"
        );
        for bad in [
            "ftp://x/y",
            "not a url",
            "http://",
            "javascript:alert(1)",
            "",
        ] {
            let e = check_url("webhook", bad).unwrap_err();
            assert_eq!(e.body.field.as_deref(), Some("webhook"), "{bad}");
        }
    }

    #[test]
    fn a_channel_is_exactly_one_kind_with_what_that_kind_needs() {
        let base = ChannelAddRequest {
            name: "ops".into(),
            ..Default::default()
        };
        let field = |r: &ChannelAddRequest| check_channel(r).unwrap_err().body.field;
        assert_eq!(field(&base), Some("webhook".into()));
        let both = ChannelAddRequest {
            webhook: Some("http://a/b".into()),
            slack: Some("http://a/c".into()),
            ..base.clone()
        };
        assert_eq!(field(&both), Some("webhook".into()));
        let mail_no_smtp = ChannelAddRequest {
            email: Some("ops@example.com".into()),
            ..base.clone()
        };
        assert_eq!(field(&mail_no_smtp), Some("smtp".into()));
        let bad_rcpt = ChannelAddRequest {
            email: Some("ops@example.com, nobody".into()),
            smtp: Some("127.0.0.1:25".into()),
            ..base.clone()
        };
        assert_eq!(field(&bad_rcpt), Some("email".into()));
        let bad_smtp = ChannelAddRequest {
            email: Some("ops@example.com".into()),
            smtp: Some("mail;rm -rf:25".into()),
            ..base.clone()
        };
        assert_eq!(field(&bad_smtp), Some("smtp".into()));
        let key_on_slack = ChannelAddRequest {
            slack: Some("https://hooks.example.com/x".into()),
            hmac_key: Some("k".repeat(20)),
            ..base.clone()
        };
        assert_eq!(field(&key_on_slack), Some("hmac_key".into()));
        let good = ChannelAddRequest {
            email: Some("a@example.com,b@example.com".into()),
            smtp: Some("127.0.0.1:2525".into()),
            ..base
        };
        let (kind, target, shown) = check_channel(&good).unwrap();
        assert_eq!(kind, ChannelKind::Email);
        assert_eq!(target, "a@example.com, b@example.com");
        assert_eq!(shown, target);
    }
}
