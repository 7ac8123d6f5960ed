//! The notifier: sends the notices queued in the store to their channels — a webhook (a
//! JSON object, signed with HMAC-SHA256 when the channel has a key), a Slack-compatible
//! incoming webhook, or e-mail over SMTP (STARTTLS when the server offers it). A channel's
//! notices due together go as one message (`nines_model::alarm::notify::batch_due`); a
//! failed send is retried with backoff and every attempt is recorded on the delivery.
//! Notices are kept in the store, so a restart loses none.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use nines_model::alarm::notify::{self, ChannelKind, Notice};
use nines_store::{Attempt, ChannelRecord, DeliveryRecord, Store};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use super::Alarms;

/// How long one send may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The header carrying a webhook body's signature: `sha256=<hex of HMAC-SHA256(key, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Nines-Signature";

/// Runs until `shutdown`.
pub async fn run(alarms: Arc<Alarms>, store: Arc<dyn Store>, shutdown: CancellationToken) {
    let client = match http_client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the notification HTTP client; notifications are off");
            return;
        }
    };
    let mut last_sent: HashMap<i64, DateTime<Utc>> = HashMap::new();
    loop {
        let next = match store.next_delivery_at().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read pending notifications");
                Some(Utc::now() + chrono::Duration::seconds(5))
            }
        };
        // Nothing pending: sleep until something is queued. Pending: look again within a
        // second (a burst's group wait is measured in seconds).
        let wait = match next {
            None => Duration::from_secs(3600),
            Some(_) => Duration::from_secs(1),
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = alarms.queued.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
        if next.is_none() {
            // Woken by a queue: give the rest of its burst the group wait.
            continue;
        }
        if let Err(e) = pass(&store, &client, &mut last_sent).await {
            tracing::warn!(error = %e, "notification pass failed");
        }
    }
}

