//! Controller settings, with the defaults an operator gets from `nines serve`.

use std::path::PathBuf;
use std::time::Duration;

use nines_model::health::HealthPolicy;

use crate::history::HistoryConfig;
use crate::monitor::MonitorConfig;

/// Everything `nines serve` can be told.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: String,
    pub monitor: MonitorConfig,
    pub history: HistoryConfig,
    /// Timeouts of jobs' server connections.
    pub job_timeouts: nines_access::server::Timeouts,
    /// Automatic recovery policy (per-cluster switches override `automatic_recovery`).
    pub ha: nines_model::ha::HaPolicy,
    /// Scripts run around failovers and switchovers.
    pub hooks: crate::jobs::Hooks,
    /// How often the advisors run over each cluster.
    pub advisor_interval: Duration,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<TlsFiles>,
    /// A browser session unused this long ends.
    pub session_idle: Duration,
}

/// A certificate chain and its private key, PEM.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Config {
    /// Defaults: data in `./nines-data`, API on 127.0.0.1:9550, probes every second.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            listen: "127.0.0.1:9550".into(),
            monitor: MonitorConfig {
                probe_interval: Duration::from_secs(1),
                timeouts: nines_access::server::Timeouts {
                    connect: Duration::from_secs(1),
                    query: Duration::from_secs(2),
                },
                host_interval: Duration::from_secs(10),
                policy: HealthPolicy::default(),
                ssh_config: None,
            },
            ha: nines_model::ha::HaPolicy::default(),
            hooks: crate::jobs::Hooks {
                pre: None,
                post: None,
                timeout: Duration::from_secs(10),
            },
            job_timeouts: nines_access::server::Timeouts {
                connect: Duration::from_secs(5),
                query: Duration::from_secs(30),
            },
            advisor_interval: Duration::from_secs(30),
            tls: None,
            session_idle: Duration::from_secs(3600),
            history: HistoryConfig {
                raw_window: Duration::from_secs(15 * 60),
                rollup_retention: Duration::from_secs(7 * 24 * 3600),
            },
        }
    }
}
