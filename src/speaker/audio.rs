//! The audio of a warning: text turned into speech by espeak-ng (zh, en) or an audio file,
//! decoded by GStreamer into mono 16-bit PCM at the rate a speaker needs, then volume, repeats
//! and the device's encoding (G.711 μ-law 8 kHz for backchannels and vendor two-way audio,
//! WAV for local playback and external commands).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gstreamer as gst;
use gstreamer_app as gst_app;
use gst::prelude::*;

/// Sample rate of G.711 (telephony, camera backchannels).
pub const G711_RATE: u32 = 8000;
/// Silence between two repeats of a message.
pub const REPEAT_GAP_S: f64 = 0.5;

/// Mono 16-bit PCM.
#[derive(Clone, Debug, PartialEq)]
pub struct Pcm {
    pub rate: u32,
    pub samples: Vec<i16>,
}

/// Why a message's audio could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AudioError {
    #[error("text-to-speech: {0}")]
    Speech(String),
    #[error("cannot decode {what}: {msg}")]
    Decode { what: String, msg: String },
}

impl Pcm {
    /// Seconds of audio.
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / self.rate as f64
    }

    /// The message as played: gain `volume` (0..=100 %, clipped) and `repeat` copies separated
    /// by [`REPEAT_GAP_S`] of silence.
    pub fn shaped(&self, volume: u8, repeat: u32) -> Pcm {
        let gain = f32::from(volume.min(100)) / 100.0;
        let gap = (REPEAT_GAP_S * self.rate as f64).round() as usize;
        let n = repeat.max(1) as usize;
        let mut out = Vec::with_capacity(n * self.samples.len() + (n - 1) * gap);
        for k in 0..n {
            if k > 0 {
                out.extend(std::iter::repeat_n(0i16, gap));
            }
            out.extend(self.samples.iter().map(|&s| (f32::from(s) * gain).round().clamp(-32768.0, 32767.0) as i16));
        }
        Pcm { rate: self.rate, samples: out }
    }

    /// G.711 μ-law bytes, one per sample (the caller makes sure the rate is 8 kHz).
    pub fn to_mulaw(&self) -> Vec<u8> {
        self.samples.iter().map(|&s| mulaw_encode(s)).collect()
    }

    /// A RIFF/WAVE file of the samples (PCM 16-bit mono).
    pub fn to_wav(&self) -> Vec<u8> {
        let data_len = (self.samples.len() * 2) as u32;
        let mut w = Vec::with_capacity(44 + data_len as usize);
        w.extend_from_slice(b"RIFF");
        w.extend_from_slice(&(36 + data_len).to_le_bytes());
        w.extend_from_slice(b"WAVEfmt ");
        w.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
        w.extend_from_slice(&1u16.to_le_bytes()); // PCM
        w.extend_from_slice(&1u16.to_le_bytes()); // mono
        w.extend_from_slice(&self.rate.to_le_bytes());
        w.extend_from_slice(&(self.rate * 2).to_le_bytes()); // byte rate
        w.extend_from_slice(&2u16.to_le_bytes()); // block align
        w.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
        w.extend_from_slice(b"data");
        w.extend_from_slice(&data_len.to_le_bytes());
        for s in &self.samples {
            w.extend_from_slice(&s.to_le_bytes());
        }
        w
    }

    /// Root mean square of the samples (0 for silence), for checks and logs.
    pub fn rms(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        (self.samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / self.samples.len() as f64).sqrt()
    }
}

/// G.711 μ-law encoding of one linear 16-bit sample (ITU-T G.711: bias 0x84, 8 segments,
/// bits inverted on the wire).
pub fn mulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    let mag = s.abs().min(CLIP) + BIAS;
    // segment = position of the highest set bit above bit 7
    let exponent = (31 - (mag as u32).leading_zeros()).saturating_sub(7).min(7) as i32;
    let mantissa = (mag >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// Linear value of one μ-law byte (the inverse of [`mulaw_encode`], up to quantisation).
pub fn mulaw_decode(byte: u8) -> i16 {
    let b = !byte;
    let sign = b & 0x80;
    let exponent = i32::from((b >> 4) & 0x07);
    let mantissa = i32::from(b & 0x0f);
    let mag = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -mag } else { mag }) as i16
}

