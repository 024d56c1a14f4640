//! A small but real Kubernetes API server for tests: HTTPS with a CA made here by rcgen,
//! rustls over std TcpListener on 127.0.0.1:0, minimal HTTP/1.1 with Connection: close.
//!
//! It serves `/version`, `/api/v1/namespaces/kube-system`, the service `default/kubernetes` and
//! `/api/v1/nodes` (paged with `limit` and an opaque `continue` token that must come back
//! URL-encoded) from the fixtures in `tests/fixtures/`, checks `Authorization: Bearer <token>`
//! (or, in its client-certificate mode, requires a certificate signed by a client CA of its
//! own), records every request, and plays injected faults: statuses (with Retry-After), slow
//! answers, dropped connections, 410 Gone, and the paging of a hostile server (`Paging`). It is
//! test-only code and does not try to be a complete API server.

use std::collections::VecDeque;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::Value;

use super::fixture;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A misbehaviour, played once by the next request whose path and query start with its prefix.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status (with a Status body), and Retry-After seconds if given.
    Status(u16, Option<u64>),
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// Send the headers and half the body, then close the connection.
    Drop,
}

/// How the node list pages: honestly, or as a hostile or broken API server would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// At most `page_size` nodes a page, fewer when the client asks for fewer.
    Honest,
    /// `page_size` nodes a page, whatever the client's limit.
    IgnoreLimit,
    /// Every page after the first carries the first page's continue token again.
    RepeatToken,
    /// Every page is empty, with a new continue token.
    EmptyPages,
}

/// What the server knows and does; tests change it while it runs.
pub struct State {
    /// The bearer token it accepts; `None` accepts any request (like kubectl proxy).
    pub token: Option<String>,
    /// Node objects, served in this order.
    pub nodes: Vec<Value>,
    /// The most nodes per page, whatever the client's limit (API servers may return fewer).
    pub page_size: usize,
    pub paging: Paging,
    /// Path prefixes answered with 403 Forbidden.
    pub forbidden: Vec<String>,
    faults: VecDeque<(String, Fault)>,
    seen: Vec<Seen>,
}

/// A running server. It lives until the test process ends.
pub struct KubeApi {
    pub url: String,
    /// PEM of the CA that signed the server certificate.
    pub ca_pem: String,
    state: Arc<Mutex<State>>,
}

impl KubeApi {
    /// An HTTPS server with the 7 fixture nodes and pages of 3, accepting `token`.
    pub fn start(token: Option<&str>) -> KubeApi {
        let (ca_pem, config) = tls_config(None);
        Self::spawn("https", Some(Arc::new(config)), ca_pem, token)
    }

    /// An HTTPS server that requires a client certificate signed by the CA it returns the
    /// issuer of (as an API server requires of kubelets), and no token.
    pub fn start_requiring_client_certs() -> (KubeApi, Issuer<'static, KeyPair>) {
        let (client_ca_pem, client_ca) = new_ca();
        let mut roots = rustls::RootCertStore::empty();
        let der = rustls::pki_types::pem::PemObject::from_pem_slice(client_ca_pem.as_bytes())
            .expect("client CA PEM");
        roots.add(der).expect("client CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client verifier");
        let (ca_pem, config) = tls_config(Some(verifier));
        let api = Self::spawn("https", Some(Arc::new(config)), ca_pem, None);
        (api, client_ca)
    }

    /// A plain HTTP server, like `kubectl proxy` (no token needed).
    pub fn start_plain() -> KubeApi {
        Self::spawn("http", None, String::new(), None)
    }

