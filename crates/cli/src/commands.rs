//! The client commands: each builds a request, calls the API and prints the answer.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use nines_model::api::{
    BackupCreateRequest, BackupView, ClusterDetail, ClusterSummary, EventView, FailoverView,
    FailoversAcknowledged, HaPolicyView, ImportRequest, JobCreated, JobLogLine, JobView,
    NodeStatus, RepoAddRequest, RepoView, RestoreRequest, ScheduleCreateRequest, ScheduleView,
    SshAccessRequest,
};
use nines_model::job::{FailureKind, JobState};

use crate::client::Client;
use crate::output::{opt, print, table, time};
use crate::{Cli, ClusterCmd, Command, Format, ImportArgs, JobCmd, NodeCmd};

/// Runs a client command; returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let token = match cli.token.clone() {
        Some(t) => Some(t),
        None => std::fs::read_to_string(cli.data_dir.join("admin.token"))
            .ok()
            .map(|t| t.trim().to_string()),
    };
    let client = Client::new(&cli.server, token, cli.ca_cert.as_deref())?;
    let f = cli.output;
    match cli.command {
        Command::Serve(_) => bail!("`serve` is run by the binary, not the client"),
        Command::Cluster(ClusterCmd::Import(args)) => import(&client, f, args).await,
        Command::Cluster(ClusterCmd::Create(args)) => create(&client, f, args).await,
        Command::Cluster(ClusterCmd::Stop(a)) => {
            let path = format!("/api/v1/clusters/{}/stop", cluster_seg(&a.name)?);
            started(
                &client,
                f,
                client.post(&path, &serde_json::json!({})).await?,
                a.wait,
            )
            .await
        }
        Command::Cluster(ClusterCmd::Start(a)) => {
            let path = format!("/api/v1/clusters/{}/start", cluster_seg(&a.name)?);
            started(
                &client,
                f,
                client.post(&path, &serde_json::json!({})).await?,
                a.wait,
            )
            .await
        }
        Command::Cluster(ClusterCmd::RollingRestart(a)) => {
            let path = format!("/api/v1/clusters/{}/rolling-restart", cluster_seg(&a.name)?);
            started(
                &client,
                f,
                client.post(&path, &serde_json::json!({})).await?,
                a.wait,
            )
            .await
        }
        Command::Cluster(ClusterCmd::Switchover { cluster, to }) => {
            let path = format!(
                "/api/v1/clusters/{}/switchover",
                cluster_seg(&cluster.name)?
            );
            let body = nines_model::api::SwitchoverRequest { to };
            started(&client, f, client.post(&path, &body).await?, cluster.wait).await
        }
        Command::Cluster(ClusterCmd::Failover { cluster, to, force }) => {
            let path = format!("/api/v1/clusters/{}/failover", cluster_seg(&cluster.name)?);
            let body = nines_model::api::FailoverRequest { to, force };
            started(&client, f, client.post(&path, &body).await?, cluster.wait).await
        }
        Command::Cluster(ClusterCmd::Recover {
            cluster,
            bootstrap_from,
            force,
        }) => {
            let path = format!("/api/v1/clusters/{}/recover", cluster_seg(&cluster.name)?);
            let body = nines_model::api::RecoverRequest {
                bootstrap_from,
                force,
            };
            started(&client, f, client.post(&path, &body).await?, cluster.wait).await
        }
        Command::Cluster(ClusterCmd::Failovers {
            name,
            since,
            acknowledge,
        }) => failovers(&client, f, &name, &since, acknowledge).await,
        Command::Cluster(ClusterCmd::Recovery { switch, name }) => {
            let body = nines_model::api::RecoveryRequest {
                enabled: switch == crate::Switch::Enable,
            };
            let path = format!("/api/v1/clusters/{}/recovery", cluster_seg(&name)?);
            let c: ClusterSummary = client.put(&path, &body).await?;
            match f {
                Format::Json => crate::say!("{}", serde_json::to_string_pretty(&c)?),
                Format::Table => crate::say!(
                    "automatic recovery of `{}` is {}",
                    c.name,
                    if c.auto_recovery { "on" } else { "off" }
                ),
            }
            Ok(0)
        }
        Command::Cluster(ClusterCmd::HaPolicy(a)) => ha_policy(&client, f, &a).await,
        Command::Cluster(ClusterCmd::Delete { name, purge, wait }) => {
            let path = format!("/api/v1/clusters/{}?purge={purge}", cluster_seg(&name)?);
            started(&client, f, client.delete(&path).await?, wait).await
        }
        Command::Node(NodeCmd::Add {
            node: a,
            source,
            from_backup,
        }) => {
            let path = format!("/api/v1/clusters/{}/nodes", cluster_seg(&a.cluster)?);
            let body = nines_model::api::AddNodeRequest {
                node: a.node.clone(),
                source,
                from_backup,
            };
            started(&client, f, client.post(&path, &body).await?, a.wait).await
        }
        Command::Node(NodeCmd::Remove {
            node,
            purge,
            unregister_only,
        }) => {
            let mode = if purge {
                "purge"
            } else if unregister_only {
                "unregister"
            } else {
                "stop"
            };
            let path = format!(
                "/api/v1/clusters/{}/nodes/{}?mode={mode}",
                cluster_seg(&node.cluster)?,
                node_seg(&node.node)?
            );
            started(&client, f, client.delete(&path).await?, node.wait).await
        }
        Command::Node(NodeCmd::Stop { node, force }) => {
            node_action(&client, f, &node, "stop", force).await
        }
        Command::Node(NodeCmd::Start(node)) => node_action(&client, f, &node, "start", false).await,
        Command::Node(NodeCmd::Restart { node, force }) => {
            node_action(&client, f, &node, "restart", force).await
        }
        Command::Node(NodeCmd::Rejoin(node)) => {
            let path = format!(
                "/api/v1/clusters/{}/nodes/{}/rejoin",
                cluster_seg(&node.cluster)?,
                node_seg(&node.node)?
            );
            started(
                &client,
                f,
                client.post(&path, &serde_json::json!({})).await?,
                node.wait,
            )
            .await
        }
        Command::Cluster(ClusterCmd::List) => {
            let list: Vec<ClusterSummary> = client.get("/api/v1/clusters").await?;
            print(f, &list, |l| {
                let mut t = table(&["NAME", "TYPE", "STATE", "NODES", "ONLINE", "REASON"]);
                for c in l {
                    t.add_row(vec![
                        c.name.clone(),
                        c.cluster_type.to_string(),
                        c.state.to_string(),
                        c.nodes.to_string(),
                        c.nodes_online.to_string(),
                        c.state_reason.clone(),
                    ]);
                }
                t
            })?;
            Ok(0)
        }
        Command::Cluster(ClusterCmd::Show { name, name_flag }) => {
            let name = name
                .or(name_flag)
                .ok_or_else(|| anyhow!("give the cluster name"))?;
            let c: ClusterDetail = client.get(&format!("/api/v1/clusters/{name}")).await?;
            match f {
                Format::Json => crate::say!("{}", serde_json::to_string_pretty(&c)?),
                Format::Table => {
                    crate::say!(
                        "{} ({}): {} — {}\nhost access: {}\n",
                        c.summary.name,
                        c.summary.cluster_type,
                        c.summary.state,
                        c.summary.state_reason,
                        c.host_access
                    );
                    crate::say!("{}", node_table(&c.node_list));
                    let mut t = table(&["TIME", "NODE", "EVENT"]);
                    for e in &c.events {
                        t.add_row(vec![time(&e.at), opt(&e.node), e.message.clone()]);
                    }
                    crate::say!("\n{t}");
                }
            }
            Ok(0)
        }
        Command::Node(NodeCmd::List { cluster }) => {
            let path = match &cluster {
                Some(c) => format!("/api/v1/nodes?cluster={}", urlencode(c)),
                None => "/api/v1/nodes".to_string(),
            };
            let nodes: Vec<NodeStatus> = client.get(&path).await?;
            print(f, &nodes, |n| node_table(n))?;
            Ok(0)
        }
        Command::Job(JobCmd::List {
            cluster,
            state,
            limit,
        }) => {
            let mut path = format!("/api/v1/jobs?limit={limit}");
            if let Some(c) = cluster {
                path.push_str(&format!("&cluster={}", urlencode(&c)));
            }
            if let Some(s) = state {
                path.push_str(&format!("&state={}", urlencode(&s)));
            }
            let jobs: Vec<JobView> = client.get(&path).await?;
            print(f, &jobs, |jobs| {
                let mut t = table(&[
                    "ID", "KIND", "CLUSTER", "STATE", "PROGRESS", "BY", "CREATED", "ERROR",
                ]);
                for j in jobs {
                    t.add_row(vec![
                        j.id.to_string(),
                        j.kind.clone(),
                        j.cluster.clone(),
                        j.state.to_string(),
                        format!("{} {}%", j.phase, j.percent),
                        j.requested_by.clone(),
                        time(&j.created_at),
                        opt(&j.error),
                    ]);
                }
                t
            })?;
            Ok(0)
        }
        Command::Job(JobCmd::Show { id }) => {
            let j: JobView = client.get(&format!("/api/v1/jobs/{id}")).await?;
            match f {
                Format::Json => crate::say!("{}", serde_json::to_string_pretty(&j)?),
                Format::Table => {
                    crate::say!("job {}: {} on `{}`", j.id, j.kind, j.cluster);
                    crate::say!("state:    {}", j.state);
                    crate::say!("progress: {} {}%", j.phase, j.percent);
                    crate::say!("by:       {}", j.requested_by);
                    crate::say!("created:  {}", time(&j.created_at));
                    if let Some(t) = &j.finished_at {
                        crate::say!("finished: {}", time(t));
                    }
                    if let Some(e) = &j.error {
                        crate::say!("error:    {e}");
                    }
                    match j.failure {
                        Some(FailureKind::Refused) => crate::say!(
                            "failure:  refused (the same job fails the same way until what it names changes)"
                        ),
                        Some(FailureKind::Failed) => {
                            crate::say!("failure:  a step failed (running it again may work)")
                        }
                        None => {}
                    }
                }
            }
            Ok(0)
        }
        Command::Job(JobCmd::Logs { id, follow }) => {
            if follow {
                follow_job(&client, f, id).await
            } else {
                let lines: Vec<JobLogLine> = client.get(&format!("/api/v1/jobs/{id}/logs")).await?;
                print_lines(f, &lines)?;
                Ok(0)
            }
        }
        Command::Job(JobCmd::Cancel { id }) => {
            let j: JobView = client
                .post(&format!("/api/v1/jobs/{id}/cancel"), &serde_json::json!({}))
                .await?;
            match f {
                Format::Json => crate::say!("{}", serde_json::to_string_pretty(&j)?),
                Format::Table => crate::say!(
                    "job {}: {}{}",
                    j.id,
                    j.state,
                    if j.state == JobState::Running {
                        " (cancellation requested)"
                    } else {
                        ""
                    }
                ),
            }
            Ok(0)
        }
        Command::Maintenance(crate::MaintenanceCmd::On {
            cluster,
            node,
            duration,
            reason,
        }) => {
            let body = nines_model::api::MaintenanceRequest {
                node,
                reason,
                duration,
            };
            let path = format!("/api/v1/clusters/{}/maintenance", cluster_seg(&cluster)?);
            let m: nines_model::api::MaintenanceView = client.put(&path, &body).await?;
            match f {
                Format::Json => crate::say!("{}", serde_json::to_string_pretty(&m)?),
                Format::Table => crate::say!(
                    "maintenance on for {}{}: {}",
                    m.node
                        .clone()
                        .unwrap_or_else(|| format!("cluster `{}`", m.cluster)),
                    m.until
                        .map(|u| format!(" until {}", time(&u)))
                        .unwrap_or_default(),
                    m.reason
                ),
            }
            Ok(0)
        }
        Command::Maintenance(crate::MaintenanceCmd::Off {
            cluster,
            node,
            reason,
        }) => {
            let mut path = format!("/api/v1/clusters/{}/maintenance?", cluster_seg(&cluster)?);
            if let Some(n) = &node {
                path.push_str(&format!("node={}&", urlencode(n)));
            }
            if let Some(r) = &reason {
                path.push_str(&format!("reason={}", urlencode(r)));
            }
            let left: Vec<nines_model::api::MaintenanceView> = client.delete(&path).await?;
            match f {
                Format::Json => crate::say!("{}", serde_json::to_string_pretty(&left)?),
                Format::Table => crate::say!(
                    "maintenance off for {}; {} window(s) left",
                    node.unwrap_or_else(|| format!("cluster `{cluster}`")),
                    left.len()
                ),
            }
            Ok(0)
        }
        Command::Backup(cmd) => backup_command(&client, f, cmd).await,
        Command::Alarm(cmd) => crate::alarms::alarm_command(&client, f, cmd).await,
        Command::Notify(cmd) => crate::alarms::notify_command(&client, f, cmd).await,
        Command::Advisor(cmd) => crate::alarms::advisor_command(&client, f, cmd).await,
        Command::Lb(cmd) => crate::alarms::lb_command(&client, f, cmd).await,
        Command::User(cmd) => crate::users::user_command(&client, f, cmd).await,
        Command::Token(cmd) => crate::users::token_command(&client, f, cmd).await,
        Command::Audit(cmd) => crate::users::audit_command(&client, f, cmd).await,
        Command::Query(crate::QueryCmd::Top {
            cluster,
            node,
            since,
            limit,
        }) => {
            crate::alarms::top_queries(&client, f, &cluster, node.as_deref(), &since, limit).await
        }
        Command::Metrics {
            cluster,
            series,
            since,
            step,
        } => crate::alarms::metrics(&client, f, &cluster, &series, &since, step.as_deref()).await,
        Command::Events { cluster, limit } => {
            let mut path = format!("/api/v1/events?limit={limit}");
            if let Some(c) = cluster {
                path.push_str(&format!("&cluster={}", urlencode(&c)));
            }
            let events: Vec<EventView> = client.get(&path).await?;
            print(f, &events, |ev| {
                let mut t = table(&["TIME", "CLUSTER", "NODE", "KIND", "MESSAGE"]);
                for e in ev {
                    t.add_row(vec![
                        time(&e.at),
                        e.cluster.clone(),
                        opt(&e.node),
                        e.kind.clone(),
                        e.message.clone(),
                    ]);
                }
                t
            })?;
            Ok(0)
        }
    }
}

