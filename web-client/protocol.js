// @ts-check
/**
 * Lectern's wire protocol for the browser: one WebSocket per participant, one JSON object per
 * frame (see docs/PROTOCOL.md; the Rust types in crates/lectern-proto are the reference).
 *
 * No DOM here. The UI drives a `Connection` and keeps a `RoomState`; both report through plain
 * callbacks and fields, so this module also runs under Node for tests.
 */

export const PROTOCOL_VERSION = 1;

/** After a `closing` with one of these reasons, reconnecting would be wrong or pointless. */
const FINAL_CLOSE_REASONS = new Set(['removed', 'class_ended', 'replaced', 'left', 'abuse', 'handshake_failed']);

/** Redirects (several nodes) followed in one connection attempt, at most. */
export const MAX_REDIRECTS = 3;

const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 10_000;
/**
 * After `room_moved`: the first reconnect goes within 250 ms (the room is usually placed
 * again at once); while the room stays between nodes (a `room_moved` again before any welcome,
 * e.g. while a dead node's lease runs out or Redis is away) each next one waits 0.5 to 1 s, so a
 * class of hundreds does not hammer the nodes with hellos.
 */
export const ROOM_MOVED_FIRST_MS = 250;
export const ROOM_MOVED_AGAIN_MS = 1000;
/** A socket that opened but got no welcome in this time is closed and retried. */
const WELCOME_TIMEOUT_MS = 10_000;
/** `WebSocket.readyState` values (named here: Node, where the unit tests run, may lack WebSocket). */
const SOCKET_CONNECTING = 0;
const SOCKET_OPEN = 1;
const SOCKET_CLOSED = 3;

/** @typedef {'instructor' | 'ta' | 'student' | 'observer'} Role */
/** @typedef {'not_started' | 'live' | 'ended'} ClassState */
/** @typedef {'thumbs_up' | 'clap' | 'heart' | 'laugh' | 'surprised' | 'confused'} Reaction */
/** @typedef {'left' | 'timed_out' | 'removed' | 'class_ended'} LeaveReason */
/**
 * @typedef {'server_shutdown' | 'removed' | 'class_ended' | 'replaced' | 'slow_consumer'
 *   | 'abuse' | 'handshake_failed' | 'left' | 'redirected' | 'room_moved'} CloseReason
 */
/** @typedef {'connecting' | 'open' | 'reconnecting' | 'closed'} Status */
/** The class layout: the stage alone, or a gallery of cameras under it. @typedef {'lecture' | 'seminar'} ClassMode */
/** From the SFU's statistics of a participant's peer. @typedef {'good' | 'fair' | 'poor' | 'unknown'} NetworkQuality */

/** @typedef {{mic: boolean, camera: boolean, screen: boolean}} MediaState */
/**
 * `connected` is false during the reconnect grace period; `can_speak` is the effective right.
 * `camera_allowed`: a student may publish video (seminar mode, or asked or allowed by staff).
 * @typedef {{id: string, name: string, role: Role, connected: boolean, in_lobby: boolean,
 *   hard_muted: boolean, can_speak: boolean, speak_granted: boolean, presenter: boolean,
 *   media: MediaState, camera_allowed?: boolean}} ParticipantInfo
 */
/** @typedef {{participant_id: string, raised_at: number}} HandEntry */
/** @typedef {{kind: 'everyone'} | {kind: 'staff'} | {kind: 'participant', id: string}} ChatTarget */
/**
 * `seq` is also the message's id; `sent_at` is in Unix milliseconds.
 * @typedef {{seq: number, from: string, from_name: string, from_role: Role, to: ChatTarget,
 *   text: string, sent_at: number}} ChatMessage
 */
/**
 * Hands and chat are oldest first; events after `seq` follow as `event` messages.
 * `scheduled_start`, `scheduled_end`, `warns_at`, `closes_at` (Unix ms) only for a scheduled
 * session's room.
 * `class_started_at` (Unix ms): when the class went live (absent before; the staff's timer).
 * @typedef {{room_id: string, title: string, class_state: ClassState, roster: ParticipantInfo[],
 *   hand_queue: HandEntry[], presenter?: string | null, chat_locked: boolean, recording?: boolean,
 *   chat: ChatMessage[],
 *   seq: number, scheduled_start?: number, scheduled_end?: number, warns_at?: number,
 *   closes_at?: number,
 *   class_started_at?: number, mode?: ClassMode, speak_all?: boolean, poll?: PollState,
 *   live_quiz?: LiveQuiz}} Snapshot
 */
/**
 * A poll as everyone sees it (issue 13): answers name options by index. `poll_id` is the seq of
 * its `poll_started`.
 * @typedef {{poll_id: number, question: string, options: string[], multiple: boolean,
 *   anonymous: boolean, asked_by: string, started_at: number}} Poll
 */
/**
 * A course quiz staff launched live in class (issue 13): students take it on the quiz page.
 * @typedef {{quiz_id: number, title: string, launched_by: string, launched_at: number,
 *   ends_at: number}} LiveQuiz
 */
