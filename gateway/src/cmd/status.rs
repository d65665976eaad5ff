//! `tgw status`: the status ladder and verdict of every camera, asked of a
//! running gateway over its HTTP API.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;

/// Asks `GET /api/v1/cameras` (with `TGW_TOKEN`) and prints one line per
/// camera and a count on stderr, or JSON.
pub(super) async fn status(
    url: Option<String>,
    config: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let base = match (url, config) {
        (Some(u), _) => u.trim_end_matches('/').to_string(),
        (None, Some(c)) => {
            let cfg = Config::load(&c)?;
            let http = cfg.http.ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: no [http] section, so no running gateway to ask",
                    c.display()
                )
            })?;
            format!("http://{}", http.listen)
        }
        (None, None) => "http://127.0.0.1:8080".to_string(),
    };
    let url = format!("{base}/api/v1/cameras");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    // [http] The API needs a token: `tgw user token NAME` prints one.
    let mut req = client.get(&url);
    if let Ok(t) = std::env::var("TGW_TOKEN") {
        req = req.bearer_auth(t.trim());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the gateway at {base}: {}", e.without_url()))?;
    anyhow::ensure!(
        resp.status() != reqwest::StatusCode::UNAUTHORIZED,
        "{url}: HTTP 401: set TGW_TOKEN to an API token (`tgw user token NAME --config FILE`)"
    );
    anyhow::ensure!(resp.status().is_success(), "{url}: HTTP {}", resp.status());
    let body = resp
        .bytes()
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {}", e.without_url()))?;
    let list: Vec<crate::http::CameraStatus> = serde_json::from_slice(&body)
        .map_err(|e| anyhow::anyhow!("{url}: unexpected answer: {e}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (mut ok, mut degraded, mut offline, mut unknown) = (0, 0, 0, 0);
    for c in &list {
        let (rung, verdict, since, err) = match &c.health {
            Some(h) => {
                match h.verdict.label() {
                    "ok" => ok += 1,
                    "degraded" => degraded += 1,
                    _ => offline += 1,
                }
                (
                    h.rung.as_str().to_string(),
                    h.verdict.to_string(),
                    crate::store::fmt_time(h.verdict_since),
                    h.last_error_kind.clone().unwrap_or_default(),
                )
            }
            None => {
                unknown += 1;
                (
                    "-".into(),
                    "not yet polled".into(),
                    String::new(),
                    String::new(),
                )
            }
        };
        println!(
            "{:<15} {:<16} {:<24} {:<14} {:<40} {:<20} {}",
            c.id,
            c.address.as_deref().unwrap_or("-"),
            c.village.as_deref().unwrap_or("-"),
            rung,
            verdict,
            since,
            err
        );
    }
    eprintln!(
        "{} cameras: {ok} ok, {degraded} degraded, {offline} offline, {unknown} not yet polled",
        list.len()
    );
    Ok(ExitCode::SUCCESS)
}
