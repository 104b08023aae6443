// @ts-check
/**
 * The replay page (`/replay.html?recording=<id>#token=<join token>`): fetches the recording from
 * `/replay/v1/recordings/<id>` and plays it as the class happened, the stage, every voice, the
 * chat and the chapters in step with one clock.
 *
 * The clock (the playhead, ms since the recording started) runs on `performance.now()` at the
 * chosen speed; every media element follows it (seeked when more than DRIFT_LIMIT_S off), and
 * while one that should play is still loading after a seek the clock waits ("Loading…").
 * replay-model.js says what to show at each playhead; this module only draws it. User text
 * (names, chat) goes in through textContent only.
 *
 * For tests: the page root carries `data-playhead-ms`, `data-state` (loading, ready, error),
 * `data-playing` and `data-loading`; each stage `<video>` its `data-role` (main, small,
 * preload), `data-participant` and `data-segment`; each chat row its `data-seq`.
 */
import { ReplayModel, SPEEDS, formatClock } from './replay-model.js';
import { isStaffRole } from './protocol.js';
import { $, make } from './dom.js';
import { REPLAY_STRINGS as S, STRINGS } from './strings.js';

/** @typedef {import('./replay-model.js').Segment} Segment */
/** @typedef {import('./replay-model.js').ReplayChat} ReplayChat */
/** @typedef {'main' | 'small' | 'audio' | 'preload'} PlayerRole */
/**
 * One media element playing one segment.
 * `seekCount` is the reader's seek it was last put in step with; `graceUntil` when its start-up
 * lag stops being tolerated.
 * @typedef {{seg: Segment, el: HTMLMediaElement, role: PlayerRole, waitingSince: number | null,
 *   gaveUp: boolean, seekCount: number, graceUntil: number}} Player
 */

/** This page's own key: the class page's token stays the class page's. */
const TOKEN_KEY = 'lectern.replay-token';
const SEEK_STEP_MS = 5000;
/** A media element further than this from the clock is put back in step by seeking. */
const DRIFT_LIMIT_S = 0.3;
/**
 * Just after it was told to play, an element lags by its start-up time (times the speed): it
 * gets this long, and GRACE_DRIFT_S, before it is seeked, or each start would cause a seek.
 */
const GRACE_MS = 1000;
const GRACE_DRIFT_S = 1;
/** Segments starting this soon are loaded ahead, so a stage switch does not wait. */
const PRELOAD_MS = 3000;
/** A media element that has held the clock this long stops holding it (it catches up when it can). */
const WAIT_LIMIT_MS = 8000;
/** In its last moments a segment holds nothing up: its file may end a little before the manifest says. */
const END_SLACK_S = 0.5;
/** A seek is announced once the reader stops seeking for this long. */
const ANNOUNCE_DELAY_MS = 600;
/** Media states are looked at this often while paused (and while no frames are drawn, in a hidden tab). */
const TICK_MS = 250;

const root = document.documentElement;
const seekInput = /** @type {HTMLInputElement} */ ($('seek'));
const speedSelect = /** @type {HTMLSelectElement} */ ($('speed'));
const playButton = $('play');
const stageView = $('stage-view');
const chatLog = $('chat-log');

/** @type {ReplayModel | null} */
let model = null;
const clock = {
  /** The playhead, ms since the recording started. */
  t: 0,
  playing: false,
  rate: 1,
  /** `performance.now()` when the playhead was last moved on. */
  last: 0,
  /** A media element that should play is still loading: the playhead holds. */
  waiting: false,
};
/** Media elements in use, by segment number. @type {Map<number, Player>} */
const players = new Map();
/** Counts the reader's seeks: an element not yet put in step with the latest one is seeked at once. */
let seekCount = 0;
/** The reader is dragging the position slider (the clock does not move it meanwhile). */
let dragging = false;
/** The chat should jump to its newest message at the next draw (after a seek). */
let chatToBottom = true;
/** @type {number | null} */
let frameRequest = null;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let announceTimer;
/** What is drawn, so each part is redrawn only when it changes. */
const drawn = { chat: 0, roster: '', chapter: -2, second: -1, stage: '' };

// ---- Loading the recording ---------------------------------------------------------------

/** The token from `#token=...` (then hidden from the address bar) or from this tab's storage. */
function readToken() {
  const fromLink = new URLSearchParams(location.hash.slice(1)).get('token');
  if (!fromLink) return sessionStorage.getItem(TOKEN_KEY);
  history.replaceState(null, '', location.pathname + location.search);
  return fromLink;
}