/** One named answer (staff only, never for anonymous polls). @typedef {{participant_id: string, name: string, choices: number[]}} PollVote */
/**
 * Counts per option and how many answered; `votes` for staff (the new answer live, every
 * answer in a snapshot or after a replay).
 * @typedef {{poll_id: number, counts: number[], answered: number, votes?: PollVote[]}} PollResults
 */
/**
 * The snapshot's poll: open, or shared. `my_choices`: this participant's own answer; `results`:
 * staff's live results, or everyone's shared counts.
 * @typedef {{poll: Poll, open: boolean, shared: boolean, my_choices?: number[], results?: PollResults}} PollState
 */

/** Why recording stopped. @typedef {'stopped' | 'class_ended' | 'disk_full' | 'failed' | 'shutdown'} RecordingStopReason */

/**
 * One sequenced change to the room (`event.kind`).
 * @typedef {{kind: 'participant_joined', participant: ParticipantInfo}
 *   | {kind: 'participant_connection', participant_id: string, connected: boolean}
 *   | {kind: 'participant_left', participant_id: string, reason: LeaveReason}
 *   | {kind: 'admitted', participant_id: string, by?: string}
 *   | {kind: 'class_started', by?: string}
 *   | {kind: 'class_ended', by?: string}
 *   | {kind: 'class_ending_soon', ends_at: number, closes_at: number}
 *   | {kind: 'recording_started', by?: string}
 *   | {kind: 'recording_stopped', by?: string, reason: RecordingStopReason}
 *   | {kind: 'chat', message: ChatMessage}
 *   | {kind: 'chat_deleted', seq: number, by: string}
 *   | {kind: 'chat_locked', locked: boolean, by: string}
 *   | {kind: 'hand_raised', participant_id: string, raised_at: number}
 *   | {kind: 'hand_lowered', participant_id: string, by?: string}
 *   | {kind: 'hands_cleared', by: string}
 *   | {kind: 'called_on', participant_id: string, by: string}
 *   | {kind: 'speak_allowed', participant_id: string, by: string}
 *   | {kind: 'speak_revoked', participant_id: string, by: string}
 *   | {kind: 'muted', participant_id: string, by: string}
 *   | {kind: 'stage_granted', participant_id: string, by: string}
 *   | {kind: 'stage_revoked', participant_id: string, by?: string}
 *   | {kind: 'media_changed', participant_id: string, media: MediaState}
 *   | {kind: 'all_muted', by: string}
 *   | {kind: 'speak_all_changed', allowed: boolean, by: string}
 *   | {kind: 'mode_changed', mode: ClassMode, by: string}
 *   | {kind: 'camera_requested', participant_id: string, by: string}
 *   | {kind: 'camera_allowed', participant_id: string, by: string}
 *   | {kind: 'camera_stopped', participant_id: string, by: string}
 *   | {kind: 'poll_started', poll: Poll}
 *   | {kind: 'poll_ended', poll_id: number, by?: string}
 *   | {kind: 'poll_shared', poll_id: number, counts: number[], answered: number, by: string}
 *   | {kind: 'quiz_live', quiz: LiveQuiz}
 *   | {kind: 'quiz_ended', quiz_id: number, by?: string}} RoomEvent
 */

/**
 * `rejoined`: state (hand, stage, mute) was kept from a dropped connection. `snapshot` is absent
 * when the missed events are replayed instead.
 * @typedef {{type: 'welcome', protocol_version: number, participant_id: string, role: Role,
 *   rejoined: boolean, snapshot?: Snapshot}} WelcomeMessage
 */
/** @typedef {{type: 'replay_done', seq: number, replayed: number}} ReplayDoneMessage */
/** @typedef {{type: 'snapshot', snapshot: Snapshot}} SnapshotMessage */
/** @typedef {{type: 'event', seq: number, at: number, event: RoomEvent}} EventMessage */
/** @typedef {{type: 'reaction', participant_id: string, reaction: Reaction}} ReactionMessage */
/**
 * The answer to a `chat_history` request: older messages, oldest first; `complete` when there
 * are none older.
 * @typedef {{type: 'chat_page', request_id?: number, messages: ChatMessage[], complete: boolean}} ChatPageMessage
 */
/** Who speaks now (null: nobody since the last speaker stopped). @typedef {{type: 'active_speaker', participant_id: string | null}} ActiveSpeakerMessage */
/**
 * Changes of network quality (not sequenced, like `active_speaker`); participants not listed
 * keep their last value. After a welcome the server sends the current non-`unknown` values.
 * @typedef {{type: 'network_quality', participants: {participant_id: string, quality: NetworkQuality}[]}} NetworkQualityMessage
 */
/**
 * One participant in `attendance`: `present` (connected now, or in the reconnect grace period),
 * first join and last leave (Unix ms), `late` (first joined well after the class went live),
 * `intervals` (how many times joined).
 * @typedef {{participant_id: string, name: string, role: Role, present: boolean,
 *   first_joined_at: number, last_left_at: number | null, late: boolean, intervals: number}} AttendanceEntry
 */
