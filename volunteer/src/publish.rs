//! Sending a report to the collector: `POST <collector>/api/v1/stats`.
//!
//! It owns the collector's side of the protocol: which answers are success (any 2xx), which are
//! retried (429, 5xx, connection errors, with the same body and so the same reportID), and how a
//! refusal is reported (the collector's JSON error message, bounded). It is the only place a
//! proxy from HTTPS_PROXY / HTTP_PROXY / NO_PROXY is used. It does not build reports.

use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use ureq::Agent;

use crate::config::Config;
use crate::error::{bounded, Error};
use crate::report::Report;
use crate::retry::{self, Failure, Policy};
use crate::shutdown::Shutdown;
use crate::tls;

/// Where reports go.
pub trait Sink {
    /// Delivers one report; retries are the sink's business.
    fn publish(&self, report: &Report) -> Result<(), Error>;
}

/// The real `Sink`: a spartakus collector over HTTP(S).
pub struct Collector {
    url: String,
    agent: Agent,
    retry: Policy,
    shutdown: Arc<Shutdown>,
}

// The collector's error document: {"error": {"code": 400, "message": "..."}}.
#[derive(Deserialize)]
struct ErrorDocument {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: String,
}

impl Collector {
    /// Fails only if the CA bundle checked at startup has since become unreadable.
    pub fn new(config: &Config, shutdown: Arc<Shutdown>) -> Result<Collector, Error> {
        let url = config
            .collector_url
            .clone()
            .ok_or_else(|| Error::config("--collector", "required unless --dry-run"))?;
        let roots = match &config.collector_roots {
            Some(roots) => Some(
                roots
                    .load()
                    .map_err(|e| Error::config("--collector-ca-file", e))?,
            ),
            None => None,
        };
        let proxy = ureq::Proxy::try_from_env();
        if let Some(proxy) = &proxy {
            // Host and port only: a proxy URL may carry credentials.
            log::info!(
                "collector: using proxy {}:{} (NO_PROXY honoured)",
                proxy.host(),
                proxy.port()
            );
        }
        let agent = tls::agent(roots, None, config.timeout, proxy);
        Ok(Collector {
            url,
            agent,
            retry: config.retry.clone(),
            shutdown,
        })
    }

    fn attempt(&self, body: &[u8]) -> Result<(), Failure> {
        let started = Instant::now();
        let mut response = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .send(body)
            .map_err(|e| {
                let error = Error::Publish(format!("collector: POST {}: {e}", self.url));
                if tls::is_tls_failure(&e) {
                    Failure::Final(error)
                } else {
                    Failure::Transient { error, after: None }
                }
            })?;
        let status = response.status().as_u16();
        log::debug!(
            "POST {} {status} {:.3}s",
            self.url,
            started.elapsed().as_secs_f64()
        );
        if (200..=299).contains(&status) {
            return Ok(());
        }
        let after = retry::retry_after(&response);
        let said = retry::error_body::<ErrorDocument>(&mut response)
            .map(|d| format!(": {}", bounded(&d.error.message, 300)))
            .unwrap_or_default();
        let hint = if (300..=399).contains(&status) {
            ": redirects are not followed; give the final URL in --collector"
        } else {
            ""
        };
        let error = Error::Publish(format!(
            "collector: {status} on POST {}{said}{hint}",
            self.url
        ));
        Err(retry::by_status(status, error, after))
    }
}

impl Sink for Collector {
    fn publish(&self, report: &Report) -> Result<(), Error> {
        // Encoded once: every retry sends the very same bytes, hence the same reportID.
        let body = serde_json::to_vec(report)
            .map_err(|e| Error::Publish(format!("collector: cannot encode the report: {e}")))?;
        retry::run(&self.retry, &self.shutdown, || self.attempt(&body))
    }
}
