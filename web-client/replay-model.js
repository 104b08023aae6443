// @ts-check
/**
 * The replay page's model: everything that depends on the playhead, computed from the server's
 * answer to `GET /replay/v1/recordings/<id>` (the recording, its segments and its event log).
 * No DOM and no clock, so it runs under Node for tests; replay.js draws what it says.
 *
 * Times are milliseconds since the recording started (the playhead `t`, a segment's
 * `offset_ms`, an event line's `t`). Everything is worked out once, when the answer arrives,
 * into lists sorted by time; a query for a playhead is a binary search in one of them, so a
 * frame costs the same at the start and at the end of a two-hour class with thousands of chat
 * lines.
 */
import { isStaffRole } from './protocol.js';
import { REPLAY_STRINGS } from './strings.js';

/** @typedef {import('./protocol.js').Role} Role */
/** @typedef {import('./protocol.js').Snapshot} Snapshot */
/** @typedef {import('./protocol.js').RoomEvent} RoomEvent */
/** @typedef {import('./protocol.js').ChatMessage} ChatMessage */
/** @typedef {import('./protocol.js').ChatTarget} ChatTarget */
/** @typedef {import('./protocol.js').ParticipantInfo} ParticipantInfo */

/** @typedef {'recording' | 'processing' | 'ready' | 'failed'} RecordingState */
/**
 * @typedef {{id: string, course_id: string, room: string, title: string, state: RecordingState,
 *   started_at: number, ended_at: number | null, duration_ms: number, downloadable: boolean}} RecordingInfo
 */
/**
 * One continuous span of one published track, as in the manifest, plus the URL to play it from.
 * @typedef {{n: number, file?: string, participant_id: string, kind: 'video' | 'audio', track: string,
 *   offset_ms: number, duration_ms: number, width?: number, height?: number, frames?: number,
 *   bytes?: number, open?: boolean, url: string}} Segment
 */
/** @typedef {{n: number, at_ms: number, duration_ms: number, reason: string}} Gap */
/**
 * One line of the event log (`events.jsonl`); other types are ignored.
 * @typedef {{t: number, type: 'start', started_at: number, snapshot: Snapshot}
 *   | {t: number, type: 'event', seq: number, at: number, event: RoomEvent}
 *   | {t: number, type: 'reaction', participant_id: string, reaction: string}
 *   | {t: number, type: 'active_speaker', participant_id: string | null}
 *   | {t: number, type: 'stop', reason: string}} LogLine
 */
/**
 * @typedef {{recording: RecordingInfo, viewer: {participant_id?: string, role: Role},
 *   segments: Segment[], gaps: Gap[], events: LogLine[], download_url: string | null}} ReplayAnswer
 */

/** @typedef {{id: string, name: string, role: Role}} Person */
/**
 * What the stage shows: whose video, the main picture and the small one (either may be null).
 * @typedef {{participantId: string | null, main: Segment | null, small: Segment | null}} Stage
 */
/**
 * A chat message as replayed: `t` is when it was sent on the recording's clock (0 for messages
 * from before the recording, which the start snapshot carries).
 * @typedef {{t: number, seq: number, from: string, fromName: string, fromRole: Role,
 *   to: ChatTarget, toName: string | null, toViewer: boolean, private: boolean, text: string,
 *   sentAt: number}} ReplayChat
 */
/**
 * @typedef {'recording_started' | 'class_started' | 'presentation' | 'called_on'
 *   | 'presentation_ended' | 'class_ended' | 'gap'} ChapterKind
 */
/**
 * A place to jump to. Gaps are chapters too, but only for their own span (`end`): after a gap
 * the chapter before it goes on.
 * @typedef {{t: number, end: number | null, kind: ChapterKind, participantId: string | null,
 *   title: string}} Chapter
 */

/** The answer could not be read as a recording. */
export class ReplayFormatError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'ReplayFormatError';
  }
}