/**
 * The answer to `attendance_get` (staff): everyone ever in this room, by first join.
 * @typedef {{type: 'attendance', request_id?: number, class_started_at?: number | null,
 *   entries: AttendanceEntry[]}} AttendanceMessage
 */
/** A poll's results so far, to staff only (not sequenced). @typedef {{type: 'poll_results', results: PollResults}} PollResultsMessage */
/** How many submitted the live quiz, to staff only (not sequenced). @typedef {{type: 'quiz_progress', quiz_id: number, submitted: number}} QuizProgressMessage */
/** @typedef {{type: 'ack', request_id: number, seq?: number}} AckMessage */
/** @typedef {{type: 'error', code: string, message: string, request_id?: number}} ErrorMessage */
/** @typedef {{type: 'closing', reason: CloseReason, message: string}} ClosingMessage */
/**
 * Several nodes: the room is on another node; open `url` and say the same hello there.
 * @typedef {{type: 'redirect', room_id: string, url: string}} RedirectMessage
 */
/**
 * One m-line the SFU adds in an `sfu_offer`: whose media the `mid` carries.
 * @typedef {{mid: string, participant_id: string, kind: 'audio' | 'video'}} OfferedTrack
 */
/**
 * The SFU's offer (what this participant receives); answer with `media_answer`.
 * @typedef {{type: 'sfu_offer', sdp: string, tracks?: OfferedTrack[]}} MediaOfferMessage
 */
/** The SFU's answer to this client's `media_offer` request. @typedef {{type: 'sfu_answer', sdp: string}} MediaAnswerMessage */
/** @typedef {MediaOfferMessage | MediaAnswerMessage} MediaMessage */
/**
 * Sent right after `welcome`: the ICE servers (TURN with time-limited credentials) for the
 * peer connection.
 * @typedef {{type: 'media_config', ice_servers: {urls: string[], username?: string, credential?: string}[]}} MediaConfigMessage
 */
/**
 * @typedef {WelcomeMessage | ReplayDoneMessage | SnapshotMessage | EventMessage
 *   | ReactionMessage | AckMessage | ErrorMessage | ClosingMessage | MediaMessage
 *   | MediaConfigMessage | ActiveSpeakerMessage | ChatPageMessage
 *   | NetworkQualityMessage | AttendanceMessage | PollResultsMessage
 *   | QuizProgressMessage | RedirectMessage} ServerMessage
 */
/** @typedef {{type: 'hello', protocol_version: number, token: string, last_seq?: number, media_start?: boolean}} HelloMessage */
/**
 * Every request a client may send after its hello.
 * @typedef {'chat_send' | 'chat_delete' | 'chat_lock' | 'hand_raise' | 'hand_lower'
 *   | 'hand_lower_for' | 'hand_lower_all' | 'call_on' | 'allow_speak' | 'revoke_speak' | 'mute'
 *   | 'remove' | 'stage_grant' | 'stage_revoke' | 'class_start' | 'class_end' | 'recording_start' | 'recording_stop' | 'admit' | 'react'
 *   | 'set_media' | 'leave' | 'media_start' | 'media_offer' | 'chat_history'
 *   | 'mute_all' | 'speak_all' | 'set_mode' | 'camera_request' | 'camera_allow' | 'camera_stop'
 *   | 'attendance_get' | 'poll_start' | 'poll_answer' | 'poll_end' | 'poll_share'
 *   | 'quiz_launch' | 'quiz_end'} RequestType
 */
/**
 * Messages sent without a `request_id` (no ack): the answer to a server `media_offer`, and
 * trickled ICE candidates.
 * @typedef {'media_answer' | 'media_candidate' | 'media_view'} NoticeType
 */
/**
 * Anything this client sends: the hello, a request (with its `request_id`) or a notice. The
 * other fields depend on the type (docs/PROTOCOL.md).
 * @typedef {HelloMessage | ({type: RequestType, request_id: number} & Record<string, unknown>)
 *   | ({type: NoticeType} & Record<string, unknown>)} ClientMessage
 */

/** @param {Role} role */
export function isStaffRole(role) {
  return role === 'instructor' || role === 'ta';
}

/**
 * Recompute `can_speak` the way the server does: not in the lobby, not hard-muted, and staff,
 * the presenter, granted speech, or a student while everyone may speak (`speak_all`).
 * @param {ParticipantInfo} p
 * @param {boolean} speakAll
 */
function canSpeakNow(p, speakAll) {
  const everyone = speakAll && p.role === 'student';
  p.can_speak = !p.in_lobby && !p.hard_muted && (isStaffRole(p.role) || p.presenter || p.speak_granted || everyone);
}

/**
 * A refused request. `code` is the server's error code, or `not_connected` (sent while not
 * joined) or `disconnected` (the connection dropped before an answer).
 */
export class RequestError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {number | null} requestId
   */
  constructor(code, message, requestId) {
    super(message);
    this.name = 'RequestError';
    this.code = code;
    this.requestId = requestId;
  }
}