    fn spawn(
        scheme: &str,
        tls: Option<Arc<ServerConfig>>,
        ca_pem: String,
        token: Option<&str>,
    ) -> KubeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("local address");
        let nodes = match serde_json::from_str::<Value>(&fixture("nodes.json")) {
            Ok(Value::Object(mut list)) => match list.remove("items") {
                Some(Value::Array(items)) => items,
                _ => panic!("nodes.json has no items array"),
            },
            _ => panic!("nodes.json is not a JSON object"),
        };
        let state = Arc::new(Mutex::new(State {
            token: token.map(str::to_string),
            nodes,
            page_size: 3,
            paging: Paging::Honest,
            forbidden: Vec::new(),
            faults: VecDeque::new(),
            seen: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                let tls = tls.clone();
                thread::spawn(move || {
                    // A connection the client abandons (bad CA, timeout) is not our failure.
                    let _ = match tls {
                        Some(config) => match ServerConnection::new(config) {
                            Ok(conn) => serve(StreamOwned::new(conn, stream), &state),
                            Err(_) => Ok(()),
                        },
                        None => serve(stream, &state),
                    };
                });
            }
        });
        KubeApi {
            url: format!("{scheme}://127.0.0.1:{}", addr.port()),
            ca_pem,
            state,
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Plays `fault` on the next request whose path and query start with `prefix`.
    pub fn inject(&self, prefix: &str, fault: Fault) {
        self.state().faults.push_back((prefix.to_string(), fault));
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }

    /// How many requests had this path (query ignored).
    pub fn count(&self, path: &str) -> usize {
        self.seen().iter().filter(|s| s.path() == path).count()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fresh CA and a server certificate for 127.0.0.1 and localhost signed by it; with
/// `clients`, client certificates are required and verified.
fn tls_config(
    clients: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> (String, ServerConfig) {
    let (ca_pem, issuer) = new_ca();
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("sign leaf");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
    let builder =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions");
    let builder = match clients {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(chain, key)
        .expect("server certificate");
    (ca_pem, config)
}

/// A CA of its own: PEM of its certificate, and the issuer to sign with.
pub fn new_ca() -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("self-sign CA");
    (cert.pem(), Issuer::new(params, key))
}

fn serve<S: Read + Write>(stream: S, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let (method, target, headers) = super::read_head(&mut reader)?;
    let seen = Seen {
        method,
        target,
        headers,
    };
    let (answer, fault) = {
        let mut s = lock(state);
        s.seen.push(seen.clone());
        let at = s
            .faults
            .iter()
            .position(|(p, _)| seen.target.starts_with(p.as_str()));
        let fault = at.and_then(|i| s.faults.remove(i)).map(|(_, f)| f);
        (route(&seen, &s), fault)
    };
    let (status, body, retry_after) = match fault {
        Some(Fault::Status(code, after)) => (code, status_body(code, "injected"), after),
        Some(Fault::Slow(d)) => {
            thread::sleep(d);
            (answer.0, answer.1, None)
        }
        _ => (answer.0, answer.1, None),
    };
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(after) = retry_after {
        head.push_str(&format!("Retry-After: {after}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = reader.into_inner();
    stream.write_all(head.as_bytes())?;
    if matches!(fault, Some(Fault::Drop)) {
        stream.write_all(&body.as_bytes()[..body.len() / 2])?;
        stream.flush()?;
        // No TLS close_notify: the connection just dies, as when an API server restarts.
        return Ok(());
    }
    stream.write_all(body.as_bytes())?;
    stream.flush()?;
    Ok(())
}

/// The normal answer to a request: (status, JSON body).
fn route(req: &Seen, s: &State) -> (u16, String) {
    if let Some(token) = &s.token {
        if req.header("authorization") != Some(&format!("Bearer {token}")) {
            return (401, fixture("status-401-unauthorized.json"));
        }
    }
    if s.forbidden
        .iter()
        .any(|p| req.path().starts_with(p.as_str()))
    {
        return (403, fixture("status-403-forbidden.json"));
    }
    match (req.method.as_str(), req.path()) {
        ("GET", "/version") => (200, fixture("version.json")),
        ("GET", "/api/v1/namespaces/kube-system") => (200, fixture("namespace-kube-system.json")),
        ("GET", "/api/v1/namespaces/default/services/kubernetes") => {
            (200, fixture("service-kubernetes.json"))
        }
        ("GET", "/api/v1/nodes") => nodes_page(req, s),
        _ => (
            404,
            status_body(404, "the server could not find the requested resource"),
        ),
    }
}

/// One page of nodes. The continue token is "offset=N&rv=987654": it holds the characters
/// `=` and `&`, so a client that does not URL-encode it breaks the query.
fn nodes_page(req: &Seen, s: &State) -> (u16, String) {
    let query = req
        .target
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default();
    let mut limit = usize::MAX;
    let mut offset = 0;
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "limit" => limit = v.parse().unwrap_or(usize::MAX),
            "continue" => {
                let token = percent_decode(v);
                match token
                    .strip_prefix("offset=")
                    .and_then(|t| t.strip_suffix("&rv=987654"))
                {
                    Some(n) => offset = n.parse().unwrap_or(usize::MAX),
                    None => return (400, status_body(400, "invalid continue token")),
                }
            }
            _ => {}
        }
    }
    let size = match s.paging {
        Paging::IgnoreLimit => s.page_size,
        _ => limit.min(s.page_size),
    }
    .max(1);
    let len = s.nodes.len();
    let end = match s.paging {
        Paging::EmptyPages => offset,
        _ => offset.saturating_add(size).min(len),
    };
    let items = s.nodes.get(offset..end).unwrap_or_default();
    let next = match s.paging {
        Paging::EmptyPages => Some(offset + 1),
        Paging::RepeatToken if end < len => Some(size),
        _ if end < len => Some(end),
        _ => None,
    };
    let mut metadata = serde_json::json!({"resourceVersion": "987654"});
    if let Some(next) = next {
        metadata["continue"] = Value::String(format!("offset={next}&rv=987654"));
        metadata["remainingItemCount"] = Value::from(len.saturating_sub(end));
    }
    let list = serde_json::json!({"kind": "NodeList", "apiVersion": "v1", "metadata": metadata, "items": items});
    (200, list.to_string())
}

fn status_body(code: u16, message: &str) -> String {
    serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "code": code})
    .to_string()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
