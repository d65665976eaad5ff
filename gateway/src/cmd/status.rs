//! `tgw status`: the status ladder and verdict of every camera, asked of a
//! running gateway over its HTTP API.
//!
//! The API token comes from `$TGW_TOKEN`, else from the file
//! `DATA_DIR/cli-token` of the gateway `--config` names (written by
//! `tgw user token NAME --save --config FILE`, and by `tgw demo`). Without
//! one, the command says exactly how to get one instead of a bare 401.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::output::{emit, outln, table};
use crate::config::Config;

/// The token file's name in the data directory.
pub(super) const TOKEN_FILE: &str = "cli-token";

/// Largest token file read (a token is 40-odd characters).
const TOKEN_FILE_MAX: u64 = 4096;

/// Writes `token` to `path`, readable by its owner only.
pub(super) fn save_token(path: &Path, token: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", path.display()))?;
    f.write_all(format!("{token}\n").as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", path.display()))?;
    Ok(())
}

/// The token in `path`, if the file exists; an error when it cannot be
/// read or is not one line of token characters.
fn read_token(path: &Path) -> anyhow::Result<Option<String>> {
    use std::io::Read as _;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => anyhow::bail!("{}: cannot read: {e}", path.display()),
    };
    let mut s = String::new();
    f.take(TOKEN_FILE_MAX)
        .read_to_string(&mut s)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    let t = s.trim();
    anyhow::ensure!(
        !t.is_empty() && t.len() < 512 && t.chars().all(|c| c.is_ascii_graphic()),
        "{}: not an API token (one line expected)",
        path.display()
    );
    Ok(Some(t.to_string()))
}

/// Where to ask and with which token.
struct Target {
    base: String,
    token: Option<String>,
    /// Where the token would be looked for (for the hint).
    token_file: Option<PathBuf>,
    config: Option<PathBuf>,
}

fn target(url: Option<String>, config: Option<PathBuf>) -> anyhow::Result<Target> {
    let cfg = config.as_ref().map(|c| Config::load(c)).transpose()?;
    let base = match (url, &cfg) {
        (Some(u), _) => u.trim_end_matches('/').to_string(),
        (None, Some(cfg)) => {
            let http = cfg.http.as_ref().ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: no [http] section, so no running gateway to ask",
                    config.as_deref().unwrap_or(Path::new("-")).display()
                )
            })?;
            format!("http://{}", http.listen)
        }
        (None, None) => "http://127.0.0.1:8080".to_string(),
    };
    let token_file = cfg.map(|c| c.gateway.data_dir.join(TOKEN_FILE));
    let token = match std::env::var("TGW_TOKEN") {
        Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
        _ => match &token_file {
            Some(f) => read_token(f)?,
            None => None,
        },
    };
    Ok(Target {
        base,
        token,
        token_file,
        config,
    })
}

/// How to get a token, for the 401 message.
fn token_hint(t: &Target) -> String {
    let cfg = t
        .config
        .as_ref()
        .map(|c| c.display().to_string())
        .unwrap_or_else(|| "FILE".into());
    let mut s = if t.token.is_some() {
        "the token was refused (revoked, or from another gateway); ".to_string()
    } else {
        "no API token; ".to_string()
    };
    s.push_str(&format!(
        "either `export TGW_TOKEN=$(tgw user token NAME --config {cfg})` or \
         `tgw user token NAME --save --config {cfg}` (writes "
    ));
    match &t.token_file {
        Some(f) => s.push_str(&f.display().to_string()),
        None => s.push_str("DATA_DIR/cli-token"),
    }
    s.push_str(
        ", which `tgw status --config` reads); NAME is a user of the gateway (`tgw user list`)",
    );
    s
}