/**
 * @typedef {object} ConnectionOptions
 * @property {string} url `ws(s)://HOST/ws?room=ROOM`
 * @property {string} token the join token (JWT)
 * @property {import('./join-link.js').EarlySocket | null} [early] a socket the page opened
 *   before this connection existed (join-link.js), with its hello sent or about to be: the
 *   first connect adopts it, and handles what it received meanwhile, instead of opening
 *   another, when it was opened with the same `url` and `token`
 * @property {(snapshot: Snapshot | null, welcome: WelcomeMessage) => void} [onWelcome]
 *   The hello was accepted. `snapshot` is the whole room, or null on a reconnect where the
 *   server replays exactly the missed events instead: they follow through `onEvent`, then
 *   `onReplayDone`.
 * @property {(snapshot: Snapshot) => void} [onSnapshot] the whole room again (e.g. let in from
 *   the lobby); replaces what the UI had
 * @property {(seq: number, event: RoomEvent, at: number) => void} [onEvent] each room event
 *   exactly once, in order (duplicates from a replay overlap are dropped here)
 * @property {(seq: number, replayed: number) => void} [onReplayDone]
 * @property {(participantId: string, reaction: Reaction) => void} [onReaction]
 * @property {(participantId: string | null) => void} [onActiveSpeaker] who speaks now, from the
 *   audio the media server relays (also sent on entering the class while someone speaks)
 * @property {(changes: NetworkQualityMessage['participants']) => void} [onNetworkQuality]
 *   participants whose network quality changed (all known values right after a welcome)
 * @property {(results: PollResults) => void} [onPollResults] staff: a poll's results so far
 * @property {(quizId: number, submitted: number) => void} [onQuizProgress] staff: how many
 *   submitted the live quiz so far
 *   (after each answer, and after a replay)
 * @property {(code: string, message: string, requestId: number | null) => void} [onError]
 *   an error that answers no pending request: a refused hello (`invalid_token`,
 *   `token_expired`, ...) or a frame the server could not read. Errors for a `request()`
 *   reject its promise instead.
 * @property {(reason: CloseReason, message: string) => void} [onClosing] the server is about to
 *   close; for `removed`, `class_ended`, `replaced`, `left`, `abuse` and `handshake_failed`
 *   the connection then stays closed
 * @property {(status: Status) => void} [onStatus] `open` once welcomed; `reconnecting` while
 *   retrying with backoff; `closed` for good
 * @property {(iceServers: RTCIceServer[]) => void} [onMediaConfig] the ICE servers for the
 *   peer connection, sent after every welcome
 * @property {(message: MediaMessage) => void} [onMedia] the media server's `media_offer` or
 *   `media_answer` (see media.js); a `media_answer` arrives before the ack of its `media_offer`
 *   request
 */

/**
 * Whether a `redirect.url` may be followed: a `ws:` or `wss:` URL (anything else, e.g.
 * `javascript:` or `file:`, is ignored).
 * @param {unknown} url
 * @returns {boolean}
 */
export function followableRedirect(url) {
  if (typeof url !== 'string' || url.length > 2048) return false;
  try {
    const parsed = new URL(url);
    return (parsed.protocol === 'ws:' || parsed.protocol === 'wss:') && parsed.host !== '';
  } catch {
    return false;
  }
}

/**
 * A participant's connection to a room: says hello, matches requests with their answers,
 * remembers the last event seen and reconnects after an unexpected close (backoff from 0.5 s
 * doubling to 10 s, with jitter), asking the server for only the events it missed.
 */
export class Connection {
  /** @type {WebSocket | null} */
  #socket = null;
  /** @type {Status} */
  #status = 'closed';
  #welcomed = false;
  /** The current socket's hello asks for `media_start` at the welcome (the early socket's). */
  #mediaStart = false;
  /** No more reconnects: a final `closing`, `leave()` or `close()`. */
  #stopped = false;
  #attempt = 0;
  /** Several nodes: where the `redirect` just received says to go next, if anywhere. */
  /** @type {string | null} */
  #redirectTo = null;
  /** Redirects followed in this connection attempt. */
  #redirects = 0;
  /** `room_moved` answers since the last welcome (paces the reconnects, see ROOM_MOVED_AGAIN_MS). */
  #movedInARow = 0;
  /** The server said `room_moved`: reconnect at once rather than after a backoff. */
  #reconnectNow = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #timer = undefined;
  #nextRequestId = 1;
  /** @type {Map<number, {resolve: (reply: any) => void, reject: (error: RequestError) => void}>} */
  #pending = new Map();

  /** @param {ConnectionOptions} options */
  constructor(options) {
    this.options = options;
    /**
     * The newest event sequence number applied (from a snapshot, an event or a replay_done);
     * sent as `last_seq` when reconnecting. Null until the first welcome.
     * @type {number | null}
     */
    this.lastSeq = null;
  }

  /** @returns {Status} */
  /**
   * Whether the current socket's hello asked the server to start this participant's media at
   * the welcome (`media_start`): when the welcome let them into the class, the SFU's offer
   * comes without a `media_start` request.
   */
  get mediaStartAsked() {
    return this.#mediaStart;
  }

