//! Which certificates we trust, and the one way HTTP agents are built.
//!
//! It owns reading PEM bundles, choosing the system roots (SSL_CERT_FILE, then the usual
//! Debian and Red Hat bundles, then the roots embedded in the binary for scratch images), and
//! the settings every agent shares: rustls with ring only, verification always on, a User-Agent,
//! a timeout, no redirects, and statuses handed back to the caller. There is deliberately no way
//! to turn verification off. It does not know what is requested with the agents.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, ClientCert, PemItem, RootCerts, TlsConfig, TlsProvider};
use ureq::{Agent, Proxy};

use crate::VERSION;

/// The system bundles tried, in order, when SSL_CERT_FILE is not set.
const SYSTEM_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// Where the roots for an https server come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// A PEM bundle: `--ca-file`, the service account's `ca.crt`, or a system bundle.
    File(PathBuf),
    /// Mozilla's roots compiled into the binary, for images without a system bundle.
    Embedded,
}

impl Roots {
    /// The system roots: SSL_CERT_FILE if set (`ssl_cert_file`), else the first system bundle
    /// that exists, else the embedded roots.
    pub fn system(ssl_cert_file: Option<String>) -> Roots {
        if let Some(path) = ssl_cert_file.filter(|p| !p.is_empty()) {
            return Roots::File(PathBuf::from(path));
        }
        SYSTEM_BUNDLES
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .map_or(Roots::Embedded, |p| Roots::File(p.to_path_buf()))
    }

    /// Loads the certificates. The error names the file and says what is wrong with it.
    pub fn load(&self) -> Result<RootCerts, String> {
        match self {
            Roots::Embedded => Ok(RootCerts::WebPki),
            Roots::File(path) => read_certificates(path).map(|c| RootCerts::new_with_certs(&c)),
        }
    }
}

/// Reads every certificate in a PEM file, and fails if there is none: an empty trust store
/// would only fail later, at the first handshake, with a less helpful message.
pub fn read_certificates(path: &Path) -> Result<Vec<Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut certificates = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certificates.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("{} is not valid PEM: {e}", path.display())),
        }
    }
    if certificates.is_empty() {
        return Err(format!("no PEM certificate in {}", path.display()));
    }
    Ok(certificates)
}

/// A client certificate (`--client-cert`, e.g. the kubelet's) and its key, from PEM files that
/// may be one file holding both. Errors name the files, never their content.
pub fn read_client_cert(cert: &Path, key: &Path) -> Result<ClientCert, String> {
    let chain = read_certificates(cert)?;
    let pem = std::fs::read(key).map_err(|e| format!("cannot read {}: {e}", key.display()))?;
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::PrivateKey(k)) => return Ok(ClientCert::new_with_certs(&chain, k)),
            Ok(_) => {}
            Err(_) => return Err(format!("{} is not valid PEM", key.display())),
        }
    }
    Err(format!(
        "no PEM private key in {} (give it with --client-key)",
        key.display()
    ))
}

/// An agent for one server. `roots` is `None` for plain http. `proxy` is only ever set for the
/// collector: the Kubernetes API is always reached directly. `client` authenticates to the
/// Kubernetes API with a certificate instead of a token.
pub fn agent(
    roots: Option<RootCerts>,
    client: Option<ClientCert>,
    timeout: Duration,
    proxy: Option<Proxy>,
) -> Agent {
    let tls = TlsConfig::builder()
        .client_cert(client)
        .provider(TlsProvider::Rustls)
        // Pin ring so the process never depends on which provider another crate enabled.
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(roots.unwrap_or(RootCerts::WebPki))
        .build();
    Agent::config_builder()
        .tls_config(tls)
        // ureq's default reads proxies from the environment; the caller decides instead.
        .proxy(proxy)
        // Statuses are ours to classify (retry, permission error, ...), not ureq errors.
        .http_status_as_error(false)
        // A redirect would carry our bearer token or report somewhere we were not told about.
        .max_redirects(0)
        .user_agent(format!("spartakus-volunteer/{VERSION}"))
        .accept("application/json")
        // One budget per request, from DNS to the last byte of the body.
        .timeout_global(Some(timeout))
        .build()
        .new_agent()
}

/// Whether a transport error is a TLS verification or handshake failure. Those never heal by
/// retrying, and the user must see them as such (wrong CA, wrong host name).
pub fn is_tls_failure(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => true,
        ureq::Error::Io(io) => io.get_ref().is_some_and(|e| e.is::<rustls::Error>()),
        _ => false,
    }
}

/// What to check after a TLS failure: a fatal alert from the server means it refused us (in
/// practice, our client certificate); anything else is ours refusing the server.
pub fn tls_hint(error: &ureq::Error) -> &'static str {
    let ours = match error {
        ureq::Error::Rustls(e) => Some(e),
        ureq::Error::Io(io) => io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    match ours {
        Some(rustls::Error::AlertReceived(_)) => {
            "the server refused the handshake: is --client-cert signed by a CA it trusts?"
        }
        _ => "is --ca-file the cluster's CA?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_cert_file_wins_over_the_system_bundles() {
        assert_eq!(
            Roots::system(Some("/x/ca.pem".into())),
            Roots::File("/x/ca.pem".into())
        );
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("spartakus-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("empty.pem");
        std::fs::write(&path, "not a certificate\n").expect("write temp file");
        let got = read_certificates(&path).err().unwrap_or_default();
        assert!(got.starts_with("no PEM certificate in"), "{got}");
        let missing = read_certificates(&dir.join("missing.pem"))
            .err()
            .unwrap_or_default();
        assert!(missing.starts_with("cannot read"), "{missing}");
        std::fs::remove_dir_all(&dir).expect("clean temp dir");
    }
}
