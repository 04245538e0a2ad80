//! TLS for the server: what `--tls-cert` and `--tls-key` load, as a `rustls` server
//! configuration shared by every connection.
//!
//! rustls is itself a sans-IO state machine, and its unbuffered API
//! (`UnbufferedServerConnection::process_tls_records`) keeps no buffer of records: the
//! event loop hands it the bytes it read and the room to encrypt into, like any other
//! protocol's (see `event_loop/wire.rs`), on the same thread, with no async runtime, so
//! that an idle TLS connection holds no buffer at all. This module only turns PEM files
//! into a configuration, so that a reload (SIGHUP) is the same call as the first load,
//! and a bad file is refused before it replaces a good configuration.

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the certificate chain and its private key are, in PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate, then any intermediates (the chain), in PEM.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1), in PEM.
    pub key: PathBuf,
}

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file could not be read or holds no certificate.
    #[error("{path}: {why}")]
    Certificate {
        /// The file.
        path: String,
        /// What was wrong.
        why: String,
    },
    /// The key file could not be read or holds no key.
    #[error("{path}: {why}")]
    Key {
        /// The file.
        path: String,
        /// What was wrong.
        why: String,
    },
    /// rustls refused the pair (the key does not match the certificate, say).
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
}

/// The crypto provider: *ring*, with the key exchanges in the order of their speed.
///
/// rustls 0.23.48 lists *ring*'s groups P-384 first; *ring*'s P-384 is generic
/// big-number code, and a handshake on it cost the server about 1 ms of CPU (600
/// handshakes a second at most), against X25519's tens of microseconds. X25519 first,
/// then P-256, with P-384 kept for clients that offer nothing else. (rustls deprecates
/// its *ring* provider for having no post-quantum key exchange; aws-lc-rs, which has
/// one, needs a C toolchain and CMake to build.)
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
    provider.kx_groups = vec![X25519, SECP256R1, SECP384R1];
    Arc::new(provider)
}

/// Loads the files into a server configuration: TLS 1.2 and 1.3, no client
/// certificates, ALPN `http/1.1` (the only protocol served).
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = certificates(&files.cert)?;
    let key = private_key(&files.key)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |why: String| TlsError::Certificate {
        path: path.display().to_string(),
        why,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no certificate in it (PEM, BEGIN CERTIFICATE)".into()));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Key {
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_made_certificate_loads_and_bad_files_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = write(dir.path(), "cert.pem", &made.cert.pem());
        let key = write(dir.path(), "key.pem", &made.signing_key.serialize_pem());
        let config = server_config(&TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        })
        .unwrap();
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);

        let missing = dir.path().join("missing.pem");
        let error = server_config(&TlsFiles {
            cert: missing.clone(),
            key: key.clone(),
        })
        .unwrap_err();
        assert!(matches!(error, TlsError::Certificate { .. }), "{error}");
        let empty = write(dir.path(), "empty.pem", "not a certificate\n");
        let error = server_config(&TlsFiles {
            cert: empty.clone(),
            key: key.clone(),
        })
        .unwrap_err();
        assert!(error.to_string().contains("no certificate"), "{error}");
        let error = server_config(&TlsFiles {
            cert: cert.clone(),
            key: empty,
        })
        .unwrap_err();
        assert!(matches!(error, TlsError::Key { .. }), "{error}");
        // A key that is not the certificate's.
        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let other_key = write(dir.path(), "other.pem", &other.signing_key.serialize_pem());
        let error = server_config(&TlsFiles {
            cert,
            key: other_key,
        })
        .unwrap_err();
        assert!(matches!(error, TlsError::Config(_)), "{error}");
    }
}
