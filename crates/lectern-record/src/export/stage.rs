//! The stage as it was: which video segment the stage shows at each moment, and where the
//! export's one video track switches from one source to the next.
//!
//! [`stage_timeline`] chooses exactly as the live client and the replay page do
//! (`web-client/replay-model.js`, `#chooseStage`): at time `t`, the presenter if they have a
//! running video segment, else the first staff member (instructors before TAs, each in the
//! order first seen) who has one; of that participant's running video segments, the one that
//! started last. A segment runs on `[offset_ms, offset_ms + duration_ms)`.
//!
//! [`plan_pieces`] turns that wish into what can be played without transcoding: a source is
//! only ever entered at a keyframe. When the stage asks for a new source at `T`, the old one
//! goes on until the new one's first keyframe at or after `T`; if the wish changes again
//! before that keyframe, the pending switch is re-planned. When the stage shows nobody, the
//! video stops at once (a gap: players hold the last picture).

/// A video segment as the stage sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StageSegment {
    /// The manifest's segment number (ties between equal offsets go to the higher one).
    pub n: u32,
    pub participant: String,
    pub offset_ms: u64,
    pub end_ms: u64,
}

/// From `t_ms` on, the stage wants segment `want` (an index into the segments given), or
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StageChange {
    pub t_ms: u64,
    pub want: Option<usize>,
}

/// The stage's wish over the whole recording, one entry per change (the first at 0).
///
/// `presenter_at(t)` and `staff` (in order of precedence) come from the event log.
pub(crate) fn stage_timeline<'a>(
    segments: &[StageSegment],
    presenter_changes: &[u64],
    presenter_at: impl Fn(u64) -> Option<&'a str>,
    staff: &[&str],
) -> Vec<StageChange> {
    let mut times: Vec<u64> = std::iter::once(0)
        .chain(segments.iter().flat_map(|s| [s.offset_ms, s.end_ms]))
        .chain(presenter_changes.iter().copied())
        .collect();
    times.sort_unstable();
    times.dedup();
    // Starts and ends, by time; a segment with nothing in it never runs.
    let mut starts: Vec<usize> = (0..segments.len())
        .filter(|&i| segments[i].end_ms > segments[i].offset_ms)
        .collect();
    let mut ends = starts.clone();
    starts.sort_by_key(|&i| segments[i].offset_ms);
    ends.sort_by_key(|&i| segments[i].end_ms);
    let (mut next_start, mut next_end) = (0, 0);
    let mut running: Vec<usize> = Vec::new();
    let mut changes: Vec<StageChange> = Vec::new();
    for t in times {
        while next_end < ends.len() && segments[ends[next_end]].end_ms <= t {
            running.retain(|&i| i != ends[next_end]);
            next_end += 1;
        }
        while next_start < starts.len() && segments[starts[next_start]].offset_ms <= t {
            let i = starts[next_start];
            if segments[i].end_ms > t {
                running.push(i);
            }
            next_start += 1;
        }
        let want = choose(segments, &running, presenter_at(t), staff);
        if changes.last().is_none_or(|c| c.want != want) {
            changes.push(StageChange { t_ms: t, want });
        }
    }
    changes
}

/// The main picture: `who`'s running video that started last.
fn newest_of(segments: &[StageSegment], running: &[usize], who: &str) -> Option<usize> {
    running
        .iter()
        .copied()
        .filter(|&i| segments[i].participant == who)
        .max_by_key(|&i| (segments[i].offset_ms, segments[i].n))
}

fn choose(
    segments: &[StageSegment],
    running: &[usize],
    presenter: Option<&str>,
    staff: &[&str],
) -> Option<usize> {
    presenter
        .and_then(|p| newest_of(segments, running, p))
        .or_else(|| {
            staff
                .iter()
                .find_map(|who| newest_of(segments, running, who))
        })
}

/// A keyframe of a segment: its time on the recording clock and its index in the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keyframe {
    pub at_us: u64,
    pub index: u64,
}

/// One stretch of the export's video: frames of `segment` from its frame `from.index` (a
/// keyframe, at `from.at_us`) up to, not including, `until_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
    pub segment: usize,
    pub from: Keyframe,
    pub until_us: u64,
    /// How long after the stage asked for it this source could start (waiting for its keyframe).
    pub waited_us: u64,
}

