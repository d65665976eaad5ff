//! `tgw broadcast keygen|sign|verify`: signed emergency commands for the
//! county platform, tests and benches (`docs/warnings.md`). Keys are
//! Ed25519, PKCS#8 PEM as OpenSSL writes them; `sign` and `verify` run the
//! gateway's own verifier, so what they accept the gateway accepts.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::output::{emit, outln, targets_text};
use crate::base::clock::Clock;
use crate::broadcast::Target;
use crate::config::Config;
use tgw_core::broadcast::signed::{self, Action, Content, KeyConfig, KeySet, Verifier};

#[derive(Subcommand)]
pub(super) enum BroadcastCmd {
    /// Make an Ed25519 signing key for MQTT emergency commands: PREFIX.key
    /// (PKCS#8 PEM, mode 0600, readable by OpenSSL) and PREFIX.pub (the
    /// public key, base64). Prints the `[[broadcast.keys]]` entry to paste
    /// into the gateway's configuration.
    Keygen {
        /// Path prefix of the files, e.g. `keys/county-1`.
        #[arg(long)]
        out: PathBuf,
        /// Key id for the printed entry. Default: the prefix's file name.
        #[arg(long)]
        key_id: Option<String>,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Sign an emergency command and print the envelope (the `params` of
    /// MQTT `cmd/emergency`) with a fresh random nonce.
    Sign(SignArgs),
    /// Check an envelope (or a whole `cmd/emergency` message body) as the
    /// gateway would; prints the command, or the refusal code and reason
    /// (exit 1).
    Verify(VerifyArgs),
}

/// `start` or `stop`.
#[derive(Clone, Copy, ValueEnum)]
enum ActionArg {
    Start,
    Stop,
}

/// Priorities a signed command may carry.
#[derive(Clone, Copy, ValueEnum)]
enum SignedPriority {
    Emergency,
    Superior,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("content").args(["text", "asset"])))]
pub(super) struct SignArgs {
    /// The signing key (PKCS#8 PEM from `keygen` or OpenSSL, or base64 of
    /// the 32-byte seed).
    #[arg(long)]
    key: PathBuf,
    /// The key id the gateway knows it by (`[[broadcast.keys]] id`).
    #[arg(long)]
    key_id: String,
    /// Targets, comma-separated: all, village:CODE, grid:CODE, zone:NAME,
    /// group:NAME, speaker:ID.
    #[arg(long, value_delimiter = ',', required_unless_present = "cap")]
    targets: Vec<Target>,
    /// Sign this CAP 1.2 document instead of a command, for the MQTT
    /// warnings topic (`[warnings] mqtt_trust = "signed"`); the key needs
    /// scope `["all"]`. Takes only --key, --key-id and --valid-for.
    #[arg(long, conflicts_with_all = ["targets", "text", "asset", "id", "volume", "repeat", "mqtt_json"])]
    cap: Option<PathBuf>,
    /// Text to speak (start).
    #[arg(long)]
    text: Option<String>,
    /// A stored asset, `sha256:<64 hex>` (start).
    #[arg(long)]
    asset: Option<String>,
    /// Start a broadcast, or stop the one named by --id.
    #[arg(long, value_enum, default_value = "start")]
    action: ActionArg,
    /// Broadcast id (required for stop). Default: `emg-` and random hex.
    #[arg(long)]
    id: Option<String>,
    /// How long the command stays valid (`not_after` = now + this; 10s-24h).
    #[arg(long, default_value = "5m")]
    valid_for: String,
    /// Priority.
    #[arg(long, value_enum, default_value = "emergency")]
    priority: SignedPriority,
    /// Volume 0-100 (start).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    volume: Option<u8>,
    /// Times to play, 1-10 (start).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=10))]
    repeat: Option<u8>,
    /// Print the whole MQTT message body `{"request_id": …, "params": ENVELOPE}`.
    #[arg(long)]
    mqtt_json: bool,
    /// The request id of --mqtt-json. Default: `r-` and random hex.
    #[arg(long, requires = "mqtt_json")]
    request_id: Option<String>,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("keys").required(true).args(["config", "public_key"])))]
