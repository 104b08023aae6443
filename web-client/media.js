// @ts-check
/**
 * Live media: one bundled RTCPeerConnection from this participant to Lectern's SFU
 * (crates/lectern-sfu), signalled over the room's WebSocket (`Connection` in protocol.js).
 *
 * No DOM here. The UI owns a `MediaSession`, tells it what the room allows (`setAllowed`) and
 * what the user switched on (`publish` / `unpublish`), and draws `localTracks` and
 * `remoteTracks` whenever `onChange` fires.
 *
 * Signalling (docs/PROTOCOL.md, "Media"):
 * - This client offers what it publishes: a data channel (so even a receive-only student's
 *   first offer has an m-line) plus one send-only transceiver per local track; the SFU answers.
 * - The SFU offers what this client receives: send-only m-lines with a `tracks` list naming
 *   each `mid`'s publisher; this client answers with `media_answer`.
 * - Glare: this client's offer wins. While our offer is queued or unanswered, the SFU's offers
 *   are ignored; the SFU drops its own pending offer when ours arrives and offers again after
 *   answering (or refusing) it.
 * - Recovery: an offer of ours refused is rolled back and made again; an SFU offer this
 *   browser cannot apply is rolled back and answered by an offer of ours (the SFU then offers
 *   afresh). After MAX_FAILURES in a row, or an answer that never came (the two sides may no
 *   longer agree on the m-lines), the peer connection starts over (`media_start`, then our
 *   offer). So a page always converges: it sends what it publishes and receives what it is
 *   offered.
 * Every change to the peer connection runs in one queue, one step at a time.
 */

/** @typedef {import('./protocol.js').MediaMessage} MediaMessage */
/** @typedef {import('./protocol.js').MediaOfferMessage} MediaOfferMessage */
/** @typedef {import('./protocol.js').RequestType} RequestType */
/** @typedef {import('./protocol.js').NoticeType} NoticeType */
/** @typedef {'camera' | 'mic' | 'screen'} Source */
/** @typedef {'audio' | 'video'} Kind */
/** What the room lets this participant publish now. @typedef {{audio: boolean, video: boolean}} Allowed */
/**
 * How a received video is shown: its size in device pixels (0x0: not on screen, the smallest
 * layer keeps coming), or `paused` (not shown at all, e.g. a gallery tile on another page: the
 * SFU forwards none of it until it is shown again).
 * @typedef {{width: number, height: number, paused?: boolean}} View
 */
/**
 * The part of `Connection` this module uses.
 * @typedef {object} Signalling
 * @property {(type: RequestType, fields?: Record<string, unknown>) => Promise<unknown>} request
 * @property {(type: NoticeType, fields?: Record<string, unknown>) => boolean} notify
 */
/**
 * A track received from another participant.
 * @typedef {object} RemoteTrack
 * @property {string} mid the m-line carrying it
 * @property {string} participantId its publisher
 * @property {Kind} kind
 * @property {MediaStreamTrack} track
 * @property {MediaStream} stream a stream holding only this track, for a media element
 */
/**
 * A track this participant publishes.
 * @typedef {object} LocalTrack
 * @property {Source} source
 * @property {MediaStreamTrack} track
 * @property {MediaStream} stream
 */
/**
 * Counters of one RTP stream, from `RTCPeerConnection.getStats()`.
 * @typedef {object} StreamStats
 * @property {string} mid
 * @property {Kind} kind
 * @property {string | null} participantId the publisher (inbound), null for our own (outbound)
 * @property {string | null} trackId `trackIdentifier` (inbound) = the receiving track's id
 * @property {number} packets received or sent
 * @property {number} bytes received or sent
 * @property {number} frames decoded or encoded (video)
 * @property {number} width frame width (video; 0 when unknown)
 * @property {number} height
 */
/**
 * @typedef {object} MediaSessionOptions
 * @property {Signalling} connection
 * @property {RTCIceServer[]} [iceServers] none on loopback; later from the server
 * @property {() => void} [onChange] local or remote tracks, or the connection state, changed
 * @property {(error: unknown, source: Source | null) => void} [onError] a publish or a
 *   negotiation failed (`source` null); errors from the server are `RequestError`s
 * @property {(source: 'camera' | 'mic') => string | null} [deviceId] the chosen camera or
 *   microphone (`MediaDeviceInfo.deviceId`), null for the browser's default; read at each capture
 */

