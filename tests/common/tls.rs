//! Certificates made at test time with rcgen: a CA, and a server certificate signed by it
//! for the names a test connects to, written as PEM files into a temporary directory
//! that lives as long as the [`TestCerts`]. Tests trust `ca_pem` (as `--ca-file`, or in a
//! browser) and serve `cert_pem` with `key_pem`.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::path::PathBuf;
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
}

impl TestCerts {
    /// A fresh CA and a server certificate for `names` (DNS names or IP addresses, such
    /// as `["127.0.0.1", "localhost"]`), signed by it.
    pub fn new(names: &[&str]) -> TestCerts {
        let (ca_params, ca_key) = ca("loopchat test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("server certificate names");
        params.distinguished_name = name(names.first().copied().unwrap_or("loopchat test"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &issuer)
            .expect("sign the server certificate");

        let dir = tempfile::tempdir().expect("a temporary directory");
        let write = |file: &str, pem: String| {
            let path = dir.path().join(file);
            std::fs::write(&path, pem).expect("write a PEM file");
            path
        };
        TestCerts {
            ca_pem: write("ca.pem", ca_cert.pem()),
            cert_pem: write("cert.pem", cert.pem()),
            key_pem: write("key.pem", key.serialize_pem()),
            dir,
        }
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
