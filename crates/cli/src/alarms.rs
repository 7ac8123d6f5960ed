//! `nines alarm …`, `nines notify …` and `nines advisor …`: alarms, silences,
//! notification channels, advisor results and user rules; and `nines lb …`.

use anyhow::anyhow;
use nines_model::advisor::user::UserRule;
use nines_model::api::{
    AckRequest, AdviceChangeView, AdviceView, AlarmView, ChannelAddRequest, ChannelTestResult,
    ChannelView, DeliveryView, SilenceRequest, SilenceView, UserRuleRequest,
};

use crate::client::Client;
use crate::commands::{cluster_seg, read_password, urlencode};
use crate::output::{opt, print, table, time};
use crate::{AdvisorCmd, AdvisorRuleCmd, AlarmCmd, Format, NotifyCmd};

fn alarm_table(alarms: &[AlarmView]) -> comfy_table::Table {
    let mut t = table(&[
        "id", "severity", "cluster", "node", "kind", "title", "raised", "cleared", "ack",
    ]);
    for a in alarms {
        t.add_row(vec![
            a.id.to_string(),
            format!(
                "{}{}",
                a.severity,
                if a.silenced { " (silenced)" } else { "" }
            ),
            a.cluster.clone(),
            opt(&a.node),
            a.kind.clone(),
            a.title.clone(),
            time(&a.raised_at),
            opt(&a.cleared_at.as_ref().map(time)),
            opt(&a.acknowledged_by),
        ]);
    }
    t
}

pub async fn alarm_command(client: &Client, f: Format, cmd: AlarmCmd) -> anyhow::Result<i32> {
    match cmd {
        AlarmCmd::List {
            cluster,
            all,
            limit,
        } => {
            let mut path = format!("/api/v1/alarms?all={all}&limit={limit}");
            if let Some(c) = &cluster {
                path.push_str(&format!("&cluster={}", cluster_seg(c)?));
            }
            let alarms: Vec<AlarmView> = client.get(&path).await?;
            match f {
                Format::Table if alarms.is_empty() => {
                    crate::say!("{}", if all { "no alarms" } else { "no active alarms" });
                }
                _ => {
                    print(f, &alarms, |a| alarm_table(a))?;
                    if f == Format::Table {
                        for a in &alarms {
                            crate::say!("\n{}: {}", a.id, a.message);
                        }
                    }
                }
            }
            Ok(0)
        }
        AlarmCmd::Ack { id, note } => {
            let a: AlarmView = client
                .post(&format!("/api/v1/alarms/{id}/ack"), &AckRequest { note })
                .await?;
            match f {
                Format::Json => crate::say!("{}", serde_json::to_string_pretty(&a)?),
                Format::Table => crate::say!(
                    "alarm {} acknowledged by {}",
                    a.id,
                    a.acknowledged_by.clone().unwrap_or_default()
                ),
            }
            Ok(0)
        }
        AlarmCmd::Silence {
            kind,
            cluster,
            duration,
            note,
        } => {
            if let Some(c) = &cluster {
                cluster_seg(c)?;
            }
            let s: SilenceView = client
                .post(
                    "/api/v1/alarm-silences",
                    &SilenceRequest {
                        kind,
                        cluster,
                        duration,
                        note,
                    },
                )
                .await?;
            match f {
                Format::Json => crate::say!("{}", serde_json::to_string_pretty(&s)?),
                Format::Table => crate::say!(
                    "silence {}: no notifications for {} on {} until {}",
                    s.id,
                    s.kind,
                    s.cluster
                        .clone()
                        .map(|c| format!("`{c}`"))
                        .unwrap_or_else(|| "every cluster".into()),
                    time(&s.until)
                ),
            }
            Ok(0)
        }
        AlarmCmd::Silences => {
            let s: Vec<SilenceView> = client.get("/api/v1/alarm-silences").await?;
            print(f, &s, |s| {
                let mut t = table(&["id", "kind", "cluster", "until", "by", "note"]);
                for x in s {
                    t.add_row(vec![
                        x.id.to_string(),
                        x.kind.clone(),
                        x.cluster.clone().unwrap_or_else(|| "*".into()),
                        time(&x.until),
                        x.created_by.clone(),
                        x.note.clone(),
                    ]);
                }
                t
            })?;
            Ok(0)
        }
        AlarmCmd::Unsilence { id } => {
            let s: SilenceView = client
                .delete(&format!("/api/v1/alarm-silences/{id}"))
                .await?;
            match f {
                Format::Json => crate::say!("{}", serde_json::to_string_pretty(&s)?),
                Format::Table => crate::say!("silence {} of {} ended", s.id, s.kind),
            }
            Ok(0)
        }
    }
}

