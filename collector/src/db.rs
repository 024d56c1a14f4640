//! Connecting to PostgreSQL, plain or over TLS that rustls always verifies
//! (certificate and host name). The postgres client runs on tokio inside,
//! so TLS goes through tokio-rustls; this file is the small adapter between
//! the two. Does not decide when to connect or retry.

use crate::error::Error;
use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use postgres::Client;
use rustls::pki_types::{pem::PemObject, CertificateDer, InvalidDnsNameError, ServerName};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Where the database is and how to reach it.
#[derive(Clone)]
pub struct Db {
    pub config: postgres::Config,
    tls: Option<MakeRustls>,
}

impl Db {
    /// TLS is used with `--db-ca-file` (verified against that bundle, and
    /// then required) or with `sslmode=require` in the URL (verified
    /// against the embedded Mozilla roots). libpq's default `prefer`, which
    /// would accept any certificate, is plain here: never unverified TLS.
    pub fn new(mut config: postgres::Config, ca_file: Option<&str>) -> Result<Db, Error> {
        use postgres::config::SslMode;
        let roots = match (ca_file, config.get_ssl_mode()) {
            (Some(_), SslMode::Disable) => {
                let rule = "conflicts with sslmode=disable in --db-url";
                return Err(Error::usage("--db-ca-file", rule));
            }
            (Some(path), _) => Some(ca_bundle(path)?),
            (None, SslMode::Require) => Some(rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            }),
            (None, _) => None,
        };
        let Some(roots) = roots else {
            return Ok(Db { config, tls: None });
        };
        config.ssl_mode(SslMode::Require);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::usage("--db-ca-file", &e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Db {
            config,
            tls: Some(MakeRustls(Arc::new(tls))),
        })
    }

    pub fn connect(&self) -> Result<Client, postgres::Error> {
        match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(postgres::NoTls),
        }
    }

    /// A short-lived connection for a subcommand, named in pg_stat_activity.
    pub fn connect_as(&self, application: &str) -> Result<Client, postgres::Error> {
        let mut db = self.clone();
        db.config.application_name(application);
        if db.config.get_connect_timeout().is_none() {
            db.config
                .connect_timeout(std::time::Duration::from_secs(10));
        }
        db.connect()
    }

    /// For the start-up log line.
    pub fn describe(&self) -> &'static str {
        match self.tls {
            Some(_) => "over verified TLS",
            None => "without TLS",
        }
    }
}

impl std::fmt::Debug for Db {
    /// postgres::Config's Debug already hides the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tls = self.tls.is_some();
        f.debug_struct("Db")
            .field("config", &self.config)
            .field("tls", &tls)
            .finish()
    }
}

fn ca_bundle(path: &str) -> Result<rustls::RootCertStore, Error> {
    let bad = |why: String| Error::usage("--db-ca-file", &format!("{path}: {why}"));
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(format!("not PEM: {e:?}")))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("not a CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    Ok(roots)
}

#[derive(Clone)]
struct MakeRustls(Arc<rustls::ClientConfig>);

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Rustls<S>;
    type TlsConnect = Connect;
    type Error = InvalidDnsNameError;

    /// `host` is the URL's host, which the certificate must name.
    fn make_tls_connect(&mut self, host: &str) -> Result<Connect, InvalidDnsNameError> {
        let name = ServerName::try_from(host.to_string())?;
        Ok(Connect(self.0.clone(), name))
    }
}

struct Connect(Arc<rustls::ClientConfig>, ServerName<'static>);

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Rustls<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Rustls<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let handshake = tokio_rustls::TlsConnector::from(self.0).connect(self.1, stream);
        Box::pin(async move { handshake.await.map(Rustls) })
    }
}

/// A TLS connection; the newtype only exists to implement postgres' trait.
struct Rustls<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Rustls<S> {
    /// None: SCRAM then does not bind to the certificate. Binding guards
    /// against a TLS peer that is not the server, which verifying the
    /// certificate and host name already rules out.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Rustls<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Rustls<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
