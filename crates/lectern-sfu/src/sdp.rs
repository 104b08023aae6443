//! SDP text the SFU reads or fixes itself, where str0m's SDP API has no say.
//!
//! - str0m writes our ICE candidates only into the first m-line of a bundle; some clients
//!   (aiortc) read a transport's candidates from another bundled m-line and never start ICE.
//!   [`candidates_in_every_mline`] copies them into every m-line we send.
//! - str0m locks header extension ids and payload types at the first negotiation of each and
//!   has no way to change them later: an offer that renumbers them gets a wrong answer (no
//!   extensions, payload types the offer lacks). [`Numbering`] records what was agreed, so
//!   such an offer is refused before str0m sees it.
//! - str0m stamps a transport-wide sequence number (transport-cc) on every RTP packet it sends
//!   on an m-line where the remote agreed to the extension, and keeps a record of the last 1,000
//!   (~88 KiB a peer, not configurable in str0m 0.25) for a send-side bandwidth estimator the
//!   SFU does not run. [`without_transport_cc_on_send_only`] leaves the extension out of the
//!   m-lines the SFU only sends on, so it is negotiated only where the SFU receives (the
//!   publishing browser's own estimator needs our feedback there).

/// `sdp` with the ICE candidate lines (and `a=end-of-candidates`, if present) of whichever
/// m-line has them copied into every other m-line that is part of the bundle (port not 0), so
/// that any bundled m-line can be read alone. Other lines are kept as they are.
pub(crate) fn candidates_in_every_mline(sdp: &str) -> String {
    let is_candidate = |l: &str| l.starts_with("a=candidate:") || l == "a=end-of-candidates";
    let mut candidates: Vec<&str> = Vec::new();
    for line in sdp.lines().filter(|l| is_candidate(l)) {
        if !candidates.contains(&line) {
            candidates.push(line);
        }
    }
    if candidates.is_empty() {
        return sdp.to_string();
    }
    let mut out = String::with_capacity(sdp.len() * 2);
    let lines: Vec<&str> = sdp.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        push_line(&mut out, line);
        i += 1;
        if !line.starts_with("m=") {
            continue;
        }
        let end = lines[i..]
            .iter()
            .position(|l| l.starts_with("m="))
            .map_or(lines.len(), |n| i + n);
        let section = &lines[i..end];
        let bundled = line.split(' ').nth(1) != Some("0");
        if bundled && !section.iter().any(|l| l.starts_with("a=candidate:")) {
            // Attributes come last in a media description (RFC 8866 5): before its first one.
            let first_attr = section
                .iter()
                .position(|l| l.starts_with("a="))
                .unwrap_or(section.len());
            for l in &section[..first_attr] {
                push_line(&mut out, l);
            }
            for l in &candidates {
                push_line(&mut out, l);
            }
            for l in &section[first_attr..] {
                push_line(&mut out, l);
            }
            i = end;
        }
    }
    out
}

/// The transport-cc header extension (draft-holmer-rmcat-transport-wide-cc-extensions).
const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// Who wrote an SDP: the direction attribute of an m-line on which the SFU only sends reads
/// `a=sendonly` in the SFU's own SDP and `a=recvonly` in the browser's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writer {
    Sfu,
    Browser,
}

/// `sdp` without the browser's ICE candidates (`a=candidate:` lines). The SFU, a full ICE
/// agent with a reachable address, checks only addresses whose own checks reached it and
/// authenticated (peer-reflexive): it sends no STUN to an address a client merely named,
/// and the answers to its checks come from addresses the demultiplexer already knows (by
/// the check that preceded them). Browsers put the candidates they have gathered into their
/// descriptions (all of them with a candidate pool); none is needed.
pub(crate) fn without_candidates(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.lines().filter(|l| !l.starts_with("a=candidate:")) {
        push_line(&mut out, line);
    }
    out
}