/** The page cannot play: say why, and stay so. @param {string} text */
function fail(text) {
  $('page-loading').hidden = true;
  const box = $('error');
  box.textContent = text;
  box.hidden = false;
  root.dataset.state = 'error';
}

/**
 * What to tell the reader for a refused request: by the server's error code, else the status.
 * @param {Response} response
 */
async function refusal(response) {
  let code = '';
  try {
    const body = await response.json();
    code = typeof body?.error?.code === 'string' ? body.error.code : '';
  } catch {
    // Not JSON (a proxy's page, say): the status decides.
  }
  if (code === 'unauthorized' || response.status === 401) return S.unauthorized;
  if (code === 'forbidden' || response.status === 403) return S.forbidden;
  if (code === 'not_found' || response.status === 404) return S.notFound;
  return S.serverError(response.status);
}

async function load() {
  const id = new URLSearchParams(location.search).get('recording');
  const token = readToken();
  if (!id) return fail(S.recordingMissing);
  if (!token) return fail(S.linkMissing);
  sessionStorage.setItem(TOKEN_KEY, token);
  /** @type {Response} */
  let response;
  try {
    response = await fetch(`/replay/v1/recordings/${encodeURIComponent(id)}`, {
      headers: { Authorization: `Bearer ${token}` },
      cache: 'no-store',
    });
  } catch {
    return fail(S.networkError);
  }
  if (!response.ok) return fail(await refusal(response));
  try {
    model = ReplayModel.fromAnswer(await response.json());
  } catch {
    return fail(S.badAnswer);
  }
  start(model);
}

/** The recording arrived: draw what does not change with the playhead, and show 0:00, paused. @param {ReplayModel} m */
function start(m) {
  const r = m.recording;
  const title = r.title || S.untitled;
  $('replay-title').textContent = title;
  document.title = `${title} · ${STRINGS.appName}`;
  const date = new Date(r.started_at);
  const when = Number.isNaN(date.getTime()) ? '' : date.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
  $('replay-when').textContent = S.when(when, formatClock(m.durationMs));
  const note = r.state === 'recording' ? S.stillRecording : r.state === 'failed' ? S.failed : '';
  $('replay-note').textContent = note;
  $('replay-note').hidden = !note;
  const download = /** @type {HTMLAnchorElement} */ ($('download'));
  const href = safeUrl(m.downloadUrl);
  download.hidden = !href;
  if (href) download.href = href;

  seekInput.max = String(m.durationMs);
  $('chapters').replaceChildren(
    ...m.chapters.map((c, i) => {
      const button = /** @type {HTMLButtonElement} */ (make('button'));
      button.type = 'button';
      button.dataset.t = String(c.t);
      button.dataset.chapter = String(i);
      button.append(make('span', 'chapter-time', formatClock(c.t)), make('span', 'chapter-title', c.title));
      const li = make('li', c.kind === 'gap' ? 'gap' : '');
      li.append(button);
      return li;
    }),
  );
  $('page-loading').hidden = true;
  $('replay').hidden = false;
  root.dataset.state = 'ready';
  clock.last = performance.now();
  render();
  setInterval(tick, TICK_MS);
}

/** An http(s) URL (relative ones resolved), or null: never a `javascript:` one. @param {string | null} url */
function safeUrl(url) {
  if (!url) return null;
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null;
  } catch {
    return null;
  }
}

// ---- The clock ---------------------------------------------------------------------------------

/** Moves the playhead on by the time passed, then draws. */
function tick() {
  if (!model) return;
  const now = performance.now();
  if (clock.playing && !clock.waiting) clock.t = Math.min(model.durationMs, clock.t + (now - clock.last) * clock.rate);
  clock.last = now;
  if (clock.playing && clock.t >= model.durationMs) {
    setPlaying(false);
    announce(S.announceEnd);
  }
  render();
}

/** A draw at the next frame, unless one is coming anyway (the clock runs on frames while playing). */
function requestRender() {
  if (frameRequest === null) frameRequest = requestAnimationFrame(frame);
}

function frame() {
  frameRequest = null;
  tick();
  if (clock.playing) frameRequest = requestAnimationFrame(frame);
}

/** @param {boolean} playing */
function setPlaying(playing) {
  if (!model) return;
  if (playing && clock.t >= model.durationMs) seek(0, false); // from the start again
  clock.playing = playing;
  clock.last = performance.now();
  if (playing && frameRequest === null) frameRequest = requestAnimationFrame(frame);
  render();
}

/**
 * Puts the playhead at `t` (clamped to the recording); the media follow at the next draw.
 * @param {number} t
 * @param {boolean} [tell] announce where it landed (once the reader stops seeking)
 */