fn channel_seg(name: &str) -> anyhow::Result<String> {
    let n = nines_model::input::ClusterName::parse("name", name)
        .map_err(|e| anyhow!("{}", e.message))?;
    Ok(urlencode(n.as_str()))
}

pub async fn notify_command(client: &Client, f: Format, cmd: NotifyCmd) -> anyhow::Result<i32> {
    match cmd {
        NotifyCmd::Add {
            name,
            webhook,
            slack,
            email,
            smtp,
            from,
            hmac_key_file,
            min_severity,
            cluster,
        } => {
            let min_severity = min_severity
                .parse()
                .map_err(|e: String| anyhow!("--min-severity: {e}"))?;
            let hmac_key = hmac_key_file
                .as_deref()
                .map(|p| read_password("--hmac-key-file", p))
                .transpose()?;
            let req = ChannelAddRequest {
                name,
                webhook,
                slack,
                email,
                smtp,
                from,
                hmac_key,
                min_severity: Some(min_severity),
                cluster,
            };
            let c: ChannelView = client.post("/api/v1/notify-channels", &req).await?;
            match f {
                Format::Json => crate::say!("{}", serde_json::to_string_pretty(&c)?),
                Format::Table => crate::say!(
                    "channel `{}` added: {} to {}, {} and above{}",
                    c.name,
                    c.kind,
                    c.target,
                    c.min_severity,
                    c.cluster
                        .as_ref()
                        .map(|x| format!(", cluster `{x}` only"))
                        .unwrap_or_default()
                ),
            }
            Ok(0)
        }
        NotifyCmd::List => {
            let cs: Vec<ChannelView> = client.get("/api/v1/notify-channels").await?;
            print(f, &cs, |cs| {
                let mut t = table(&[
                    "name",
                    "kind",
                    "target",
                    "min",
                    "cluster",
                    "last",
                    "failed",
                    "last error",
                ]);
                for c in cs {
                    t.add_row(vec![
                        c.name.clone(),
                        c.kind.to_string(),
                        c.target.clone(),
                        c.min_severity.to_string(),
                        c.cluster.clone().unwrap_or_else(|| "*".into()),
                        match (&c.last_state, &c.last_at) {
                            (Some(s), Some(at)) => format!("{s} {}", time(at)),
                            _ => "-".into(),
                        },
                        c.failed.to_string(),
                        opt(&c.last_error),
                    ]);
                }
                t
            })?;
            Ok(0)
        }
        NotifyCmd::Test { name } => {
            let path = format!("/api/v1/notify-channels/{}/test", channel_seg(&name)?);
            let r: ChannelTestResult = client.post(&path, &serde_json::json!({})).await?;
            match f {
                Format::Json => crate::say!("{}", serde_json::to_string_pretty(&r)?),
                Format::Table if r.sent => crate::say!("test notification sent to `{name}`"),
                Format::Table => crate::esay!(
                    "test notification to `{name}` failed: {}",
                    r.error.clone().unwrap_or_default()
                ),
            }
            Ok(if r.sent { 0 } else { 1 })
        }
        NotifyCmd::Delete { name } => {
            let path = format!("/api/v1/notify-channels/{}", channel_seg(&name)?);
            let c: ChannelView = client.delete(&path).await?;
            match f {
                Format::Json => crate::say!("{}", serde_json::to_string_pretty(&c)?),
                Format::Table => crate::say!("channel `{}` deleted", c.name),
            }
            Ok(0)
        }
        NotifyCmd::Deliveries { name, limit } => {
            let path = format!(
                "/api/v1/notify-channels/{}/deliveries?limit={limit}",
                channel_seg(&name)?
            );
            let ds: Vec<DeliveryView> = client.get(&path).await?;
            print(f, &ds, |ds| {
                let mut t = table(&[
                    "id", "event", "alarm", "title", "state", "tries", "queued", "sent", "error",
                ]);
                for d in ds {
                    t.add_row(vec![
                        d.id.to_string(),
                        d.event.as_str().to_string(),
                        opt(&d.alarm_id),
                        d.title.clone(),
                        d.state.to_string(),
                        d.attempts.to_string(),
                        time(&d.queued_at),
                        opt(&d.sent_at.as_ref().map(time)),
                        opt(&d.last_error),
                    ]);
                }
                t
            })?;
            Ok(0)
        }
    }
}

