use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .init();
    let config = loopchat::Config::from_command_line();
    // Errors end the process with one line an operator can act on, never a backtrace.
    let listeners = match loopchat::Listeners::open(&config).await {
        Ok(listeners) => listeners,
        Err(error) => return fail(&error),
    };
    match loopchat::run(
        listeners,
        config.clone(),
        |listeners| announce(listeners, &config),
        shutdown_signal(),
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loopchat: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Printed (not logged) so scripts can read the port chosen for `--port 0`, the
/// certificate to compare and the redirect's port.
fn announce(listeners: &loopchat::Listeners, config: &loopchat::Config) {
    println!("loopchat listening on {}", listeners.url());
    if let Some(tls) = &listeners.tls {
        let fingerprint = tls.certificates.fingerprint();
        match tls.self_signed_made {
            Some(made) => {
                let origin = if made { "made now" } else { "kept" };
                let file = config.data_dir.join(loopchat::tls::self_signed::CERT_FILE);
                println!(
                    "loopchat self-signed certificate ({origin}, {}) SHA-256 fingerprint {fingerprint}",
                    file.display()
                );
            }
            None => tracing::info!(%fingerprint, "serving the TLS certificate"),
        }
    }
    if let Some((_, addr)) = &listeners.redirect {
        println!("loopchat redirecting http://{addr} to https");
    }
}

fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("loopchat: {error}");
    ExitCode::FAILURE
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
