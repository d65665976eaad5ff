//! `tgw probe camera|rtsp`: one device's ONVIF inventory, or one RTSP
//! stream's metadata and a timed sample.
//!
//! A one-shot tool that technicians run by hand and scripts run in loops,
//! compared with ffprobe and onvif-zeep (issue 18.5, BENCHMARKS.md): its
//! start-up ([`main`]) parses only its own arguments, opens no store, reads
//! no config, loads no TLS roots and runs on a current-thread runtime.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use super::output::{emit, out, outln};

use super::input::read_stdin_password;
use crate::store::secrets::Password;

#[derive(Subcommand)]
pub(super) enum ProbeCmd {
    /// Print the full ONVIF inventory of one camera.
    Camera {
        /// Device service address, e.g. http://10.21.3.5/onvif/device_service.
        xaddr: String,
        /// Username.
        #[arg(long)]
        user: Option<String>,
        /// Password (or set TGW_PASSWORD, or use --password-stdin).
        #[arg(long, env = "TGW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Per-call timeout in seconds.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Skip the RTSP DESCRIBE of each profile's stream.
        #[arg(long)]
        no_rtsp: bool,
    },
    /// RTSP stream metadata (DESCRIBE), and optionally a timed sample.
    Rtsp {
        /// rtsp://[user:password@]host[:port]/path
        url: String,
        /// Username (overrides one in the URL).
        #[arg(long)]
        user: Option<String>,
        /// Password (or set TGW_PASSWORD).
        #[arg(long, env = "TGW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Also PLAY for this many seconds and measure fps, bitrate, keyframe
        /// interval, RTP loss and time to first frame.
        #[arg(long)]
        sample: Option<f64>,
        /// Transport for the sample: tcp (interleaved) or udp.
        #[arg(long, default_value = "tcp")]
        transport: String,
        /// Per-exchange timeout in seconds.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tgw probe`, parsed on its own (`tgw probe --help` is this command's).
#[derive(Parser)]
#[command(
    name = "tgw probe",
    bin_name = "tgw probe",
    version,
    about = "Probe one device."
)]
struct ProbeCli {
    #[command(subcommand)]
    cmd: ProbeCmd,
}