/// `sdp` without the transport-cc extension (`a=extmap` of its URI, `a=rtcp-fb:<pt>
/// transport-cc`) in the m-lines on which the SFU only sends (or nothing flows: `a=inactive`).
/// Applied to the browser's SDP before str0m reads it and to the SFU's offers before they are
/// sent, so neither side stamps or expects it there; m-lines the SFU receives on keep it.
/// Other lines are kept as they are.
pub(crate) fn without_transport_cc_on_send_only(sdp: &str, writer: Writer) -> String {
    let send_only = match writer {
        Writer::Sfu => "a=sendonly",
        Writer::Browser => "a=recvonly",
    };
    let is_transport_cc = |l: &str| {
        (l.starts_with("a=extmap:") && l.split(' ').nth(1) == Some(TRANSPORT_CC_URI))
            || (l.starts_with("a=rtcp-fb:") && l.split(' ').nth(1) == Some("transport-cc"))
    };
    let lines: Vec<&str> = sdp.lines().collect();
    let mut out = String::with_capacity(sdp.len());
    let mut start = 0;
    while start < lines.len() {
        // One section: the session part, or an m-line and its attributes.
        let end = lines[start + 1..]
            .iter()
            .position(|l| l.starts_with("m="))
            .map_or(lines.len(), |n| start + 1 + n);
        let section = &lines[start..end];
        let strip = section[0].starts_with("m=")
            && section.iter().any(|&l| l == send_only || l == "a=inactive");
        for &line in section {
            if !(strip && is_transport_cc(line)) {
                push_line(&mut out, line);
            }
        }
        start = end;
    }
    out
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line);
    out.push_str("\r\n");
}

/// Longest extension URI and codec name (`name/clock/channels`) read; real ones are far
/// shorter, and longer ones are ignored (they cannot be anything the SFU negotiates).
const MAX_URI_LEN: usize = 256;
const MAX_CODEC_LEN: usize = 64;

/// Most extensions and payload types a peer's record keeps: str0m negotiates a handful.
const MAX_RECORDED: usize = 32;

/// The header extension ids and payload types of an SDP, over all its m-lines: what a
/// negotiation agreed on (recorded from its answer), or what a new offer asks for. Reading one
/// takes time linear in the SDP's length, whatever it holds (it is read on a media worker).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Numbering {
    /// `a=extmap` id and URI.
    exts: Vec<(u8, Box<str>)>,
    /// Payload type and its codec: `name/clock[/channels]` in lower case, and for a
    /// retransmission format also the codec it repairs (`rtx/90000 for vp8/90000`).
    pts: Vec<(u8, Box<str>)>,
}

impl Numbering {
    pub fn of_sdp(sdp: &str) -> Numbering {
        let mut numbering = Numbering::default();
        // (payload type, codec, apt) of the current m-line, one per payload type (so at most
        // 128): `apt` refers within it.
        let mut section: Vec<(u8, String, Option<u8>)> = Vec::new();
        for line in sdp.lines().chain(std::iter::once("m=")) {
            if line.starts_with("m=") {
                numbering.add_codecs(&section);
                section.clear();
            } else if let Some(rest) = line.strip_prefix("a=extmap:") {
                // `a=extmap:<id>[/<direction>] <uri> [<attributes>]`
                let mut words = rest.split_whitespace();
                let id = words.next().and_then(|w| w.split('/').next()?.parse().ok());
                if let (Some(id @ 1..), Some(uri)) = (id, words.next())
                    && uri.len() <= MAX_URI_LEN
                {
                    numbering.exts.push((id, uri.into()));
                }
            } else if let Some(rest) = line.strip_prefix("a=rtpmap:") {
                // `a=rtpmap:<pt> <name>/<clock>[/<channels>]`
                let mut words = rest.split_whitespace();
                if let (Some(Ok(pt @ 0..=127)), Some(codec)) =
                    (words.next().map(str::parse::<u8>), words.next())
                    && codec.len() <= MAX_CODEC_LEN
                    && !section.iter().any(|(p, _, _)| *p == pt)
                {
                    section.push((pt, codec.to_ascii_lowercase(), None));
                }
            } else if let Some(rest) = line.strip_prefix("a=fmtp:") {
                // `a=fmtp:<pt> ...;apt=<pt>;...`
                let Some((pt, params)) = rest.split_once(' ') else {
                    continue;
                };
                let apt = params
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("apt="))
                    .and_then(|a| a.parse().ok());
                if let (Ok(pt), Some(apt)) = (pt.parse::<u8>(), apt)
                    && let Some(entry) = section.iter_mut().find(|(p, _, _)| *p == pt)
                {
                    entry.2 = Some(apt);
                }
            }
        }
        numbering
    }

    fn add_codecs(&mut self, section: &[(u8, String, Option<u8>)]) {
        for (pt, codec, apt) in section {
            let repaired = apt.and_then(|a| section.iter().find(|(p, _, _)| *p == a));
            let codec: Box<str> = match repaired {
                Some((_, repaired, _)) => format!("{codec} for {repaired}").into(),
                None => codec.as_str().into(),
            };
            self.pts.push((*pt, codec));
        }
    }

    /// Keep what `agreed` numbers and this does not yet: the first agreement on an id or a
    /// payload type stands (as in str0m).
    pub fn record(&mut self, agreed: &Numbering) {
        for (id, uri) in &agreed.exts {
            if self.exts.len() < MAX_RECORDED && !self.exts.iter().any(|(i, u)| i == id || u == uri)
            {
                self.exts.push((*id, uri.clone()));
            }
        }
        for (pt, codec) in &agreed.pts {
            if self.pts.len() < MAX_RECORDED && !self.pts.iter().any(|(p, c)| p == pt || c == codec)
            {
                self.pts.push((*pt, codec.clone()));
            }
        }
    }

    /// How `offer` renumbers what was agreed, if it does: an extension or a codec agreed
    /// before and offered under another number, or an agreed number offered for something
    /// else (the first few of these, for people). `None` when it keeps every agreed number
    /// (new extensions and codecs are fine).
    pub fn renumbered_by(&self, offer: &Numbering) -> Option<String> {
        const SHOWN: usize = 3;
        let mut found = Vec::new();
        for (id, uri) in &self.exts {
            let offered = numbers_of(&offer.exts, uri);
            if !offered.is_empty() && !offered.contains(id) {
                found.push(format!("extension {uri} had id {id}, now {offered:?}"));
            }
            if let Some((_, other)) = offer.exts.iter().find(|(i, u)| i == id && u != uri) {
                found.push(format!("extension id {id} was {uri}, now {other}"));
            }
        }
        for (pt, codec) in &self.pts {
            let offered = numbers_of(&offer.pts, codec);
            if !offered.is_empty() && !offered.contains(pt) {
                found.push(format!("{codec} had payload type {pt}, now {offered:?}"));
            }
            if let Some((_, other)) = offer.pts.iter().find(|(p, c)| p == pt && c != codec) {
                found.push(format!("payload type {pt} was {codec}, now {other}"));
            }
        }
        if found.is_empty() {
            return None;
        }
        let more = found.len().saturating_sub(SHOWN);
        found.truncate(SHOWN);
        let mut text = found.join("; ");
        if more > 0 {
            text.push_str(&format!("; {more} more"));
        }
        Some(text)
    }
}