pub(super) struct VerifyArgs {
    /// The envelope or message body; `-` or none reads standard input.
    file: Option<PathBuf>,
    /// Verify against the `[[broadcast.keys]]` of this configuration.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Verify against this public key (base64 of 32 bytes) instead.
    #[arg(long, requires = "key_id")]
    public_key: Option<String>,
    /// The id of --public-key.
    #[arg(long)]
    key_id: Option<String>,
    /// The scope of --public-key. Default: all.
    #[arg(long, value_delimiter = ',', requires = "public_key")]
    scope: Vec<Target>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `tgw broadcast …`; `verify` exits 1 on a refused command.
pub(super) fn broadcast_cmd(cmd: BroadcastCmd, clock: &dyn Clock) -> anyhow::Result<ExitCode> {
    match cmd {
        BroadcastCmd::Keygen { out, key_id, force } => keygen(&out, key_id, force),
        BroadcastCmd::Sign(a) => sign(a, clock),
        BroadcastCmd::Verify(a) => verify(a, clock),
    }
}

/// DER prefix of an Ed25519 PKCS#8 v1 `PrivateKeyInfo` (RFC 8410): the
/// 32-byte seed follows. This is what `openssl genpkey -algorithm ed25519`
/// writes.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// `sign --cap FILE`: the CAP document in the signed envelope, checked by
/// the gateway's own verifier before it is printed.
fn sign_cap(
    key: &ed25519_dalek::SigningKey,
    key_id: &str,
    path: &Path,
    not_after: &str,
    clock: &dyn Clock,
) -> anyhow::Result<ExitCode> {
    let xml = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--cap {}: {e}", path.display()))?;
    device_drivers::cap::parse(xml.as_bytes())
        .map_err(|e| anyhow::anyhow!("--cap {}: not a CAP 1.2 alert: {e}", path.display()))?;
    let payload = signed::cap_payload(&xml, not_after, &random_hex(16));
    let envelope = signed::sign(key, payload.as_bytes(), key_id);
    let keys = KeySet::from_config(&[KeyConfig {
        id: key_id.to_string(),
        public_key: signed::public_key_base64(&key.verifying_key()),
        scope: vec![Target::All],
    }])
    .map_err(|e| anyhow::anyhow!("--key-id: {e}"))?;
    Verifier::new(keys)
        .verify_cap(envelope.as_bytes(), clock.now_ms())
        .map_err(|e| anyhow::anyhow!("the document would be refused: {e}"))?;
    let mut o = String::new();
    outln!(o, "{envelope}");
    emit(&o)?;
    Ok(ExitCode::SUCCESS)
}

/// The PKCS#8 PEM of a signing key.
fn pkcs8_pem(key: &ed25519_dalek::SigningKey) -> String {
    use base64::Engine as _;
    let mut der = PKCS8_ED25519_PREFIX.to_vec();
    der.extend_from_slice(key.as_bytes());
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        b64().encode(&der)
    )
}

/// Reads a signing key: PKCS#8 PEM (unencrypted Ed25519) or base64 of the
/// 32-byte seed. Errors never echo key material.
fn read_signing_key(path: &Path) -> anyhow::Result<ed25519_dalek::SigningKey> {
    use base64::Engine as _;
    let name = path.display();
    let meta = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("{name}: cannot read: {e}"))?;
    anyhow::ensure!(meta.len() <= 16 * 1024, "{name}: too large for a key file");
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{name}: cannot read: {e}"))?;
    if text.contains("ENCRYPTED PRIVATE KEY") {
        anyhow::bail!(
            "{name}: the key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN)"
        );
    }
    let seed: [u8; 32] = if let Some(start) = text.find("-----BEGIN PRIVATE KEY-----") {
        let body = &text[start + "-----BEGIN PRIVATE KEY-----".len()..];
        let end = body
            .find("-----END PRIVATE KEY-----")
            .ok_or_else(|| anyhow::anyhow!("{name}: PEM without an END line"))?;
        let b: String = body[..end].split_whitespace().collect();
        let der = b64()
            .decode(b.as_bytes())
            .map_err(|_| anyhow::anyhow!("{name}: the PEM body is not base64"))?;
        let seed = der
            .strip_prefix(&PKCS8_ED25519_PREFIX[..])
            .filter(|s| s.len() == 32)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{name}: not an Ed25519 PKCS#8 key (make one with `tgw broadcast keygen` or `openssl genpkey -algorithm ed25519`)"
                )
            })?;
        seed.try_into()?
    } else {
        let raw = b64()
            .decode(text.trim().as_bytes())
            .map_err(|_| anyhow::anyhow!("{name}: neither a PKCS#8 PEM nor base64"))?;
        raw.as_slice().try_into().map_err(|_| {
            anyhow::anyhow!(
                "{name}: {} bytes of base64; an Ed25519 seed is 32",
                raw.len()
            )
        })?
    };
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn write_file(path: &Path, contents: &str, mode: u32, force: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut o = std::fs::OpenOptions::new();
    o.write(true).mode(mode);
    if force {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    let mut f = o.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!("{}: exists (use --force to overwrite)", path.display())
        } else {
            anyhow::anyhow!("{}: cannot write: {e}", path.display())
        }
    })?;
    // An existing file keeps its mode on open: set it.
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore as _;
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn keygen(out: &Path, key_id: Option<String>, force: bool) -> anyhow::Result<ExitCode> {
    let key_id = match key_id {
        Some(k) => k,
        None => out
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("--out {}: no file name", out.display()))?,
    };
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let public = signed::public_key_base64(&key.verifying_key());
    // Checks the id (and the key) as the gateway's configuration will.
    KeySet::from_config(&[KeyConfig {
        id: key_id.clone(),
        public_key: public.clone(),
        scope: vec![Target::All],
    }])
    .map_err(|e| anyhow::anyhow!("--key-id: {e}"))?;
    let key_path = with_suffix(out, ".key");
    let pub_path = with_suffix(out, ".pub");
    write_file(&key_path, &pkcs8_pem(&key), 0o600, force)?;
    write_file(&pub_path, &format!("{public}\n"), 0o644, force)?;
    eprintln!(
        "wrote {} (Ed25519 private key, PKCS#8 PEM, mode 0600) and {} (public key)",
        key_path.display(),
        pub_path.display()
    );
    let mut o = String::new();
    outln!(o, "[[broadcast.keys]]");
    outln!(o, "id = \"{key_id}\"");
    outln!(o, "public_key = \"{public}\"");
    outln!(
        o,
        "scope = [\"all\"]  # narrow to the targets this key may address"
    );
    emit(&o)?;
    Ok(ExitCode::SUCCESS)
}