fn advice_table(list: &[AdviceView]) -> comfy_table::Table {
    let mut t = table(&["status", "rule", "node", "message", "checked"]);
    for a in list {
        t.add_row(vec![
            a.status.to_string(),
            a.rule.clone(),
            opt(&a.node),
            a.message.clone(),
            time(&a.checked_at),
        ]);
    }
    t
}

pub async fn advisor_command(client: &Client, f: Format, cmd: AdvisorCmd) -> anyhow::Result<i32> {
    match cmd {
        AdvisorCmd::List { cluster } => {
            let path = format!("/api/v1/clusters/{}/advisors", cluster_seg(&cluster)?);
            let list: Vec<AdviceView> = client.get(&path).await?;
            print_advice(f, &list)
        }
        AdvisorCmd::Run { cluster } => {
            let path = format!("/api/v1/clusters/{}/advisors/run", cluster_seg(&cluster)?);
            let list: Vec<AdviceView> = client.post(&path, &serde_json::json!({})).await?;
            print_advice(f, &list)
        }
        AdvisorCmd::History { cluster, since } => {
            let path = format!(
                "/api/v1/clusters/{}/advisors/history?since={}",
                cluster_seg(&cluster)?,
                urlencode(&since)
            );
            let list: Vec<AdviceChangeView> = client.get(&path).await?;
            print(f, &list, |list| {
                let mut t = table(&["time", "rule", "status", "message"]);
                for h in list {
                    t.add_row(vec![
                        time(&h.at),
                        h.rule.clone(),
                        h.status.to_string(),
                        h.message.clone(),
                    ]);
                }
                t
            })?;
            Ok(0)
        }
        AdvisorCmd::Rule(AdvisorRuleCmd::Add {
            cluster,
            name,
            sql,
            warning,
            critical,
            below,
            message,
            every,
            nodes,
        }) => {
            let path = format!("/api/v1/clusters/{}/advisor-rules", cluster_seg(&cluster)?);
            let req = UserRuleRequest {
                name,
                sql,
                warning,
                critical,
                below,
                message,
                every: Some(every),
                nodes: Some(nodes),
            };
            let r: UserRule = client.post(&path, &req).await?;
            match f {
                Format::Json => crate::say!("{}", serde_json::to_string_pretty(&r)?),
                Format::Table => crate::say!(
                    "rule `{}` added to `{cluster}` (alarm kind advisor.{})",
                    r.name,
                    r.id()
                ),
            }
            Ok(0)
        }
        AdvisorCmd::Rule(AdvisorRuleCmd::List { cluster }) => {
            let path = format!("/api/v1/clusters/{}/advisor-rules", cluster_seg(&cluster)?);
            let rules: Vec<UserRule> = client.get(&path).await?;
            print(f, &rules, |rules| {
                let mut t = table(&["name", "sql", "warning", "critical", "every", "message"]);
                for r in rules {
                    t.add_row(vec![
                        r.name.clone(),
                        r.sql.clone(),
                        opt(&r.warning),
                        opt(&r.critical),
                        format!("{} s", r.every_seconds),
                        r.message.clone(),
                    ]);
                }
                t
            })?;
            Ok(0)
        }
        AdvisorCmd::Rule(AdvisorRuleCmd::Delete { cluster, name }) => {
            let n = nines_model::input::ClusterName::parse("name", &name)
                .map_err(|e| anyhow!("{}", e.message))?;
            let path = format!(
                "/api/v1/clusters/{}/advisor-rules/{}",
                cluster_seg(&cluster)?,
                urlencode(n.as_str())
            );
            let r: UserRule = client.delete(&path).await?;
            match f {
                Format::Json => crate::say!("{}", serde_json::to_string_pretty(&r)?),
                Format::Table => crate::say!("rule `{}` deleted from `{cluster}`", r.name),
            }
            Ok(0)
        }
    }
}