fn http_client() -> Result<reqwest_notify::Client, String> {
    reqwest_notify::Client::builder()
        .timeout(SEND_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("nines/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// Sends what is due, channel by channel.
async fn pass(
    store: &Arc<dyn Store>,
    client: &reqwest_notify::Client,
    last_sent: &mut HashMap<i64, DateTime<Utc>>,
) -> Result<(), nines_store::StoreError> {
    let now = Utc::now();
    let due = store.due_deliveries(now).await?;
    if due.is_empty() {
        return Ok(());
    }
    let mut by_channel: BTreeMap<i64, Vec<DeliveryRecord>> = BTreeMap::new();
    for d in due {
        by_channel.entry(d.channel_id).or_default().push(d);
    }
    let channels: HashMap<i64, ChannelRecord> = store
        .channels()
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    for (id, mut ds) in by_channel {
        let Some(ch) = channels.get(&id) else {
            continue;
        };
        let oldest = ds.iter().map(|d| d.queued_at).min().unwrap_or(now);
        let retrying = ds.iter().any(|d| d.attempts > 0);
        if !retrying && !notify::batch_due(oldest, last_sent.get(&id).copied(), now) {
            continue;
        }
        ds.truncate(notify::MAX_GROUP);
        let notices: Vec<Notice> = ds.iter().map(|d| d.notice.clone()).collect();
        let ids: Vec<i64> = ds.iter().map(|d| d.id).collect();
        let attempts = ds.iter().map(|d| d.attempts).max().unwrap_or(0) + 1;
        let result = send(store.as_ref(), client, ch, &notices).await;
        let at = Utc::now();
        last_sent.insert(id, at);
        let attempt = match result {
            Ok(()) => {
                tracing::info!(channel = %ch.name, notices = notices.len(), "notification sent");
                Attempt::Sent
            }
            Err(error) => {
                tracing::warn!(channel = %ch.name, attempt = attempts, error = %error, "notification failed");
                match notify::retry_after(attempts) {
                    Some(wait) => Attempt::Retry {
                        error,
                        at: at + wait,
                    },
                    None => Attempt::GaveUp { error },
                }
            }
        };
        store.record_delivery_attempt(&ids, &attempt, at).await?;
    }
    Ok(())
}

/// Sends a test notice to a channel now and records it as a delivery; the error when it
/// failed (a test is not retried).
pub async fn send_test(
    store: &Arc<dyn Store>,
    ch: &ChannelRecord,
    notice: Notice,
) -> Result<(), String> {
    let id = store
        .queue_delivery(ch.id, &notice)
        .await
        .map_err(|e| e.to_string())?;
    let client = http_client()?;
    let r = send(store.as_ref(), &client, ch, std::slice::from_ref(&notice)).await;
    let attempt = match &r {
        Ok(()) => Attempt::Sent,
        Err(e) => Attempt::GaveUp { error: e.clone() },
    };
    store
        .record_delivery_attempt(&[id], &attempt, Utc::now())
        .await
        .map_err(|e| e.to_string())?;
    r
}

/// One message to one channel.
async fn send(
    store: &dyn Store,
    client: &reqwest_notify::Client,
    ch: &ChannelRecord,
    notices: &[Notice],
) -> Result<(), String> {
    let target = store
        .get_secret(ch.target_secret)
        .await
        .map_err(|e| format!("the channel's target cannot be read: {e}"))?;
    let target = target.expose();
    match ch.kind {
        ChannelKind::Webhook => {
            let body = serde_json::to_vec(&notify::webhook_body(notices, Utc::now()))
                .map_err(|e| e.to_string())?;
            let mut req = client
                .post(target)
                .header("Content-Type", "application/json");
            if let Some(secret) = ch.hmac_secret {
                let key = store
                    .get_secret(secret)
                    .await
                    .map_err(|e| format!("the channel's signing key cannot be read: {e}"))?;
                req = req.header(SIGNATURE_HEADER, signature(key.expose().as_bytes(), &body));
            }
            post(req.body(body)).await
        }
        ChannelKind::Slack => {
            let (subject, body) = notify::text(notices);
            let payload = serde_json::json!({ "text": format!("*{subject}*\n{body}") });
            post(client.post(target).json(&payload)).await
        }
        ChannelKind::Email => send_mail(ch, target, notices).await,
    }
}

/// `sha256=<hex>` of HMAC-SHA256 over the body.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    #[allow(clippy::expect_used)] // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post(req: reqwest_notify::RequestBuilder) -> Result<(), String> {
    let resp = req.send().await.map_err(|e| describe(&e))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    let text: String = text.chars().take(200).collect();
    Err(format!("HTTP {status}: {}", text.trim()))
}

/// A reqwest error without the URL (a Slack or webhook URL carries its credentials).
fn describe(e: &reqwest_notify::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut src = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = src {
        detail = s.to_string();
        src = s.source();
    }
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {detail}")
    }
}

async fn send_mail(ch: &ChannelRecord, to: &str, notices: &[Notice]) -> Result<(), String> {
    use lettre::message::{Mailbox, header::ContentType};
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let smtp = ch.smtp.as_deref().ok_or("the channel has no SMTP server")?;
    let (host, port) = smtp
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("SMTP server `{smtp}` is not HOST:PORT"))?;
    let from: Mailbox = ch
        .from_addr
        .as_deref()
        .unwrap_or("nines@localhost")
        .parse()
        .map_err(|e| format!("sender address: {e}"))?;
    let (subject, body) = notify::text(notices);
    let mut msg = Message::builder().from(from).subject(subject);
    for addr in to.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let mb: Mailbox = addr
            .parse()
            .map_err(|e| format!("recipient `{addr}`: {e}"))?;
        msg = msg.to(mb);
    }
    let msg = msg
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| format!("cannot build the message: {e}"))?;
    let tls = TlsParameters::new(host.to_string()).map_err(|e| format!("TLS setup: {e}"))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(Tls::Opportunistic(tls))
        .timeout(Some(SEND_TIMEOUT))
        .build();
    transport
        .send(msg)
        .await
        .map(|_| ())
        .map_err(|e| format!("SMTP {smtp}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
