//! Certificates made at test time: a test CA (rcgen) and server certificates for
//! 127.0.0.1 and localhost signed by it, written as PEM files, and a rustls client
//! configuration that trusts that CA and nothing else.
#![allow(dead_code)] // not every test program uses every part

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A CA, and a certificate for 127.0.0.1 and localhost signed by it, as PEM files.
pub struct Certs {
    ca: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_der: CertificateDer<'static>,
    /// The server certificate, PEM.
    pub cert: PathBuf,
    /// Its key, PEM.
    pub key: PathBuf,
    /// The CA's certificate, PEM (for clients that read trust from a file).
    pub ca_pem: PathBuf,
}

impl Certs {
    /// A new CA named `name`, and a server certificate signed by it, in `dir`.
    pub fn new(dir: &Path, name: &str) -> Certs {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("loopchat test CA {name}"),
        );
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca_cert = params.self_signed(&ca_key).unwrap();
        let ca_der = ca_cert.der().clone();
        let ca_pem = dir.join(format!("{name}.ca.pem"));
        std::fs::write(&ca_pem, ca_cert.pem()).unwrap();
        let ca = rcgen::Issuer::new(params, ca_key);
        let (cert, key) = (
            dir.join(format!("{name}.cert.pem")),
            dir.join(format!("{name}.key.pem")),
        );
        let certs = Certs {
            ca,
            ca_der,
            cert,
            key,
            ca_pem,
        };
        certs.write_server(&certs.cert, &certs.key);
        certs
    }

    /// Writes a server certificate (127.0.0.1, localhost) signed by this CA, and its key.
    pub fn write_server(&self, cert: &Path, key: &Path) {
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server = params.signed_by(&server_key, &self.ca).unwrap();
        std::fs::write(cert, server.pem()).unwrap();
        std::fs::write(key, server_key.serialize_pem()).unwrap();
    }

    /// A client configuration that trusts this CA only.
    pub fn client(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        let mut config = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}
