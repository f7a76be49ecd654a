//! HTTPS with rustls: certificates from PEM files (or a self-signed one made on first start),
//! TLS 1.2 and 1.3 with modern suites only, ALPN h2 and http/1.1, and certificate reload on
//! SIGHUP without dropping connections — a bad new certificate is refused and the old one
//! keeps serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::TlsConfig;

/// Why a certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The certificate or key is not usable.
    #[error("{0}")]
    Invalid(String),
}

/// Where the certificate and key come from.
#[derive(Debug, Clone)]
pub struct CertificateFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl CertificateFiles {
    /// The configured files, or a self-signed pair under `state_dir/tls/` (created once).
    pub fn from_config(config: &TlsConfig, state_dir: &Path, public_host: &str) -> Result<Option<Self>, TlsError> {
        if !config.cert.is_empty() {
            return Ok(Some(Self { cert: PathBuf::from(&config.cert), key: PathBuf::from(&config.key) }));
        }
        if !config.self_signed {
            return Ok(None);
        }
        let dir = state_dir.join("tls");
        let files = Self { cert: dir.join("self-signed.crt"), key: dir.join("self-signed.key") };
        if !files.cert.exists() || !files.key.exists() {
            generate_self_signed(&files, public_host)?;
            tracing::warn!(cert = %files.cert.display(), "created a self-signed certificate; browsers will warn until tls.cert and tls.key point to a real one");
        }
        Ok(Some(files))
    }
}

fn file_error(path: &Path, err: impl std::fmt::Display) -> TlsError {
    TlsError::File { path: path.display().to_string(), reason: err.to_string() }
}

fn generate_self_signed(files: &CertificateFiles, host: &str) -> Result<(), TlsError> {
    let mut names = vec!["localhost".to_owned()];
    if !host.is_empty() && host != "localhost" {
        names.push(host.to_owned());
    }
    let certified = rcgen::generate_simple_self_signed(names).map_err(|err| TlsError::Invalid(err.to_string()))?;
    if let Some(dir) = files.cert.parent() {
        std::fs::create_dir_all(dir).map_err(|err| file_error(dir, err))?;
    }
    std::fs::write(&files.cert, certified.cert.pem()).map_err(|err| file_error(&files.cert, err))?;
    write_private(&files.key, certified.signing_key.serialize_pem().as_bytes())
        .map_err(|err| file_error(&files.key, err))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(bytes)
}

/// A loaded certificate with what operators need to know about it.
pub struct Loaded {
    /// The key and chain, ready for rustls.
    pub certified: Arc<CertifiedKey>,
    /// The leaf's `notAfter`, seconds since the epoch.
    pub not_after: Option<i64>,
}