fn print_advice(f: Format, list: &[AdviceView]) -> anyhow::Result<i32> {
    print(f, &list.to_vec(), |l| advice_table(l))?;
    if f == Format::Table {
        for a in list.iter().filter(|a| !a.advice.is_empty()) {
            crate::say!("\n{} ({}): {}", a.rule, a.status, a.advice);
        }
    }
    Ok(0)
}

pub async fn top_queries(
    client: &Client,
    f: Format,
    cluster: &str,
    node: Option<&str>,
    since: &str,
    limit: i64,
) -> anyhow::Result<i32> {
    let mut path = format!(
        "/api/v1/clusters/{}/queries/top?since={}&limit={limit}",
        cluster_seg(cluster)?,
        urlencode(since)
    );
    if let Some(n) = node {
        let ep =
            nines_model::input::node_address("node", n).map_err(|e| anyhow!("{}", e.message))?;
        path.push_str(&format!("&node={}", urlencode(&ep.to_string())));
    }
    let list: Vec<nines_model::query::TopQuery> = client.get(&path).await?;
    print(f, &list, |list| {
        let mut t = table(&[
            "total ms",
            "count",
            "avg ms",
            "max ms",
            "rows examined",
            "rows sent",
            "schema",
            "query",
        ]);
        for q in list {
            let text: String = q.digest_text.chars().take(100).collect();
            t.add_row(vec![
                format!("{:.1}", q.total_time_ms),
                q.count.to_string(),
                format!("{:.3}", q.avg_time_ms),
                format!("{:.3}", q.max_time_ms),
                q.rows_examined.to_string(),
                q.rows_sent.to_string(),
                q.schema.clone(),
                text,
            ]);
        }
        t
    })?;
    Ok(0)
}

pub async fn metrics(
    client: &Client,
    f: Format,
    cluster: &str,
    series: &str,
    since: &str,
    step: Option<&str>,
) -> anyhow::Result<i32> {
    let mut path = format!(
        "/api/v1/clusters/{}/metrics?series={}&since={}",
        cluster_seg(cluster)?,
        urlencode(series),
        urlencode(since)
    );
    if let Some(s) = step {
        path.push_str(&format!("&step={}", urlencode(s)));
    }
    let m: nines_model::api::ClusterMetrics = client.get(&path).await?;
    print(f, &m, |m| {
        let mut t = table(&["series", "node", "points", "last", "min", "max"]);
        for s in &m.series {
            let vals: Vec<f64> = s.points.iter().filter_map(|p| p.value).collect();
            let fmt = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
            t.add_row(vec![
                s.name.clone(),
                s.node.clone().unwrap_or_else(|| "(cluster)".into()),
                vals.len().to_string(),
                fmt(vals.last().copied()),
                fmt(vals.iter().copied().reduce(f64::min)),
                fmt(vals.iter().copied().reduce(f64::max)),
            ]);
        }
        t
    })?;
    Ok(0)
}