/// Lists the failovers and switchovers of a cluster, or acknowledges them.
async fn failovers(
    client: &Client,
    f: Format,
    name: &str,
    since: &str,
    acknowledge: bool,
) -> anyhow::Result<i32> {
    let base = format!("/api/v1/clusters/{}/failovers", cluster_seg(name)?);
    if acknowledge {
        let done: FailoversAcknowledged = client
            .post(&format!("{base}/acknowledge"), &serde_json::json!({}))
            .await?;
        match f {
            Format::Json => crate::say!("{}", serde_json::to_string_pretty(&done)?),
            Format::Table => {
                crate::say!("acknowledged {} failover(s) of `{name}`", done.acknowledged)
            }
        }
        return Ok(0);
    }
    let list: Vec<FailoverView> = client
        .get(&format!("{base}?since={}", urlencode(since)))
        .await?;
    print(f, &list, |l| {
        let mut t = table(&[
            "AT",
            "KIND",
            "AUTO",
            "OLD PRIMARY",
            "NEW PRIMARY",
            "JOB",
            "ACK",
        ]);
        for x in l {
            t.add_row(vec![
                time(&x.at),
                x.kind.to_string(),
                yes_no(x.automatic),
                x.old_primary.clone(),
                x.new_primary.clone(),
                opt(&x.job_id),
                yes_no(x.acknowledged),
            ]);
        }
        t
    })?;
    Ok(0)
}

