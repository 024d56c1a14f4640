//! HTTPS serving's certificate (--tls-cert, --tls-key): checked at start,
//! then read again every few seconds while clients connect, so that a
//! renewed certificate (cert-manager, certbot, a rotated Secret) is served
//! without a restart. A renewal that cannot be used, such as a certificate
//! written before its key, is logged once and the current one kept. Does not
//! accept connections; tiny_http does, with the configuration made here.

use crate::error::Error;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often, at most, the files are read again.
const RECHECK: Duration = Duration::from_secs(2);

/// The server side of rustls, serving whatever `cert` and `key` hold.
pub fn server_config(cert: &str, key: &str) -> Result<Arc<rustls::ServerConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let files = (read("--tls-cert", cert)?, read("--tls-key", key)?);
    let current =
        certified(&files, &provider).map_err(|rule| Error::usage("--tls-cert/--tls-key", &rule))?;
    let resolver = Reloading {
        paths: (cert.to_string(), key.to_string()),
        provider: provider.clone(),
        state: Mutex::new(State {
            seen: files,
            current: Arc::new(current),
            checked: Instant::now(),
        }),
    };
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::usage("--tls-cert/--tls-key", &e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    Ok(Arc::new(config))
}

fn read(flag: &'static str, path: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::usage(flag, &format!("cannot read {path}: {e}")))
}

/// A certificate chain and the private key that matches it.
fn certified(
    (cert, key): &(Vec<u8>, Vec<u8>),
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate: not valid PEM ({e})"))?;
    if chain.is_empty() {
        return Err("certificate: no PEM certificate found".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| format!("private key: no PEM private key found ({e})"))?;
    CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| format!("certificate and private key: {e}"))
}

struct Reloading {
    paths: (String, String),
    provider: Arc<CryptoProvider>,
    state: Mutex<State>,
}

struct State {
    /// The files' bytes when last read, usable or not: each renewal is
    /// tried, and a bad one logged, once.
    seen: (Vec<u8>, Vec<u8>),
    current: Arc<CertifiedKey>,
    checked: Instant,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.checked.elapsed() >= RECHECK {
            state.checked = Instant::now();
            self.reload(&mut state);
        }
        Some(state.current.clone())
    }
}

impl Reloading {
    fn reload(&self, state: &mut State) {
        let (cert, key) = &self.paths;
        // A file missing for a moment (a Secret's symlinks being swapped)
        // is no news: the next check reads it.
        let (Ok(cert), Ok(key)) = (std::fs::read(cert), std::fs::read(key)) else {
            return;
        };
        let files = (cert, key);
        if files == state.seen {
            return;
        }
        match certified(&files, &self.provider) {
            Ok(renewed) => {
                state.current = Arc::new(renewed);
                log::info!("HTTPS certificate reloaded from {}", self.paths.0);
            }
            Err(e) => log::warn!("HTTPS certificate not reloaded, keeping the current one: {e}"),
        }
        state.seen = files;
    }
}

impl std::fmt::Debug for Reloading {
    /// Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reloading { .. }")
    }
}