/// Entry point of `tgw probe ...` (called by `cmd::main` before anything
/// else is set up): its arguments, warnings on stderr, a current-thread
/// runtime (one device, a handful of sequential calls).
pub(super) fn main() -> ExitCode {
    let cli = ProbeCli::parse_from(std::env::args_os().skip(1));
    crate::base::logging::init(
        "warn,retina::client::parse=error",
        crate::base::logging::Format::Plain,
    );
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::base::logging::say(format_args!("tgw: cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(probe_cmd(cli.cmd)) {
        Ok(code) => code,
        Err(e) => {
            crate::base::logging::say(format_args!("tgw: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Runs `tgw probe camera` or `tgw probe rtsp`.
pub(super) async fn probe_cmd(cmd: ProbeCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ProbeCmd::Camera {
            xaddr,
            user,
            password,
            password_stdin,
            timeout,
            json,
            no_rtsp,
        } => {
            let password = if password_stdin {
                Some(read_stdin_password()?)
            } else {
                password
            };
            probe_camera(&xaddr, user, password, timeout, json, !no_rtsp).await
        }
        ProbeCmd::Rtsp {
            url,
            user,
            password,
            sample,
            transport,
            timeout,
            json,
        } => probe_rtsp(&url, user, password, sample, &transport, timeout, json).await,
    }
}

async fn probe_camera(
    xaddr: &str,
    user: Option<String>,
    password: Option<String>,
    timeout: f64,
    json: bool,
    rtsp: bool,
) -> anyhow::Result<ExitCode> {
    let mut o = String::new();
    anyhow::ensure!(
        timeout.is_finite() && (0.1..=120.0).contains(&timeout),
        "--timeout must be between 0.1 and 120 seconds"
    );
    let login = match (user, password) {
        (Some(u), Some(p)) => Some(crate::store::Login {
            username: u,
            password: Password::new(p),
            source: "cli".into(),
        }),
        (None, None) => None,
        (Some(_), None) => {
            anyhow::bail!("--user needs a password: --password, TGW_PASSWORD or --password-stdin")
        }
        (None, Some(_)) => anyhow::bail!("a password needs --user"),
    };
    let prober = crate::cameras::inventory::Prober::new(Duration::from_secs_f64(timeout))?;
    let inv = prober
        .inventory(xaddr, login.as_ref())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // RTSP metadata of each profile's stream, with the same login.
    let creds = login.as_ref().map(|l| {
        device_drivers::onvif_client::Credentials::new(l.username.clone(), l.password.expose())
    });
    let opts = device_drivers::rtsp_probe::RtspOptions {
        timeout: Duration::from_secs_f64(timeout),
        ..Default::default()
    };
    let mut streams = serde_json::Map::new();
    if rtsp {
        for p in &inv.profiles {
            let Some(uri) = &p.stream_uri else { continue };
            let v = match device_drivers::rtsp_probe::describe(uri, creds.as_ref(), &opts).await {
                Ok(m) => serde_json::to_value(&m)?,
                Err(e) => {
                    serde_json::json!({ "error": { "kind": e.kind_label(), "message": e.to_string() } })
                }
            };
            streams.insert(p.profile.token.clone(), v);
        }
    }
    if json {
        let mut v = serde_json::to_value(&inv)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("rtsp".into(), serde_json::Value::Object(streams));
        }
        outln!(o, "{}", serde_json::to_string_pretty(&v)?);
    } else {
        out!(o, "{}", crate::cameras::inventory::render(&inv));
        for (token, m) in &streams {
            outln!(
                o,
                "rtsp [{token}]  {}",
                crate::cameras::inventory::render_stream(m)
            );
        }
    }
    emit(&o)?;
    Ok(ExitCode::SUCCESS)
}

async fn probe_rtsp(
    url: &str,
    user: Option<String>,
    password: Option<String>,
    sample: Option<f64>,
    transport: &str,
    timeout: f64,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut o = String::new();
    use device_drivers::rtsp_probe::{self, RtspOptions, Transport};
    anyhow::ensure!(
        timeout.is_finite() && (0.1..=120.0).contains(&timeout),
        "--timeout must be between 0.1 and 120 seconds"
    );
    let transport = match transport {
        "tcp" => Transport::Tcp,
        "udp" => Transport::Udp,
        other => anyhow::bail!("--transport `{other}`: use tcp or udp"),
    };
    let creds = match (user, password) {
        (Some(u), Some(p)) => Some(device_drivers::onvif_client::Credentials::new(u, p)),
        (Some(_), None) => anyhow::bail!("--user needs a password: --password or TGW_PASSWORD"),
        _ => None,
    };
    let mut opts = RtspOptions {
        timeout: Duration::from_secs_f64(timeout),
        transport,
        ..Default::default()
    };
    let meta = rtsp_probe::describe(url, creds.as_ref(), &opts)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = match sample {
        Some(secs) => {
            anyhow::ensure!(
                secs.is_finite() && (0.2..=60.0).contains(&secs),
                "--sample must be between 0.2 and 60 seconds"
            );
            opts.window = Duration::from_secs_f64(secs);
            Some(
                rtsp_probe::sample(url, creds.as_ref(), &opts)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            )
        }
        None => None,
    };
    if json {
        let v = serde_json::json!({
            "url": device_drivers::rtsp::redact_url(url),
            "metadata": meta,
            "sample": report,
        });
        outln!(o, "{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!(o, "url       {}", device_drivers::rtsp::redact_url(url));
        outln!(
            o,
            "{}",
            crate::cameras::inventory::render_stream(&serde_json::to_value(&meta)?)
        );
        if let Some(r) = report {
            outln!(
                o,
                "sample    {} frames, {:.1} fps, {:.0} kbit/s, keyframe every {}, {} RTP packets lost, first frame after {} ms ({:?})",
                r.frames,
                r.measured_fps.unwrap_or(0.0),
                r.bitrate_kbps,
                r.keyframe_interval_frames
                    .map_or("?".into(), |k| format!("{k:.0} frames")),
                r.rtp_loss_packets,
                r.time_to_first_frame_ms,
                r.transport
            );
        }
    }
    emit(&o)?;
    Ok(ExitCode::SUCCESS)
}
