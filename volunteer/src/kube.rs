//! The Kubernetes API client: just the three reads a report needs, over ureq and rustls.
//!
//! It owns the requests (`/version`, the node list with paging, namespace kube-system) and what
//! each status means. Answers are decoded straight from the response stream into the minimal
//! types of `objects.rs`, so memory does not grow with the raw JSON (nodes are ~10 KB each,
//! mostly images and conditions we never look at). It re-reads the token and CA for every
//! report because bound service account tokens rotate. It does not anonymize; that is
//! `report.rs`.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use ureq::Agent;

use crate::config::Config;
use crate::error::{bounded, Error};
use crate::objects::{self, Namespace, Node, NodeList, Status, Version};
use crate::retry::{self, Failure, Policy};
use crate::shutdown::Shutdown;
use crate::tls::{self, Roots};

/// Nodes per page. Big enough for few round trips, small enough that one page (~5.5 MB of JSON)
/// is cheap for the API server to produce.
pub const PAGE_SIZE: u32 = 500;

/// A guard against an API server that never ends a list: 2000 pages is a million nodes.
const MAX_PAGES: u32 = 2000;

/// The most we read of one page. Decoding streams, so this bounds time on a runaway answer,
/// not memory.
const MAX_PAGE_BYTES: u64 = 256 * 1024 * 1024;

/// The source of a report: everything read from the cluster at one time.
pub trait Source {
    /// Reads the cluster. All or nothing: a failure on any page fails the snapshot.
    fn snapshot(&self) -> Result<Snapshot, Error>;
}

/// What a report is built from. Nodes still carry their UID and providerID here; `report::build`
/// reduces them to an anonymous id and a scheme.
#[derive(Debug)]
pub struct Snapshot {
    pub cluster_id: String,
    pub master_version: String,
    pub nodes: Vec<Node>,
}

/// The real `Source`: an API server reached over HTTP(S).
pub struct KubeClient {
    api: String,
    token_file: Option<PathBuf>,
    roots: Option<Roots>,
    cluster_id: Option<String>,
    timeout: Duration,
    retry: Policy,
    shutdown: Arc<Shutdown>,
}

impl KubeClient {
    pub fn new(config: &Config, shutdown: Arc<Shutdown>) -> KubeClient {
        KubeClient {
            api: config.kube_api.clone(),
            token_file: config.token_file.clone(),
            roots: config.kube_roots.clone(),
            cluster_id: config.cluster_id.clone(),
            timeout: config.timeout,
            retry: config.retry.clone(),
            shutdown,
        }
    }

    /// All nodes; the pool of shared strings lives only as long as the list.
    fn nodes(&self, agent: &Agent, token: Option<&str>) -> Result<Vec<Node>, Error> {
        let nodes = self.list_nodes(agent, token);
        objects::forget_shared();
        nodes
    }

    /// Follows `metadata.continue` to the end of the list. A 410 Gone means the continue token
    /// expired (the list took longer than the API server keeps it, ~5 minutes); we restart the
    /// list from the beginning once, and fail if it expires again.
    fn list_nodes(&self, agent: &Agent, token: Option<&str>) -> Result<Vec<Node>, Error> {
        let mut restarted = false;
        let mut nodes = Vec::new();
        let mut next: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut path = format!("/api/v1/nodes?limit={PAGE_SIZE}");
            if let Some(token) = &next {
                path.push_str("&continue=");
                path.push_str(&percent_encode(token));
            }
            let call = Call {
                path: &path,
                shown: "/api/v1/nodes",
                permission: "list nodes",
            };
            match self.get::<NodeList>(agent, token, &call)? {
                Some(page) => {
                    nodes.extend(page.items);
                    next = page.metadata.continue_token.filter(|c| !c.is_empty());
                }
                None if next.is_some() && !restarted => {
                    log::warn!(
                        "kubernetes api: node list expired while paging; restarting it once"
                    );
                    restarted = true;
                    nodes.clear();
                    next = None;
                    continue;
                }
                None => return Err(call.gone()),
            }
            pages += 1;
            if next.is_none() {
                return Ok(nodes);
            }
            if pages >= MAX_PAGES {
                return Err(Error::Kube(format!(
                    "kubernetes api: GET /api/v1/nodes: the list did not end after {MAX_PAGES} pages"
                )));
            }
        }
    }

    /// One GET with retries. `Ok(None)` is a 410 Gone, which only the node list can act on.
    fn get<T: DeserializeOwned>(
        &self,
        agent: &Agent,
        token: Option<&str>,
        call: &Call,
    ) -> Result<Option<T>, Error> {
        let url = format!("{}{}", self.api, call.path);
        retry::run(&self.retry, &self.shutdown, || {
            let mut request = agent.get(&url);
            if let Some(token) = token {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            let started = Instant::now();
            let response = request.call().map_err(|e| call.transport(e))?;
            let status = response.status().as_u16();
            log::debug!(
                "GET {} {status} {:.3}s",
                call.shown,
                started.elapsed().as_secs_f64()
            );
            match status {
                200..=299 => call.decode(response.into_body()).map(Some),
                410 => Ok(None),
                _ => Err(call.refused(status, response)),
            }
        })
    }
}

