//! The chat beside the video: WebVTT cues (one per message, "Name: text", at its time on the
//! recording clock) and the same messages as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::log::ChatLine;

/// How long a message stays on screen at most.
pub(crate) const CUE_MS: u64 = 5_000;
/// How long at least (a burst of messages would otherwise flash by).
pub(crate) const MIN_CUE_MS: u64 = 1_000;
/// At most this many messages on screen at once: a cue ends when the one this many after it
/// starts (but not before [`MIN_CUE_MS`]).
pub(crate) const MAX_ON_SCREEN: usize = 3;

/// `HH:MM:SS.mmm`, as WebVTT writes times (hours at least two digits).
pub(crate) fn vtt_time(ms: u64) -> String {
    let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{h:02}:{m:02}:{s:02}.{milli:03}")
}

/// Text made safe for a WebVTT cue payload: `&`, `<` and `>` escaped (so no tag and no `-->`
/// can appear), no line breaks in `name`, and in `text` line breaks kept as single ones (a
/// blank line would end the cue); other control characters dropped.
fn vtt_escape(s: &str, keep_lines: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_break = true;
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' | '\n' | '\u{2028}' | '\u{2029}' => {
                if keep_lines && !last_break {
                    out.push('\n');
                } else if !keep_lines && !last_break {
                    out.push(' ');
                }
                last_break = true;
                continue;
            }
            '\t' => out.push(' '),
            c if c.is_control() => continue,
            c => out.push(c),
        }
        last_break = false;
    }
    while out.ends_with(['\n', ' ']) {
        out.pop();
    }
    out
}

/// The WebVTT file for `chat` (sorted by time).
pub(crate) fn to_vtt(chat: &[ChatLine]) -> String {
    let mut out = String::from("WEBVTT\n");
    for (i, m) in chat.iter().enumerate() {
        let start = m.t_ms;
        let crowded = chat
            .get(i + MAX_ON_SCREEN)
            .map_or(u64::MAX, |later| later.t_ms);
        let end = (start + CUE_MS).min(crowded).max(start + MIN_CUE_MS);
        let _ = write!(
            out,
            "\nchat-{}\n{} --> {}\n",
            m.seq,
            vtt_time(start),
            vtt_time(end)
        );
        let name = vtt_escape(&m.from_name, false);
        let text = vtt_escape(&m.text, true);
        out.push_str(if name.is_empty() { "?" } else { &name });
        out.push(':');
        if !text.is_empty() {
            out.push(' ');
            out.push_str(&text);
        }
        out.push('\n');
    }
    out
}

#[derive(Serialize)]
struct JsonLine<'a> {
    t_ms: u64,
    seq: u64,
    from: &'a str,
    from_name: &'a str,
    to: &'a serde_json::Value,
    text: &'a str,
}

/// `[{"t_ms","seq","from","from_name","to","text"}, ...]`, one message a line.
pub(crate) fn to_json(chat: &[ChatLine]) -> String {
    let mut out = String::from("[");
    for (i, m) in chat.iter().enumerate() {
        let line = JsonLine {
            t_ms: m.t_ms,
            seq: m.seq,
            from: &m.from,
            from_name: &m.from_name,
            to: &m.to,
            text: &m.text,
        };
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        // Serializing strings and numbers cannot fail.
        out.push_str(&serde_json::to_string(&line).unwrap_or_default());
    }
    out.push_str(if chat.is_empty() { "]\n" } else { "\n]\n" });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(t_ms: u64, seq: u64, name: &str, text: &str) -> ChatLine {
        ChatLine {
            t_ms,
            seq,
            from: "p".into(),
            from_name: name.into(),
            to: serde_json::json!({"kind": "everyone"}),
            text: text.into(),
        }
    }

    #[test]
    fn times() {
        assert_eq!(vtt_time(0), "00:00:00.000");
        assert_eq!(vtt_time(3_723_004), "01:02:03.004");
        assert_eq!(vtt_time(100 * 3_600_000), "100:00:00.000");
    }

    #[test]
    fn cues_escape_markup_and_never_hold_a_blank_line() {
        let vtt = to_vtt(&[
            line(
                1_000,
                7,
                "Ada <b>",
                "a --> b & <i>c</i>\r\n\r\n\nsecond\u{0}line\n",
            ),
            line(2_000, 8, "Bo\nb", ""),
        ]);
        assert_eq!(
            vtt,
            "WEBVTT\n\nchat-7\n00:00:01.000 --> 00:00:06.000\nAda &lt;b&gt;: a --&gt; b &amp; &lt;i&gt;c&lt;/i&gt;\nsecondline\n\
             \nchat-8\n00:00:02.000 --> 00:00:07.000\nBo b:\n"
        );
    }

    #[test]
    fn a_burst_keeps_at_most_three_on_screen() {
        let chat: Vec<ChatLine> = (0..5).map(|i| line(i * 500, i, "A", "x")).collect();
        let vtt = to_vtt(&chat);
        assert!(vtt.contains("00:00:00.000 --> 00:00:01.500"), "{vtt}");
        assert!(vtt.contains("00:00:00.500 --> 00:00:02.000"), "{vtt}");
        // The last ones have nothing after them: the full time.
        assert!(vtt.contains("00:00:02.000 --> 00:00:07.000"), "{vtt}");
    }

    #[test]
    fn json_lines() {
        let json = to_json(&[line(5, 1, "Ada", "hi \"there\"")]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{"t_ms": 5, "seq": 1, "from": "p", "from_name": "Ada",
                                "to": {"kind": "everyone"}, "text": "hi \"there\""}])
        );
        assert_eq!(to_json(&[]), "[]\n");
    }
}
