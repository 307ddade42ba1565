//! HTTPS (SPEC §11): the certificate the server presents, read from PEM files and read
//! again on `SIGHUP`, and the listener that turns accepted TCP connections into TLS ones.
//!
//! The certificate sits behind a [`ResolvesServerCert`] that every handshake asks, so a
//! reload swaps it for new connections without touching the ones already open.

mod listener;
pub mod self_signed;

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

pub use listener::TlsListener;

/// Why a certificate or its key cannot be used. Each message names the file and says why,
/// so an operator can fix it without reading the source.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} {}: {}", path.display(), crate::io_error::reason(source))]
    Unreadable {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "the TLS certificate file {} holds no PEM certificate (expected a \"-----BEGIN CERTIFICATE-----\" block)",
        path.display()
    )]
    NoCertificate { path: PathBuf },
    #[error(
        "the TLS key file {} holds no PEM private key (expected a \"-----BEGIN PRIVATE KEY-----\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\" block)",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error("the TLS {what} file {} is not valid PEM: {reason}", path.display())]
    BadPem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("the TLS key file {} holds a key rustls cannot use: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error(
        "the TLS key file {} does not belong to the certificate in {} (its public key differs)",
        key.display(),
        cert.display()
    )]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("the TLS certificate in {} cannot be used: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error("cannot write the self-signed TLS {what} {}: {}", path.display(), crate::io_error::reason(source))]
    Unwritable {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The crypto every TLS connection uses: ring, chosen explicitly so that nothing depends
/// on a process-wide default being installed.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate chain and key in the PEM files at `cert` and `key`, checked to belong
/// together. The cert file's whole chain is kept, leaf first, to be sent as it is.
pub fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = read_chain(cert)?;
    let private_key = read_key(key)?;
    let signing_key = provider()
        .key_provider
        .load_private_key(private_key)
        .map_err(|error| TlsError::BadKey {
            path: key.to_owned(),
            reason: error.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // ring knows the public key of every key type it loads; "unknown" would only mean
        // the check cannot be made, which is no reason to refuse.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::Mismatch {
                cert: cert.to_owned(),
                key: key.to_owned(),
            })
        }
        Err(error) => Err(TlsError::BadCertificate {
            path: cert.to_owned(),
            reason: error.to_string(),
        }),
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Unreadable {
        what,
        path: path.to_owned(),
        source,
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read("certificate file", path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::BadPem {
            what: "certificate",
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read("key file", path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        other => TlsError::BadPem {
            what: "key",
            path: path.to_owned(),
            reason: other.to_string(),
        },
    })
}

/// The SHA-256 fingerprint of the leaf certificate, as browsers show it: upper-case hex
/// bytes separated by colons.
pub fn fingerprint(certified: &CertifiedKey) -> String {
    let digest = Sha256::digest(certified.cert[0].as_ref());
    let mut text = String::with_capacity(digest.len() * 3);
    for (index, byte) in digest.iter().enumerate() {
        if index > 0 {
            text.push(':');
        }
        let _ = write!(text, "{byte:02X}");
    }
    text
}

/// The certificate every new TLS connection is offered, and where to read it again.
#[derive(Debug)]
pub struct Certificates {
    cert_path: PathBuf,
    key_path: PathBuf,
    /// A std lock, not tokio's: handshakes read it without awaiting, from rustls' sync
    /// callback, and a reload holds it only to swap one `Arc`.
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    /// Reads the pair of PEM files; fails, naming the file, if they cannot be used.
    pub fn open(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let certified = load(cert_path, key_path)?;
        Ok(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            current: RwLock::new(Arc::new(certified)),
        })
    }

    /// Reads the files again and, if they can be used, offers them to new connections from
    /// now on; returns the new fingerprint. On an error the old certificate stays.
    pub fn reload(&self) -> Result<String, TlsError> {
        let certified = Arc::new(load(&self.cert_path, &self.key_path)?);
        let fingerprint = fingerprint(&certified);
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = certified;
        Ok(fingerprint)
    }

    /// The fingerprint of the certificate offered now.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.current())
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The rustls settings of the TLS port: TLS 1.2 and 1.3, no client certificates, and
    /// HTTP/1.1 only (what the server speaks; WebSockets upgrade over it).
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

#[cfg(unix)]
impl Certificates {
    /// Reads the files again on every signal from `hangups` (SIGHUP) until `stopping`.
    pub async fn reload_on(
        self: Arc<Self>,
        mut hangups: tokio::signal::unix::Signal,
        stopping: tokio_util::sync::CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = stopping.cancelled() => return,
                received = hangups.recv() => {
                    if received.is_none() {
                        return;
                    }
                    match self.reload() {
                        Ok(fingerprint) => {
                            tracing::info!(%fingerprint, "SIGHUP: serving the TLS certificate read again");
                        }
                        Err(error) => {
                            tracing::error!(%error, "SIGHUP: the TLS files cannot be used; still serving the old certificate");
                        }
                    }
                }
            }
        }
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(name: &str) -> rcgen::CertifiedKey<rcgen::KeyPair> {
        rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap()
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A CA and a leaf it signed, as PEM: (chain = leaf then CA, leaf key, CA DER).
    fn chain() -> (String, String, Vec<u8>) {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        (
            format!("{}{}", leaf.pem(), ca.pem()),
            leaf_key.serialize_pem(),
            ca.der().to_vec(),
        )
    }

    #[test]
    fn the_whole_chain_in_the_cert_file_is_kept_leaf_first() {
        let dir = tempfile::tempdir().unwrap();
        let (chain, key, ca_der) = chain();
        let cert = write(dir.path(), "chain.pem", &chain);
        let key = write(dir.path(), "key.pem", &key);

        let certified = load(&cert, &key).unwrap();

        assert_eq!(certified.cert.len(), 2);
        assert_eq!(certified.cert[1].as_ref(), ca_der.as_slice());
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_naming_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let cert = write(dir.path(), "a.crt", &leaf("localhost").cert.pem());
        let key = write(
            dir.path(),
            "b.key",
            &leaf("localhost").signing_key.serialize_pem(),
        );

        let error = load(&cert, &key).unwrap_err().to_string();

        assert!(matches!(load(&cert, &key), Err(TlsError::Mismatch { .. })));
        assert!(
            error.contains("b.key") && error.contains("a.crt"),
            "{error}"
        );
        assert!(error.contains("does not belong"), "{error}");
    }

    #[test]
    fn a_missing_file_is_named_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let pair = leaf("localhost");
        let key = write(dir.path(), "k.pem", &pair.signing_key.serialize_pem());
        let missing = dir.path().join("nowhere.pem");

        let error = load(&missing, &key).unwrap_err().to_string();

        assert!(error.contains("nowhere.pem"), "{error}");
        assert!(error.contains("no such file or directory"), "{error}");
    }

    #[test]
    fn files_that_are_not_pem_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let pair = leaf("localhost");
        let cert = write(dir.path(), "c.pem", &pair.cert.pem());
        let key = write(dir.path(), "k.pem", &pair.signing_key.serialize_pem());
        let junk = write(dir.path(), "junk.txt", "hello, not a certificate\n");

        assert!(matches!(load(&junk, &key), Err(TlsError::NoCertificate { path }) if path == junk));
        assert!(matches!(load(&cert, &junk), Err(TlsError::NoKey { path }) if path == junk));
        // The two files swapped: each is PEM, but not of the kind expected.
        assert!(matches!(
            load(&key, &cert),
            Err(TlsError::NoCertificate { .. })
        ));
    }

    #[test]
    fn a_reload_swaps_the_certificate_and_a_failed_one_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = leaf("localhost");
        let cert = write(dir.path(), "c.pem", &first.cert.pem());
        let key = write(dir.path(), "k.pem", &first.signing_key.serialize_pem());
        let certificates = Certificates::open(&cert, &key).unwrap();
        let before = certificates.fingerprint();

        let second = leaf("localhost");
        write(dir.path(), "c.pem", &second.cert.pem());
        // Only the certificate renewed so far: the pair does not match, nothing changes.
        assert!(certificates.reload().is_err());
        assert_eq!(certificates.fingerprint(), before);

        write(dir.path(), "k.pem", &second.signing_key.serialize_pem());
        let after = certificates.reload().unwrap();
        assert_ne!(after, before);
        assert_eq!(certificates.fingerprint(), after);
    }

    #[test]
    fn the_fingerprint_is_the_sha256_of_the_leaf_in_colon_hex() {
        let pair = leaf("localhost");
        let der = pair.cert.der().to_vec();
        let certified = CertifiedKey::new(
            vec![CertificateDer::from(der.clone())],
            provider()
                .key_provider
                .load_private_key(
                    PrivateKeyDer::try_from(pair.signing_key.serialize_der()).unwrap(),
                )
                .unwrap(),
        );

        let text = fingerprint(&certified);

        let expected: Vec<String> = Sha256::digest(&der)
            .iter()
            .map(|byte| format!("{byte:02X}"))
            .collect();
        assert_eq!(text, expected.join(":"));
        assert_eq!(text.len(), 32 * 3 - 1);
    }
}
