use clap::Parser;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .init();
    let config = loopchat::Config::parse();
    let listener = TcpListener::bind((config.bind, config.port)).await?;
    // Printed (not logged) so scripts can read the port chosen for `--port 0`.
    println!("loopchat listening on http://{}", listener.local_addr()?);
    loopchat::run(listener, config, shutdown_signal()).await
}

/// `RUST_LOG` (default `info`), except that socketioxide and engineioxide never log below
/// `info`: at `debug` they print the handshake's `auth` (the user's token, SPEC §10) and
/// whole packets, and a token must never reach a log line however verbose the log is.
fn log_filter() -> EnvFilter {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    ["socketioxide=info", "engineioxide=info"]
        .into_iter()
        .fold(filter, |filter, cap| {
            filter.add_directive(cap.parse().expect("a valid directive"))
        })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