function seek(t, tell = true) {
  if (!model) return;
  clock.t = Math.max(0, Math.min(model.durationMs, t));
  clock.last = performance.now();
  seekCount += 1;
  chatToBottom = true;
  render();
  if (tell) announceSoon();
}

function announceSoon() {
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => {
    if (!model) return;
    const chapter = model.chapterAt(clock.t);
    announce(S.announceSeek(formatClock(clock.t), chapter?.title ?? ''));
  }, ANNOUNCE_DELAY_MS);
}

/**
 * Says `text` in the live region. Cleared first and set a moment later, so the same text twice
 * in a row is read again.
 * @param {string} text
 */
function announce(text) {
  const region = $('announcer');
  region.textContent = '';
  setTimeout(() => (region.textContent = text), 100);
}

// ---- Drawing -----------------------------------------------------------------------------------

function render() {
  if (!model) return;
  const t = clock.t;
  root.dataset.playheadMs = String(Math.round(t));
  root.dataset.playing = String(clock.playing);
  syncMedia(model, t);
  renderTransport(model, t);
  renderChat(model, t);
  renderRoster(model, t);
  renderChapter(model, t);
}

/** @param {ReplayModel} m @param {number} t */
function renderTransport(m, t) {
  playButton.textContent = clock.playing ? S.pause : S.play;
  if (!dragging) seekInput.value = String(Math.round(t));
  const second = Math.floor(t / 1000);
  if (second !== drawn.second) {
    drawn.second = second;
    const [at, total] = [formatClock(t), formatClock(m.durationMs)];
    $('time').textContent = `${at} / ${total}`;
    seekInput.setAttribute('aria-valuetext', S.positionText(at, total));
  }
}

/** @param {ReplayChat} m */
function chatRow(m) {
  const li = make('li', m.private ? 'private' : '');
  li.dataset.seq = String(m.seq);
  const head = make('div', 'chat-head');
  head.append(make('span', 'name', m.fromName));
  if (isStaffRole(m.fromRole)) head.append(' ', make('span', 'role', STRINGS.roles[m.fromRole]));
  if (m.private) {
    const to = m.to.kind === 'staff' ? S.toStaffTag : S.toParticipantTag(m.toName ?? S.someone);
    head.append(' ', make('span', 'chat-to private-tag', to));
  }
  const time = /** @type {HTMLTimeElement} */ (make('time', '', formatClock(m.t)));
  const sent = new Date(m.sentAt);
  if (!Number.isNaN(sent.getTime())) time.dateTime = sent.toISOString();
  head.append(' ', time);
  li.append(head, make('p', 'chat-text', m.text));
  return li;
}

/** Exactly the messages sent at or before `t`: rows added or removed at the end only. @param {ReplayModel} m @param {number} t */
function renderChat(m, t) {
  const count = m.chatCountAt(t);
  if (count === drawn.chat && !chatToBottom) return;
  const atBottom = chatLog.scrollHeight - chatLog.scrollTop - chatLog.clientHeight < 40;
  if (count < drawn.chat) {
    while (chatLog.childElementCount > count) chatLog.lastElementChild?.remove();
  } else if (count > drawn.chat) {
    const rows = document.createDocumentFragment();
    for (let i = drawn.chat; i < count; i++) rows.append(chatRow(m.chat[i]));
    chatLog.append(rows);
  }
  drawn.chat = count;
  $('chat-count').textContent = String(count);
  $('chat-empty').hidden = count > 0;
  if (atBottom || chatToBottom) chatLog.scrollTop = chatLog.scrollHeight;
  chatToBottom = false;
}

/** @param {ReplayModel} m @param {number} t */
function renderRoster(m, t) {
  const speaker = m.speakerAt(t);
  const key = `${m.rosterIndexAt(t)}:${speaker}`;
  if (key === drawn.roster) return;
  drawn.roster = key;
  const people = m.rosterAt(t);
  $('roster').replaceChildren(
    ...people.map((p) => {
      const li = make('li', p.id === speaker ? 'speaking' : '');
      li.dataset.participant = p.id;
      li.append(make('span', 'name', p.name), ' ', make('span', 'role', STRINGS.roles[p.role] ?? ''));
      return li;
    }),
  );
  $('roster-count').textContent = String(people.length);
}

