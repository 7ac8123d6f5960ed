//! The alarm engine: the one place alarms are raised, updated and cleared.
//!
//! Sources hand it conditions: the reconciler's pass syncs the monitor's conditions of a
//! cluster ([`Alarms::sync`], which clears what a pass no longer finds) and raises or
//! clears its repair alarms; backups and the binlog archiver raise and clear theirs.
//! The engine keeps the active alarms in memory (loaded from the store at start, written
//! through on every change), so a pass that changes nothing costs no store access. On a
//! raise or a clear it writes an event and queues a notice for every channel that wants
//! it (unless a silence covers the alarm), and wakes the notifier ([`notifier`]).

pub mod notifier;

use nines_model::event::EventKind;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use nines_model::alarm::notify::{Event, Notice};
use nines_model::alarm::{
    self, Active, AlarmKey, AlarmKind, Change, Condition, Severity, Silence, Source,
};
use nines_store::{AlarmRecord, ChannelRecord, Store, StoreError};
use tokio::sync::Notify;

/// The alarm engine (see the module documentation).
pub struct Alarms {
    store: Arc<dyn Store>,
    active: Mutex<HashMap<AlarmKey, AlarmRecord>>,
    silences: Mutex<Vec<Silence>>,
    channels: Mutex<Vec<ChannelRecord>>,
    /// Serialises changes, so that two sources never raise one condition twice.
    writing: tokio::sync::Mutex<()>,
    /// Wakes the notifier when a notice is queued.
    pub(crate) queued: Notify,
}

impl Alarms {
    /// Loads the active alarms, silences and channels.
    pub async fn load(store: Arc<dyn Store>) -> Result<Arc<Self>, StoreError> {
        let active = store
            .active_alarms()
            .await?
            .into_iter()
            .map(|a| (a.key.clone(), a))
            .collect();
        let a = Arc::new(Self {
            store,
            active: Mutex::new(active),
            silences: Mutex::new(Vec::new()),
            channels: Mutex::new(Vec::new()),
            writing: tokio::sync::Mutex::new(()),
            queued: Notify::new(),
        });
        a.reload_silences().await?;
        a.reload_channels().await?;
        Ok(a)
    }

    pub async fn reload_silences(&self) -> Result<(), StoreError> {
        let s: Vec<Silence> = self
            .store
            .silences(Some(Utc::now()))
            .await?
            .into_iter()
            .map(|s| Silence {
                kind: s.kind,
                cluster: s.cluster,
                until: s.until,
            })
            .collect();
        *lock(&self.silences) = s;
        Ok(())
    }

    pub async fn reload_channels(&self) -> Result<(), StoreError> {
        let c = self.store.channels().await?;
        *lock(&self.channels) = c;
        Ok(())
    }

    /// The active alarms, for /metrics and the API's quick reads.
    pub fn active(&self) -> Vec<AlarmRecord> {
        let mut v: Vec<AlarmRecord> = lock(&self.active).values().cloned().collect();
        v.sort_by_key(|a| a.id);
        v
    }

    /// Whether the alarm of `kind` on the cluster (and node) is active.
    pub fn is_active(&self, cluster: &str, node: Option<&str>, kind: &AlarmKind) -> bool {
        lock(&self.active)
            .keys()
            .any(|k| k.cluster == cluster && k.node.as_deref() == node && k.kind == *kind)
    }

    /// Whether the alarm is silenced now.
    pub fn is_silenced(&self, key: &AlarmKey) -> bool {
        alarm::silenced(key, &lock(&self.silences), Utc::now())
    }

    /// Brings the active alarms of `source` on `cluster` to `found`: raises new
    /// conditions, updates changed ones, clears the rest. Free when nothing changed.
    pub async fn sync(
        &self,
        cluster: &str,
        source: Source,
        found: Vec<Condition>,
    ) -> Result<(), StoreError> {
        let changes = {
            let active: Vec<Active> = lock(&self.active)
                .values()
                .filter(|a| a.key.cluster == cluster && a.key.kind.source() == source)
                .map(|a| Active {
                    key: a.key.clone(),
                    severity: a.severity,
                    title: a.title.clone(),
                    message: a.message.clone(),
                })
                .collect();
            if active.is_empty() && found.is_empty() {
                return Ok(());
            }
            alarm::diff(cluster, source, &active, found)
        };
        for c in changes {
            match c {
                Change::Raise(c) | Change::Update(c) => {
                    self.raise(c).await?;
                }
                Change::Clear(k) => {
                    self.clear(&k).await?;
                }
            }
        }
        Ok(())
    }