/// Plans the video track (see the [module docs](self)). `first_key(segment, at_us)` answers
/// the first keyframe of `segment` at or after `at_us`, if any; it is asked with times that
/// never go backwards for one segment.
pub(crate) fn plan_pieces(
    changes: &[StageChange],
    mut first_key: impl FnMut(usize, u64) -> Option<Keyframe>,
) -> Vec<Piece> {
    struct Pending {
        segment: usize,
        key: Keyframe,
        asked_us: u64,
    }
    let mut pieces: Vec<Piece> = Vec::new();
    let mut current: Option<Piece> = None;
    let mut pending: Option<Pending> = None;
    let mut switch = |current: &mut Option<Piece>, to: Option<Pending>, at_us: u64| {
        if let Some(mut piece) = current.take() {
            piece.until_us = at_us;
            if piece.until_us > piece.from.at_us {
                pieces.push(piece);
            }
        }
        *current = to.map(|p| Piece {
            segment: p.segment,
            from: p.key,
            until_us: u64::MAX,
            waited_us: p.key.at_us - p.asked_us,
        });
    };
    for change in changes {
        let t_us = change.t_ms.saturating_mul(1000);
        if let Some(p) = pending.take_if(|p| p.key.at_us <= t_us) {
            let at = p.key.at_us;
            switch(&mut current, Some(p), at);
        }
        if change.want.is_some() && change.want == current.map(|c| c.segment) {
            pending = None;
            continue;
        }
        match change.want {
            None => {
                pending = None;
                switch(&mut current, None, t_us);
            }
            Some(segment) => {
                // A source with no keyframe left cannot be entered: the old one goes on.
                pending = first_key(segment, t_us).map(|key| Pending {
                    segment,
                    key: Keyframe {
                        at_us: key.at_us.max(t_us),
                        index: key.index,
                    },
                    asked_us: t_us,
                });
            }
        }
    }
    if let Some(p) = pending.take() {
        let at = p.key.at_us;
        switch(&mut current, Some(p), at);
    }
    switch(&mut current, None, u64::MAX);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(n: u32, who: &str, offset_ms: u64, end_ms: u64) -> StageSegment {
        StageSegment {
            n,
            participant: who.into(),
            offset_ms,
            end_ms,
        }
    }

    fn wants(changes: &[StageChange]) -> Vec<(u64, Option<usize>)> {
        changes.iter().map(|c| (c.t_ms, c.want)).collect()
    }

    #[test]
    fn presenter_with_video_else_instructor_before_ta() {
        let segments = [
            seg(1, "ta", 0, 100_000),
            seg(2, "in", 2_000, 60_000),
            seg(3, "s1", 10_000, 30_000),
            // The instructor's screen share starts later: it becomes the main picture.
            seg(4, "in", 40_000, 50_000),
        ];
        // s1 presents from 5 s (no video until 10 s) to 20 s; again from 70 s (no video then).
        let presenters = [
            (0, None),
            (5_000, Some("s1")),
            (20_000, None),
            (70_000, Some("s1")),
        ];
        let at = |t: u64| {
            presenters
                .iter()
                .rev()
                .find(|(at, _)| *at <= t)
                .and_then(|(_, p)| *p)
        };
        let times: Vec<u64> = presenters.iter().map(|(t, _)| *t).collect();
        let changes = stage_timeline(&segments, &times, at, &["in", "ta"]);
        assert_eq!(
            wants(&changes),
            [
                (0, Some(0)),      // only the TA shows video
                (2_000, Some(1)),  // the instructor comes first
                (10_000, Some(2)), // the presenter, once their video runs
                (20_000, Some(1)), // presentation over
                (40_000, Some(3)), // the newest of the instructor's videos
                (50_000, Some(1)),
                (60_000, Some(0)), // instructor gone: the TA
                (100_000, None),   // nobody shows video
            ]
        );
    }

    #[test]
    fn a_student_without_the_stage_is_never_shown() {
        let segments = [seg(1, "s1", 0, 10_000)];
        let changes = stage_timeline(&segments, &[0], |_| None, &["in"]);
        assert_eq!(wants(&changes), [(0, None)]);
    }

    /// Keyframes every `gop_ms` from each segment's start, as `first_key` answers them.
    fn keys(segments: &[StageSegment], gop_ms: u64) -> impl FnMut(usize, u64) -> Option<Keyframe> {
        let segments = segments.to_vec();
        move |i, at_us| {
            let s = &segments[i];
            let since = (at_us / 1000).saturating_sub(s.offset_ms);
            let k = since.div_ceil(gop_ms);
            let at_ms = s.offset_ms + k * gop_ms;
            (at_ms < s.end_ms).then_some(Keyframe {
                at_us: at_ms * 1000,
                index: k * gop_ms / 10, // 100 frames a second
            })
        }
    }

    fn spans(pieces: &[Piece]) -> Vec<(usize, u64, u64, u64)> {
        pieces
            .iter()
            .map(|p| {
                (
                    p.segment,
                    p.from.at_us / 1000,
                    p.until_us.min(u64::MAX / 1000 * 1000) / 1000,
                    p.waited_us / 1000,
                )
            })
            .collect()
    }

    #[test]
    fn switches_wait_for_the_new_sources_keyframe() {
        let segments = [seg(1, "in", 0, 60_000), seg(2, "s1", 5_000, 30_000)];
        let changes = [
            StageChange {
                t_ms: 0,
                want: Some(0),
            },
            StageChange {
                t_ms: 10_300,
                want: Some(1),
            },
            StageChange {
                t_ms: 20_500,
                want: Some(0),
            },
            StageChange {
                t_ms: 60_000,
                want: None,
            },
        ];
        let pieces = plan_pieces(&changes, keys(&segments, 1_000));
        let end = u64::MAX / 1000;
        assert_eq!(
            spans(&pieces),
            [
                (0, 0, 11_000, 0),
                (1, 11_000, 21_000, 700),
                (0, 21_000, 60_000, 500)
            ]
        );
        assert_eq!(pieces[1].from.index, 600);
        // Without a stop, the last piece runs to the segment's own end.
        let pieces = plan_pieces(&changes[..3], keys(&segments, 1_000));
        assert_eq!(spans(&pieces)[2], (0, 21_000, end, 500));
    }

    #[test]
    fn a_switch_overtaken_by_the_next_one_is_replanned() {
        let segments = [
            seg(1, "in", 0, 60_000),
            seg(2, "s1", 0, 60_000),
            seg(3, "s2", 0, 60_000),
        ];
        // Keyframes every 10 s. s1 is asked for at 1 s (its keyframe: 10 s), then s2 at 4 s
        // (also 10 s): s2 is shown from 10 s; the instructor, asked for at 12 s, from 20 s.
        let changes = [
            StageChange {
                t_ms: 0,
                want: Some(0),
            },
            StageChange {
                t_ms: 1_000,
                want: Some(1),
            },
            StageChange {
                t_ms: 4_000,
                want: Some(2),
            },
            StageChange {
                t_ms: 12_000,
                want: Some(0),
            },
        ];
        let pieces = plan_pieces(&changes, keys(&segments, 10_000));
        let end = u64::MAX / 1000;
        assert_eq!(
            spans(&pieces),
            [
                (0, 0, 10_000, 0),
                (2, 10_000, 20_000, 6_000),
                (0, 20_000, end, 8_000)
            ]
        );
        // Back to the old source before the new one's keyframe: no switch at all.
        let changes = [
            StageChange {
                t_ms: 0,
                want: Some(0),
            },
            StageChange {
                t_ms: 1_000,
                want: Some(1),
            },
            StageChange {
                t_ms: 4_000,
                want: Some(0),
            },
        ];
        assert_eq!(
            spans(&plan_pieces(&changes, keys(&segments, 10_000))),
            [(0, 0, end, 0)]
        );
    }

    #[test]
    fn no_stage_is_a_gap_and_a_source_without_keyframes_is_never_entered() {
        let segments = [seg(1, "in", 0, 10_000), seg(2, "in", 15_000, 30_000)];
        let changes = [
            StageChange {
                t_ms: 0,
                want: Some(0),
            },
            StageChange {
                t_ms: 10_000,
                want: None,
            },
            StageChange {
                t_ms: 15_000,
                want: Some(1),
            },
            StageChange {
                t_ms: 30_000,
                want: None,
            },
        ];
        assert_eq!(
            spans(&plan_pieces(&changes, keys(&segments, 2_000))),
            [(0, 0, 10_000, 0), (1, 15_000, 30_000, 0)]
        );
        // The second segment has no keyframe left when it is asked for: never entered.
        let changes = [
            StageChange {
                t_ms: 0,
                want: Some(0),
            },
            StageChange {
                t_ms: 9_000,
                want: Some(1),
            },
        ];
        let only_the_first =
            |i: usize, at_us: u64| (i == 0).then_some(Keyframe { at_us, index: 0 });
        assert_eq!(
            spans(&plan_pieces(&changes, only_the_first)),
            [(0, 0, u64::MAX / 1000, 0)]
        );
    }
}
