//! The Kubernetes API client: just the three reads a report needs, over ureq and rustls.
//!
//! It owns the requests (`/version`, the node list with paging, namespace kube-system or
//! service default/kubernetes) and their retries; what each answer means is `answer.rs`, the
//! bounds of a whole list `list.rs`. Answers are decoded straight from the response stream into
//! the minimal types of `objects.rs`, so memory does not grow with the raw JSON (nodes are ~10
//! KB each, mostly images and conditions we never look at). It re-reads the token, client
//! certificate and CA for every report (and after a `--spread` wait) because bound service
//! account tokens and kubelet certificates rotate. It turns the UID into the cluster id at once
//! (`ids::cluster_id`), so the raw UID goes no further; the rest of the anonymizing is
//! `report.rs`.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ring::hmac;
use serde::de::{DeserializeOwned, DeserializeSeed};
use ureq::Agent;

use crate::answer::{percent_encode, Call, Limit};
use crate::config::{Config, IdSource};
use crate::error::Error;
use crate::ids;
use crate::list::{List, PAGE_SIZE};
use crate::objects::{Namespace, Node, Version};
use crate::retry::{self, Policy};
use crate::shared;
use crate::shutdown::Shutdown;
use crate::spread;
use crate::tls::{self, Roots};

/// The source of a report: everything read from the cluster at one time.
pub trait Source {
    /// Reads the cluster. All or nothing: a failure on any page fails the snapshot.
    fn snapshot(&self) -> Result<Snapshot, Error>;
}

/// What a report is built from. `cluster_id` is final (given, or hashed from the kube-system
/// UID); nodes still carry their UID here, which `report::build` reduces to an anonymous id.
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
    cluster_id_from: IdSource,
    client_cert: Option<(PathBuf, PathBuf)>,
    cluster_id_key: Option<hmac::Key>,
    timeout: Duration,
    /// `--spread`; zero but with `--once`.
    spread: Duration,
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
            cluster_id_from: config.cluster_id_from,
            client_cert: config.client_cert.clone(),
            cluster_id_key: config.cluster_id_key.clone(),
            timeout: config.timeout,
            spread: config.spread,
            retry: config.retry.clone(),
            shutdown,
        }
    }

    /// All nodes; the pool of shared strings lives only as long as the list.
    fn nodes(&self, agent: &Agent, token: Option<&str>) -> Result<Vec<Node>, Error> {
        let nodes = self.list_nodes(agent, token);
        shared::forget();
        nodes
    }

    /// Follows `metadata.continue` to the end of the list, within the bounds of `list.rs`. A 410
    /// Gone means the continue token expired (the list took longer than the API server keeps
    /// it, ~5 minutes); we restart the list from the beginning once, and fail if it expires
    /// again.
    fn list_nodes(&self, agent: &Agent, token: Option<&str>) -> Result<Vec<Node>, Error> {
        let mut restarted = false;
        let mut list = List::default();
        let mut next: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/nodes?limit={PAGE_SIZE}");
            if let Some(cont) = &next {
                path.push_str("&continue=");
                path.push_str(&percent_encode(cont));
            }
            let call = Call {
                path: &path,
                shown: "/api/v1/nodes",
                permission: "list nodes",
            };
            match self.get(agent, token, &call, list.page(), &list.byte_limit())? {
                Some((page, bytes)) => match list.take(page, bytes).map_err(|e| call.broken(&e))? {
                    Some(cont) => next = Some(cont),
                    None => return Ok(list.into_nodes()),
                },
                None if next.is_some() && !restarted => {
                    log::warn!(
                        "kubernetes api: node list expired while paging; restarting it once"
                    );
                    restarted = true;
                    list = List::default();
                    next = None;
                }
                None => return Err(call.gone()),
            }
        }
    }

    /// One small answer, `T` in whole; `None` is a 410 Gone.
    fn get_one<T: DeserializeOwned>(
        &self,
        agent: &Agent,
        token: Option<&str>,
        call: &Call,
    ) -> Result<Option<T>, Error> {
        let answer = self.get(agent, token, call, PhantomData::<T>, &Limit::answer())?;
        Ok(answer.map(|(value, _)| value))
    }

    /// One GET with retries, decoded with `seed` within `limit`: the value and the bytes it
    /// took. `Ok(None)` is a 410 Gone, which only the node list can act on.
    fn get<S, T>(
        &self,
        agent: &Agent,
        token: Option<&str>,
        call: &Call,
        seed: S,
        limit: &Limit,
    ) -> Result<Option<(T, u64)>, Error>
    where
        S: for<'de> DeserializeSeed<'de, Value = T> + Copy,
    {
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
                200..=299 => call.decode(response.into_body(), seed, limit).map(Some),
                410 => Ok(None),
                _ => Err(call.refused(status, response)),
            }
        })
    }
}

impl KubeClient {
    /// An agent with the roots and the token as they are now: both rotate, so they are read
    /// for every report (and again after a `--spread` wait).
    fn connect(&self) -> Result<(Agent, Option<String>), Error> {
        let kube = |e: String| Error::Kube(format!("kubernetes api: {e}"));
        let token = match &self.token_file {
            Some(path) => Some(read_token(path).map_err(kube)?),
            None => None,
        };
        let roots = match &self.roots {
            Some(roots) => Some(roots.load().map_err(kube)?),
            None => None,
        };
        let client = match &self.client_cert {
            Some((cert, key)) => Some(tls::read_client_cert(cert, key).map_err(kube)?),
            None => None,
        };
        Ok((tls::agent(roots, client, self.timeout, None), token))
    }

    /// The final cluster id: `--cluster-id`, or the hash of the UID of namespace kube-system
    /// (or, with `--cluster-id-from kubernetes-service`, of service default/kubernetes).
    fn cluster_id(&self, agent: &Agent, token: Option<&str>) -> Result<String, Error> {
        if let Some(id) = &self.cluster_id {
            return Ok(id.clone());
        }
        let (path, permission) = match self.cluster_id_from {
            IdSource::KubeSystem => (
                "/api/v1/namespaces/kube-system",
                "get namespace kube-system",
            ),
            IdSource::KubernetesService => (
                "/api/v1/namespaces/default/services/kubernetes",
                "get service default/kubernetes",
            ),
        };
        let ns = Call {
            path,
            shown: path,
            permission,
        };
        let uid = self
            .get_one::<Namespace>(agent, token, &ns)?
            .ok_or_else(|| ns.gone())?
            .metadata
            .uid;
        if uid.is_empty() {
            return Err(Error::Kube(format!(
                "kubernetes api: GET {path}: no metadata.uid"
            )));
        }
        Ok(ids::cluster_id(&uid, self.cluster_id_key.as_ref()))
    }
}

impl Source for KubeClient {
    fn snapshot(&self) -> Result<Snapshot, Error> {
        let (mut agent, mut token) = self.connect()?;
        let cluster_id = self.cluster_id(&agent, token.as_deref())?;
        // After the cluster id (the slot depends on it), before the rest: the report is fresh.
        if spread::wait(&cluster_id, self.spread, &self.shutdown)? {
            (agent, token) = self.connect()?;
        }
        let token = token.as_deref();
        let version = Call {
            path: "/version",
            shown: "/version",
            permission: "get /version",
        };
        let master_version = self
            .get_one::<Version>(&agent, token, &version)?
            .ok_or_else(|| version.gone())?
            .git_version;
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
