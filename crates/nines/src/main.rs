//! The `nines` binary: `nines serve` runs the controller; every other subcommand is a
//! client of its HTTP API.

use clap::Parser;
use nines_cli::{Cli, Command};
use tokio_util::sync::CancellationToken;

/// The controller allocates and frees small buffers on every probe of every node, every
/// second, from two threads: mimalloc's thread-local free lists cost a fraction of glibc
/// malloc's there (docs/benchmarks.md, docs/decisions.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        if let Command::Serve(args) = &cli.command {
            return serve(&cli, args).await.map(|()| 0);
        }
        nines_cli::commands::run(cli).await
    });
    match result {
        Ok(0) => std::process::ExitCode::SUCCESS,
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {}", nines_cli::output::terminal(&format!("{e:#}")));
            std::process::ExitCode::from(1)
        }
    }
}

async fn serve(cli: &Cli, args: &nines_cli::ServeArgs) -> anyhow::Result<()> {
    for (flag, hook) in [
        ("--pre-failover-hook", &args.pre_failover_hook),
        ("--post-failover-hook", &args.post_failover_hook),
    ] {
        if let Some(path) = hook {
            let meta = std::fs::metadata(path)
                .map_err(|e| anyhow::anyhow!("{flag} {}: {e}", path.display()))?;
            use std::os::unix::fs::PermissionsExt;
            if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
                anyhow::bail!("{flag} {}: not an executable file", path.display());
            }
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NINES_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut config = nines_controller::Config::new(cli.data_dir.clone());
    config.listen = args.listen.clone();
    config.monitor.probe_interval = args.probe_interval;
    config.monitor.host_interval = args.host_interval;
    config.monitor.ssh_config = args.ssh_config.clone();
    config.history.raw_window = args.metrics_raw_window;
    config.history.rollup_retention = args.metrics_retention;
    config.advisor_interval = args.advisor_interval;
    config.session_idle = args.session_idle;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls = Some(nines_controller::config::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    config.hooks = nines_controller::jobs::Hooks {
        pre: args.pre_failover_hook.clone(),
        post: args.post_failover_hook.clone(),
        timeout: args.hook_timeout,
    };
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        signal.cancel();
    });
    nines_controller::serve(config, shutdown).await
}
