//! `tgw speaker test`: make one horn (or several, as one broadcast) speak
//! and print what happened.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::output::{emit, outln};

use crate::base::clock::Clock;
use crate::base::shutdown::cancel_on_signal;

#[derive(Subcommand)]
pub(super) enum SpeakerCmd {
    /// Play a tone, a file or a spoken text on one horn and print what
    /// happened (answered or not, started at, packets sent, errors).
    Test(SpeakerTestArgs),
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("audio").required(true).args(["tone", "file", "say"])))]
pub(super) struct SpeakerTestArgs {
    /// rtp://HOST:PORT?codec=pcmu|pcma, rtp://GROUP:PORT?codec=pcma&ttl=N[&if=ADDR],
    /// sip:USER@HOST:PORT, axis://USER:PASS@HOST:PORT,
    /// cloud://HORN_ID@BROKER:PORT[?serve=ADDR:PORT&volume=V]
    /// (docs/speakers.md). Several URIs play as
    /// one broadcast: one start time T0 for all, one report per horn.
    #[arg(required = true, num_args = 1..)]
    uri: Vec<String>,
    /// A sine tone of this frequency (Hz).
    #[arg(long)]
    tone: Option<f64>,
    /// Length of the tone in seconds.
    #[arg(long, default_value_t = 3.0, requires = "tone")]
    seconds: f64,
    /// An audio file (MP3, WAV, OGG/Vorbis, FLAC, Opus in WebM/Ogg, AAC in MP4/M4A).
    #[arg(long)]
    file: Option<PathBuf>,
    /// A text spoken by the TTS engine.
    #[arg(long)]
    say: Option<String>,
    /// Password for SIP digest or the HTTP speaker (or set TGW_PASSWORD).
    #[arg(long, env = "TGW_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// How long a SIP horn may take to answer, seconds.
    #[arg(long, default_value_t = 5.0)]
    answer_timeout: f64,
    /// Delay between the horn being ready and the start, milliseconds.
    #[arg(long, default_value_t = 200)]
    playout_delay_ms: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `tgw speaker test`: exit 0 when every horn played the whole
/// audio without errors.
pub(super) async fn speaker_test(
    a: SpeakerTestArgs,
    clock: &dyn Clock,
) -> anyhow::Result<ExitCode> {
    let mut o = String::new();
    use device_drivers::speaker::{self, DriverOptions, SpeakerUri};
    let mut uris = Vec::with_capacity(a.uri.len());
    for u in &a.uri {
        let uri: SpeakerUri = u.parse()?;
        uris.push(uri.with_password(a.password.clone()));
    }
    let pcm = load_audio(&a).await?;
    if !(a.answer_timeout > 0.0 && a.answer_timeout <= 120.0) {
        anyhow::bail!(
            "--answer-timeout {}: use more than 0 and at most 120",
            a.answer_timeout
        );
    }
    let opts = DriverOptions {
        answer_timeout: std::time::Duration::from_secs_f64(a.answer_timeout),
        ..DriverOptions::default()
    };
    let cancel = cancel_on_signal();
    let started_wall = clock.now_utc();
    let started_mono = tokio::time::Instant::now();
    let delay = std::time::Duration::from_millis(a.playout_delay_ms);
    let (reports, t0) = match uris.as_slice() {
        [one] => (
            vec![speaker::play(one, &opts, &pcm, delay, &cancel).await],
            None,
        ),
        many => {
            // A broadcast: T0 is fixed now; horns ready later join in sync.
            let t0 = tokio::time::Instant::now() + delay;
            let pcm = std::sync::Arc::new(pcm.clone());
            (
                speaker::broadcast(many, &opts, pcm, t0, &cancel).await,
                Some(t0),
            )
        }
    };
    let wall = |i: tokio::time::Instant| {
        (started_wall + (i - started_mono))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let audio_seconds = pcm.len() as f64 / 8000.0;
    let mut all_ok = true;
    for rep in &reports {
        let started_at = rep.first_sent.map(wall);
        let ok = rep.errors.is_empty() && rep.completed;
        all_ok &= ok;
        if ok && rep.answered == speaker::Answered::Unknown {
            eprintln!(
                "warning: {}: sent, but the horn never answered (RTP is one-way and it sent no RTCP receiver report): it may not have played",
                rep.device
            );
        }
        if a.json {
            let mut v = serde_json::to_value(rep)?;
            v["started_at"] = serde_json::json!(started_at);
            v["t0"] = serde_json::json!(t0.map(wall));
            v["audio_seconds"] = serde_json::json!(audio_seconds);
            v["ok"] = serde_json::json!(ok);
            v["result"] = serde_json::json!(rep.result());
            outln!(o, "{v}");
            continue;
        }
        print_report(&mut o, rep, started_at.as_deref(), audio_seconds, ok);
        if reports.len() > 1 {
            outln!(o);
        }
    }
    emit(&o)?;
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The audio of `--tone`, `--file` or `--say`, as 8 kHz samples.
async fn load_audio(a: &SpeakerTestArgs) -> anyhow::Result<Vec<i16>> {
    Ok(match (a.tone, &a.file, &a.say) {
        (Some(hz), _, _) => {
            if !(20.0..=3900.0).contains(&hz) {
                anyhow::bail!("--tone {hz}: use 20..3900 Hz (8 kHz sampling)");
            }
            if !(a.seconds > 0.0 && a.seconds <= 600.0) {
                anyhow::bail!("--seconds {}: use more than 0 and at most 600", a.seconds);
            }
            device_drivers::g711::tone(hz, a.seconds, 12_000)
        }
        (None, Some(f), _) => {
            let f = f.clone();
            tokio::task::spawn_blocking(move || crate::broadcast::audio::load_file(&f)).await??
        }
        (None, None, Some(t)) => {
            let t = t.clone();
            tokio::task::spawn_blocking(move || crate::broadcast::audio::tts(&t)).await??
        }
        _ => anyhow::bail!("give --tone HZ, --file F or --say TEXT"),
    })
}

/// One horn's report as text.
fn print_report(
    o: &mut String,
    rep: &device_drivers::speaker::PlayReport,
    started_at: Option<&str>,
    audio_seconds: f64,
    ok: bool,
) {
    outln!(o, "horn:      {} ({})", rep.device, rep.kind);
    use device_drivers::speaker::Answered;
    let answered = match (rep.answered, rep.answer_ms) {
        (Answered::Yes, Some(ms)) => format!("yes, after {ms:.0} ms"),
        (Answered::Yes, None) => "yes".to_string(),
        (Answered::No, _) => "no".to_string(),
        (Answered::Unknown, _) => "unknown (one-way RTP, no RTCP receiver report)".to_string(),
    };
    outln!(o, "answered:  {answered}");
    if let Some(c) = &rep.codec {
        outln!(o, "codec:     {c}");
    }
    match (started_at, rep.start_offset_ms) {
        (Some(s), Some(off)) => outln!(o, "started:   {s} (T0 {off:+.1} ms)"),
        _ => outln!(o, "started:   -"),
    }
    outln!(
        o,
        "sent:      {} packets, {} bytes ({:.1} s of {:.1} s)",
        rep.packets,
        rep.octets,
        rep.octets as f64 / 8000.0,
        audio_seconds
    );
    for e in &rep.errors {
        outln!(o, "error:     {e}");
    }
    let _ = ok;
    outln!(o, "result:    {}", rep.result());
}