/// Shows a cluster's HA policy, changes the settings the flags name, or resets it.
async fn ha_policy(client: &Client, f: Format, a: &crate::HaPolicyArgs) -> anyhow::Result<i32> {
    let path = format!("/api/v1/clusters/{}/ha-policy", cluster_seg(&a.name)?);
    let patch = a.patch();
    let v: HaPolicyView = if a.reset {
        client.delete(&path).await?
    } else if patch.is_empty() {
        client.get(&path).await?
    } else {
        client.put(&path, &patch).await?
    };
    match f {
        Format::Json => crate::say!("{}", serde_json::to_string_pretty(&v)?),
        Format::Table => {
            crate::say!("HA policy of `{}` ({})", a.name, v.source);
            let mut t = table(&["SETTING", "VALUE"]);
            for (k, val) in v.policy.entries() {
                t.add_row(vec![k, val]);
            }
            crate::say!("{t}");
        }
    }
    Ok(0)
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

fn node_table(nodes: &[NodeStatus]) -> comfy_table::Table {
    let mut t = table(&[
        "CLUSTER", "ADDRESS", "ROLE", "STATE", "RO", "LAG", "VERSION", "REASON",
    ]);
    for n in nodes {
        t.add_row(vec![
            n.cluster.clone(),
            n.address.clone(),
            n.role.to_string(),
            n.state.to_string(),
            if n.read_only {
                "yes".into()
            } else {
                "no".into()
            },
            match (n.lag_seconds, n.lag_transactions) {
                (Some(s), Some(t)) => format!("{s}s/{t}trx"),
                (Some(s), None) => format!("{s}s"),
                _ => "-".into(),
            },
            opt(&n.version),
            node_reason(n),
        ]);
    }
    t
}

/// The REASON column of `node list`: what a person set (a fence, a stop, a maintenance
/// window) before what the monitor saw, so a node stopped on purpose does not read as a
/// crash.
fn node_reason(n: &NodeStatus) -> String {
    let mut parts = Vec::new();
    if let Some(f) = &n.fenced {
        parts.push(format!("fenced: {f}"));
    }
    if n.desired == nines_model::Desired::Stopped {
        parts.push("stopped on purpose (`nines node start` starts it)".to_string());
    }
    if let Some(m) = &n.maintenance {
        parts.push(format!("maintenance: {m}"));
    }
    if !n.state_reason.is_empty() {
        parts.push(n.state_reason.clone());
    }
    parts.join("; ")
}

/// A cluster name as a URL path segment: checked as the API will check it (so `..`, `.`
/// or an empty name never reach a URL, where they would be collapsed into another route).
pub(crate) fn cluster_seg(name: &str) -> anyhow::Result<String> {
    let n = nines_model::input::ClusterName::parse("cluster", name)
        .map_err(|e| anyhow!("{}", e.message))?;
    Ok(urlencode(n.as_str()))
}

/// A node address as a URL path segment, checked first (see [`cluster_seg`]).
fn node_seg(node: &str) -> anyhow::Result<String> {
    let ep =
        nines_model::input::node_address("node", node).map_err(|e| anyhow!("{}", e.message))?;
    Ok(urlencode(&ep.to_string()))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Prints the id of a job a request started; with `wait`, follows it.
pub(crate) async fn started(
    client: &Client,
    f: Format,
    created: JobCreated,
    wait: bool,
) -> anyhow::Result<i32> {
    if wait {
        if f == Format::Table {
            crate::say!("job {}", created.job_id);
        }
        return follow_job(client, f, created.job_id).await;
    }
    match f {
        Format::Json => crate::say!("{}", serde_json::to_string_pretty(&created)?),
        Format::Table => crate::say!("job {}", created.job_id),
    }
    Ok(0)
}

async fn node_action(
    client: &Client,
    f: Format,
    a: &crate::NodeArgs,
    action: &str,
    force: bool,
) -> anyhow::Result<i32> {
    let path = format!(
        "/api/v1/clusters/{}/nodes/{}/{action}?force={force}",
        cluster_seg(&a.cluster)?,
        node_seg(&a.node)?
    );
    started(
        client,
        f,
        client.post(&path, &serde_json::json!({})).await?,
        a.wait,
    )
    .await
}

/// Reads the first line of a password file, naming the flag on error.
pub(crate) fn read_password(flag: &str, path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{flag} {}: cannot read", path.display()))?;
    let password = text.lines().next().unwrap_or("").to_string();
    if password.is_empty() {
        bail!("{flag} {}: the file is empty", path.display());
    }
    Ok(password)
}

pub(crate) fn ssh_request(h: &crate::HostArgs) -> anyhow::Result<Option<SshAccessRequest>> {
    let (user, key, port) = (&h.ssh_user, &h.ssh_key, h.ssh_port);
    let Some(user) = user else { return Ok(None) };
    let key_path = match key {
        Some(k) => Some(
            std::fs::canonicalize(k)
                .with_context(|| format!("--ssh-key {}: no such file", k.display()))?
                .display()
                .to_string(),
        ),
        None => None,
    };
    Ok(Some(SshAccessRequest {
        user: user.clone(),
        key_path,
        port,
    }))
}

async fn create(client: &Client, f: Format, a: crate::CreateArgs) -> anyhow::Result<i32> {
    let password = read_password("--db-admin-password-file", &a.db_admin_password_file)?;
    let config_template = match &a.config_template {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("--config-template {}: cannot read", p.display()))?,
        ),
        None => None,
    };
    let req = nines_model::api::CreateClusterRequest {
        name: a.name.clone(),
        cluster_type: a.cluster_type.clone(),
        nodes: a.nodes.clone(),
        db_admin_user: a.db_admin_user.clone(),
        db_admin_password: password,
        datadir: a.datadir.clone(),
        ssh: ssh_request(&a.hosts)?,
        local: a.hosts.local,
        semi_sync: match (a.semi_sync, a.no_semi_sync) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        config_template,
        innodb_buffer_pool_size: a.innodb_buffer_pool_size.clone(),
    };
    let created: JobCreated = client.post("/api/v1/clusters", &req).await?;
    started(client, f, created, a.wait).await
}