/// Reads and checks a certificate chain and its private key.
pub fn load(files: &CertificateFiles) -> Result<Loaded, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|err| file_error(&files.cert, err))?
        .collect::<Result<_, _>>()
        .map_err(|err| file_error(&files.cert, err))?;
    if chain.is_empty() {
        return Err(file_error(&files.cert, "no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|err| file_error(&files.key, err))?;
    let provider = default_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|err| file_error(&files.key, format!("unusable key: {err}")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .map_err(|err| TlsError::Invalid(format!("the key does not match the certificate: {err}")))?;
    let not_after = certified.cert.first().and_then(|leaf| not_after(leaf.as_ref()));
    Ok(Loaded { certified: Arc::new(certified), not_after })
}

/// The certificate in use, swappable while connections are open.
#[derive(Debug)]
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    /// A store serving `certified`.
    pub fn new(certified: Arc<CertifiedKey>) -> Self {
        Self { current: RwLock::new(certified) }
    }

    /// Serves `certified` to every new handshake from now on.
    pub fn replace(&self, certified: Arc<CertifiedKey>) {
        if let Ok(mut current) = self.current.write() {
            *current = certified;
        }
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|current| current.clone())
    }
}

/// A rustls server configuration: TLS 1.2 and 1.3 with ring's modern suites, ALPN h2 then
/// http/1.1, certificates from `store`.
pub fn server_config(store: Arc<CertStore>) -> Result<rustls::ServerConfig, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|err| TlsError::Invalid(err.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Every suite offered is strong; choosing by the server's order (AES-256-GCM first) keeps a
    // client from steering to its weakest, as scanners expect.
    config.ignore_client_order = true;
    Ok(config)
}

/// The `notAfter` of a DER certificate, in seconds since the epoch.
///
/// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
/// signature, issuer, validity SEQUENCE { notBefore, notAfter }, ... }, ... }
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (_, certificate, _) = der_item(der)?;
    let (_, tbs, _) = der_item(certificate)?;
    let mut rest = tbs;
    let mut fields = Vec::new();
    while !rest.is_empty() && fields.len() < 5 {
        let (tag, _, after) = der_item(rest)?;
        if !(fields.is_empty() && tag == 0xA0) {
            fields.push(rest);
        }
        rest = after;
    }
    // fields: serialNumber, signature, issuer, validity
    let (_, validity, _) = der_item(fields.get(3)?)?;
    let (_, _, after_not_before) = der_item(validity)?;
    let (tag, time, _) = der_item(after_not_before)?;
    parse_time(tag, std::str::from_utf8(time).ok()?)
}

/// One DER element: its tag, its contents and what follows it.
fn der_item(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)? as usize;
    let (length, header) = if first < 0x80 {
        (first, 2)
    } else {
        let count = first & 0x7f;
        if count == 0 || count > 4 {
            return None;
        }
        let bytes = input.get(2..2 + count)?;
        (bytes.iter().fold(0usize, |n, b| (n << 8) | *b as usize), 2 + count)
    };
    let contents = input.get(header..header + length)?;
    Some((tag, contents, &input[header + length..]))
}

/// UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime (`YYYYMMDDHHMMSSZ`, tag 0x18).
fn parse_time(tag: u8, text: &str) -> Option<i64> {
    let (year, rest) = match tag {
        0x17 => {
            let yy: i32 = text.get(0..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        0x18 => (text.get(0..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let field = |range: std::ops::Range<usize>| rest.get(range).and_then(|s| s.parse::<u32>().ok());
    let date = chrono::NaiveDate::from_ymd_opt(year, field(0..2)?, field(2..4)?)?;
    let time = date.and_hms_opt(field(4..6)?, field(6..8)?, field(8..10)?)?;
    Some(time.and_utc().timestamp())
}

/// What reloading the certificate needs.
pub struct TlsState {
    /// The files to read again.
    pub files: CertificateFiles,
    /// The store new handshakes read from.
    pub store: Arc<CertStore>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expiry_of_a_generated_certificate_is_read_from_its_der() {
        let mut params = rcgen::CertificateParams::new(vec!["example.test".to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 7, 14);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let expected = chrono::NaiveDate::from_ymd_opt(2031, 7, 14).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
        assert_eq!(not_after(cert.der()), Some(expected.timestamp()));
        assert_eq!(not_after(b"garbage"), None);
        assert_eq!(not_after(&[]), None);
    }

    #[test]
    fn certificates_and_keys_load_and_mismatches_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = CertificateFiles { cert: dir.path().join("a.crt"), key: dir.path().join("a.key") };
        generate_self_signed(&files, "example.test").unwrap();
        assert!(load(&files).is_ok());
        let other = CertificateFiles { cert: dir.path().join("b.crt"), key: dir.path().join("b.key") };
        generate_self_signed(&other, "example.test").unwrap();
        let mismatched = CertificateFiles { cert: files.cert.clone(), key: other.key.clone() };
        assert!(load(&mismatched).is_err(), "a key of another certificate");
        std::fs::write(&other.cert, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n").unwrap();
        assert!(load(&other).is_err(), "a corrupt certificate");
    }
}
