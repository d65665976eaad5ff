//! Polls the `[warnings]` HTTP feeds: each answer is one CAP alert or an
//! Atom feed of them (embedded or linked). Alerts go to the runtime's
//! warning desk, which ignores identifiers it has already handled. Bodies
//! are capped, every request has a timeout, and a failing feed is retried
//! at its interval with a warning once per outage.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::base::error::{Error, ErrorKind, Result};
use crate::broadcast::runtime::Broadcasts;
use tgw_core::warning::{Feed, FeedEntry, parse_feed};

/// Largest feed or alert document fetched.
pub const MAX_BODY: usize = 1024 * 1024;
/// Per-request timeout.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// Linked documents remembered (not fetched again).
const MAX_LINKS: usize = 4096;

async fn fetch(client: &reqwest::Client, url: &str) -> Result<bytes::Bytes> {
    let unreachable = |e: reqwest::Error| {
        Error::unavailable(format!("{url}: {}", crate::base::https::describe(&e)))
    };
    let too_large = || {
        Error::new(
            ErrorKind::TooLarge,
            format!("{url}: body over {MAX_BODY} bytes"),
        )
    };
    let mut resp = client
        .get(url)
        .timeout(TIMEOUT)
        .send()
        .await
        .map_err(unreachable)?;
    if !resp.status().is_success() {
        return Err(Error::unavailable(format!("{url}: HTTP {}", resp.status())));
    }
    if resp.content_length().is_some_and(|n| n as usize > MAX_BODY) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.into())
}

/// Polls one feed until `shutdown`, trusting the system's CA roots.
pub async fn poll(feed: Feed, broadcasts: Broadcasts, shutdown: CancellationToken) {
    match crate::base::https::client(None) {
        Ok(client) => poll_with(client, feed, broadcasts, shutdown).await,
        Err(e) => {
            tracing::warn!(feed = %feed.url, error = %e, "CAP feed client could not be built");
        }
    }
}

/// Polls one feed with `client` (`base::https::client`: http, or https
/// with the system roots and `http.outbound_ca_file`) until `shutdown`.
pub async fn poll_with(
    client: reqwest::Client,
    feed: Feed,
    broadcasts: Broadcasts,
    shutdown: CancellationToken,
) {
    let mut seen_links: HashSet<String> = HashSet::new();
    let mut order: VecDeque<String> = VecDeque::new();
    let mut failing = false;
    let interval = Duration::from_secs(feed.interval_secs.max(1));
    loop {
        match fetch(&client, &feed.url).await {
            Err(e) => {
                if !failing {
                    tracing::warn!(feed = %feed.url, error = %e, "CAP feed poll failed; retrying at its interval");
                }
                failing = true;
            }
            Ok(body) => {
                if failing {
                    tracing::info!(feed = %feed.url, "CAP feed reachable again");
                }
                failing = false;
                match parse_feed(&body) {
                    Err(e) => tracing::warn!(feed = %feed.url, error = %e, "CAP feed rejected"),
                    Ok(entries) => {
                        for entry in entries {
                            match entry {
                                FeedEntry::Alert { alert, sha256 } => {
                                    broadcasts.cap_parsed(*alert, sha256, &feed.url).await;
                                }
                                FeedEntry::Link { url, .. } => {
                                    if seen_links.contains(&url) {
                                        continue;
                                    }
                                    match fetch(&client, &url).await {
                                        Ok(doc) => {
                                            let out = broadcasts.cap(doc, &url).await;
                                            tracing::info!(url = %url, decision = %out.decision, "CAP document from feed");
                                            seen_links.insert(url.clone());
                                            order.push_back(url);
                                            while order.len() > MAX_LINKS {
                                                if let Some(o) = order.pop_front() {
                                                    seen_links.remove(&o);
                                                }
                                            }
                                        }
                                        Err(e) => {
                                            tracing::warn!(url = %url, error = %e, "CAP document from feed not fetched")
                                        }
                                    }
                                }
                                FeedEntry::Invalid { entry_id, reason } => {
                                    tracing::warn!(feed = %feed.url, entry = ?entry_id, reason = %reason, "CAP feed entry skipped");
                                }
                            }
                        }
                    }
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
