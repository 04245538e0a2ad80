//! `wss://` for the terminal client and the load generator: rustls in the client role,
//! driven sans-IO on the same non-blocking sockets as `ws://`.
//!
//! TLS sits between the socket and the WebSocket code as a transform of bytes, so the
//! socket I/O of both programs stays what it is for `ws://`:
//!
//! - **In**: what one `read(2)` brought (ciphertext) goes to [`Decrypt`], which feeds it
//!   to rustls (`read_tls` from the slice, `process_new_packets`) and hands back the
//!   plaintext a piece at a time, copied into a buffer the caller owns. The caller gives
//!   each piece to its handshake and frame code exactly as it gives a plain read. So the
//!   bytes a program counts on its sockets are the TLS bytes, and one large read still
//!   empties the kernel's queue.
//! - **Out**: the WebSocket bytes queued for a connection go through [`send`]: as much as
//!   rustls takes (`writer()`, encrypted into records, at most 64 KiB waiting: rustls's
//!   default limit, which keeps a stalled server from growing our memory), then
//!   `write_tls` to the socket until it would block. Until the handshake is done, what
//!   rustls takes waits inside it as plaintext, so the WebSocket upgrade request can be
//!   queued as soon as TCP connects.
//!
//! A connection must be flushed after every read as well (`ClientConnection::wants_write`):
//! the handshake's replies, and an alert after an error, are rustls's to send.
//!
//! Trust ([`TlsArgs`]): the roots in `--ca-file` (PEM), or `--insecure`, which accepts
//! any certificate (a self-signed test server's) but still checks that the server holds
//! the certificate's key. There is no third choice: the crate depends on no system root
//! store (`rustls-native-certs`, `webpki-roots`), so a `wss://` URL without either option
//! is refused with an error naming them. Both programs make one [`ClientConfig`] per
//! process; every connection shares it (an `Arc`), with its session cache.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use clap::Args;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};
use thiserror::Error;

/// The protocol announced with ALPN: a WebSocket starts as an HTTP/1.1 request.
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// How a `wss://` server's certificate is checked: the command line's options, shared by
/// `loopchat client` and `loopchat bench`. Neither matters for `ws://` URLs.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsArgs {
    /// For wss:// URLs: trust the CA certificates in this PEM file (and no others) to
    /// vouch for the server's certificate.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca_file: Option<PathBuf>,

    /// For wss:// URLs: accept any certificate the server presents, such as a
    /// self-signed test certificate. The connection is encrypted but the server is not
    /// authenticated: anyone on the path could pose as it. For testing only.
    #[arg(long)]
    pub insecure: bool,
}

/// Why a `wss://` connection cannot be set up, or failed.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A `wss://` URL, and nothing to check the server's certificate against.
    #[error(
        "{url}: wss:// needs a way to check the server's certificate: give --ca-file FILE \
         (PEM, the CA that signed it) or, for a self-signed test certificate, --insecure \
         (this build has no system root store)"
    )]
    NoTrust {
        /// The URL, as given.
        url: String,
    },
    /// `--ca-file` cannot be read or is not PEM.
    #[error("--ca-file {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL's host is not a name a certificate can be issued for.
    #[error("{host:?} is not a valid TLS server name")]
    ServerName {
        /// The host.
        host: String,
    },
    /// The TLS handshake failed, or the server broke TLS later.
    #[error("TLS with {host}: {}{}", error, hint(error))]
    Failed {
        /// The host, as the URL names it.
        host: String,
        /// What rustls said.
        error: rustls::Error,
    },
}

/// A clue for the usual mistakes, after rustls's own words.
fn hint(error: &rustls::Error) -> &'static str {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            " (the server's certificate is not signed by a CA in --ca-file)"
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => " (the certificate does not name the URL's host)",
        rustls::Error::InvalidMessage(_) => " (is the server speaking TLS on that port?)",
        _ => "",
    }
}

impl TlsArgs {
    /// The configuration for connecting to `url`, a `wss://` URL: one per process,
    /// shared by every connection. With `--insecure`, a warning on standard error.
    pub fn client_config(&self, url: &str) -> Result<Arc<ClientConfig>, TlsError> {
        // The server's provider (ring, X25519 first): see `loopchat::tls::provider`.
        let provider = loopchat::tls::provider();
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions");
        let mut config = match (&self.ca_file, self.insecure) {
            (Some(path), _) => builder
                .with_root_certificates(read_roots(path)?)
                .with_no_client_auth(),
            (None, true) => {
                // Once per process, however many configurations (a sweep makes one a step).
                static WARNED: Once = Once::new();
                WARNED.call_once(|| {
                    eprintln!(
                        "warning: --insecure: the server's certificate is not checked; the \
                         connection is encrypted, but to whoever answers"
                    )
                });
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyCertificate {
                        algorithms: provider.signature_verification_algorithms,
                    }))
                    .with_no_client_auth()
            }
            (None, false) => {
                return Err(TlsError::NoTrust {
                    url: url.to_owned(),
                });
            }
        };
        config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
        Ok(Arc::new(config))
    }
}

