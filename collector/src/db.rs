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
use std::str::FromStr;
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
    /// Parses `--db-url`. TLS is used with `--db-ca-file` (verified against
    /// that bundle, and then required) or with `sslmode=require` in the URL
    /// (verified against the embedded Mozilla roots). libpq's default
    /// `prefer`, which would accept any certificate, is plain here: never
    /// unverified TLS. Settings TLS cannot honour are refused here, not at
    /// the first connection.
    pub fn new(url: &str, ca_file: Option<&str>) -> Result<Db, Error> {
        use postgres::config::{ChannelBinding, Host, SslMode, SslNegotiation};
        let url_error = |rule: &str| Error::usage("--db-url", rule);
        let config = postgres::Config::from_str(url).map_err(|e| url_error(&parse_error(&e)))?;
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
        if config.get_channel_binding() == ChannelBinding::Require {
            return Err(url_error("channel_binding=require is not supported"));
        }
        let Some(roots) = roots else {
            if config.get_ssl_negotiation() == SslNegotiation::Direct {
                return Err(url_error(
                    "sslnegotiation=direct needs TLS: sslmode=require or --db-ca-file",
                ));
            }
            return Ok(Db { config, tls: None });
        };
        // The certificate is checked against the host name, so TLS needs one
        // for every address, and a Unix socket has none.
        let hosts = config.get_hosts();
        let named = !hosts.is_empty() && hosts.iter().all(|h| matches!(h, Host::Tcp(_)));
        if !named {
            return Err(url_error(
                "TLS needs a host name or IP for each server, not a Unix socket or hostaddr alone",
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::usage("--db-ca-file", &e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // PostgreSQL 17 requires it for sslnegotiation=direct; older servers
        // ignore it.
        tls.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Db {
            config,
            tls: Some(MakeRustls(Arc::new(tls))),
        })
    }

    pub fn connect(&self) -> Result<Client, postgres::Error> {
        match &self.tls {
            Some(tls) => {
                // Here, not in `new`, since `config` is open to tuning: with
                // TLS configured, a server without it is refused, never used.
                let mut config = self.config.clone();
                config.ssl_mode(postgres::config::SslMode::Require);
                config.connect(tls.clone())
            }
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

/// The parser's message, where it is safe: an unknown option is named as
/// typed, and in `password=a b` that is a piece of the password.
fn parse_error(e: &postgres::Error) -> String {
    let why = crate::ingest::store::describe(e);
    match why.split_once("invalid value for option ") {
        // libpq's verify-ca and verify-full: require verifies both here.
        Some((_, "`sslmode`")) => {
            "sslmode must be disable, prefer or require, which verifies the certificate \
             and host name"
                .into()
        }
        Some((_, option)) => format!("invalid value for option {option}"),
        None if why.ends_with("unknown option `sslrootcert`") => {
            "sslrootcert is not read; give the CA bundle with --db-ca-file".into()
        }
        None => "must be a PostgreSQL URL like postgres://user@host/db".into(),
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