impl Source for KubeClient {
    fn snapshot(&self) -> Result<Snapshot, Error> {
        let token = match &self.token_file {
            Some(path) => {
                Some(read_token(path).map_err(|e| Error::Kube(format!("kubernetes api: {e}")))?)
            }
            None => None,
        };
        let roots = match &self.roots {
            Some(roots) => Some(
                roots
                    .load()
                    .map_err(|e| Error::Kube(format!("kubernetes api: {e}")))?,
            ),
            None => None,
        };
        let agent = tls::agent(roots, self.timeout, None);
        let token = token.as_deref();

        let version = Call {
            path: "/version",
            shown: "/version",
            permission: "get /version",
        };
        let master_version = self
            .get::<Version>(&agent, token, &version)?
            .ok_or_else(|| version.gone())?
            .git_version;
        let cluster_id = match &self.cluster_id {
            Some(id) => id.clone(),
            None => {
                let path = "/api/v1/namespaces/kube-system";
                let ns = Call {
                    path,
                    shown: path,
                    permission: "get namespace kube-system",
                };
                let uid = self
                    .get::<Namespace>(&agent, token, &ns)?
                    .ok_or_else(|| ns.gone())?
                    .metadata
                    .uid;
                if uid.is_empty() {
                    return Err(Error::Kube(format!(
                        "kubernetes api: GET {path}: no metadata.uid"
                    )));
                }
                uid
            }
        };
        let nodes = self.nodes(&agent, token)?;
        Ok(Snapshot {
            cluster_id,
            master_version,
            nodes,
        })
    }
}

/// Reads a bearer token file. Errors name the file, never its content.
pub fn read_token(path: &Path) -> Result<String, String> {
    let raw = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read token {}: {e}", path.display()))?;
    let token = raw.trim();
    if token.is_empty() {
        return Err(format!("token {} is empty", path.display()));
    }
    // Anything else could not travel in an HTTP header, or could split it.
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "token {} is not a valid bearer token",
            path.display()
        ));
    }
    Ok(token.to_string())
}

/// One kind of request, for messages: `shown` is the path without query (continue tokens are
/// long and meaningless to a reader), `permission` the RBAC verb and resource it needs.
struct Call<'a> {
    path: &'a str,
    shown: &'a str,
    permission: &'a str,
}

impl Call<'_> {
    fn decode<T: DeserializeOwned>(&self, body: ureq::Body) -> Result<T, Failure> {
        // Our own limit rather than ureq's, so that hitting it can be told from a connection
        // that dropped: an answer this large will be as large on a retry.
        let reader = body.into_with_config().limit(u64::MAX).reader();
        let mut limited = BufReader::with_capacity(64 * 1024, reader).take(MAX_PAGE_BYTES);
        serde_json::from_reader(&mut limited).map_err(|e| {
            if limited.limit() == 0 {
                return Failure::Final(Error::Kube(format!(
                    "kubernetes api: GET {}: the answer is larger than {} MiB",
                    self.shown,
                    MAX_PAGE_BYTES >> 20
                )));
            }
            // A connection that drops or stalls mid-body is transient; a well-delivered answer
            // we cannot decode will not improve on retry.
            let cut_short = e.is_io() || e.is_eof();
            let error = Error::Kube(format!(
                "kubernetes api: GET {}: cannot decode the answer: {e}",
                self.shown
            ));
            if cut_short {
                Failure::Transient { error, after: None }
            } else {
                Failure::Final(error)
            }
        })
    }

    fn transport(&self, e: ureq::Error) -> Failure {
        if tls::is_tls_failure(&e) {
            return Failure::Final(Error::Kube(format!(
                "kubernetes api: GET {}: tls: {e} (is --ca-file the cluster's CA?)",
                self.shown
            )));
        }
        let error = Error::Kube(format!("kubernetes api: GET {}: {e}", self.shown));
        Failure::Transient { error, after: None }
    }

    fn refused(&self, status: u16, mut response: ureq::http::Response<ureq::Body>) -> Failure {
        let after = retry::retry_after(&response);
        let on = format!("on GET {}", self.shown);
        let message = match status {
            401 => format!(
                "kubernetes api: 401 unauthorized {on}: the token was refused; check the service \
                 account token or --token-file"
            ),
            403 => format!(
                "kubernetes api: 403 forbidden {on}: the service account needs permission to {}",
                self.permission
            ),
            _ => {
                let said = retry::error_body::<Status>(&mut response)
                    .and_then(|s| s.message)
                    .map(|m| format!(": {}", bounded(&m, 200)))
                    .unwrap_or_default();
                format!("kubernetes api: {status} {on}{said}")
            }
        };
        retry::by_status(status, Error::Kube(message), after)
    }

    fn gone(&self) -> Error {
        Error::Kube(format!("kubernetes api: 410 gone on GET {}", self.shown))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for the continue token.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_are_percent_encoded() {
        assert_eq!(percent_encode("eyJvZmZzZXQiOjJ9"), "eyJvZmZzZXQiOjJ9");
        assert_eq!(percent_encode("a+b/c=&d e"), "a%2Bb%2Fc%3D%26d%20e");
    }
}