  get status() {
    return this.#status;
  }

  /** Opens the connection. Call once. */
  connect() {
    this.#open();
  }

  /**
   * Sends a request and waits for its answer.
   * @param {RequestType} type
   * @param {Record<string, unknown>} [fields] the message's other fields, e.g. `{text, to}`
   * @returns {Promise<AckMessage>} resolves on `ack`; rejects with a `RequestError`
   */
  request(type, fields = {}) {
    return this.#request(type, fields);
  }

  /**
   * Scroll-back: up to `limit` chat messages older than `beforeSeq` that this participant may
   * read, from the server's stored log.
   * @param {number} beforeSeq only messages with a smaller seq
   * @param {number} [limit] 1 to 200 (the server's default is 50)
   * @returns {Promise<ChatPageMessage>} rejects with a `RequestError` (e.g. `in_lobby`)
   */
  chatHistory(beforeSeq, limit = 50) {
    return this.#request('chat_history', { before_seq: beforeSeq, limit });
  }

  /**
   * Staff: the room's attendance (everyone ever in it, present or left, late or not).
   * @returns {Promise<AttendanceMessage>} rejects with a `RequestError` (e.g. `not_permitted`)
   */
  attendance() {
    return this.#request('attendance_get', {});
  }

  /**
   * Sends a message that gets no answer (`media_answer`, `media_candidate`, `media_view`).
   * @param {NoticeType} type
   * @param {Record<string, unknown>} [fields]
   * @returns {boolean} false when not connected (the message is dropped)
   */
  notify(type, fields = {}) {
    if (!this.#socket || !this.#welcomed) return false;
    this.#send(this.#socket, { ...fields, type });
    return true;
  }

  /**
   * Sends a request with the next `request_id` and waits for the answer naming it: an `ack`,
   * the `chat_page` of a `chat_history`, or an `error` (rejected as a `RequestError`). The
   * request fails at once with `not_connected` before the welcome, and with `disconnected`
   * when the connection drops first.
   * @template {AckMessage | ChatPageMessage | AttendanceMessage} Reply
   * @param {RequestType} type
   * @param {Record<string, unknown>} fields the message's other fields (`type` and
   *   `request_id` are set here)
   * @returns {Promise<Reply>}
   */
  #request(type, fields) {
    const socket = this.#socket;
    if (!socket || !this.#welcomed) {
      return Promise.reject(new RequestError('not_connected', 'not connected', null));
    }
    const requestId = this.#nextRequestId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(requestId, { resolve, reject });
      this.#send(socket, { ...fields, type, request_id: requestId });
    });
  }

  /**
   * Every message this client sends leaves through here, as one JSON text frame: the hello
   * (`#open`), requests (`#request`) and notices (`notify`). The callers check that the socket
   * is the current one and may carry the message (the hello on open, the rest once welcomed).
   * @param {WebSocket} socket
   * @param {ClientMessage} message
   */
  #send(socket, message) {
    socket.send(JSON.stringify(message));
  }

  /** Leaves the class now (no grace period) and stays closed. Never rejects. */
  async leave() {
    this.#stopped = true;
    await this.request('leave').catch(() => undefined);
    this.close();
  }

  /** Closes the connection for good, without telling the room (the grace period applies). */
  close() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (this.#socket) {
      this.#socket.close(1000);
    } else {
      this.#setStatus('closed');
    }
  }

  /**
   * Opens a socket and says hello.
   * @param {string} url the address first used, or a redirect's
   */
  #open(url = this.options.url) {
    this.#setStatus(this.#attempt === 0 ? 'connecting' : 'reconnecting');
    const early = this.#takeEarly();
    const socket = early?.socket ?? new WebSocket(url);
    this.#socket = socket;
    this.#welcomed = false;
    this.#mediaStart = early?.mediaStart ?? false;
    /** @param {string} text */
    const receive = (text) => {
      if (socket === this.#socket) this.#receive(text);
    };
    socket.onclose = () => this.#closed(socket);
    if (!early) {
      socket.onopen = () => this.#hello(socket);
      socket.onmessage = (message) => {
        if (typeof message.data === 'string') receive(message.data);
      };
      return;
    }
    // The early socket: it may still be opening (then our onopen says hello), be open with
    // its hello sent (then only the welcome's deadline starts here), or have closed already.
    if (socket.readyState === SOCKET_CONNECTING) socket.onopen = () => this.#hello(socket);
    else if (socket.readyState === SOCKET_OPEN && !early.helloSent) this.#hello(socket);
    else if (socket.readyState === SOCKET_OPEN) this.#welcomeDeadline(socket);
    // What it received meanwhile is handled after connect() returns, in order; frames arriving
    // until then still queue up in `received`, and the close of a socket that closed before
    // it was adopted (no close event will come) is handled after them.
    queueMicrotask(() => {
      for (const text of early.received.splice(0)) receive(text);
      early.deliver = receive;
      if (socket.readyState === SOCKET_CLOSED) this.#closed(socket);
    });
  }

  /**
   * The early socket, for the first connect only, when it suits this connection; otherwise it
   * is closed (unused) and null is returned.
   * @returns {import('./join-link.js').EarlySocket | null}
   */
  #takeEarly() {
    const early = this.options.early ?? null;
    this.options.early = null;
    if (!early) return null;
    if (this.#attempt === 0 && early.url === this.options.url && early.token === this.options.token) return early;
    early.socket.close(1000);
    return null;
  }

  /** Says hello on `socket`, now open, and starts the welcome's deadline. @param {WebSocket} socket */
  #hello(socket) {
    /** @type {HelloMessage} */
    const hello = { type: 'hello', protocol_version: PROTOCOL_VERSION, token: this.options.token };
    if (this.lastSeq !== null) hello.last_seq = this.lastSeq;
    if (this.#mediaStart) hello.media_start = true;
    this.#send(socket, hello);
    this.#welcomeDeadline(socket);
  }

  /** No welcome within WELCOME_TIMEOUT_MS: close, and the reconnect logic retries. @param {WebSocket} socket */
  #welcomeDeadline(socket) {
    this.#timer = setTimeout(() => {
      if (!this.#welcomed) socket.close();
    }, WELCOME_TIMEOUT_MS);
  }

  /** @param {WebSocket} socket */
  #closed(socket) {
    if (socket !== this.#socket) return;
    this.#socket = null;
    this.#welcomed = false;
    clearTimeout(this.#timer);
    for (const [requestId, { reject }] of this.#pending) {
      reject(new RequestError('disconnected', 'the connection closed', requestId));
    }
    this.#pending.clear();
    if (this.#stopped) {
      this.#setStatus('closed');
      return;
    }
    const redirect = this.#redirectTo;
    this.#redirectTo = null;
    if (redirect !== null) {
      // Several nodes: straight to the room's node, same token and last_seq.
      this.#open(redirect);
      return;
    }
    // A new attempt starts again from the address first used (which sends it on to wherever
    // the room is now).
    this.#redirects = 0;
    if (this.#reconnectNow) {
      this.#reconnectNow = false;
      this.#setStatus('reconnecting');
      const delay = this.#movedInARow <= 1
        ? Math.random() * ROOM_MOVED_FIRST_MS
        : ROOM_MOVED_AGAIN_MS / 2 + (Math.random() * ROOM_MOVED_AGAIN_MS) / 2;
      this.#timer = setTimeout(() => this.#open(), delay);
      return;
    }
    this.#setStatus('reconnecting');
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** this.#attempt);
    this.#attempt += 1;
    // Half fixed, half random, so a room full of students does not reconnect in lockstep.
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    this.#timer = setTimeout(() => this.#open(), delay);
  }

  /** @param {string} text */
  #receive(text) {
    /** @type {ServerMessage} */
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return; // The server only sends JSON; ignore anything else rather than fail.
    }
    const o = this.options;
    switch (message.type) {
      case 'welcome':
        this.#welcomed = true;
        this.#attempt = 0;
        this.#movedInARow = 0;
        this.#redirects = 0;
        clearTimeout(this.#timer);
        if (message.snapshot) this.lastSeq = message.snapshot.seq;
        this.#setStatus('open');
        o.onWelcome?.(message.snapshot ?? null, message);
        break;
      case 'snapshot':
        this.lastSeq = message.snapshot.seq;
        o.onSnapshot?.(message.snapshot);
        break;
      case 'event':
        if (this.lastSeq !== null && message.seq <= this.lastSeq) return;
        this.lastSeq = message.seq;
        o.onEvent?.(message.seq, message.event, message.at);
        break;
      case 'replay_done':
        this.lastSeq = Math.max(this.lastSeq ?? 0, message.seq);
        o.onReplayDone?.(message.seq, message.replayed);
        break;
      case 'reaction':
        o.onReaction?.(message.participant_id, message.reaction);
        break;
      case 'active_speaker':
        o.onActiveSpeaker?.(message.participant_id);
        break;
      case 'network_quality':
        if (Array.isArray(message.participants)) o.onNetworkQuality?.(message.participants);
        break;
      case 'poll_results':
        if (message.results) o.onPollResults?.(message.results);
        break;
      case 'quiz_progress':
        o.onQuizProgress?.(message.quiz_id, message.submitted);
        break;
      case 'chat_page':
      case 'attendance': {
        // Answers naming their request (`chat_history`, `attendance_get`) instead of an ack.
        if (message.request_id === undefined) break;
        const pending = this.#pending.get(message.request_id);
        this.#pending.delete(message.request_id);
        pending?.resolve(message);
        break;
      }
      case 'ack': {
        const pending = this.#pending.get(message.request_id);
        this.#pending.delete(message.request_id);
        pending?.resolve(message);
        break;
      }
      case 'error': {
        const requestId = message.request_id ?? null;
        const pending = requestId === null ? undefined : this.#pending.get(requestId);
        if (pending && requestId !== null) {
          this.#pending.delete(requestId);
          pending.reject(new RequestError(message.code, message.message, requestId));
        } else {
          o.onError?.(message.code, message.message, requestId);
        }
        break;
      }
      case 'media_config':
        o.onMediaConfig?.(message.ice_servers);
        break;
      case 'sfu_offer':
      case 'sfu_answer':
        o.onMedia?.(message);
        break;
      case 'redirect':
        // Followed when the socket closes (after the `closing` that comes next).
        if (!this.#welcomed && this.#redirects < MAX_REDIRECTS && followableRedirect(message.url)) {
          this.#redirects += 1;
          this.#redirectTo = message.url;
        }
        break;
      case 'closing':
        if (FINAL_CLOSE_REASONS.has(message.reason)) this.#stopped = true;
        if (message.reason === 'room_moved') {
          this.#reconnectNow = true;
          this.#movedInARow += 1;
        }
        o.onClosing?.(message.reason, message.message);
        break;
    }
  }

  /** @param {Status} status */
  #setStatus(status) {
    if (status === this.#status) return;
    this.#status = status;
    this.options.onStatus?.(status);
  }
}

