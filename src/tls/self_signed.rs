//! `--tls-self-signed`: a certificate the server makes for itself once, for a LAN where no
//! public certificate authority can vouch for the host. It is kept in the data dir so that
//! browsers that accepted it (after comparing the printed fingerprint) keep accepting it.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rustls::pki_types::ServerName;

use super::{Certificates, TlsError};

/// The certificate's file in the data dir.
pub const CERT_FILE: &str = "self-signed-cert.pem";
/// Its private key's file in the data dir, readable by the server's user only.
pub const KEY_FILE: &str = "self-signed-key.pem";

/// What [`open`] did: the certificate, and whether it was made just now.
pub struct SelfSigned {
    pub certificates: Certificates,
    pub made: bool,
}

/// The self-signed certificate in `data_dir`, made now if there is none, or if the one
/// there does not cover every name of [`names`]`(extra)` (a `--tls-name` added since).
pub fn open(data_dir: &Path, extra: &[String]) -> Result<SelfSigned, TlsError> {
    let cert = data_dir.join(CERT_FILE);
    let key = data_dir.join(KEY_FILE);
    let names = names(extra);
    if cert.exists() || key.exists() {
        let certificates = Certificates::open(&cert, &key)?;
        let leaf = certificates.current().cert[0].clone();
        let missing = uncovered(&leaf, &names);
        if missing.is_empty() {
            return Ok(SelfSigned {
                certificates,
                made: false,
            });
        }
        tracing::warn!(
            ?missing,
            "the self-signed certificate in the data dir does not cover these names; making a new one (browsers will ask again)"
        );
    }
    make(&cert, &key, names)?;
    Ok(SelfSigned {
        certificates: Certificates::open(&cert, &key)?,
        made: true,
    })
}

/// Every name the certificate is for: `localhost` and the loopback addresses (so the
/// machine itself works too), the host name (and its `.local` mDNS form, which is how
/// LAN machines often find each other), then `extra`, without repeats.
pub fn names(extra: &[String]) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(host) = host_name() {
        if !host.contains('.') {
            names.push(format!("{host}.local"));
        }
        names.push(host);
    }
    names.extend(extra.iter().map(|name| name.trim().to_owned()));
    let mut seen = std::collections::HashSet::new();
    names.retain(|name| !name.is_empty() && seen.insert(name.to_ascii_lowercase()));
    names
}

/// This machine's name as the kernel knows it, if it can be read and a certificate can be
/// for it.
fn host_name() -> Option<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = text.trim();
    let usable = name != "localhost" && ServerName::try_from(name).is_ok();
    usable.then(|| name.to_owned())
}

/// The names in `names` that the certificate `leaf` is not valid for.
fn uncovered(leaf: &[u8], names: &[String]) -> Vec<String> {
    let leaf = rustls::pki_types::CertificateDer::from(leaf);
    let Ok(parsed) = webpki::EndEntityCert::try_from(&leaf) else {
        return names.to_vec();
    };
    names
        .iter()
        .filter(|name| {
            ServerName::try_from(name.as_str()).map_or(true, |server_name| {
                parsed
                    .verify_is_valid_for_subject_name(&server_name)
                    .is_err()
            })
        })
        .cloned()
        .collect()
}

/// Makes a certificate for `names` and writes it and its key. Each file is written beside
/// its place and then renamed into it, so a crash leaves either the old file or the new
/// one, never half a key; both are created readable by this user only.
fn make(cert: &Path, key: &Path, names: Vec<String>) -> Result<(), TlsError> {
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "loopchat (self-signed)");
    let signing_key = rcgen::KeyPair::generate()?;
    let certificate = params.self_signed(&signing_key)?;
    write_replacing("key", key, signing_key.serialize_pem().as_bytes())?;
    write_replacing("certificate", cert, certificate.pem().as_bytes())?;
    Ok(())
}

fn write_replacing(what: &'static str, path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    let unwritable = |source| TlsError::Unwritable {
        what,
        path: path.to_owned(),
        source,
    };
    let mut temporary = PathBuf::from(path);
    temporary.as_mut_os_string().push(".new");
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).map_err(unwritable)?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(unwritable)?;
    std::fs::rename(&temporary, path).map_err(unwritable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();

        let first = open(dir.path(), &[]).unwrap();
        let second = open(dir.path(), &[]).unwrap();

        assert!(first.made);
        assert!(!second.made);
        assert_eq!(
            first.certificates.fingerprint(),
            second.certificates.fingerprint()
        );
    }

    #[test]
    fn it_covers_localhost_and_every_extra_name_as_dns_or_ip() {
        let dir = tempfile::tempdir().unwrap();
        let extra = ["chat.lan".to_owned(), "192.168.1.5".to_owned()];

        let made = open(dir.path(), &extra).unwrap();

        let leaf = made.certificates.current().cert[0].to_vec();
        for name in ["localhost", "127.0.0.1", "::1", "chat.lan", "192.168.1.5"] {
            assert!(uncovered(&leaf, &[name.to_owned()]).is_empty(), "{name}");
        }
        assert_eq!(
            uncovered(&leaf, &["other.lan".to_owned(), "10.0.0.1".to_owned()]),
            ["other.lan", "10.0.0.1"]
        );
    }

    #[test]
    fn a_name_added_later_makes_a_new_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let first = open(dir.path(), &[]).unwrap();

        let second = open(dir.path(), &["chat.lan".to_owned()]).unwrap();
        let third = open(dir.path(), &["chat.lan".to_owned()]).unwrap();

        assert!(second.made);
        assert_ne!(
            first.certificates.fingerprint(),
            second.certificates.fingerprint()
        );
        assert!(!third.made);
    }

    #[cfg(unix)]
    #[test]
    fn the_key_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();

        open(dir.path(), &[]).unwrap();

        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_damaged_file_is_refused_not_silently_replaced() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path(), &[]).unwrap();
        std::fs::write(dir.path().join(KEY_FILE), "garbage").unwrap();

        let error = open(dir.path(), &[]).err().unwrap().to_string();

        assert!(error.contains(KEY_FILE), "{error}");
    }

    #[test]
    fn names_are_not_repeated() {
        let names = names(&[
            "localhost".to_owned(),
            "LOCALHOST".to_owned(),
            "a.lan".to_owned(),
        ]);
        assert_eq!(names.iter().filter(|name| *name == "localhost").count(), 1);
        assert_eq!(names.last().map(String::as_str), Some("a.lan"));
    }
}
