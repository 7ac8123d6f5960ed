//! The nines controller: `nines serve`. It opens the store, closes jobs a previous run
//! left running, makes sure an admin token exists, then runs the monitor, the job runner
//! and the HTTP API until asked to stop, and shuts them down within a deadline.

pub mod advisors;
pub mod alarms;
pub mod api;
pub mod audit;
pub mod backup_scheduler;
pub mod balancers;
pub mod config;
pub mod haview;
pub mod history;
pub mod hosts;
pub mod jobs;
pub mod monitor;
pub mod prom;
pub mod reconciler;
pub mod users;
pub mod web;

/// Logs a failed store write where the caller cannot fail for it (a monitor task, the
/// clean-up after an error that is reported instead).
pub(crate) fn log_store_error<T>(what: &str, r: Result<T, nines_store::StoreError>) {
    if let Err(e) = r {
        tracing::error!(error = %e, "cannot record {what}");
    }
}

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use nines_store::{SqliteStore, Store};
use rand::RngCore;
use tokio_util::sync::CancellationToken;

pub use config::Config;

use crate::api::{AppState, TokenCache, hash_token};
use crate::history::MetricsHistory;
use crate::jobs::JobRunner;
use crate::monitor::Monitor;

/// Name of the admin token file in the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Runs the controller until `shutdown` is cancelled.
pub async fn serve(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    // Bad TLS files stop the start before anything else happens.
    let tls = config.tls.as_ref().map(tls_acceptor).transpose()?;
    let store = SqliteStore::open(&config.data_dir)
        .await
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    let store: Arc<dyn Store> = Arc::new(store);

    let interrupted = store
        .fail_interrupted_jobs("the controller stopped while this job was running")
        .await?;
    if !interrupted.is_empty() {
        tracing::warn!(jobs = ?interrupted, "closed jobs interrupted by the previous controller as failed");
    }
    ensure_admin_token(store.as_ref(), &config.data_dir).await?;
    let orphaned = store
        .fail_running_backups("the controller stopped while this backup was taken")
        .await?;
    if orphaned > 0 {
        tracing::warn!(
            backups = orphaned,
            "closed backups a previous controller left running as failed"
        );
    }

    let history = Arc::new(MetricsHistory::new(config.history.clone()));
    let monitor = Monitor::new(
        Arc::clone(&store),
        config.monitor.clone(),
        Arc::clone(&history),
        shutdown.child_token(),
    );
    monitor.watch_all().await?;
    let alarms = alarms::Alarms::load(Arc::clone(&store)).await?;
    let notifier = tokio::spawn(alarms::notifier::run(
        Arc::clone(&alarms),
        Arc::clone(&store),
        shutdown.child_token(),
    ));
    let jobs = JobRunner::new(
        Arc::clone(&store),
        Arc::clone(&monitor),
        Arc::clone(&alarms),
        shutdown.child_token(),
        jobs::JobSettings {
            timeouts: config.job_timeouts,
            ssh_config: config.monitor.ssh_config.clone(),
            ha: config.ha.clone(),
            hooks: config.hooks.clone(),
            data_dir: config.data_dir.clone(),
        },
    );
    // A promotion a dead controller began is completed or rolled back first.
    jobs::ha::resume_promotions(&store, &jobs).await?;
    let advisors = advisors::Advisors::new(
        Arc::clone(&store),
        Arc::clone(&monitor),
        Arc::clone(jobs.alarms()),
    );
    // An interval of zero turns the periodic advisors (and the query monitor) off; a run
    // on demand still works.
    let advisor_task = (!config.advisor_interval.is_zero()).then(|| {
        tokio::spawn(Arc::clone(&advisors).run(config.advisor_interval, shutdown.child_token()))
    });
    let follower = tokio::spawn(balancers::follow(
        Arc::clone(&store),
        Arc::clone(&monitor),
        Arc::clone(jobs.balancers()),
        config.monitor.ssh_config.clone(),
        shutdown.child_token(),
    ));
    let lb_watcher = tokio::spawn(balancers::watch(
        Arc::clone(&store),
        Arc::clone(jobs.balancers()),
        Arc::clone(jobs.alarms()),
        config.monitor.ssh_config.clone(),
        shutdown.child_token(),
    ));
    let runner = tokio::spawn(Arc::clone(&jobs).run());
    let archiver = tokio::spawn(jobs::archive::run(
        Arc::clone(&jobs),
        shutdown.child_token(),
    ));
    let scheduler = tokio::spawn(backup_scheduler::run(
        Arc::clone(&store),
        Arc::clone(&jobs),
        shutdown.child_token(),
    ));
    let reconciler = tokio::spawn(reconciler::run(
        Arc::clone(&store),
        Arc::clone(&monitor),
        Arc::clone(&jobs),
        config.ha.clone(),
        config.monitor.probe_interval,
        shutdown.child_token(),
    ));

    let flusher = {
        let store = Arc::clone(&store);
        let history = Arc::clone(&history);
        let stop = shutdown.child_token();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(15));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                if let Err(e) = history.flush(store.as_ref(), chrono::Utc::now()).await {
                    tracing::warn!(error = %e, "cannot write metric rollups");
                }
            }
        })
    };

    let state = AppState {
        store: Arc::clone(&store),
        monitor: Arc::clone(&monitor),
        alarms,
        advisors,
        jobs,
        tokens: Arc::new(TokenCache::default()),
        web: Arc::new(web::login::WebState::new(
            tls.is_some(),
            config.session_idle,
        )),
    };
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(
        listen = %config.listen,
        data_dir = %config.data_dir.display(),
        https = tls.is_some(),
        "nines controller ready"
    );
    let app = api::router(state);
    serve_http(listener, app, tls, shutdown.clone()).await;

    // Shutdown: everything got the signal through child tokens; wait with deadlines.
    let _ = tokio::time::timeout(Duration::from_secs(15), runner).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), scheduler).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), archiver).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), notifier).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), follower).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), lb_watcher).await;
    if let Some(t) = advisor_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    monitor.join(Duration::from_secs(5)).await;
    let _ = flusher.await;
    let _ = reconciler.await;
    Ok(())
}