async fn import(client: &Client, f: Format, args: ImportArgs) -> anyhow::Result<i32> {
    let password = read_password("--db-password-file", &args.db_password_file)?;
    let req = ImportRequest {
        name: args.name.clone(),
        seed: args.seed.clone(),
        db_user: args.db_user.clone(),
        db_password: password,
        ssh: ssh_request(&args.hosts)?,
        local: args.hosts.local,
    };
    let created: JobCreated = client.post("/api/v1/clusters/import", &req).await?;
    started(client, f, created, args.wait).await
}

fn print_lines(f: Format, lines: &[JobLogLine]) -> anyhow::Result<()> {
    for l in lines {
        match f {
            Format::Json => crate::say!("{}", serde_json::to_string(l)?),
            Format::Table => crate::say!("{} {:5} {}", time(&l.at), l.level.as_str(), l.message),
        }
    }
    Ok(())
}

/// Prints a job's log as it grows until the job ends; exit code 0 only when it succeeded.
async fn follow_job(client: &Client, f: Format, id: i64) -> anyhow::Result<i32> {
    let mut after = 0;
    loop {
        let lines: Vec<JobLogLine> = client
            .get(&format!("/api/v1/jobs/{id}/logs?after={after}"))
            .await?;
        if let Some(last) = lines.last() {
            after = last.seq;
        }
        print_lines(f, &lines)?;
        let job: JobView = client.get(&format!("/api/v1/jobs/{id}")).await?;
        if job.state.is_final() {
            // Lines written between the two reads.
            let rest: Vec<JobLogLine> = client
                .get(&format!("/api/v1/jobs/{id}/logs?after={after}"))
                .await?;
            print_lines(f, &rest)?;
            if job.state == JobState::Succeeded {
                return Ok(0);
            }
            let state = match job.failure {
                Some(FailureKind::Refused) => "refused".to_string(),
                _ => job.state.to_string(),
            };
            crate::esay!("job {id} {state}: {}", job.error.unwrap_or_default());
            return Ok(1);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

fn backup_table(backups: &[BackupView]) -> comfy_table::Table {
    let mut t = table(&[
        "id", "method", "state", "node", "repo", "size", "stored", "started", "finished", "gtid",
        "parent", "verified",
    ]);
    for b in backups {
        t.add_row(vec![
            b.id.to_string(),
            b.method.to_string(),
            b.state.to_string(),
            b.node.clone(),
            b.repo.clone(),
            mib(b.size_bytes),
            mib(b.stored_bytes),
            time(&b.started_at),
            opt(&b.finished_at.as_ref().map(time)),
            opt(&b.gtid_position),
            opt(&b.parent_id),
            match b.verified {
                None => "-".to_string(),
                Some(true) => "yes".to_string(),
                Some(false) => format!("FAILED: {}", b.verify_note.clone().unwrap_or_default()),
            },
        ]);
    }
    t
}

/// Waits until a job ends, printing nothing; its final record.
async fn wait_quietly(client: &Client, id: i64) -> anyhow::Result<JobView> {
    loop {
        let job: JobView = client.get(&format!("/api/v1/jobs/{id}")).await?;
        if job.state.is_final() {
            return Ok(job);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn backup_command(client: &Client, f: Format, cmd: crate::BackupCmd) -> anyhow::Result<i32> {
    use crate::{BackupCmd, RepoCmd, ScheduleCmd};
    match cmd {
        BackupCmd::Repo(RepoCmd::List) => {
            let repos: Vec<RepoView> = client.get("/api/v1/backup-repos").await?;
            print(f, &repos, |repos| {
                let mut t = table(&["name", "kind", "where", "created"]);
                for r in repos {
                    let place = match (&r.path, &r.s3_endpoint, &r.s3_bucket) {
                        (Some(p), _, _) => p.clone(),
                        (None, Some(e), Some(b)) => format!("{e}/{b}"),
                        _ => "-".into(),
                    };
                    t.add_row(vec![
                        r.name.clone(),
                        r.kind.clone(),
                        place,
                        time(&r.created_at),
                    ]);
                }
                t
            })?;
            Ok(0)
        }
        BackupCmd::Repo(RepoCmd::Add {
            name,
            path,
            s3_endpoint,
            s3_bucket,
            s3_region,
            s3_access_key_file,
            s3_secret_key_file,
        }) => {
            let path = match path {
                Some(p) => {
                    // A relative path means the CLI's directory, not the controller's.
                    let abs = if p.is_absolute() {
                        p
                    } else {
                        std::env::current_dir()?.join(p)
                    };
                    Some(abs.display().to_string())
                }
                None => None,
            };
            let key =
                |flag: &str, p: &Option<std::path::PathBuf>| -> anyhow::Result<Option<String>> {
                    p.as_ref().map(|p| read_password(flag, p)).transpose()
                };
            let req = RepoAddRequest {
                name,
                path,
                s3_endpoint,
                s3_bucket,
                s3_region,
                s3_access_key: key("--s3-access-key-file", &s3_access_key_file)?,
                s3_secret_key: key("--s3-secret-key-file", &s3_secret_key_file)?,
            };
            let r: RepoView = client.post("/api/v1/backup-repos", &req).await?;
            match f {
                Format::Json => crate::say!("{}", serde_json::to_string_pretty(&r)?),
                Format::Table => crate::say!("repository `{}` added ({})", r.name, r.kind),
            }
            Ok(0)
        }
        BackupCmd::Create {
            cluster,
            method,
            node,
            repo,
            wait,
        } => {
            let path = format!("/api/v1/clusters/{}/backups", cluster_seg(&cluster)?);
            if let Some(n) = &node {
                nines_model::input::node_address("node", n)
                    .map_err(|e| anyhow!("{}", e.message))?;
            }
            let req = BackupCreateRequest {
                method: Some(method),
                node,
                repo,
            };
            let created: JobCreated = client.post(&path, &req).await?;
            if !wait {
                return started(client, f, created, false).await;
            }
            let code = match f {
                Format::Table => follow_job(client, f, created.job_id).await?,
                Format::Json => {
                    let job = wait_quietly(client, created.job_id).await?;
                    i32::from(job.state != JobState::Succeeded)
                }
            };
            // The backup the job took (also when it failed: its record says why).
            let backups: Vec<BackupView> = client.get(&path).await?;
            let mine = backups
                .into_iter()
                .find(|b| b.job_id == Some(created.job_id));
            match (f, mine) {
                (Format::Json, Some(b)) => crate::say!("{}", serde_json::to_string_pretty(&b)?),
                (Format::Table, Some(b)) => crate::say!("{}", backup_table(&[b])),
                (_, None) => {
                    let job: JobView = client
                        .get(&format!("/api/v1/jobs/{}", created.job_id))
                        .await?;
                    crate::esay!("no backup was taken: {}", job.error.unwrap_or_default());
                }
            }
            Ok(code)
        }
        BackupCmd::Schedule(ScheduleCmd::Create {
            cluster,
            cron,
            tz,
            method,
            repo,
            retention,
        }) => {
            let path = format!(
                "/api/v1/clusters/{}/backup-schedules",
                cluster_seg(&cluster)?
            );
            let req = ScheduleCreateRequest {
                cron,
                tz,
                method,
                repo,
                retention,
            };
            let s: ScheduleView = client.post(&path, &req).await?;
            match f {
                Format::Json => crate::say!("{}", serde_json::to_string_pretty(&s)?),
                Format::Table => crate::say!(
                    "schedule {}: {} backups of `{}` at `{}` ({}), next at {}",
                    s.id,
                    s.method,
                    s.cluster,
                    s.cron,
                    s.tz,
                    time(&s.next_run_at)
                ),
            }
            Ok(0)
        }
        BackupCmd::Schedule(ScheduleCmd::List { cluster }) => {
            let all: Vec<ScheduleView> = client.get("/api/v1/backup-schedules").await?;
            let all: Vec<ScheduleView> = all
                .into_iter()
                .filter(|s| cluster.as_ref().is_none_or(|c| &s.cluster == c))
                .collect();
            print(f, &all, |all| {
                let mut t = table(&[
                    "id",
                    "cluster",
                    "cron",
                    "tz",
                    "method",
                    "repo",
                    "retention",
                    "next",
                    "last",
                ]);
                for s in all {
                    t.add_row(vec![
                        s.id.to_string(),
                        s.cluster.clone(),
                        s.cron.clone(),
                        s.tz.clone(),
                        s.method.to_string(),
                        s.repo.clone(),
                        s.retention_secs
                            .map(|r| format!("{}s", r))
                            .unwrap_or_else(|| "-".into()),
                        time(&s.next_run_at),
                        opt(&s.last_run_at.as_ref().map(time)),
                    ]);
                }
                t
            })?;
            Ok(0)
        }
        BackupCmd::Schedule(ScheduleCmd::Delete { id }) => {
            let s: ScheduleView = client
                .delete(&format!("/api/v1/backup-schedules/{id}"))
                .await?;
            match f {
                Format::Json => crate::say!("{}", serde_json::to_string_pretty(&s)?),
                Format::Table => crate::say!("schedule {id} of `{}` deleted", s.cluster),
            }
            Ok(0)
        }
        BackupCmd::List { cluster } => {
            let path = format!("/api/v1/clusters/{}/backups", cluster_seg(&cluster)?);
            let backups: Vec<BackupView> = client.get(&path).await?;
            print(f, &backups, |b| backup_table(b))?;
            Ok(0)
        }
        BackupCmd::Verify { id, wait } => {
            let created: JobCreated = client
                .post(
                    &format!("/api/v1/backups/{id}/verify"),
                    &serde_json::json!({}),
                )
                .await?;
            started(client, f, created, wait).await
        }
        BackupCmd::Restore {
            id,
            cluster,
            force,
            until,
            until_gtid,
            wait,
        } => {
            nines_model::input::ClusterName::parse("cluster", &cluster)
                .map_err(|e| anyhow!("{}", e.message))?;
            let created: JobCreated = client
                .post(
                    &format!("/api/v1/backups/{id}/restore"),
                    &RestoreRequest {
                        cluster,
                        force,
                        until,
                        until_gtid,
                    },
                )
                .await?;
            started(client, f, created, wait).await
        }
        BackupCmd::Window { cluster } => {
            let w: nines_model::api::BackupWindow = client
                .get(&format!(
                    "/api/v1/clusters/{}/backup-window",
                    cluster_seg(&cluster)?
                ))
                .await?;
            match f {
                Format::Json => crate::say!("{}", serde_json::to_string_pretty(&w)?),
                Format::Table => crate::say!(
                    "`{cluster}` can be restored to any point from {} to {}",
                    time(&w.earliest),
                    time(&w.latest)
                ),
            }
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(
        desired: &str,
        fenced: Option<&str>,
        maintenance: Option<&str>,
        reason: &str,
    ) -> NodeStatus {
        serde_json::from_value(serde_json::json!({
            "cluster": "shop", "address": "127.0.0.1:3306", "role": "replica",
            "state": "offline", "state_reason": reason, "read_only": true,
            "desired": desired, "fenced": fenced, "maintenance": maintenance,
            "rates": {},
        }))
        .unwrap()
    }

    #[test]
    fn what_a_person_set_comes_before_what_the_monitor_saw() {
        let refused = "connection refused (is the server running?)";
        let table = [
            (node("running", None, None, ""), ""),
            (node("running", None, None, refused), refused),
            (
                node("stopped", None, None, refused),
                "stopped on purpose (`nines node start` starts it); connection refused (is the server running?)",
            ),
            (
                node("running", Some("pending rejoin: failed over"), None, ""),
                "fenced: pending rejoin: failed over",
            ),
            (
                node("running", None, Some("disk swap"), refused),
                "maintenance: disk swap; connection refused (is the server running?)",
            ),
        ];
        for (n, want) in table {
            assert_eq!(node_reason(&n), want);
        }
    }
}