const ROLE_ORDER = ['instructor', 'ta', 'student', 'observer'];
/** A `class_started` this soon after the recording started is where the first chapter begins. */
const START_MERGE_MS = 2000;
/** Gaps closer than this are one chapter ("Recording gap"), not a list of them. */
const GAP_MERGE_MS = 1000;
/** Speeds the page offers. */
export const SPEEDS = [1, 1.25, 1.5, 1.75, 2];

/**
 * Index of the last item whose time is <= t (-1 when none): a binary search in a sorted list.
 * @template T
 * @param {T[]} items sorted by `time(item)`
 * @param {number} t
 * @param {(item: T) => number} time
 */
export function lastAtOrBefore(items, t, time) {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (time(items[mid]) <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/**
 * `m:ss`, or `h:mm:ss` from an hour on, of a time in milliseconds (rounded down to the second).
 * @param {number} ms
 */
export function formatClock(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** @param {unknown} v @returns {v is number} */
const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);
/** @param {unknown} v @returns {v is Record<string, any>} */
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The answer checked for what the page relies on (a malformed one throws ReplayFormatError;
 * malformed segments, gaps and event lines are left out rather than failing the whole page).
 * @param {unknown} json
 * @returns {ReplayAnswer}
 */
export function parseAnswer(json) {
  if (!isObject(json) || !isObject(json.recording)) throw new ReplayFormatError('no recording in the answer');
  const r = json.recording;
  if (typeof r.id !== 'string') throw new ReplayFormatError('recording without id');
  if (!Array.isArray(json.segments) || !Array.isArray(json.events)) throw new ReplayFormatError('no segments or events');
  const segments = json.segments.filter(
    (s) =>
      isObject(s) && isNumber(s.n) && isNumber(s.offset_ms) && isNumber(s.duration_ms) && s.duration_ms >= 0 &&
      (s.kind === 'video' || s.kind === 'audio') && typeof s.participant_id === 'string' && typeof s.url === 'string',
  );
  const gaps = (Array.isArray(json.gaps) ? json.gaps : []).filter(
    (g) => isObject(g) && isNumber(g.at_ms) && isNumber(g.duration_ms),
  );
  const events = json.events.filter((line) => isObject(line) && isNumber(line.t) && typeof line.type === 'string');
  return {
    recording: {
      id: r.id,
      course_id: String(r.course_id ?? ''),
      room: String(r.room ?? ''),
      title: typeof r.title === 'string' ? r.title : '',
      state: ['recording', 'processing', 'ready', 'failed'].includes(r.state) ? r.state : 'ready',
      started_at: isNumber(r.started_at) ? r.started_at : 0,
      ended_at: isNumber(r.ended_at) ? r.ended_at : null,
      duration_ms: isNumber(r.duration_ms) ? r.duration_ms : 0,
      downloadable: r.downloadable === true,
    },
    viewer: isObject(json.viewer) ? /** @type {any} */ (json.viewer) : { role: 'student' },
    segments,
    gaps,
    events,
    download_url: typeof json.download_url === 'string' && json.download_url ? json.download_url : null,
  };
}

/**
 * One span of the recording during which nothing on the stage or in the speakers changes.
 * @typedef {{t: number, video: Segment[], audio: Segment[], presenter: string | null, stage: Stage}} Frame
 */

export class ReplayModel {
  /** @param {ReplayAnswer} answer (from parseAnswer) */
  constructor(answer) {
    this.recording = answer.recording;
    this.viewerId = answer.viewer.participant_id ?? null;
    this.downloadUrl = answer.download_url;
    /** Everyone the log names, in the order first seen (the live client's roster order). @type {Map<string, Person>} */
    this.people = new Map();
    /** Sorted by offset. @type {Segment[]} */
    this.segments = [...answer.segments].sort((a, b) => a.offset_ms - b.offset_ms || a.n - b.n);

    // Lines in time order (a stable sort keeps the log's order for equal times).
    const lines = answer.events.map((line, i) => ({ line, i })).sort((a, b) => a.line.t - b.line.t || a.i - b.i).map((x) => x.line);

    /** The length of the recording: its own figure, or further if a segment or event goes on. */
    this.durationMs = Math.max(0, answer.recording.duration_ms);
    for (const s of this.segments) this.durationMs = Math.max(this.durationMs, s.offset_ms + s.duration_ms);
    for (const line of lines) this.durationMs = Math.max(this.durationMs, line.t);

    this.#readPeople(lines);
    /** Sorted by t. @type {ReplayChat[]} */
    this.chat = this.#readChat(lines);
    /** @type {{t: number, ids: string[]}[]} who is in the class from t on */
    this.rosters = this.#readRosters(lines);
    /** @type {{t: number, id: string | null}[]} */
    this.presenters = this.#readPresenters(lines);
    /** @type {{t: number, id: string | null}[]} */
    this.speakers = lines
      .filter((l) => l.type === 'active_speaker')
      .map((l) => ({ t: l.t, id: /** @type {{participant_id: string | null}} */ (l).participant_id ?? null }));
    /** Sorted by t. @type {Chapter[]} */
    this.chapters = this.#readChapters(lines, answer.gaps);
    /** @type {Frame[]} */
    this.frames = this.#buildFrames();
  }

  /** @param {unknown} json the API's answer @returns {ReplayModel} */
  static fromAnswer(json) {
    return new ReplayModel(parseAnswer(json));
  }

  // ---- Queries -------------------------------------------------------------------------------

  /** @param {string} id */
  nameOf(id) {
    return this.people.get(id)?.name ?? REPLAY_STRINGS.someone;
  }

  /** The span of the recording `t` is in (the first one before 0). @param {number} t */
  frameIndexAt(t) {
    return Math.max(0, lastAtOrBefore(this.frames, t, (f) => f.t));
  }

  /** @param {number} t */
  frameAt(t) {
    return this.frames[this.frameIndexAt(t)];
  }

  /** What the stage shows at `t`. @param {number} t @returns {Stage} */
  stageAt(t) {
    return this.frameAt(t).stage;
  }

  /** The voices playing at `t`. @param {number} t @returns {Segment[]} */
  audioAt(t) {
    return this.frameAt(t).audio;
  }

  /** Every video segment running at `t`, newest first. @param {number} t @returns {Segment[]} */
  videoAt(t) {
    return this.frameAt(t).video;
  }

  /** Who is on stage (stage_granted, not yet revoked) at `t`. @param {number} t */
  presenterAt(t) {
    const i = lastAtOrBefore(this.presenters, t, (p) => p.t);
    return i < 0 ? null : this.presenters[i].id;
  }

  /** Who the media server said was speaking at `t`. @param {number} t */
  speakerAt(t) {
    const i = lastAtOrBefore(this.speakers, t, (s) => s.t);
    return i < 0 ? null : this.speakers[i].id;
  }

  /** How many chat messages were sent at or before `t` (the first that many of `chat`). @param {number} t */
  chatCountAt(t) {
    return lastAtOrBefore(this.chat, t, (m) => m.t) + 1;
  }

  /** The chat as it was at `t`, oldest first. @param {number} t */
  chatAt(t) {
    return this.chat.slice(0, this.chatCountAt(t));
  }

  /** Changes whenever the roster does (to redraw it only then). @param {number} t */
  rosterIndexAt(t) {
    return lastAtOrBefore(this.rosters, t, (r) => r.t);
  }

  /** Who was in the class at `t`, staff first. @param {number} t @returns {Person[]} */
  rosterAt(t) {
    const i = this.rosterIndexAt(t);
    if (i < 0) return [];
    return this.rosters[i].ids
      .map((id) => this.people.get(id) ?? { id, name: REPLAY_STRINGS.someone, role: /** @type {Role} */ ('student') })
      .sort((a, b) => ROLE_ORDER.indexOf(a.role) - ROLE_ORDER.indexOf(b.role));
  }

  /**
   * The chapter `t` is in (an index into `chapters`, -1 before the first): the last one started
   * at or before `t`, or a recording gap while `t` is inside it.
   * @param {number} t
   */
  chapterIndexAt(t) {
    const i = lastAtOrBefore(this.chapters, t, (c) => c.t);
    for (let j = i; j >= 0; j--) {
      const c = this.chapters[j];
      if (c.end === null) return j;
      if (t < c.end) return j;
    }
    return -1;
  }

  /** @param {number} t @returns {Chapter | null} */
  chapterAt(t) {
    return this.chapters[this.chapterIndexAt(t)] ?? null;
  }

  // ---- Reading the log ---------------------------------------------------------------------

  /** @param {string} id @param {string} name @param {Role} role */
  #meet(id, name, role) {
    const known = this.people.get(id);
    if (known) Object.assign(known, { name: name || known.name, role: role || known.role });
    else this.people.set(id, { id, name: name || REPLAY_STRINGS.someone, role: role || 'student' });
  }

  /** Names and roles from the start snapshot's roster, joins, and chat senders. @param {LogLine[]} lines */
  #readPeople(lines) {
    for (const line of lines) {
      if (line.type === 'start') {
        for (const p of line.snapshot?.roster ?? []) this.#meet(p.id, p.name, p.role);
      } else if (line.type === 'event' && line.event?.kind === 'participant_joined') {
        const p = line.event.participant;
        this.#meet(p.id, p.name, p.role);
      }
    }
    // Someone who only chatted (e.g. left before the recording started) is named by their messages.
    for (const line of lines) {
      const messages = line.type === 'start' ? line.snapshot?.chat ?? [] : line.type === 'event' && line.event?.kind === 'chat' ? [line.event.message] : [];
      for (const m of messages) if (!this.people.has(m.from)) this.#meet(m.from, m.from_name, m.from_role);
    }
  }

  /**
   * The chat: the start snapshot's messages (at the start line's time) and each `chat` event,
   * once each; a deleted message is left out entirely (the server does so already).
   * @param {LogLine[]} lines
   */
  #readChat(lines) {
    /** @type {Set<number>} */
    const deleted = new Set();
    for (const line of lines) if (line.type === 'event' && line.event?.kind === 'chat_deleted') deleted.add(line.event.seq);
    /** @type {Map<number, ReplayChat>} */
    const bySeq = new Map();
    /** @param {number} t @param {ChatMessage} m */
    const add = (t, m) => {
      if (!m || deleted.has(m.seq) || bySeq.has(m.seq)) return;
      const to = m.to ?? { kind: 'everyone' };
      const toViewer = to.kind === 'participant' && to.id === this.viewerId;
      bySeq.set(m.seq, {
        t,
        seq: m.seq,
        from: m.from,
        fromName: m.from_name || this.nameOf(m.from),
        fromRole: m.from_role,
        to,
        toName: to.kind === 'participant' ? (toViewer ? REPLAY_STRINGS.you : this.nameOf(to.id)) : null,
        toViewer,
        private: to.kind !== 'everyone',
        text: String(m.text ?? ''),
        sentAt: m.sent_at,
      });
    };
    for (const line of lines) {
      if (line.type === 'start') for (const m of line.snapshot?.chat ?? []) add(line.t, m);
      else if (line.type === 'event' && line.event?.kind === 'chat') add(line.t, line.event.message);
    }
    return [...bySeq.values()];
  }

  /** The roster after each change (start snapshot, joins, leaves). @param {LogLine[]} lines */
  #readRosters(lines) {
    /** @type {{t: number, ids: string[]}[]} */
    const rosters = [];
    /** @type {string[]} */
    let ids = [];
    /** @param {number} t */
    const push = (t) => {
      if (rosters.length && rosters[rosters.length - 1].t === t) rosters[rosters.length - 1].ids = ids;
      else rosters.push({ t, ids });
    };
    for (const line of lines) {
      if (line.type === 'start') {
        ids = (line.snapshot?.roster ?? []).map((p) => p.id);
      } else if (line.type === 'event' && line.event?.kind === 'participant_joined') {
        const id = line.event.participant.id;
        ids = [...ids.filter((x) => x !== id), id];
      } else if (line.type === 'event' && line.event?.kind === 'participant_left') {
        const id = line.event.participant_id;
        ids = ids.filter((x) => x !== id);
      } else {
        continue;
      }
      push(line.t);
    }
    return rosters;
  }

  /**
   * Who holds the stage after each change, as the live client's RoomState keeps it: granted,
   * revoked, cleared when the presenter leaves or the class ends.
   * @param {LogLine[]} lines
   */
  #readPresenters(lines) {
    /** @type {{t: number, id: string | null}[]} */
    const changes = [];
    /** @type {string | null} */
    let presenter = null;
    /** @param {number} t @param {string | null} id */
    const set = (t, id) => {
      if (id === presenter && changes.length) return;
      presenter = id;
      if (changes.length && changes[changes.length - 1].t === t) changes[changes.length - 1].id = id;
      else changes.push({ t, id });
    };
    for (const line of lines) {
      if (line.type === 'start') {
        set(line.t, line.snapshot?.presenter ?? null);
      } else if (line.type === 'event') {
        const e = line.event;
        if (e?.kind === 'stage_granted') set(line.t, e.participant_id);
        else if (e?.kind === 'stage_revoked' && e.participant_id === presenter) set(line.t, null);
        else if (e?.kind === 'participant_left' && e.participant_id === presenter) set(line.t, null);
        else if (e?.kind === 'class_ended') set(line.t, null);
      }
    }
    return changes;
  }

  /**
   * @param {LogLine[]} lines
   * @param {Gap[]} gaps
   * @returns {Chapter[]}
   */
  #readChapters(lines, gaps) {
    const s = REPLAY_STRINGS;
    /** @type {Chapter[]} */
    const chapters = [];
    /** @param {number} t @param {ChapterKind} kind @param {string} title @param {string | null} [participantId] */
    const add = (t, kind, title, participantId = null) => chapters.push({ t, end: null, kind, participantId, title });
    /** @type {string | null} */
    let presenter = null;
    for (const line of lines) {
      if (line.type === 'start') {
        if (chapters.length) continue; // only the first start opens the recording
        const live = line.snapshot?.class_state === 'live';
        add(line.t, live ? 'class_started' : 'recording_started', live ? s.chapterClassStarted : s.chapterRecordingStarted);
        presenter = line.snapshot?.presenter ?? null;
        if (presenter) add(line.t, 'presentation', s.chapterPresentation(this.nameOf(presenter)), presenter);
        continue;
      }
      if (line.type !== 'event' || !line.event) continue;
      const e = line.event;
      const t = line.t;
      switch (e.kind) {
        case 'class_started': {
          // The class started right as the recording did: one chapter, not two.
          const first = chapters[0];
          if (first?.kind === 'recording_started' && chapters.length === 1 && t - first.t < START_MERGE_MS) {
            Object.assign(first, { kind: 'class_started', title: s.chapterClassStarted });
          } else {
            add(t, 'class_started', s.chapterClassStarted);
          }
          break;
        }
        case 'stage_granted':
          presenter = e.participant_id;
          add(t, 'presentation', s.chapterPresentation(this.nameOf(e.participant_id)), e.participant_id);
          break;
        case 'stage_revoked':
        case 'participant_left':
          if (presenter !== null && e.participant_id === presenter) {
            add(t, 'presentation_ended', s.chapterPresentationEnded, presenter);
            presenter = null;
          }
          break;
        case 'called_on':
          add(t, 'called_on', s.chapterCalledOn(this.nameOf(e.participant_id)), e.participant_id);
          break;
        case 'class_ended':
          presenter = null;
          add(t, 'class_ended', s.chapterClassEnded);
          break;
      }
    }
    // Gaps, merged where they touch or nearly do.
    /** @type {{at: number, end: number}[]} */
    const spans = [];
    for (const g of [...gaps].sort((a, b) => a.at_ms - b.at_ms)) {
      const end = g.at_ms + Math.max(0, g.duration_ms);
      const last = spans[spans.length - 1];
      if (last && g.at_ms - last.end <= GAP_MERGE_MS) last.end = Math.max(last.end, end);
      else spans.push({ at: g.at_ms, end });
    }
    for (const span of spans) {
      chapters.push({ t: span.at, end: Math.max(span.end, span.at + 1), kind: 'gap', participantId: null, title: s.chapterGap });
    }
    // Stable: at equal times, the log's order, gaps last.
    return chapters.map((c, i) => ({ c, i })).sort((a, b) => a.c.t - b.c.t || a.i - b.i).map((x) => x.c);
  }

  // ---- The stage and the voices, span by span ---------------------------------------------

  /**
   * The recording cut at every segment start and end and every stage change; for each span,
   * what runs in it and what the stage shows.
   * @returns {Frame[]}
   */
  #buildFrames() {
    /** @type {{t: number, add: Segment | null, remove: Segment | null}[]} */
    const changes = [];
    for (const s of this.segments) {
      changes.push({ t: s.offset_ms, add: s, remove: null });
      changes.push({ t: s.offset_ms + s.duration_ms, add: null, remove: s });
    }
    const times = new Set([0, ...changes.map((c) => c.t), ...this.presenters.map((p) => p.t)]);
    const sortedTimes = [...times].filter((t) => t >= 0).sort((a, b) => a - b);
    changes.sort((a, b) => a.t - b.t);
    /** @type {Set<Segment>} */
    const active = new Set();
    /** @type {Frame[]} */
    const frames = [];
    let next = 0;
    for (const t of sortedTimes) {
      // Ends before starts at the same time: a segment is running on [offset, offset + duration).
      const here = [];
      while (next < changes.length && changes[next].t <= t) here.push(changes[next++]);
      for (const c of here) if (c.remove) active.delete(c.remove);
      for (const c of here) if (c.add && c.add.duration_ms > 0) active.add(c.add);
      const running = [...active];
      // Newest first: of one person's videos the one started last is the main picture.
      const video = running.filter((s) => s.kind === 'video').sort((a, b) => b.offset_ms - a.offset_ms || b.n - a.n);
      const audio = running.filter((s) => s.kind === 'audio').sort((a, b) => a.offset_ms - b.offset_ms || a.n - b.n);
      const presenter = this.presenterAt(t);
      const frame = { t, video, audio, presenter, stage: this.#chooseStage(video, presenter) };
      const last = frames[frames.length - 1];
      if (last && sameFrame(last, frame)) continue;
      frames.push(frame);
    }
    return frames;
  }

  /**
   * As the live client chooses (app.js `stageParticipant`, `videosOf`): the presenter if they
   * show video, else the instructor (before a TA) who does; the small picture is their other
   * video, or the instructor's camera while a student presents.
   * @param {Segment[]} video running video segments, newest first
   * @param {string | null} presenter
   * @returns {Stage}
   */
  #chooseStage(video, presenter) {
    /** @param {string} id */
    const videosOf = (id) => video.filter((s) => s.participant_id === id);
    let stageId = presenter && videosOf(presenter).length > 0 ? presenter : null;
    if (!stageId) {
      const staff = [...this.people.values()]
        .filter((p) => isStaffRole(p.role))
        .sort((a, b) => ROLE_ORDER.indexOf(a.role) - ROLE_ORDER.indexOf(b.role));
      stageId = staff.find((p) => videosOf(p.id).length > 0)?.id ?? null;
    }
    if (!stageId) return { participantId: null, main: null, small: null };
    const videos = videosOf(stageId);
    /** @type {Segment | null} */
    let small = videos[1] ?? null;
    if (!small && stageId === presenter) {
      const teacher = [...this.people.values()].find(
        (p) => p.id !== stageId && p.role === 'instructor' && videosOf(p.id).length > 0,
      );
      // Their oldest running video: the camera, usually, rather than a screen share.
      if (teacher) small = videosOf(teacher.id).at(-1) ?? null;
    }
    return { participantId: stageId, main: videos[0], small };
  }
}

/** @param {Frame} a @param {Frame} b */
function sameFrame(a, b) {
  const same = (/** @type {Segment[]} */ x, /** @type {Segment[]} */ y) => x.length === y.length && x.every((s, i) => s === y[i]);
  return same(a.video, b.video) && same(a.audio, b.audio) && a.presenter === b.presenter;
}