/// The espeak-ng voice for a message language.
pub fn espeak_voice(lang: &str) -> Option<&'static str> {
    match lang {
        "zh" | "cmn" => Some("cmn"),
        "en" => Some("en"),
        _ => None,
    }
}

/// Whether espeak-ng can be run (text messages need it).
pub fn espeak_available() -> bool {
    Command::new("espeak-ng").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Speaks `text` in `lang` (`zh` or `en`) with espeak-ng and decodes it to `rate`.
pub fn speech(text: &str, lang: &str, rate: u32, work_dir: &Path) -> Result<Pcm, AudioError> {
    let voice = espeak_voice(lang).ok_or_else(|| AudioError::Speech(format!("unsupported language {lang:?} (zh, en)")))?;
    std::fs::create_dir_all(work_dir).map_err(|e| AudioError::Speech(format!("{}: {e}", work_dir.display())))?;
    let wav = tempfile::Builder::new()
        .prefix("tts-")
        .suffix(".wav")
        .tempfile_in(work_dir)
        .map_err(|e| AudioError::Speech(format!("temporary file in {}: {e}", work_dir.display())))?;
    // the text goes in as an argument, never through a shell
    let out = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "150", "-w"])
        .arg(wav.path())
        .arg("--")
        .arg(text)
        .output()
        .map_err(|e| AudioError::Speech(format!("cannot run espeak-ng ({e}); install it: apt install espeak-ng")))?;
    if !out.status.success() {
        return Err(AudioError::Speech(format!("espeak-ng failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    let pcm = decode_file(wav.path(), rate)?;
    if pcm.samples.is_empty() {
        return Err(AudioError::Speech("espeak-ng produced no audio".into()));
    }
    Ok(pcm)
}

/// Decodes any audio file GStreamer can read to mono 16-bit PCM at `rate`.
pub fn decode_file(path: &Path, rate: u32) -> Result<Pcm, AudioError> {
    let what = path.display().to_string();
    let err = |msg: String| AudioError::Decode { what: what.clone(), msg };
    crate::source::init_gstreamer().map_err(|e| err(e.to_string()))?;
    let desc = format!(
        "filesrc name=src ! decodebin ! audioconvert ! audioresample ! audio/x-raw,format=S16LE,channels=1,rate={rate},layout=interleaved ! appsink name=sink sync=false"
    );
    let pipeline = gst::parse::launch(&desc)
        .map_err(|e| err(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| err("not a pipeline".into()))?;
    let result = pull_all(&pipeline, path);
    let _ = pipeline.set_state(gst::State::Null);
    result.map(|samples| Pcm { rate, samples }).map_err(err)
}

fn pull_all(pipeline: &gst::Pipeline, path: &Path) -> Result<Vec<i16>, String> {
    let src = pipeline.by_name("src").ok_or("no filesrc")?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let sink = pipeline.by_name("sink").ok_or("no appsink")?.downcast::<gst_app::AppSink>().map_err(|_| "not an appsink")?;
    pipeline.set_state(gst::State::Playing).map_err(|_| bus_error(pipeline).unwrap_or_else(|| "cannot start decoding".into()))?;
    let mut samples = Vec::new();
    loop {
        match sink.try_pull_sample(gst::ClockTime::from_seconds(10)) {
            Some(sample) => {
                let buf = sample.buffer().ok_or("sample without buffer")?;
                let map = buf.map_readable().map_err(|_| "unreadable buffer")?;
                samples.extend(map.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])));
            }
            None if sink.is_eos() => break,
            None => return Err(bus_error(pipeline).unwrap_or_else(|| "decoding timed out".into())),
        }
    }
    if let Some(e) = bus_error(pipeline) {
        return Err(e);
    }
    Ok(samples)
}

/// The first error message waiting on the pipeline's bus.
fn bus_error(pipeline: &gst::Pipeline) -> Option<String> {
    let bus = pipeline.bus()?;
    while let Some(msg) = bus.timed_pop_filtered(gst::ClockTime::ZERO, &[gst::MessageType::Error]) {
        if let gst::MessageView::Error(e) = msg.view() {
            return Some(e.error().to_string());
        }
    }
    None
}

/// Plays PCM on a local GStreamer audio sink (`sink` is a sink description such as
/// `autoaudiosink` or `alsasink device=hw:1`), blocking until it has played or `timeout`.
pub fn play_local(pcm: &Pcm, sink: &str, timeout: Duration) -> Result<(), String> {
    crate::source::init_gstreamer().map_err(|e| e.to_string())?;
    let desc = format!(
        "appsrc name=src format=time caps=audio/x-raw,format=S16LE,channels=1,rate={},layout=interleaved ! audioconvert ! audioresample ! {sink}",
        pcm.rate
    );
    let pipeline = gst::parse::launch(&desc)
        .map_err(|e| format!("audio sink {sink:?}: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
    let result = (|| {
        let src = pipeline.by_name("src").ok_or("no appsrc")?.downcast::<gst_app::AppSrc>().map_err(|_| "not an appsrc")?;
        pipeline.set_state(gst::State::Playing).map_err(|_| bus_error(&pipeline).unwrap_or_else(|| format!("audio sink {sink:?} cannot start")))?;
        let bytes: Vec<u8> = pcm.samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut buffer = gst::Buffer::from_mut_slice(bytes);
        {
            let b = buffer.get_mut().ok_or("buffer")?;
            b.set_pts(gst::ClockTime::ZERO);
            b.set_duration(gst::ClockTime::from_nseconds((pcm.duration_s() * 1e9) as u64));
        }
        src.push_buffer(buffer).map_err(|e| format!("audio sink: {e:?}"))?;
        src.end_of_stream().map_err(|e| format!("audio sink: {e:?}"))?;
        let bus = pipeline.bus().ok_or("no bus")?;
        let wait = gst::ClockTime::from_nseconds(timeout.as_nanos() as u64);
        match bus.timed_pop_filtered(wait, &[gst::MessageType::Eos, gst::MessageType::Error]) {
            None => Err(format!("audio did not finish playing within {:.0} s", timeout.as_secs_f64())),
            Some(msg) => match msg.view() {
                gst::MessageView::Error(e) => Err(format!("audio sink: {}", e.error())),
                _ => Ok(()),
            },
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulaw_matches_g711_reference_points() {
        // G.711 table: 0 → 0xFF, the largest magnitudes → 0x80 / 0x00, small steps near zero
        assert_eq!(mulaw_encode(0), 0xff);
        assert_eq!(mulaw_encode(-1), 0x7f);
        assert_eq!(mulaw_encode(32767), 0x80);
        assert_eq!(mulaw_encode(-32768), 0x00);
        assert_eq!(mulaw_encode(8), 0xfe);
        assert_eq!(mulaw_decode(0xff), 0);
        assert_eq!(mulaw_decode(0x80), 32124);
        assert_eq!(mulaw_decode(0x00), -32124);
    }

    #[test]
    fn mulaw_round_trip_error_is_within_the_segment_step() {
        for s in (-32000i32..32000).step_by(37) {
            let s = s as i16;
            let back = mulaw_decode(mulaw_encode(s));
            // one quantisation step of the segment: 1/16 of the biased magnitude
            let step = (i32::from(s).abs() + 0x84) / 16;
            assert!((i32::from(back) - i32::from(s)).abs() <= step, "{s} → {back}");
            assert!(i32::from(back) * i32::from(s) >= 0, "sign of {s}");
        }
    }

    #[test]
    fn shaping_applies_gain_and_repeats_with_gaps() {
        let p = Pcm { rate: 8000, samples: vec![1000, -2000, 30000] };
        let half = p.shaped(50, 1);
        assert_eq!(half.samples, vec![500, -1000, 15000]);
        let twice = p.shaped(100, 2);
        assert_eq!(twice.samples.len(), 3 + 4000 + 3);
        assert_eq!(&twice.samples[..3], &p.samples[..]);
        assert!(twice.samples[3..4003].iter().all(|&s| s == 0));
        assert_eq!(&twice.samples[4003..], &p.samples[..]);
        assert_eq!(p.shaped(100, 0).samples, p.samples, "repeat 0 plays once");
    }

    #[test]
    fn wav_header_describes_the_samples() {
        let p = Pcm { rate: 16000, samples: vec![1, 2, 3] };
        let w = p.to_wav();
        assert_eq!(w.len(), 44 + 6);
        assert_eq!(&w[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(w[24..28].try_into().unwrap()), 16000);
        assert_eq!(u32::from_le_bytes(w[40..44].try_into().unwrap()), 6);
    }
}