/** @type {Record<Source, Kind>} */
export const SOURCE_KIND = { camera: 'video', mic: 'audio', screen: 'video' };

/**
 * A camera at least this wide is sent as simulcast: a half-size layer (`l`) and the full one
 * (`h`). Each receiver is sent the one that fits how big it shows the video (`media_view`).
 * Chromium sends a single layer below 640x360 anyway.
 */
const SIMULCAST_MIN_WIDTH = 640;

/** @param {MediaStreamTrack} track @returns {RTCRtpEncodingParameters[] | undefined} */
export function cameraEncodings(track) {
  const width = track.getSettings().width ?? 0;
  if (width < SIMULCAST_MIN_WIDTH) return undefined;
  return [
    { rid: 'l', scaleResolutionDownBy: 2, maxBitrate: 250_000 },
    { rid: 'h', maxBitrate: 1_200_000 },
  ];
}

/** `media_view` sizes are rounded down to this many device pixels, so jitter sends nothing. */
const VIEW_STEP = 8;
/** How long size reports are held back so a resize sends one `media_view` per video. */
const VIEW_DEBOUNCE_MS = 250;
/** Longest a page holds back its first render for the first answer (see `firstAnswerPending`). */
const FIRST_ANSWER_HOLD_MS = 150;
const ANSWER_TIMEOUT_MS = 15_000;
/** Failed negotiations in a row after which the peer connection starts over. */
const MAX_FAILURES = 3;
/** Delay before an offer of ours is made again after a failure, times the failures so far. */
const RETRY_MS = 300;

/**
 * Longest SDP this client sends. The server refuses frames above 64 KiB (`frame_too_large`,
 * without a `request_id`), and JSON doubles each CRLF. Every video ever received keeps a
 * (stopped) m-line on a peer connection: about 2.5 KB each in Chromium's SDP, so after some 25
 * stage handovers the SDP no longer fits and starts over on a new peer connection instead.
 */
const MAX_SDP_CHARS = 48_000;

class AnswerTimeout extends Error {}
class SdpTooLarge extends Error {}

/** @template T @param {Promise<T>} promise @param {number} ms @returns {Promise<T>} */
function withTimeout(promise, ms) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new AnswerTimeout(`no media answer in ${ms} ms`)), ms);
  });
  return /** @type {Promise<T>} */ (Promise.race([promise, timeout])).finally(() => clearTimeout(timer));
}

/**
 * getUserMedia constraints for a camera or microphone: the chosen device, or the default one.
 * @param {'camera' | 'mic'} source @param {string | null} deviceId
 * @returns {MediaStreamConstraints}
 */
export function captureConstraints(source, deviceId) {
  const track = deviceId ? { deviceId: { exact: deviceId } } : true;
  return source === 'mic' ? { audio: track } : { video: track };
}

/** @param {RTCRtpTransceiver} t */
function isStopped(t) {
  return t.currentDirection === 'stopped' || /** @type {string} */ (t.direction) === 'stopped';
}

export class MediaSession {
  /** @type {RTCPeerConnection | null} */
  #pc = null;
  /** What the user switched on, in the order switched on. @type {Map<Source, LocalTrack>} */
  #local = new Map();
  /** Our send-only transceivers on the current peer connection. @type {Map<Source, RTCRtpTransceiver>} */
  #senders = new Map();
  /** From the SFU's `tracks` lists, in the order offered. @type {Map<string, {participantId: string, kind: Kind}>} */
  #mids = new Map();
  /** @type {Map<string, RemoteTrack>} */
  #remote = new Map();
  /** @type {Promise<void>} */
  #queue = Promise.resolve();
  /** An offer of ours is queued and not yet sent. */
  #offerQueued = false;
  /** An offer of ours is out and its `media_answer` has not arrived. */
  #awaitingAnswer = false;
  /** @type {{resolve: (sdp: string) => void, reject: (error: unknown) => void} | null} */
  #answerWaiter = null;
  /** @type {Allowed} */
  #allowed = { audio: false, video: false };
  #closed = false;
  /** See `firstAnswerPending`. */
  #firstAnswerPending = false;
  /** The last `media_view` size sent per mid. @type {Map<string, string>} */
  #viewsSent = new Map();
  /** @type {Map<string, View>} */
  #views = new Map();
  /** @type {ReturnType<typeof setTimeout> | null} */
  #viewTimer = null;
  /** Negotiations failed in a row (see MAX_FAILURES). */
  #failures = 0;