/**
 * The room as this participant sees it, rebuilt from a snapshot and kept current by events.
 * Pure: no I/O, no DOM, no clock.
 */
export class RoomState {
  /** Chat messages seen since the last snapshot, including deleted ones, so none shows twice. */
  #seenChat = new Set();

  /** @param {number} [maxChat] most chat messages kept (oldest dropped first) */
  constructor(maxChat = 500) {
    this.maxChat = maxChat;
    this.roomId = '';
    this.title = '';
    /** @type {ClassState} */
    this.classState = 'not_started';
    /** In join order. @type {Map<string, ParticipantInfo>} */
    this.participants = new Map();
    /** Oldest first. @type {HandEntry[]} */
    this.handQueue = [];
    /** @type {string | null} */
    this.presenter = null;
    this.chatLocked = false;
    /** The class is being recorded (the indicator everyone sees). */
    this.recording = false;
    /** Ordered by seq. @type {ChatMessage[]} */
    this.chat = [];
    /** Scroll-back reached the room's first message. */
    this.chatHistoryComplete = false;
    this.seq = 0;
    /** A scheduled session's start and end (Unix ms). @type {number | null} */
    this.scheduledStart = null;
    /** @type {number | null} */
    this.scheduledEnd = null;
    /** When the end warning is due (Unix ms). @type {number | null} */
    this.warnsAt = null;
    /** When the room closes for everyone (Unix ms). @type {number | null} */
    this.closesAt = null;
    /** `class_ending_soon` arrived (or `warns_at` has passed). */
    this.endingSoon = false;
    /** @type {ClassMode} */
    this.mode = 'lecture';
    /** "Allow everyone to speak": every student in the class may unmute. */
    this.speakAll = false;
  }

