//! Bus messages → supervisor events, and GStreamer's error texts made one line for `last_error`.

use gstreamer as gst;
use gstreamer::prelude::*;

use super::camera::PipelineEvent;

/// Longest `last_error` kept (characters).
const MAX_ERROR_LEN: usize = 300;

/// Turns the bus messages the supervisor cares about into events.
pub(crate) fn bus_event(msg: &gst::Message) -> Option<PipelineEvent> {
    use gst::MessageView;
    let src = || msg.src().map(|s| s.name().to_string()).unwrap_or_else(|| "pipeline".into());
    match msg.view() {
        MessageView::Error(e) => {
            let text = describe(&src(), &e.error().to_string(), e.debug().as_deref());
            // rtspsrc's "No supported stream was found" (every SETUP refused) carries this code;
            // matching the code, not the (translated) text.
            let from_rtspsrc = msg
                .src()
                .and_then(|s| s.downcast_ref::<gst::Element>())
                .and_then(|e| e.factory())
                .is_some_and(|f| f.name() == "rtspsrc");
            if from_rtspsrc && e.error().matches(gst::StreamError::CodecNotFound) {
                Some(PipelineEvent::NoStream(text))
            } else {
                Some(PipelineEvent::Error(text))
            }
        }
        MessageView::Warning(w) => {
            Some(PipelineEvent::Warning(describe(&src(), &w.error().to_string(), w.debug().as_deref())))
        }
        MessageView::Eos(_) => Some(PipelineEvent::Eos),
        _ => None,
    }
}

/// `rtspsrc0: Could not open resource for reading and writing. (Failed to connect. (Generic error))`:
/// the element, the error, and the useful tail of the debug string (without the C source
/// location and the element path GStreamer puts first).
pub(crate) fn describe(src: &str, error: &str, debug: Option<&str>) -> String {
    let mut s = format!("{src}: {error}");
    // A debug string that is only the element's path (`/GstPipeline:pipeline0/GstRTSPSrc:…`)
    // repeats `src`.
    let path_only = |d: &str| d.starts_with("/Gst") && !d.contains(char::is_whitespace);
    if let Some(d) = debug.map(shorten_debug).filter(|d| !d.is_empty() && d != error && !path_only(d)) {
        s.push_str(" (");
        s.push_str(&d);
        s.push(')');
    }
    one_line(&s)
}

fn shorten_debug(debug: &str) -> String {
    let mut lines: Vec<&str> = debug.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    // First line is usually `file.c(123): function (): /GstPipeline:pipeline0/...:` followed by
    // the message on the next line(s); with a single line, keep what follows the element path.
    if lines.len() > 1 && lines[0].contains("): ") {
        lines.remove(0);
        return lines.join("; ");
    }
    match lines.first() {
        Some(l) => match l.rfind(":\n").or_else(|| l.rfind("): ")) {
            Some(i) if l.contains("/Gst") => {
                let rest = &l[i..];
                let rest = rest.rsplit_once(": ").map(|(_, r)| r).unwrap_or(rest);
                rest.to_string()
            }
            _ => l.to_string(),
        },
        None => String::new(),
    }
}

/// Collapses whitespace and caps the length.
pub(crate) fn one_line(s: &str) -> String {
    let mut out = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > MAX_ERROR_LEN {
        out = out.chars().take(MAX_ERROR_LEN - 1).collect();
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_one_line() {
        let d = "../gst/rtsp/gstrtspsrc.c(8187): gst_rtspsrc_retrieve_sdp (): /GstPipeline:pipeline0/GstRTSPSrc:rtspsrc0:\nFailed to connect. (Generic error)";
        assert_eq!(
            describe("rtspsrc0", "Could not open resource for reading and writing.", Some(d)),
            "rtspsrc0: Could not open resource for reading and writing. (Failed to connect. (Generic error))"
        );
        assert_eq!(describe("x", "boom", None), "x: boom");
        let d = "../gst/rtsp/gstrtspsrc.c(7894): gst_rtspsrc_setup_streams_start (): /GstPipeline:pipeline8/GstRTSPSrc:rtspsrc8";
        assert_eq!(describe("rtspsrc8", "No supported stream was found.", Some(d)), "rtspsrc8: No supported stream was found.");
        let long = "a ".repeat(400);
        assert!(one_line(&long).chars().count() <= MAX_ERROR_LEN);
        assert!(!one_line("a\nb\tc").contains('\n'));
    }
}