/** @param {ReplayModel} m @param {number} t */
function renderChapter(m, t) {
  const index = m.chapterIndexAt(t);
  if (index === drawn.chapter) return;
  drawn.chapter = index;
  for (const button of $('chapters').querySelectorAll('button')) {
    if (button.dataset.chapter === String(index)) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
}

// ---- Media: one element per segment in use, kept in step with the clock ------------------

/** @param {Segment} seg @param {PlayerRole} role @returns {Player} */
function newPlayer(seg, role) {
  const el = /** @type {HTMLMediaElement} */ (make(seg.kind === 'video' ? 'video' : 'audio'));
  el.preload = 'auto';
  if (el instanceof HTMLVideoElement) {
    el.muted = true; // a video segment has no sound; muted, it may always play
    el.playsInline = true;
  }
  el.dataset.segment = String(seg.n);
  el.dataset.participant = seg.participant_id;
  el.src = seg.url;
  // Loading states change between ticks: redraw at once (the "Loading…" note, the clock waiting).
  for (const type of ['loadeddata', 'seeked', 'canplay', 'waiting', 'ended', 'error']) el.addEventListener(type, requestRender);
  (seg.kind === 'video' ? stageView : $('replay-audio')).append(el);
  return { seg, el, role, waitingSince: null, gaveUp: false, seekCount: -1, graceUntil: 0 };
}

/** @param {Player} p */
function dropPlayer(p) {
  p.el.pause();
  p.el.removeAttribute('src');
  p.el.load(); // lets go of the connection and the decoder
  p.el.remove();
}

/**
 * What plays at `t` (and, while playing, what starts within PRELOAD_MS), each element seeked to
 * its place, playing or paused with the page at the chosen speed; sets `clock.waiting` while one
 * that should play is still loading.
 * @param {ReplayModel} m @param {number} t
 */
function syncMedia(m, t) {
  const stage = m.stageAt(t);
  /** @type {Map<number, {seg: Segment, role: PlayerRole}>} */
  const wanted = new Map();
  if (stage.main) wanted.set(stage.main.n, { seg: stage.main, role: 'main' });
  if (stage.small) wanted.set(stage.small.n, { seg: stage.small, role: 'small' });
  for (const seg of m.audioAt(t)) wanted.set(seg.n, { seg, role: 'audio' });
  if (clock.playing) {
    const ahead = m.frameAt(t + PRELOAD_MS);
    for (const seg of [ahead.stage.main, ahead.stage.small, ...ahead.audio]) {
      if (seg && !wanted.has(seg.n)) wanted.set(seg.n, { seg, role: 'preload' });
    }
  }
  for (const [n, p] of players) {
    if (wanted.has(n)) continue;
    dropPlayer(p);
    players.delete(n);
  }
  const now = performance.now();
  let loading = false;
  for (const [n, { seg, role }] of wanted) {
    let p = players.get(n);
    if (!p) {
      p = newPlayer(seg, role);
      players.set(n, p);
    }
    p.role = role;
    p.el.dataset.role = role;
    if (syncPlayer(p, t, now)) loading = true;
  }
  // The main picture first, under the small one.
  const main = [...players.values()].find((p) => p.role === 'main');
  if (main && stageView.firstElementChild !== main.el) stageView.prepend(main.el);

  const wasWaiting = clock.waiting;
  clock.waiting = clock.playing && loading;
  if (wasWaiting && !clock.waiting) clock.last = now; // the time spent loading does not count
  $('buffering').hidden = !loading;
  root.dataset.loading = String(loading);
  stageView.setAttribute('aria-busy', String(loading));
  const key = `${stage.participantId}:${stage.main?.n}`;
  if (key !== drawn.stage) {
    drawn.stage = key;
    $('stage-name').textContent = stage.participantId ? m.nameOf(stage.participantId) : '';
    $('stage-empty').hidden = !!stage.main;
  }
}

/**
 * Keeps one element at its place on the clock. Returns whether it is still loading where it
 * should show or play (so the clock waits for it).
 * @param {Player} p @param {number} t @param {number} now
 */
function syncPlayer(p, t, now) {
  const el = p.el;
  const shown = p.role !== 'preload';
  const target = Math.max(0, (t - p.seg.offset_ms) / 1000);
  const mediaEnd = Number.isFinite(el.duration) ? el.duration : Infinity;
  const end = Math.min(p.seg.duration_ms / 1000, mediaEnd);
  // Past the end of its file (shorter than the manifest says, e.g. cut by a crash): its last frame.
  const want = Math.min(target, mediaEnd);
  const done = el.ended && target >= mediaEnd;
  const atEnd = done || target >= end;
  const limit = p.seekCount === seekCount && now < p.graceUntil ? GRACE_DRIFT_S : DRIFT_LIMIT_S;
  if (!el.seeking && !done && Math.abs(el.currentTime - want) > limit) el.currentTime = want;
  p.seekCount = seekCount;
  if (el.playbackRate !== clock.rate) el.playbackRate = clock.rate;
  if (el.defaultPlaybackRate !== clock.rate) el.defaultPlaybackRate = clock.rate;

  // Playing, a picture or a voice needs data ahead; paused, a picture needs its current frame.
  const needed = clock.playing ? HTMLMediaElement.HAVE_FUTURE_DATA : HTMLMediaElement.HAVE_CURRENT_DATA;
  const nearEnd = atEnd || target >= end - END_SLACK_S;
  const notReady = shown && !nearEnd && !el.error && (el.seeking || el.readyState < needed);
  if (!notReady) {
    p.waitingSince = null;
    p.gaveUp = false;
  } else if (p.waitingSince === null) {
    p.waitingSince = now;
  } else if (now - p.waitingSince > WAIT_LIMIT_MS) {
    p.gaveUp = true;
  }
  const loading = notReady && !p.gaveUp;

  const play = shown && clock.playing && !clock.waiting && !atEnd;
  if (play && el.paused) {
    p.graceUntil = now + GRACE_MS;
    el.play().catch((/** @type {unknown} */ e) => {
      // Sound without a click first: the reader turns it on with one.
      if (e instanceof DOMException && e.name === 'NotAllowedError') $('sound-unlock').hidden = false;
    });
  } else if (!play && !el.paused) {
    el.pause();
  }
  return loading;
}

/** A click is what browsers want before playing sound. */
function unlockSound() {
  $('sound-unlock').hidden = true;
  for (const p of players.values()) {
    if (p.role !== 'preload' && clock.playing && p.el.paused) p.el.play().catch(() => ($('sound-unlock').hidden = false));
  }
}

// ---- Input -------------------------------------------------------------------------------------

/** @param {KeyboardEvent} e */
function onKeyDown(e) {
  if (!model || e.ctrlKey || e.metaKey || e.altKey) return;
  const target = e.target;
  // Fields keep their own keys; buttons and links their Space; the chat its scrolling keys.
  const field =
    target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement ||
    (target instanceof HTMLInputElement && target.type !== 'range') ||
    (target instanceof HTMLElement && target.isContentEditable) || target === chatLog;
  const pressable = target instanceof HTMLButtonElement || target instanceof HTMLAnchorElement ||
    (target instanceof HTMLElement && target.tagName === 'SUMMARY');
  if (field) return;
  switch (e.key) {
    case ' ':
      if (pressable) return;
      setPlaying(!clock.playing);
      break;
    case 'ArrowLeft':
      seek(clock.t - SEEK_STEP_MS);
      break;
    case 'ArrowRight':
      seek(clock.t + SEEK_STEP_MS);
      break;
    case 'Home':
      seek(0);
      break;
    case 'End':
      seek(model.durationMs);
      break;
    default:
      return;
  }
  e.preventDefault();
}

/** Fills in the static text, the speeds and the shortcuts, and listens. */
function setUp() {
  for (const element of document.querySelectorAll('[data-text]')) {
    const key = /** @type {HTMLElement} */ (element).dataset.text ?? '';
    element.textContent = /** @type {Record<string, any>} */ (S)[key];
  }
  for (const rate of SPEEDS) {
    const option = /** @type {HTMLOptionElement} */ (make('option', '', S.speedOption(rate)));
    option.value = String(rate);
    speedSelect.append(option);
  }
  speedSelect.value = '1';
  for (const [keys, what] of S.shortcuts) $('shortcut-list').append(make('dt', '', keys), make('dd', '', what));

  playButton.addEventListener('click', () => setPlaying(!clock.playing));
  speedSelect.addEventListener('change', () => {
    const rate = Number(speedSelect.value);
    if (!SPEEDS.includes(rate)) return;
    tick(); // the time so far at the old speed
    clock.rate = rate;
    render();
  });
  seekInput.addEventListener('pointerdown', () => (dragging = true));
  seekInput.addEventListener('input', () => seek(Number(seekInput.value), false));
  // Let go (or a key on the slider that we did not take, e.g. Page Up): say where it landed.
  seekInput.addEventListener('change', () => {
    dragging = false;
    seek(Number(seekInput.value));
  });
  document.addEventListener('pointerup', () => (dragging = false));
  $('chapters').addEventListener('click', (e) => {
    const button = e.target instanceof Element ? e.target.closest('button[data-t]') : null;
    if (button instanceof HTMLElement) seek(Number(button.dataset.t));
  });
  $('sound-unlock').addEventListener('click', unlockSound);
  document.addEventListener('keydown', onKeyDown);
}

root.dataset.state = 'loading';
setUp();
load();
