//! What the server takes from the machine before it serves — its ports, its data dir, its
//! TLS certificate — and the one-line errors an operator sees when one of them fails.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::{Config, TlsMode};
use crate::io_error::reason;
use crate::tls::{self, Certificates, TlsError};

/// Why the server cannot start: the thing that failed, why, and what to change.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "cannot listen on {addr}: {} ({})",
        reason(source),
        bind_hint(source, flag)
    )]
    Bind {
        addr: SocketAddr,
        /// The flag that chose this address, to name in the hint.
        flag: &'static str,
        source: io::Error,
    },
    #[error("cannot use the data dir {}: {} (check --data-dir)", path.display(), reason(source))]
    DataDir { path: PathBuf, source: io::Error },
    #[error("{error} ({hint})")]
    Tls { error: TlsError, hint: &'static str },
    #[error(
        "cannot listen for SIGHUP, which reloads the TLS certificate: {}",
        reason(source)
    )]
    Signal { source: io::Error },
}

fn bind_hint(error: &io::Error, flag: &str) -> String {
    match error.kind() {
        io::ErrorKind::AddrInUse => format!("another loopchat running? choose another {flag}"),
        io::ErrorKind::PermissionDenied => {
            format!("ports below 1024 need root or CAP_NET_BIND_SERVICE; choose another {flag}")
        }
        io::ErrorKind::AddrNotAvailable => "is --bind an address of this machine?".to_owned(),
        _ => format!("check --bind and {flag}"),
    }
}

/// The server's hold on the outside world, taken before anything is served.
pub struct Listeners {
    /// `--port`: plain HTTP, or the TCP under TLS when `tls` is set.
    pub main: TcpListener,
    /// Where `main` listens (the port chosen, for `--port 0`).
    pub main_addr: SocketAddr,
    pub tls: Option<Tls>,
    /// `--http-redirect-port`, and where it listens.
    pub redirect: Option<(TcpListener, SocketAddr)>,
}

/// The TLS side of the main port.
pub struct Tls {
    pub certificates: Arc<Certificates>,
    /// For `--tls-self-signed`: whether the certificate was made just now (else it was kept
    /// from an earlier start).
    pub self_signed_made: Option<bool>,
    /// `SIGHUP`, listened for from before the port is announced, so that a reload asked
    /// for as soon as the server is up cannot hit the signal's default action and end it.
    #[cfg(unix)]
    pub hangups: tokio::signal::unix::Signal,
}

impl Listeners {
    /// Creates the data dir, reads or makes the certificate, and binds the ports, in that
    /// order, stopping at the first failure.
    pub async fn open(config: &Config) -> Result<Self, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let tls = match config.tls() {
            None => None,
            Some(mode) => Some(open_tls(config, mode)?),
        };
        let (main, main_addr) = bind(SocketAddr::new(config.bind, config.port), "--port").await?;
        let redirect = match config.http_redirect_port {
            None => None,
            Some(port) => {
                Some(bind(SocketAddr::new(config.bind, port), "--http-redirect-port").await?)
            }
        };
        Ok(Self {
            main,
            main_addr,
            tls,
            redirect,
        })
    }

    /// The URL the server answers on, e.g. `https://0.0.0.0:8443`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.main_addr)
    }
}

fn open_tls(config: &Config, mode: TlsMode) -> Result<Tls, StartError> {
    let (certificates, self_signed_made) = match mode {
        TlsMode::Files { cert, key } => {
            let certificates =
                Certificates::open(&cert, &key).map_err(|error| StartError::Tls {
                    error,
                    hint: "check --tls-cert and --tls-key",
                })?;
            (certificates, None)
        }
        TlsMode::SelfSigned { mut names } => {
            // An address of its own to listen on is one that people will type.
            if !config.bind.is_unspecified() {
                names.push(config.bind.to_string());
            }
            let made = tls::self_signed::open(&config.data_dir, &names).map_err(|error| {
                StartError::Tls {
                    error,
                    hint: "delete both self-signed-*.pem files in the data dir to make a new certificate",
                }
            })?;
            (made.certificates, Some(made.made))
        }
    };
    Ok(Tls {
        certificates: Arc::new(certificates),
        self_signed_made,
        #[cfg(unix)]
        hangups: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|source| StartError::Signal { source })?,
    })
}

/// The listener on `addr`, and the address it got (the port chosen, for port 0).
async fn bind(
    addr: SocketAddr,
    flag: &'static str,
) -> Result<(TcpListener, SocketAddr), StartError> {
    let failed = |source| StartError::Bind { addr, flag, source };
    let listener = TcpListener::bind(addr).await.map_err(failed)?;
    let bound = listener.local_addr().map_err(failed)?;
    Ok((listener, bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_busy_port_names_the_address_and_the_fix() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();

        let error = bind(addr, "--port").await.err().unwrap().to_string();

        assert_eq!(
            error,
            format!(
                "cannot listen on {addr}: address already in use (another loopchat running? choose another --port)"
            )
        );
    }

    #[tokio::test]
    async fn a_data_dir_under_a_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let data_dir = file.join("data");
        let config = Config::from_args_only([
            "loopchat".as_ref(),
            "--data-dir".as_ref(),
            data_dir.as_os_str(),
        ])
        .unwrap();

        let error = Listeners::open(&config).await.err().unwrap().to_string();

        assert!(
            error.starts_with(&format!("cannot use the data dir {}: ", data_dir.display())),
            "{error}"
        );
        assert!(error.ends_with("(check --data-dir)"), "{error}");
    }
}