/// The numbers `named` has in `entries`, each once, in order.
fn numbers_of(entries: &[(u8, Box<str>)], named: &str) -> Vec<u8> {
    let mut numbers: Vec<u8> = entries
        .iter()
        .filter(|(_, n)| **n == *named)
        .map(|(number, _)| *number)
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browsers_candidates_are_left_out_and_nothing_else() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n\
            a=candidate:1 1 udp 2122260223 192.0.2.2 41631 typ host generation 0\r\n\
            a=candidate:2 1 udp 2122194687 127.0.0.1 40001 typ host generation 0\r\n\
            a=ice-ufrag:abcd\r\na=mid:0\r\n";
        assert_eq!(
            without_candidates(sdp),
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n\
             a=ice-ufrag:abcd\r\na=mid:0\r\n"
        );
    }

    const THREE_MLINES: &str = "v=0\r\n\
        o=str0m-0.25.0 1 2 IN IP4 0.0.0.0\r\n\
        s=-\r\n\
        t=0 0\r\n\
        a=group:BUNDLE 0 1 2 3\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
        c=IN IP4 0.0.0.0\r\n\
        a=candidate:1 1 udp 2130706175 10.0.0.1 5000 typ host\r\n\
        a=candidate:2 1 udp 2130706175 192.0.2.1 5000 typ host\r\n\
        a=ice-ufrag:abcd\r\n\
        a=mid:0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
        c=IN IP4 0.0.0.0\r\n\
        a=ice-ufrag:abcd\r\n\
        a=mid:1\r\n\
        m=video 0 UDP/TLS/RTP/SAVPF 96 97\r\n\
        c=IN IP4 0.0.0.0\r\n\
        a=mid:2\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
        c=IN IP4 0.0.0.0\r\n\
        a=ice-ufrag:abcd\r\n\
        a=mid:3\r\n";

    /// The m-line sections of an SDP (each from its `m=` line on).
    fn sections(sdp: &str) -> Vec<&str> {
        sdp.split("m=").skip(1).collect()
    }

    #[test]
    fn every_bundled_mline_gets_the_candidates_of_the_first() {
        let fixed = candidates_in_every_mline(THREE_MLINES);
        let sections = sections(&fixed);
        assert_eq!(sections.len(), 4);
        for n in [0, 1, 3] {
            let s = sections[n];
            assert!(
                s.contains("c=IN IP4 0.0.0.0\r\na=candidate:1 1 udp 2130706175 10.0.0.1 5000 typ host\r\na=candidate:2 1 udp 2130706175 192.0.2.1 5000 typ host\r\na=ice-ufrag:abcd\r\n"),
                "m-line {n}: {s}"
            );
        }
        // A rejected m-line (port 0) is not part of the bundle: left alone.
        assert!(!sections[2].contains("a=candidate"), "{}", sections[2]);
        // Nothing else changed.
        let without = |sdp: &str| {
            sdp.lines()
                .filter(|l| !l.starts_with("a=candidate:"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(without(&fixed), without(THREE_MLINES));
        // Fixing twice changes nothing more.
        assert_eq!(candidates_in_every_mline(&fixed), fixed);
    }

    #[test]
    fn end_of_candidates_is_copied_too_and_sdp_without_candidates_is_unchanged() {
        let with_end = THREE_MLINES.replace(
            "a=ice-ufrag:abcd\r\na=mid:0",
            "a=end-of-candidates\r\na=ice-ufrag:abcd\r\na=mid:0",
        );
        let fixed = candidates_in_every_mline(&with_end);
        for s in sections(&fixed)
            .into_iter()
            .filter(|s| !s.starts_with("video 0"))
        {
            assert!(s.contains("a=end-of-candidates\r\n"), "{s}");
        }
        let none: String = THREE_MLINES
            .lines()
            .filter(|l| !l.starts_with("a=candidate:"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        assert_eq!(candidates_in_every_mline(&none), none);
    }

    const FIRST: &str = "v=0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
        a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
        a=extmap:3/sendonly urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
        a=rtpmap:111 opus/48000/2\r\n\
        a=fmtp:111 minptime=10;useinbandfec=1\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
        a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
        a=rtpmap:96 VP8/90000\r\n\
        a=rtpmap:97 rtx/90000\r\n\
        a=fmtp:97 apt=96\r\n";

    fn agreed(sdp: &str) -> Numbering {
        let mut n = Numbering::default();
        n.record(&Numbering::of_sdp(sdp));
        n
    }

    #[test]
    fn numbering_reads_extension_ids_and_payload_types_per_codec() {
        let n = agreed(FIRST);
        let exts: Vec<(u8, &str)> = n.exts.iter().map(|(i, u)| (*i, &**u)).collect();
        assert_eq!(
            exts,
            [
                (1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
                (3, "urn:ietf:params:rtp-hdrext:sdes:mid")
            ]
        );
        let pts: Vec<(u8, &str)> = n.pts.iter().map(|(p, c)| (*p, &**c)).collect();
        assert_eq!(
            pts,
            [
                (111, "opus/48000/2"),
                (96, "vp8/90000"),
                (97, "rtx/90000 for vp8/90000")
            ]
        );
    }

    #[test]
    fn an_offer_keeping_the_numbers_or_adding_new_ones_renumbers_nothing() {
        let before = agreed(FIRST);
        assert_eq!(before.renumbered_by(&Numbering::of_sdp(FIRST)), None);
        let more = format!(
            "{FIRST}m=video 9 UDP/TLS/RTP/SAVPF 96 97 45\r\n\
             a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
             a=extmap:13 urn:3gpp:video-orientation\r\n\
             a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
             a=rtpmap:45 AV1/90000\r\n"
        );
        assert_eq!(before.renumbered_by(&Numbering::of_sdp(&more)), None);
        // Only video this time: what audio agreed is not offered, so not renumbered.
        let video = &FIRST[FIRST.find("m=video").unwrap()..];
        assert_eq!(before.renumbered_by(&Numbering::of_sdp(video)), None);
    }

    #[test]
    fn an_offer_moving_an_extension_or_a_codec_is_found() {
        let before = agreed(FIRST);
        let moved_ext = FIRST.replace("a=extmap:1 ", "a=extmap:5 ");
        let found = before
            .renumbered_by(&Numbering::of_sdp(&moved_ext))
            .unwrap();
        assert!(
            found.contains("ssrc-audio-level had id 1, now [5]"),
            "{found}"
        );

        let reused_id = FIRST.replace(
            "a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
        );
        let found = before
            .renumbered_by(&Numbering::of_sdp(&reused_id))
            .unwrap();
        assert!(found.contains("extension id 1 was urn:ietf:params:rtp-hdrext:ssrc-audio-level, now urn:ietf:params:rtp-hdrext:sdes:mid"), "{found}");

        let moved_pt = FIRST
            .replace("AVPF 111", "AVPF 109")
            .replace(":111 ", ":109 ");
        let found = before.renumbered_by(&Numbering::of_sdp(&moved_pt)).unwrap();
        assert_eq!(found, "opus/48000/2 had payload type 111, now [109]");

        let moved_rtx = FIRST.replace(":97 ", ":98 ");
        let found = before
            .renumbered_by(&Numbering::of_sdp(&moved_rtx))
            .unwrap();
        assert_eq!(
            found,
            "rtx/90000 for vp8/90000 had payload type 97, now [98]"
        );

        let swapped = FIRST
            .replace("96 VP8", "X")
            .replace("111 opus", "96 opus")
            .replace("X", "111 VP8");
        let found = before.renumbered_by(&Numbering::of_sdp(&swapped)).unwrap();
        // Five moves (opus, VP8 and the codec its RTX repairs, each way): the first few told.
        assert_eq!(
            found,
            "opus/48000/2 had payload type 111, now [96]; \
             payload type 111 was opus/48000/2, now vp8/90000; \
             vp8/90000 had payload type 96, now [111]; 2 more"
        );
    }

    #[test]
    fn the_first_agreement_on_a_number_stands() {
        let mut n = agreed(FIRST);
        n.record(&Numbering::of_sdp(
            &FIRST.replace("a=extmap:1 ", "a=extmap:5 "),
        ));
        assert_eq!(n, agreed(FIRST));
    }

    #[test]
    fn what_cannot_be_negotiated_is_not_read_and_the_record_stays_small() {
        let long_uri = format!("urn:x:{}", "a".repeat(MAX_URI_LEN));
        let odd = format!(
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 200\r\n\
             a=extmap:0 urn:zero\r\na=extmap:7 {long_uri}\r\n\
             a=rtpmap:200 opus/48000/2\r\na=rtpmap:111 {}/1\r\n",
            "x".repeat(MAX_CODEC_LEN)
        );
        assert_eq!(Numbering::of_sdp(&odd), Numbering::default());

        let many: String = (1..=255u8)
            .map(|id| format!("a=extmap:{id} urn:x:{id}\r\n"))
            .chain((0..=127u8).map(|pt| format!("a=rtpmap:{pt} c{pt}/90000\r\n")))
            .collect();
        let mut n = Numbering::default();
        n.record(&Numbering::of_sdp(&format!("m=video 9 X\r\n{many}")));
        assert_eq!((n.exts.len(), n.pts.len()), (MAX_RECORDED, MAX_RECORDED));
    }

    #[test]
    fn transport_cc_is_left_out_only_where_the_sfu_only_sends() {
        let cc =
            "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
        let sdp = format!(
            "v=0\r\na=group:BUNDLE 0 1 2\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n{cc}\r\na=rtcp-fb:111 transport-cc\r\na=sendonly\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 96\r\n{cc}\r\na=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
             a=rtcp-fb:96 transport-cc\r\na=rtcp-fb:96 nack\r\na=recvonly\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 96\r\n{cc}\r\na=rtcp-fb:96 transport-cc\r\na=inactive\r\n"
        );
        let browser = without_transport_cc_on_send_only(&sdp, Writer::Browser);
        let s = sections(&browser);
        // The browser sends on the first: the SFU receives there and keeps it.
        assert!(
            s[0].contains(cc) && s[0].contains("a=rtcp-fb:111 transport-cc"),
            "{browser}"
        );
        for section in &s[1..] {
            assert!(
                !section.contains("transport-cc") && !section.contains(cc),
                "{browser}"
            );
        }
        assert!(s[1].contains("a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid"));
        assert!(s[1].contains("a=rtcp-fb:96 nack"));
        assert!(browser.starts_with("v=0\r\na=group:BUNDLE 0 1 2\r\n"));
        // In the SFU's own SDP `a=sendonly` is where it only sends.
        let sfu = without_transport_cc_on_send_only(&sdp, Writer::Sfu);
        let s = sections(&sfu);
        assert!(!s[0].contains("transport-cc"), "{sfu}");
        assert!(
            s[1].contains(cc) && s[1].contains("a=rtcp-fb:96 transport-cc"),
            "{sfu}"
        );
        assert!(!s[2].contains("transport-cc"), "{sfu}");
    }
}