  /** @param {MediaSessionOptions} options */
  constructor(options) {
    this.options = options;
  }

  /** Whether `start()` was called (and not undone by `close()`). */
  get started() {
    return this.#pc !== null;
  }

  /**
   * From a `media_start` until the answer to the SFU's first offer is sent (at most
   * FIRST_ANSWER_HOLD_MS): that answer sets off ICE and DTLS, which then run off the main
   * thread, so a page joining a class draws after sending it rather than before.
   */
  get firstAnswerPending() {
    return this.#firstAnswerPending;
  }

  #endFirstAnswer() {
    if (!this.#firstAnswerPending) return;
    this.#firstAnswerPending = false;
    this.#changed();
  }

  /** @returns {RTCPeerConnectionState | 'closed'} */
  get connectionState() {
    return this.#pc?.connectionState ?? 'closed';
  }

  /** What this participant publishes, in the order switched on. @returns {LocalTrack[]} */
  get localTracks() {
    return [...this.#local.values()];
  }

  /** What this participant receives, oldest first (in the order the SFU offered it). @returns {RemoteTrack[]} */
  get remoteTracks() {
    return [...this.#mids.keys()].flatMap((mid) => this.#remote.get(mid) ?? []);
  }

  /**
   * How big each received video is shown now, in device pixels (0x0: not shown; `paused`: not
   * wanted at all). Sent to the server as `media_view` for the mids whose view changed, a
   * moment later.
   * @param {Map<string, View>} views by mid
   */
  setViews(views) {
    this.#views = views;
    if (this.#viewTimer === null) this.#viewTimer = setTimeout(() => this.#sendViews(), VIEW_DEBOUNCE_MS);
  }

  #sendViews() {
    this.#viewTimer = null;
    if (!this.#pc || this.#closed) return;
    const round = (/** @type {number} */ v) => Math.floor(v / VIEW_STEP) * VIEW_STEP;
    for (const [mid, view] of this.#views) {
      if (!this.#remote.has(mid)) continue;
      const [width, height] = [round(view.width), round(view.height)];
      const key = view.paused ? 'paused' : `${width}x${height}`;
      if (this.#viewsSent.get(mid) === key) continue;
      this.#viewsSent.set(mid, key);
      // `paused` only when true: absent means false (and servers before it refuse the field).
      this.options.connection.notify('media_view', view.paused ? { mid, width: 0, height: 0, paused: true } : { mid, width, height });
    }
  }

  /** @param {Source} source */
  isPublishing(source) {
    return this.#local.has(source);
  }

  /** @param {Source} source */
  mayPublish(source) {
    return !this.#closed && this.#allowed[SOURCE_KIND[source]];
  }

  /**
   * What the room allows now (the server enforces it; this only keeps the client honest).
   * Stops publishing whatever is no longer allowed.
   * @param {Allowed} allowed
   */
  setAllowed(allowed) {
    this.#allowed = { ...allowed };
    for (const source of [...this.#local.keys()]) {
      if (!this.mayPublish(source)) void this.unpublish(source);
    }
  }

  /**
   * Creates the peer connection. Call when admitted to the class. With something to send, it
   * offers; with nothing yet (a student arriving), it asks the server to offer the room's
   * tracks (`media_start`): one negotiation instead of two before the lecture shows.
   * `serverStarted`: the hello asked for that already (`media_start` in the hello) and the
   * welcome let us into the class, so the SFU's offer is on its way without a request.
   * @param {boolean} [fresh]
   * @param {boolean} [serverStarted]
   */
  start(fresh = false, serverStarted = false) {
    if (this.#closed || this.#pc) return;
    const pc = new RTCPeerConnection({ iceServers: this.options.iceServers ?? [], bundlePolicy: 'max-bundle' });
    this.#pc = pc;
    pc.onconnectionstatechange = () => this.#changed();
    // A data channel (never used) keeps an m-line in every description. Chrome refuses to make
    // or take one whose m-lines are all stopped under max-bundle ("no bundle group"): the only
    // publisher switching everything off, or a student losing the last track it received. The
    // SFU adds one to its first offer too.
    pc.createDataChannel('lectern');
    if (fresh) {
      // Starting over on the same WebSocket: the server replaces our peer (`media_start`),
      // then our offer makes the first negotiation (SFU offers are ignored until it is answered).
      this.#enqueue(async () => {
        if (pc !== this.#pc) return;
        await this.options.connection.request('media_start');
      });
      if (this.#local.size > 0) this.#negotiate();
    } else if (this.#local.size > 0) {
      this.#negotiate();
    } else {
      this.#firstAnswerPending = true;
      setTimeout(() => this.#endFirstAnswer(), FIRST_ANSWER_HOLD_MS);
      if (serverStarted) return;
      this.#enqueue(async () => {
        if (pc !== this.#pc) return;
        await this.options.connection.request('media_start');
      });
    }
  }

  /**
   * A new peer connection with the same local tracks, e.g. after the WebSocket reconnected
   * (the server forgets the old one).
   */
  /**
   * ICE servers for the next peer connection (the server sends fresh TURN credentials after
   * every welcome).
   * @param {RTCIceServer[]} iceServers
   */
  setIceServers(iceServers) {
    this.options.iceServers = iceServers;
  }

  restart() {
    if (this.#closed) return;
    this.#dropPeer();
    this.start();
  }

  /**
   * A negotiation failed (`error`): counts it and, after MAX_FAILURES in a row or when the two
   * sides may disagree (`startOver`), starts over with a new peer connection.
   * @param {RTCPeerConnection} pc @param {unknown} error @param {boolean} startOver
   * @returns {boolean} whether it started over
   */
  #failed(pc, error, startOver) {
    this.#failures += 1;
    console.warn('media negotiation failed', this.#failures, error);
    if (!startOver && this.#failures < MAX_FAILURES) return false;
    this.#failures = 0;
    // Outside the queue step that failed (the new connection queues its own steps).
    setTimeout(() => {
      if (this.#closed || pc !== this.#pc) return;
      this.#dropPeer();
      this.start(true);
    }, 0);
    return true;
  }

  /** Makes our offer again a moment after a failure (the SFU offers its changes after it). @param {RTCPeerConnection} pc */
  #retryOffer(pc) {
    setTimeout(() => {
      if (this.#closed || pc !== this.#pc) return;
      void this.#negotiate();
    }, RETRY_MS * this.#failures);
  }

  /** Stops everything; the session cannot be used again. */
  close() {
    this.#closed = true;
    this.#dropPeer();
    for (const { track } of this.#local.values()) track.stop();
    this.#local.clear();
    this.#changed();
  }

  /**
   * Switches a source on: asks for the device (or the screen), then renegotiates.
   * @param {Source} source
   * @returns {Promise<boolean>} whether it is now published
   */
  async publish(source) {
    if (this.#local.has(source)) return true;
    if (!this.mayPublish(source)) return false;
    let track;
    try {
      track = await this.#capture(source);
    } catch (error) {
      this.options.onError?.(error, source);
      return false;
    }
    // Switched on twice, revoked or closed while the browser asked the user.
    if (!track || this.#local.has(source) || !this.mayPublish(source)) {
      track?.stop();
      return this.#local.has(source);
    }
    this.#local.set(source, this.#localTrack(source, track));
    this.#changed();
    this.#negotiate();
    return true;
  }

  /**
   * The chosen camera or microphone changed (`options.deviceId`): while that source is
   * published, captures the new device and swaps it into the sending track with
   * `RTCRtpSender.replaceTrack` (no renegotiation), then stops the old track.
   * @param {'camera' | 'mic'} source
   * @returns {Promise<boolean>} false when the new device could not be captured or swapped in
   */
  async switchDevice(source) {
    const old = this.#local.get(source);
    if (!old) return true;
    /** @type {MediaStreamTrack | undefined} */
    let track;
    try {
      track = await this.#capture(source);
      if (!track) throw new Error(`no ${source} track`);
    } catch (error) {
      this.options.onError?.(error, source);
      return false;
    }
    const next = track;
    let swapped = false;
    // In the queue, so an offer being built never sees the sender half-way through the swap.
    await this.#enqueue(async () => {
      // Switched off, switched again or closed meanwhile: keep what is there.
      if (this.#closed || this.#local.get(source) !== old) return;
      const transceiver = this.#senders.get(source);
      if (transceiver && !isStopped(transceiver) && transceiver.sender.track === old.track) {
        try {
          await transceiver.sender.replaceTrack(next);
        } catch (error) {
          this.options.onError?.(error, source);
          return;
        }
      }
      // Without a live sender the next offer adds the new track (#syncSenders).
      if (this.#closed || this.#local.get(source) !== old) return;
      this.#local.set(source, this.#localTrack(source, next));
      old.track.stop();
      swapped = true;
      this.#changed();
    });
    if (!swapped) next.stop();
    return swapped;
  }

  /** Switches a source off and renegotiates. @param {Source} source */
  async unpublish(source) {
    const local = this.#local.get(source);
    if (!local) return;
    this.#local.delete(source);
    local.track.stop();
    this.#changed();
    await this.#negotiate();
  }

  /**
   * The SFU's `sfu_offer` or `sfu_answer`; pass `Connection`'s `onMedia` here.
   * @param {MediaMessage} message
   */
  handleMessage(message) {
    if (message.type === 'sfu_answer') {
      const waiter = this.#answerWaiter;
      this.#awaitingAnswer = false;
      this.#answerWaiter = null;
      waiter?.resolve(message.sdp);
      return;
    }
    const pc = this.#pc;
    // Glare: ours wins; the SFU offers again after answering ours.
    if (!pc || this.#offerQueued || this.#awaitingAnswer) return;
    this.#enqueue(() => this.#acceptOffer(pc, message));
  }

  /**
   * Counters of every RTP stream, inbound ones with their publisher.
   * @returns {Promise<{inbound: StreamStats[], outbound: StreamStats[]}>}
   */
  async getStats() {
    /** @type {{inbound: StreamStats[], outbound: StreamStats[]}} */
    const result = { inbound: [], outbound: [] };
    const pc = this.#pc;
    if (!pc) return result;
    const report = await pc.getStats();
    for (const s of report.values()) {
      if (s.type !== 'inbound-rtp' && s.type !== 'outbound-rtp') continue;
      const inbound = s.type === 'inbound-rtp';
      const mid = String(s.mid ?? '');
      /** @type {StreamStats} */
      const entry = {
        mid,
        kind: s.kind,
        participantId: inbound ? (this.#mids.get(mid)?.participantId ?? null) : null,
        trackId: inbound ? (s.trackIdentifier ?? null) : null,
        packets: (inbound ? s.packetsReceived : s.packetsSent) ?? 0,
        bytes: (inbound ? s.bytesReceived : s.bytesSent) ?? 0,
        frames: (inbound ? s.framesDecoded : s.framesEncoded) ?? 0,
        width: s.frameWidth ?? 0,
        height: s.frameHeight ?? 0,
      };
      (inbound ? result.inbound : result.outbound).push(entry);
    }
    return result;
  }

  /** The raw `RTCStatsReport`, for debugging. */
  async rawStats() {
    return this.#pc ? this.#pc.getStats() : null;
  }

  /**
   * Asks for the device (the chosen one, falling back to the default when it is gone) or the
   * screen; returns its one track of the source's kind.
   * @param {Source} source
   * @returns {Promise<MediaStreamTrack | undefined>}
   */
  async #capture(source) {
    const devices = navigator.mediaDevices;
    let stream;
    if (source === 'screen') {
      stream = await devices.getDisplayMedia({ video: true, audio: false });
    } else {
      const deviceId = this.options.deviceId?.(source) ?? null;
      try {
        stream = await devices.getUserMedia(captureConstraints(source, deviceId));
      } catch (error) {
        const name = /** @type {{name?: string}} */ (error)?.name;
        if (!deviceId || (name !== 'OverconstrainedError' && name !== 'NotFoundError')) throw error;
        stream = await devices.getUserMedia(captureConstraints(source, null)); // unplugged: the default
      }
    }
    const track = SOURCE_KIND[source] === 'audio' ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
    for (const other of stream.getTracks()) if (other !== track) other.stop();
    return track;
  }

  /** @param {Source} source @param {MediaStreamTrack} track @returns {LocalTrack} */
  #localTrack(source, track) {
    // Ended by the browser (e.g. "Stop sharing", the device unplugged): switch it off.
    track.addEventListener('ended', () => {
      if (this.#local.get(source)?.track === track) void this.unpublish(source);
    });
    return { source, track, stream: new MediaStream([track]) };
  }

  // ---- Inside the queue ----------------------------------------------------------------

  /** @param {() => Promise<void>} step @returns {Promise<void>} */
  #enqueue(step) {
    const run = this.#queue.then(step).catch((error) => {
      if (!this.#closed) this.options.onError?.(error, null);
    });
    this.#queue = run;
    return run;
  }

  /** Queues one offer of ours (several requests before it runs share it). */
  #negotiate() {
    const pc = this.#pc;
    if (!pc) return Promise.resolve();
    if (this.#offerQueued) return this.#queue;
    this.#offerQueued = true;
    return this.#enqueue(() => this.#sendOffer(pc));
  }

  /** @param {RTCPeerConnection} pc */
  async #sendOffer(pc) {
    this.#offerQueued = false;
    if (pc !== this.#pc) return;
    this.#syncSenders(pc);
    this.#awaitingAnswer = true;
    try {
      await pc.setLocalDescription(await pc.createOffer());
      if ((pc.localDescription?.sdp.length ?? 0) > MAX_SDP_CHARS) throw new SdpTooLarge('offer too large: starting over');
      /** @type {Promise<string>} */
      const answer = new Promise((resolve, reject) => {
        this.#answerWaiter = { resolve, reject };
        const sdp = pc.localDescription?.sdp ?? '';
        this.options.connection.request('media_offer', { sdp }).catch(reject);
      });
      const sdp = await withTimeout(answer, ANSWER_TIMEOUT_MS);
      if (pc !== this.#pc) return;
      await pc.setRemoteDescription({ type: 'answer', sdp });
    } catch (error) {
      if (pc !== this.#pc) return; // replaced by restart() or close(): nothing to report
      this.#awaitingAnswer = false;
      this.#answerWaiter = null;
      // The SFU refused our offer (it changed nothing), or the answer could not be applied, or
      // never came: in the last two cases the SFU may have taken the offer, so only a new
      // peer connection is sure to agree with it again.
      const refused = /** @type {{name?: string}} */ (error)?.name === 'RequestError';
      const startOver = !refused;
      if (!startOver && pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' }).catch(() => {});
      if (!this.#failed(pc, error, startOver)) this.#retryOffer(pc);
      throw error;
    }
    this.#failures = 0;
    this.#syncRemote(pc);
  }

  /** @param {RTCPeerConnection} pc @param {MediaOfferMessage} message */
  async #acceptOffer(pc, message) {
    if (pc !== this.#pc || pc.signalingState !== 'stable') return;
    for (const t of message.tracks ?? []) {
      // A mid is reused for another track once the SFU made it inactive: it counts as new
      // (last in `remoteTracks`, a new stream, so elements show it afresh), and its view is
      // sent again, since the SFU starts the new track without one.
      this.#mids.delete(t.mid);
      this.#mids.set(t.mid, { participantId: t.participant_id, kind: t.kind });
      this.#viewsSent.delete(t.mid);
    }
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp: message.sdp });
      await pc.setLocalDescription(await pc.createAnswer());
    } catch (error) {
      if (pc !== this.#pc) return;
      this.#endFirstAnswer();
      // Unanswered, the SFU would wait for this answer forever: roll back and offer instead
      // (the SFU drops its offer when ours arrives, and offers its changes again after it).
      if (/** @type {RTCSignalingState} */ (pc.signalingState) === 'have-remote-offer') await pc.setLocalDescription({ type: 'rollback' }).catch(() => {});
      if (!this.#failed(pc, error, false)) this.#retryOffer(pc);
      throw error;
    }
    if (pc !== this.#pc) return;
    const answer = pc.localDescription?.sdp ?? '';
    if (answer.length > MAX_SDP_CHARS) {
      // Too large to send: a new peer connection (the SFU drops its offer on `media_start`).
      this.#failed(pc, new SdpTooLarge('answer too large: starting over'), true);
      return;
    }
    this.options.connection.notify('media_answer', { sdp: answer });
    this.#firstAnswerPending = false;
    this.#syncRemote(pc);
  }

  /**
   * Adds a send-only transceiver per new local track. One switched off is parked (inactive,
   * without a track) rather than stopped, and taken up again when its source comes back:
   * a stopped m-line stays in every later SDP (they would grow with each switch), and Chrome
   * tears the connection down when the stopped m-line is the bundle's first (its tag), as the
   * first published source's is.
   * @param {RTCPeerConnection} pc
   */
  #syncSenders(pc) {
    for (const [source, transceiver] of this.#senders) {
      if (isStopped(transceiver)) {
        this.#senders.delete(source);
        continue;
      }
      const local = this.#local.get(source);
      if (!local || local.track.readyState === 'ended') {
        if (transceiver.direction !== 'inactive') {
          transceiver.direction = 'inactive';
          void transceiver.sender.replaceTrack(null).catch(() => undefined);
        }
        continue;
      }
      if (transceiver.sender.track !== local.track) {
        void transceiver.sender.replaceTrack(local.track).catch((error) => this.options.onError?.(error, source));
      }
      if (transceiver.direction !== 'sendonly') {
        transceiver.direction = 'sendonly';
        transceiver.sender.setStreams(local.stream);
      }
    }
    for (const [source, { track, stream }] of this.#local) {
      if (this.#senders.has(source) || track.readyState === 'ended') continue;
      const sendEncodings = source === 'camera' ? cameraEncodings(track) : undefined;
      this.#senders.set(source, pc.addTransceiver(track, { direction: 'sendonly', streams: [stream], ...(sendEncodings ? { sendEncodings } : {}) }));
    }
  }

  /** Rebuilds `remoteTracks` from the transceivers that now receive. @param {RTCPeerConnection} pc */
  #syncRemote(pc) {
    /** @type {Map<string, RemoteTrack>} */
    const next = new Map();
    for (const t of pc.getTransceivers()) {
      const mid = t.mid;
      const owner = mid === null ? undefined : this.#mids.get(mid);
      if (mid === null || !owner || isStopped(t)) {
        if (mid !== null && isStopped(t)) this.#mids.delete(mid);
        continue;
      }
      if (t.currentDirection !== 'recvonly' && t.currentDirection !== 'sendrecv') continue;
      const track = t.receiver.track;
      const old = this.#remote.get(mid);
      const same = old && old.track === track && old.participantId === owner.participantId;
      next.set(mid, same ? old : { mid, participantId: owner.participantId, kind: owner.kind, track, stream: new MediaStream([track]) });
    }
    this.#remote = next;
    this.#changed();
  }

  #dropPeer() {
    const pc = this.#pc;
    this.#pc = null;
    this.#senders.clear();
    this.#mids.clear();
    this.#remote.clear();
    this.#viewsSent.clear();
    this.#offerQueued = false;
    this.#awaitingAnswer = false;
    this.#firstAnswerPending = false;
    this.#answerWaiter?.reject(new Error('peer connection replaced'));
    this.#answerWaiter = null;
    if (pc) {
      pc.onconnectionstatechange = null;
      pc.close();
    }
  }

  #changed() {
    this.options.onChange?.();
  }
}