    /// Raises the condition's alarm, or updates it when it is active with other facts
    /// (a rise in severity notifies again). True when a new alarm was raised.
    pub async fn raise(&self, c: Condition) -> Result<bool, StoreError> {
        let _w = self.writing.lock().await;
        let now = Utc::now();
        let existing = lock(&self.active).get(&c.key).cloned();
        if let Some(a) = existing {
            if a.severity == c.severity && a.title == c.title && a.message == c.message {
                return Ok(false);
            }
            self.store.update_alarm(a.id, &c, now).await?;
            let rose = c.severity > a.severity;
            let updated = AlarmRecord {
                severity: c.severity,
                title: c.title,
                message: c.message,
                updated_at: now,
                ..a
            };
            lock(&self.active).insert(updated.key.clone(), updated.clone());
            if rose {
                self.queue(&updated, Event::Raised).await;
            }
            return Ok(false);
        }
        let rec = self.store.open_alarm(&c, now).await?;
        tracing::warn!(
            cluster = %rec.key.cluster,
            node = rec.key.node.as_deref().unwrap_or(""),
            kind = %rec.key.kind,
            severity = %rec.severity,
            "alarm raised: {}",
            rec.title
        );
        // The reconciler writes its own `alarm` event, in the transaction that records
        // its alarm as raised.
        if rec.key.kind.source() != Source::Reconciler {
            crate::log_store_error(
                "an alarm event",
                self.store
                    .add_event(
                        &rec.key.cluster,
                        rec.key.node.as_deref(),
                        EventKind::Alarm,
                        &format!("alarm: {}: {}", rec.title, rec.message),
                    )
                    .await,
            );
        }
        lock(&self.active).insert(rec.key.clone(), rec.clone());
        self.queue(&rec, Event::Raised).await;
        Ok(true)
    }

    /// Clears the alarm when it is active; true when it was.
    pub async fn clear(&self, key: &AlarmKey) -> Result<bool, StoreError> {
        let _w = self.writing.lock().await;
        let Some(a) = lock(&self.active).get(key).cloned() else {
            return Ok(false);
        };
        let cleared = self.store.close_alarm(a.id, Utc::now()).await?;
        lock(&self.active).remove(key);
        let Some(rec) = cleared else {
            return Ok(false);
        };
        tracing::info!(cluster = %rec.key.cluster, kind = %rec.key.kind, "alarm cleared: {}", rec.title);
        crate::log_store_error(
            "an alarm event",
            self.store
                .add_event(
                    &rec.key.cluster,
                    rec.key.node.as_deref(),
                    EventKind::AlarmCleared,
                    &format!("alarm cleared: {}", rec.title),
                )
                .await,
        );
        self.queue(&rec, Event::Cleared).await;
        Ok(true)
    }

    /// Clears every active alarm of a cluster (it was deleted).
    pub async fn forget_cluster(&self, cluster: &str) -> Result<(), StoreError> {
        let keys: Vec<AlarmKey> = lock(&self.active)
            .keys()
            .filter(|k| k.cluster == cluster)
            .cloned()
            .collect();
        for k in keys {
            self.clear(&k).await?;
        }
        Ok(())
    }

    /// Clears the alarm of `kind` on the cluster (and node) when active.
    pub async fn clear_kind(
        &self,
        cluster: &str,
        node: Option<&str>,
        kind: AlarmKind,
    ) -> Result<bool, StoreError> {
        self.clear(&AlarmKey {
            cluster: cluster.to_string(),
            node: node.map(str::to_string),
            kind,
        })
        .await
    }

    /// Queues the alarm's news for every channel that wants it, unless it is silenced.
    async fn queue(&self, a: &AlarmRecord, event: Event) {
        if self.is_silenced(&a.key) {
            tracing::info!(kind = %a.key.kind, cluster = %a.key.cluster, "alarm silenced: no notification");
            return;
        }
        let notice = notice(a, event);
        let channels: Vec<ChannelRecord> = lock(&self.channels)
            .iter()
            .filter(|c| {
                nines_model::alarm::notify::wants(
                    c.min_severity,
                    c.cluster.as_deref(),
                    a.severity,
                    &a.key.cluster,
                )
            })
            .cloned()
            .collect();
        let mut any = false;
        for c in channels {
            match self.store.queue_delivery(c.id, &notice).await {
                Ok(_) => any = true,
                Err(e) => {
                    tracing::error!(channel = %c.name, error = %e, "cannot queue a notification")
                }
            }
        }
        if any {
            self.queued.notify_one();
        }
    }
}

/// An alarm's news as channels receive it.
pub fn notice(a: &AlarmRecord, event: Event) -> Notice {
    Notice {
        event,
        alarm_id: Some(a.id),
        cluster: a.key.cluster.clone(),
        node: a.key.node.clone(),
        kind: a.key.kind.as_string(),
        severity: a.severity,
        title: a.title.clone(),
        message: a.message.clone(),
        raised_at: a.raised_at,
        cleared_at: a.cleared_at,
    }
}

/// A sample notice for `nines notify test`.
pub fn sample_notice(channel: &str, now: DateTime<Utc>) -> Notice {
    Notice {
        event: Event::Test,
        alarm_id: None,
        cluster: "example".into(),
        node: Some("192.0.2.10:3306".into()),
        kind: AlarmKind::NodeDown.as_string(),
        severity: Severity::Critical,
        title: format!("test notification for channel `{channel}`"),
        message: "This is a test sent by `nines notify test`; no alarm is raised.".into(),
        raised_at: now,
        cleared_at: None,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