fn sign(a: SignArgs, clock: &dyn Clock) -> anyhow::Result<ExitCode> {
    let key = read_signing_key(&a.key)?;
    let valid_for = tgw_core::schedule::timetable::parse_duration(&a.valid_for)
        .map_err(|e| anyhow::anyhow!("--valid-for: {e}"))?;
    anyhow::ensure!(
        (10..=24 * 3600).contains(&valid_for.as_secs()),
        "--valid-for {}: use 10s to 24h",
        a.valid_for
    );
    let not_after = clock.now_utc()
        + time::Duration::try_from(valid_for).map_err(|e| anyhow::anyhow!("--valid-for: {e}"))?;
    let not_after = not_after
        .replace_nanosecond(0)
        .unwrap_or(not_after)
        .format(&time::format_description::well_known::Rfc3339)?;
    if let Some(path) = &a.cap {
        return sign_cap(&key, &a.key_id, path, &not_after, clock);
    }
    let action = match a.action {
        ActionArg::Start => "start",
        ActionArg::Stop => "stop",
    };
    let id = match (&a.id, a.action) {
        (Some(id), _) => id.clone(),
        (None, ActionArg::Start) => format!("emg-{}", random_hex(6)),
        (None, ActionArg::Stop) => {
            anyhow::bail!("--action stop needs --id (the broadcast to stop)")
        }
    };
    let mut payload = json!({
        "id": id,
        "action": action,
        "not_after": not_after,
        "nonce": random_hex(16),
        "targets": a.targets.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "priority": match a.priority {
            SignedPriority::Emergency => "emergency",
            SignedPriority::Superior => "superior",
        },
    });
    match (a.action, &a.text, &a.asset) {
        (ActionArg::Start, Some(t), None) => payload["text"] = json!(t),
        (ActionArg::Start, None, Some(s)) => payload["asset"] = json!(s),
        (ActionArg::Start, _, _) => {
            anyhow::bail!("--action start needs --text TEXT or --asset sha256:…")
        }
        (ActionArg::Stop, None, None) => {}
        (ActionArg::Stop, _, _) => anyhow::bail!("--action stop takes no --text or --asset"),
    }
    if let Some(v) = a.volume {
        payload["volume"] = json!(v);
    }
    if let Some(r) = a.repeat {
        payload["repeat"] = json!(r);
    }
    let payload = serde_json::to_vec(&payload)?;
    let envelope = signed::sign(&key, &payload, &a.key_id);
    // Run it through the gateway's own checks, so nothing is printed that a
    // gateway trusting this key would refuse as malformed.
    let keys = KeySet::from_config(&[KeyConfig {
        id: a.key_id.clone(),
        public_key: signed::public_key_base64(&key.verifying_key()),
        scope: vec![Target::All],
    }])
    .map_err(|e| anyhow::anyhow!("--key-id: {e}"))?;
    Verifier::new(keys)
        .verify(envelope.as_bytes(), clock.now_ms())
        .map_err(|e| anyhow::anyhow!("the command would be refused: {e}"))?;
    let mut o = String::new();
    if a.mqtt_json {
        let rid = a
            .request_id
            .unwrap_or_else(|| format!("r-{}", random_hex(8)));
        anyhow::ensure!(
            tgw_core::uplink::commands::valid_request_id(&rid),
            "--request-id: must be 1-128 characters of A-Z a-z 0-9 . _ : -"
        );
        let params: Value = serde_json::from_str(&envelope)?;
        outln!(o, "{}", json!({"request_id": rid, "params": params}));
    } else {
        outln!(o, "{envelope}");
    }
    emit(&o)?;
    Ok(ExitCode::SUCCESS)
}