  /** @param {Snapshot} snapshot replaces everything */
  applySnapshot(snapshot) {
    this.roomId = snapshot.room_id;
    this.title = snapshot.title;
    this.classState = snapshot.class_state;
    this.participants = new Map(snapshot.roster.map((p) => [p.id, p]));
    this.handQueue = [...snapshot.hand_queue];
    this.presenter = snapshot.presenter ?? null;
    this.chatLocked = snapshot.chat_locked;
    this.recording = snapshot.recording ?? false;
    this.chat = [];
    // The snapshot carries the newest messages this participant may see: none means there is
    // nothing older either (in the lobby it is empty, but admission brings a new snapshot).
    this.chatHistoryComplete = snapshot.chat.length === 0;
    this.#seenChat.clear();
    for (const message of snapshot.chat) this.#addChat(message);
    this.seq = snapshot.seq;
    this.scheduledStart = snapshot.scheduled_start ?? null;
    this.scheduledEnd = snapshot.scheduled_end ?? null;
    this.warnsAt = snapshot.warns_at ?? null;
    this.closesAt = snapshot.closes_at ?? null;
    this.mode = snapshot.mode ?? 'lecture';
    this.speakAll = snapshot.speak_all ?? false;
  }

  /**
   * @param {number} seq
   * @param {RoomEvent} event
   */
  applyEvent(seq, event) {
    this.seq = Math.max(this.seq, seq);
    switch (event.kind) {
      case 'participant_joined':
        this.participants.set(event.participant.id, event.participant);
        break;
      case 'participant_connection':
        this.#update(event.participant_id, (p) => (p.connected = event.connected));
        break;
      case 'participant_left':
        this.participants.delete(event.participant_id);
        this.#lowerHand(event.participant_id);
        if (this.presenter === event.participant_id) this.presenter = null;
        break;
      case 'admitted':
        this.#update(event.participant_id, (p) => {
          p.in_lobby = false;
          canSpeakNow(p, this.speakAll);
        });
        break;
      case 'class_started':
        this.classState = 'live';
        for (const p of this.participants.values()) {
          p.in_lobby = false;
          canSpeakNow(p, this.speakAll);
        }
        break;
      case 'class_ended':
        this.recording = false;
        // The server clears the stage, the hands, speak grants and hard mutes at class end.
        this.classState = 'ended';
        this.handQueue = [];
        this.presenter = null;
        for (const p of this.participants.values()) {
          p.presenter = false;
          p.hard_muted = false;
          p.speak_granted = false;
          canSpeakNow(p, this.speakAll);
        }
        break;
      case 'class_ending_soon':
        this.scheduledEnd = event.ends_at;
        this.closesAt = event.closes_at;
        this.endingSoon = true;
        break;
      case 'chat':
        this.#addChat(event.message);
        break;
      case 'chat_deleted':
        this.chat = this.chat.filter((m) => m.seq !== event.seq);
        break;
      case 'chat_locked':
        this.chatLocked = event.locked;
        break;
      case 'recording_started':
        this.recording = true;
        break;
      case 'recording_stopped':
        this.recording = false;
        break;
      case 'hand_raised':
        if (!this.hasHandRaised(event.participant_id)) {
          this.handQueue.push({ participant_id: event.participant_id, raised_at: event.raised_at });
        }
        break;
      case 'hand_lowered':
        this.#lowerHand(event.participant_id);
        break;
      case 'hands_cleared':
        this.handQueue = [];
        break;
      case 'called_on':
        this.#lowerHand(event.participant_id);
        this.#setSpeak(event.participant_id, { speak_granted: true, hard_muted: false });
        break;
      case 'speak_allowed':
        this.#setSpeak(event.participant_id, { speak_granted: true, hard_muted: false });
        break;
      case 'speak_revoked':
        this.#setSpeak(event.participant_id, { speak_granted: false });
        break;
      case 'muted':
        this.#setSpeak(event.participant_id, { hard_muted: true, speak_granted: false });
        break;
      case 'stage_granted':
        if (this.presenter) this.#setPresenter(this.presenter, false);
        this.presenter = event.participant_id;
        this.#setPresenter(event.participant_id, true);
        break;
      case 'stage_revoked':
        if (this.presenter === event.participant_id) this.presenter = null;
        this.#setPresenter(event.participant_id, false);
        break;
      case 'media_changed':
        this.#update(event.participant_id, (p) => (p.media = event.media));
        break;
      case 'all_muted':
        // Every student muted, every grant gone, and no longer everyone allowed to speak.
        this.speakAll = false;
        for (const p of this.participants.values()) {
          if (!isStaffRole(p.role)) Object.assign(p, { hard_muted: true, speak_granted: false });
          canSpeakNow(p, this.speakAll);
        }
        break;
      case 'speak_all_changed':
        this.speakAll = event.allowed;
        for (const p of this.participants.values()) {
          if (event.allowed) p.hard_muted = false;
          else p.speak_granted = false;
          canSpeakNow(p, this.speakAll);
        }
        break;
      case 'mode_changed':
        this.mode = event.mode;
        for (const p of this.participants.values()) if (p.role === 'student') p.camera_allowed = event.mode === 'seminar';
        break;
      case 'camera_requested':
      case 'camera_allowed':
        this.#update(event.participant_id, (p) => (p.camera_allowed = true));
        break;
      case 'camera_stopped':
        this.#update(event.participant_id, (p) => (p.camera_allowed = false));
        break;
    }
  }

  /** @param {string} participantId */
  hasHandRaised(participantId) {
    return this.handQueue.some((h) => h.participant_id === participantId);
  }

  /**
   * @param {string} id
   * @param {(p: ParticipantInfo) => void} change
   */
  #update(id, change) {
    const p = this.participants.get(id);
    if (p) change(p);
  }

  /**
   * A change to whether a participant may speak (grant or staff mute), then what follows.
   * @param {string} id
   * @param {{speak_granted?: boolean, hard_muted?: boolean}} change
   */
  #setSpeak(id, change) {
    this.#update(id, (p) => {
      Object.assign(p, change);
      canSpeakNow(p, this.speakAll);
    });
  }

  /** @param {string} id */
  #lowerHand(id) {
    this.handQueue = this.handQueue.filter((h) => h.participant_id !== id);
  }

  /**
   * The stage lets a student speak; taking it back leaves what their role and grant allow.
   * @param {string} id
   * @param {boolean} presenter
   */
  #setPresenter(id, presenter) {
    this.#update(id, (p) => {
      p.presenter = presenter;
      canSpeakNow(p, this.speakAll);
    });
  }

  /**
   * Older messages from scroll-back (a `chat_page`): kept even beyond `maxChat`, since the
   * reader asked for them.
   * @param {ChatPageMessage} page
   */
  addOlderChat(page) {
    this.maxChat = Math.max(this.maxChat, this.chat.length + page.messages.length);
    for (const message of page.messages) this.#addChat(message);
    if (page.complete) this.chatHistoryComplete = true;
  }

  /** @param {ChatMessage} message */
  #addChat(message) {
    if (this.#seenChat.has(message.seq)) return;
    this.#seenChat.add(message.seq);
    let i = this.chat.length;
    while (i > 0 && this.chat[i - 1].seq > message.seq) i -= 1;
    this.chat.splice(i, 0, message);
    if (this.chat.length > this.maxChat) this.chat.splice(0, this.chat.length - this.maxChat);
  }
}