pub async fn lb_command(client: &Client, f: Format, cmd: crate::LbCmd) -> anyhow::Result<i32> {
    use crate::LbCmd;
    match cmd {
        LbCmd::Add {
            cluster,
            lb_type,
            host,
            rw_port,
            ro_port,
            stats_port,
            hosts,
            vip,
            keepalived,
            max_replica_lag,
            no_ro_fallback,
            wait,
        } => {
            let path = format!("/api/v1/clusters/{}/load-balancers", cluster_seg(&cluster)?);
            let req = nines_model::api::LbAddRequest {
                lb_type: Some(lb_type),
                host,
                rw_port: Some(rw_port),
                ro_port: Some(ro_port),
                stats_port: Some(stats_port),
                ssh: crate::commands::ssh_request(&hosts)?,
                local: hosts.local,
                vip,
                keepalived,
                max_replica_lag_seconds: max_replica_lag,
                ro_fallback_to_primary: no_ro_fallback.then_some(false),
            };
            let created: nines_model::api::JobCreated = client.post(&path, &req).await?;
            crate::commands::started(client, f, created, wait).await
        }
        LbCmd::List { cluster } => {
            let path = format!("/api/v1/clusters/{}/load-balancers", cluster_seg(&cluster)?);
            let lbs: Vec<nines_model::api::LbView> = client.get(&path).await?;
            print(f, &lbs, |lbs| {
                let mut t = table(&[
                    "id", "type", "host", "rw", "ro", "state", "haproxy", "vip", "backends",
                ]);
                for l in lbs {
                    let backends: Vec<String> = l
                        .backends
                        .iter()
                        .map(|b| {
                            let mut s = format!("{} {} {}", b.pool, b.address, b.state);
                            if l.writer.as_deref() == Some(b.address.as_str())
                                && b.pool == nines_model::lb::Pool::Rw
                            {
                                s.push_str(" writer");
                            } else if b.backup {
                                s.push_str(" backup");
                            }
                            if let Some(n) = b.sessions {
                                s.push_str(&format!(" ({n} sessions)"));
                            }
                            s
                        })
                        .collect();
                    let vip = match (&l.vip, l.vip_held) {
                        (None, _) => "-".to_string(),
                        (Some(v), Some(true)) => format!("{v} (held)"),
                        (Some(v), _) => v.clone(),
                    };
                    let mut state = l.state.to_string();
                    if let Some(e) = &l.error {
                        state.push_str(&format!(": {e}"));
                    }
                    t.add_row(vec![
                        l.id.to_string(),
                        l.lb_type.clone(),
                        l.host.clone(),
                        l.rw_port.to_string(),
                        l.ro_port.to_string(),
                        crate::output::terminal(&state),
                        l.haproxy.clone(),
                        vip,
                        backends.join("\n"),
                    ]);
                }
                t
            })?;
            Ok(0)
        }
        LbCmd::Restart {
            cluster,
            host,
            wait,
        } => {
            let ep = nines_model::input::node_address("host", &host)
                .map_err(|e| anyhow!("{}", e.message))?;
            let path = format!(
                "/api/v1/clusters/{}/load-balancers/{}/restart",
                cluster_seg(&cluster)?,
                urlencode(&ep.host)
            );
            let created: nines_model::api::JobCreated =
                client.post(&path, &serde_json::json!({})).await?;
            crate::commands::started(client, f, created, wait).await
        }
        LbCmd::Reconfigure {
            cluster,
            host,
            max_replica_lag,
            ro_fallback,
            wait,
        } => {
            let ep = nines_model::input::node_address("host", &host)
                .map_err(|e| anyhow!("{}", e.message))?;
            let path = format!(
                "/api/v1/clusters/{}/load-balancers/{}",
                cluster_seg(&cluster)?,
                urlencode(&ep.host)
            );
            let req = nines_model::api::LbReconfigureRequest {
                max_replica_lag_seconds: max_replica_lag,
                ro_fallback_to_primary: ro_fallback,
            };
            let created: nines_model::api::JobCreated = client.put(&path, &req).await?;
            crate::commands::started(client, f, created, wait).await
        }
        LbCmd::Remove {
            cluster,
            host,
            wait,
        } => {
            let ep = nines_model::input::node_address("host", &host)
                .map_err(|e| anyhow!("{}", e.message))?;
            let path = format!(
                "/api/v1/clusters/{}/load-balancers/{}",
                cluster_seg(&cluster)?,
                urlencode(&ep.host)
            );
            let created: nines_model::api::JobCreated = client.delete(&path).await?;
            crate::commands::started(client, f, created, wait).await
        }
    }
}