/// `GET {path}` of a running gateway (address and token as for `tgw
/// status`), as JSON; 401 says how to get a token.
pub(super) async fn api_get(
    url: Option<String>,
    config: Option<PathBuf>,
    path: &str,
) -> anyhow::Result<serde_json::Value> {
    let t = target(url, config)?;
    let url = format!("{}{path}", t.base);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut req = client.get(&url);
    if let Some(tok) = &t.token {
        req = req.bearer_auth(tok);
    }
    let resp = req.send().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the gateway at {}: {}",
            t.base,
            e.without_url()
        )
    })?;
    anyhow::ensure!(
        resp.status() != reqwest::StatusCode::UNAUTHORIZED,
        "{url}: HTTP 401: {}",
        token_hint(&t)
    );
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {}", e.without_url()))?;
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| anyhow::anyhow!("{url}: HTTP {status}, unexpected answer: {e}"))?;
    anyhow::ensure!(
        status.is_success(),
        "{url}: HTTP {status}: {}",
        v["message"].as_str().or(v["error"].as_str()).unwrap_or("")
    );
    Ok(v)
}

/// Asks `GET /api/v1/cameras` and prints one line per camera and a count
/// on stderr, or JSON.
pub(super) async fn status(
    url: Option<String>,
    config: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let t = target(url, config)?;
    let base = &t.base;
    let url = format!("{base}/api/v1/cameras");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut req = client.get(&url);
    if let Some(tok) = &t.token {
        req = req.bearer_auth(tok);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the gateway at {base}: {}", e.without_url()))?;
    anyhow::ensure!(
        resp.status() != reqwest::StatusCode::UNAUTHORIZED,
        "{url}: HTTP 401: {}",
        token_hint(&t)
    );
    anyhow::ensure!(resp.status().is_success(), "{url}: HTTP {}", resp.status());
    let body = resp
        .bytes()
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {}", e.without_url()))?;
    let list: Vec<crate::http::CameraStatus> = serde_json::from_slice(&body)
        .map_err(|e| anyhow::anyhow!("{url}: unexpected answer: {e}"))?;
    let mut o = String::new();
    if json {
        outln!(o, "{}", serde_json::to_string_pretty(&list)?);
        emit(&o)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (mut ok, mut degraded, mut offline, mut unknown) = (0, 0, 0, 0);
    let mut rows = Vec::with_capacity(list.len());
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
        rows.push(vec![
            c.id.clone(),
            c.address.clone().unwrap_or_else(|| "-".into()),
            c.village.clone().unwrap_or_else(|| "-".into()),
            rung,
            verdict,
            since,
            err,
        ]);
    }
    o.push_str(&table(
        &[
            "id", "address", "village", "rung", "verdict", "since", "error",
        ],
        &rows,
    ));
    emit(&o)?;
    eprintln!(
        "{} cameras: {ok} ok, {degraded} degraded, {offline} offline, {unknown} not yet polled",
        list.len()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A saved token reads back; a missing file is no token; a file that
    /// is not one token line is an error naming the file.
    #[test]
    fn token_file_round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(TOKEN_FILE);
        assert_eq!(read_token(&p).unwrap(), None);
        save_token(&p, "tgw_abc123").unwrap();
        assert_eq!(read_token(&p).unwrap().as_deref(), Some("tgw_abc123"));
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::write(&p, "two words\n").unwrap();
        let e = read_token(&p).unwrap_err().to_string();
        assert!(
            e.contains("not an API token") && e.contains("cli-token"),
            "{e}"
        );
        std::fs::write(&p, "").unwrap();
        assert!(read_token(&p).is_err());
    }

    /// The 401 hint names both ways to get a token and the file read.
    #[test]
    fn the_401_hint_says_how_to_get_a_token() {
        let t = Target {
            base: "http://127.0.0.1:1".into(),
            token: None,
            token_file: Some(PathBuf::from("/d/cli-token")),
            config: Some(PathBuf::from("/etc/tgw.toml")),
        };
        let h = token_hint(&t);
        assert!(h.starts_with("no API token"), "{h}");
        assert!(
            h.contains("tgw user token NAME --config /etc/tgw.toml"),
            "{h}"
        );
        assert!(h.contains("--save") && h.contains("/d/cli-token"), "{h}");
    }
}