/// Creates the admin token at first start and writes it to `<data-dir>/admin.token` (0600).
pub async fn ensure_admin_token(store: &dyn Store, data_dir: &Path) -> anyhow::Result<()> {
    if store.token_count().await? > 0 {
        return Ok(());
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    let _ = std::fs::remove_file(&path);
    nines_store::secret::write_private(&path, format!("{token}\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    store
        .create_token("admin", &hash_token(&token), "admin")
        .await?;
    tracing::info!(path = %path.display(), "created the admin API token");
    Ok(())
}

/// How long a client may take to send a request's headers; the same deadline closes a
/// kept-alive connection that sends no next request.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(15);

/// Serves the API over HTTP/1.1 until `shutdown`, then lets open requests finish (5 s at
/// most). Unlike `axum::serve`, each connection has a header-read deadline
/// ([`HEADER_READ_TIMEOUT`]): a client that connects and sends nothing, or trickles its
/// headers, cannot hold a connection and its task for ever.
/// A TLS acceptor from PEM files: the certificate chain and its private key.
pub fn tls_acceptor(files: &config::TlsFiles) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("--tls-cert {}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("--tls-cert {}: not PEM certificates", files.cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("--tls-cert {}: no certificate in it", files.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).with_context(|| {
        format!(
            "--tls-key {}: no PEM private key in it",
            files.key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "--tls-cert {} and --tls-key {} do not make a usable pair",
                files.cert.display(),
                files.key.display()
            )
        })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// How long a client may take to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn serve_http(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(100);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors, mostly: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept an API connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Every request knows its client's address (the audit log records it).
        let service = TowerToHyperService::new(tower_http::add_extension::AddExtension::new(
            app.clone(),
            audit::Peer(peer),
        ));
        match &tls {
            None => {
                let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "API connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                // The handshake runs in the connection's task: a slow client holds no one
                // else up.
                let acceptor = acceptor.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream =
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, %peer, "TLS handshake failed");
                                return;
                            }
                            Err(_) => return,
                        };
                    let conn =
                        watcher.watch(builder.serve_connection(TokioIo::new(stream), service));
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "API connection ended with an error");
                    }
                });
            }
        }
    }
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("API requests still open at the shutdown deadline");
    }
}