fn verify(a: VerifyArgs, clock: &dyn Clock) -> anyhow::Result<ExitCode> {
    let mut body = Vec::new();
    match a.file.as_deref() {
        None => {
            std::io::stdin().take(1 << 20).read_to_end(&mut body)?;
        }
        Some(p) if p == Path::new("-") => {
            std::io::stdin().take(1 << 20).read_to_end(&mut body)?;
        }
        Some(p) => {
            body = std::fs::read(p)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", p.display()))?;
        }
    }
    let (keys, command_max) = match (&a.config, &a.public_key, &a.key_id) {
        (Some(c), _, _) => {
            let cfg = Config::load(c)?;
            let keys = KeySet::from_config(&cfg.broadcast.keys)
                .map_err(|e| anyhow::anyhow!("{}: [broadcast] keys: {e}", c.display()))?;
            let max = cfg.mqtt.as_ref().map_or(64 * 1024, |m| m.command_max_bytes);
            (keys, max)
        }
        (None, Some(pk), Some(id)) => {
            let scope = if a.scope.is_empty() {
                vec![Target::All]
            } else {
                a.scope.clone()
            };
            let keys = KeySet::from_config(&[KeyConfig {
                id: id.clone(),
                public_key: pk.clone(),
                scope,
            }])
            .map_err(|e| anyhow::anyhow!("--public-key/--key-id: {e}"))?;
            (keys, 64 * 1024)
        }
        _ => anyhow::bail!("give --config FILE, or --public-key B64 with --key-id ID"),
    };
    let refuse = |code: &str, message: String| {
        if a.json {
            let _ = emit(&format!(
                "{}\n",
                json!({"valid": false, "code": code, "message": message})
            ));
        } else {
            eprintln!("refused: {code}: {message}");
        }
        ExitCode::FAILURE
    };
    // A whole `cmd/emergency` body goes through the gateway's command parser
    // first; its params are the envelope, as received (as over MQTT).
    let is_command = serde_json::from_slice::<Value>(&body)
        .ok()
        .is_some_and(|v| v.get("request_id").is_some());
    let envelope = if is_command {
        match tgw_core::uplink::commands::parse_command("emergency", &body, command_max) {
            Ok(r) => match r.command {
                tgw_core::uplink::commands::Command::Emergency { envelope } => envelope,
                _ => Vec::new(), // not reached: parsed as `emergency`
            },
            Err(e) => return Ok(refuse(e.code.as_str(), e.message)),
        }
    } else {
        body
    };
    let cmd = match Verifier::new(keys).verify(&envelope, clock.now_ms()) {
        Ok(c) => c,
        Err(r) => return Ok(refuse(r.code(), r.to_string())),
    };
    let not_after =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(cmd.not_after) * 1_000_000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
    let (text, asset) = match &cmd.content {
        Some(Content::Text(t)) => (Some(t.clone()), None),
        Some(Content::Asset(s)) => (None, Some(s.clone())),
        None => (None, None),
    };
    let v = json!({
        "valid": true,
        "key_id": cmd.key_id,
        "id": cmd.id,
        "action": match cmd.action { Action::Start => "start", Action::Stop => "stop" },
        "not_after": not_after,
        "nonce": cmd.nonce,
        "targets": cmd.targets,
        "priority": cmd.priority,
        "text": text,
        "asset": asset,
        "volume": cmd.volume,
        "repeat": cmd.repeat,
    });
    let mut o = String::new();
    if a.json {
        outln!(o, "{v}");
    } else {
        outln!(
            o,
            "ok: key {}, {} `{}` ({}), targets {}, not after {not_after}{}",
            cmd.key_id,
            v["action"].as_str().unwrap_or_default(),
            cmd.id,
            cmd.priority,
            targets_text(&cmd.targets),
            match (&text, &asset) {
                (Some(t), _) => format!(", text: {t}"),
                (_, Some(s)) => format!(", asset {s}"),
                _ => String::new(),
            }
        );
    }
    emit(&o)?;
    Ok(ExitCode::SUCCESS)
}