/// The CA certificates in a PEM file.
fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let error = |reason: String| TlsError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(path).map_err(|e| error(pem_reason(e)))?;
    for certificate in certificates {
        let certificate = certificate.map_err(|e| error(pem_reason(e)))?;
        roots
            .add(certificate)
            .map_err(|e| error(format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(error(
            "no certificate in it (expected PEM, BEGIN CERTIFICATE)".into(),
        ));
    }
    Ok(roots)
}

fn pem_reason(error: rustls::pki_types::pem::Error) -> String {
    match error {
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        other => format!("not PEM: {other:?}"),
    }
}

/// The name the certificate must carry, and the one sent with SNI: the URL's host, a DNS
/// name or an IP address (which is checked against the certificate but not sent).
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host)
        .map(|name| name.to_owned())
        .map_err(|_| TlsError::ServerName {
            host: host.to_owned(),
        })
}

/// A new client connection to `name`. rustls's default buffer limit stays: it holds at
/// most 64 KiB of records waiting for the socket, and the rest stays in the caller's
/// queue, where the caller's own limits see it.
pub fn connect(config: &Arc<ClientConfig>, name: ServerName<'static>) -> ClientConnection {
    ClientConnection::new(Arc::clone(config), name)
        .expect("a client configuration with a provider and versions makes connections")
}

/// `--insecure`: every certificate is accepted as the server's, whoever issued it and
/// whatever names it holds. The handshake's signatures are still verified, so the server
/// must hold the key of the certificate it sent; what is lost is knowing whose key.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// What [`Decrypt::next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plaintext {
    /// This many bytes of plaintext, at the start of the caller's buffer.
    Bytes(usize),
    /// Everything read is used; the next bytes must come from the socket.
    Used,
    /// The server ended TLS (`close_notify`): nothing more will come.
    Closed,
}

/// The plaintext in one read's worth of ciphertext, taken a piece at a time, so that the
/// caller can act on each piece (which may end the connection) before the next.
#[derive(Debug)]
pub struct Decrypt<'a> {
    /// Ciphertext not yet given to rustls.
    ciphertext: &'a [u8],
}

impl<'a> Decrypt<'a> {
    /// Starts on `ciphertext`, the bytes one read took from the socket.
    pub fn new(ciphertext: &'a [u8]) -> Decrypt<'a> {
        Decrypt { ciphertext }
    }

    /// The next piece of plaintext, copied into `plain`. rustls keeps at most 16 KiB of
    /// plaintext before it is taken, so the ciphertext goes in a record or so at a time,
    /// and each piece is taken out before the next goes in.
    pub fn next(
        &mut self,
        tls: &mut ClientConnection,
        plain: &mut [u8],
    ) -> Result<Plaintext, rustls::Error> {
        loop {
            match tls.reader().read(plain) {
                Ok(0) => return Ok(Plaintext::Closed),
                Ok(n) => return Ok(Plaintext::Bytes(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Only after an end of the stream, which is never given to rustls here: the
                // caller sees the socket's end itself.
                Err(_) => return Ok(Plaintext::Closed),
            }
            if self.ciphertext.is_empty() {
                return Ok(Plaintext::Used);
            }
            // From a slice that is not empty, `read_tls` takes at least a byte; it fails
            // only when the plaintext buffer is full, and it was just emptied.
            tls.read_tls(&mut self.ciphertext)
                .map_err(|e| rustls::Error::General(e.to_string()))?;
            tls.process_new_packets()?;
        }
    }
}

/// What [`send`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// Bytes of the plaintext rustls took (encrypted, or held until the handshake ends).
    pub taken: usize,
    /// TLS bytes written to the socket.
    pub written: usize,
}

/// Gives rustls as much of `plaintext` as it takes and writes its records to `socket`
/// until it has none left or the socket would block. An error is the socket's (not
/// `WouldBlock`); the caller ends the connection.
pub fn send(
    tls: &mut ClientConnection,
    plaintext: &[u8],
    socket: &mut impl Write,
) -> io::Result<Sent> {
    let mut sent = Sent::default();
    loop {
        if sent.taken < plaintext.len() {
            sent.taken += tls.writer().write(&plaintext[sent.taken..])?;
        }
        if !tls.wants_write() {
            return Ok(sent);
        }
        match tls.write_tls(socket) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(sent),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_trust_is_refused_naming_the_options() {
        let error = TlsArgs::default()
            .client_config("wss://example.com/")
            .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("--ca-file") && text.contains("--insecure"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_refused() {
        let missing = TlsArgs {
            ca_file: Some("/nonexistent/ca.pem".into()),
            insecure: false,
        };
        let text = missing.client_config("wss://x/").unwrap_err().to_string();
        assert!(
            text.starts_with("--ca-file /nonexistent/ca.pem: "),
            "{text}"
        );

        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let args = TlsArgs {
            ca_file: Some(empty),
            insecure: false,
        };
        let text = args.client_config("wss://x/").unwrap_err().to_string();
        assert!(text.contains("no certificate"), "{text}");
    }

    #[test]
    fn server_names_are_dns_names_or_ip_addresses() {
        assert!(matches!(
            server_name("localhost"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(server_name("::1"), Ok(ServerName::IpAddress(_))));
        assert!(server_name("not a name!").is_err());
    }

    #[test]
    fn insecure_offers_http_1_1() {
        let args = TlsArgs {
            ca_file: None,
            insecure: true,
        };
        let config = args.client_config("wss://x/").unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
