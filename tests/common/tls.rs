//! Certificates made at test time with rcgen: a CA, and a server certificate signed by it
//! for the names a test connects to, written as PEM files into a temporary directory
//! that lives as long as the [`TestCerts`]. Tests trust `ca_pem` (as `--ca-file`, in a
//! browser, or as a rustls client configuration: [`TestCerts::client`]) and serve
//! `cert_pem` with `key_pem`.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tempfile::TempDir;

/// A test CA and a server certificate it signed, as PEM files.
pub struct TestCerts {
    /// The directory holding the files; removed when this is dropped.
    pub dir: TempDir,
    /// The CA's certificate: what a client trusts.
    pub ca_pem: PathBuf,
    /// The server's certificate, for the names given to [`TestCerts::new`].
    pub cert_pem: PathBuf,
    /// The server certificate's private key (PKCS#8).
    pub key_pem: PathBuf,
    /// The CA, to sign more server certificates ([`TestCerts::write_server`]).
    issuer: Issuer<'static, KeyPair>,
    /// The CA's certificate, for [`TestCerts::client`].
    ca_der: rustls::pki_types::CertificateDer<'static>,
    /// The names the server certificates are for.
    names: Vec<String>,
}

impl TestCerts {
    /// A fresh CA and a server certificate for `names` (DNS names or IP addresses, such
    /// as `["127.0.0.1", "localhost"]`), signed by it.
    pub fn new(names: &[&str]) -> TestCerts {
        let (ca_params, ca_key) = ca("loopchat test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");
        let issuer = Issuer::new(ca_params, ca_key);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, ca_cert.pem()).expect("write a PEM file");
        let certs = TestCerts {
            ca_pem,
            cert_pem: dir.path().join("cert.pem"),
            key_pem: dir.path().join("key.pem"),
            dir,
            issuer,
            ca_der: ca_cert.der().clone(),
            names: names.iter().map(|n| n.to_string()).collect(),
        };
        certs.write_server(&certs.cert_pem, &certs.key_pem);
        certs
    }

    /// Writes a new server certificate (for the same names, signed by this CA) and its
    /// key to these paths: what a certificate's renewal looks like to a server.
    pub fn write_server(&self, cert_pem: &Path, key_pem: &Path) {
        let mut params =
            CertificateParams::new(self.names.clone()).expect("server certificate names");
        params.distinguished_name =
            name(self.names.first().map_or("loopchat test", String::as_str));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign the server certificate");
        std::fs::write(cert_pem, cert.pem()).expect("write a PEM file");
        std::fs::write(key_pem, key.serialize_pem()).expect("write a PEM file");
    }

    /// A rustls client configuration that trusts this CA and nothing else, offering ALPN
    /// `http/1.1`.
    pub fn client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("the CA as a root");
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// Another CA's certificate, in the same directory: one that signed nothing the
    /// server presents, for the tests of an untrusted server.
    pub fn other_ca_pem(&self) -> PathBuf {
        let (params, key) = ca("some other CA");
        let cert = params.self_signed(&key).expect("self-sign the other CA");
        let path = self.dir.path().join("other-ca.pem");
        std::fs::write(&path, cert.pem()).expect("write a PEM file");
        path
    }
}

/// A CA's parameters and key.
fn ca(common_name: &str) -> (CertificateParams, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name = name(common_name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (params, KeyPair::generate().expect("CA key"))
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}
