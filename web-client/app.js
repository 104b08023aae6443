// @ts-check
/**
 * The class page: reads the join link, connects through protocol.js and draws the lobby or the
 * class. User-provided text (names, chat) only ever goes in through textContent.
 *
 * Its parts: protocol.js (the connection and the room's state, no DOM), media.js (audio and
 * video, no DOM), devices.js (the camera and microphone panel), strings.js (every text shown),
 * dom.js (element helpers).
 */
import { Connection, RoomState, isStaffRole } from './protocol.js';
import { classSocketUrl, joinLink } from './join-link.js';
import { MediaSession } from './media.js';
import { DevicePicker, chosenDevice } from './devices.js';
import { $, make, shownSize } from './dom.js';
import { STRINGS } from './strings.js';
// Issue 16's teaching tools: each module draws its own part; the hooks below are marked "issue 16".
import { Moderation } from './moderation.js';
import { Gallery } from './gallery.js';
import { AttendancePanel } from './attendance.js';
import { NetworkQualities } from './quality.js';
import { Polls } from './polls.js'; // issue 13
import { LiveQuizPanel } from './livequiz.js'; // issue 13

/** @typedef {import('./protocol.js').ChatMessage} ChatMessage */
/** @typedef {import('./protocol.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./protocol.js').Reaction} Reaction */
/** @typedef {import('./protocol.js').RequestType} RequestType */
/** @typedef {import('./protocol.js').Role} Role */
/** @typedef {import('./media.js').Source} Source */

const REACTION_SHOWN_MS = 4000;
/** How long "You may not speak now" stays under the controls after Alt+M. */
const HINT_SHOWN_MS = 6000;
const ERROR_SHOWN_MS = 8000;
/** Server error codes meaning this link cannot join: their message stays on screen. */
const JOIN_ERRORS = ['invalid_token', 'token_expired', 'token_not_yet_valid', 'wrong_room', 'room_full', 'unsupported_version'];
/** Closings after which joining again from this page makes sense. */
const REJOINABLE = ['left', 'replaced', 'class_ended'];
const ROLE_ORDER = ['instructor', 'ta', 'student', 'observer'];

const chatInput = /** @type {HTMLInputElement} */ ($('chat-input'));
const chatTo = /** @type {HTMLSelectElement} */ ($('chat-to'));
const chatSend = /** @type {HTMLButtonElement} */ ($('chat-send'));
const chatLog = $('chat-log');

const room = new RoomState();
/** @type {{id: string, role: Role, name: string}} */
const me = { id: '', role: 'student', name: '' };
/** @type {Connection | null} */
let connection = null;
let welcomed = false;
/** The server starts this page's media at the welcome (see `onWelcome`); used by the next start. */
let mediaStartedByServer = false;
/** An `sfu_offer` that came before the MediaSession was made. @type {import('./protocol.js').MediaOfferMessage | null} */
let earlyOffer = null;
/** Replayed events are news, but announcing a burst of them would drown a screen reader. */
let replaying = false;
/** The page reached a final state (left, removed, class ended, ...). */
let finished = false;
let renderQueued = false;
/** A frame callback is pending for the queued render. */
let frameRequested = false;
/** Redraws the countdowns every second while one is shown. @type {ReturnType<typeof setInterval> | undefined} */
let clockTimer;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let errorTimer;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let announceTimer;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let hintTimer;
/** The last text given to the live region, so the end of the class is said once. */
let lastAnnounced = '';
/** Chat messages from others that arrived while the reader could not see them (chat out of view, scrolled up, or the tab hidden). */
let unread = 0;
/** The chat panel is on screen (IntersectionObserver). */
let chatInView = true;
/** Who the media server says is speaking (highlighted in the roster and on the stage). @type {string | null} */
let activeSpeaker = null;
/** @type {Map<number, HTMLElement>} drawn chat messages by seq, so new ones are added alone */
const chatItems = new Map();
/** Audio and video with the media server; created once admitted to the class. @type {MediaSession | null} */
let media = null;
/** ICE servers from the server's `media_config`; media waits for the first one. @type {RTCIceServer[] | null} */
let iceServers = null;
/** The WebSocket reconnected: the server forgot our peer connection, so make a new one. */
let mediaRestart = false;
/** The switches last sent with `set_media` (JSON), so each change is reported once. */
let reportedSwitches = '';
/** Playing remote audio, by mid. @type {Map<string, HTMLAudioElement>} */
const audioItems = new Map();
const stageVideo = /** @type {HTMLVideoElement} */ ($('stage-video'));
const pipVideo = /** @type {HTMLVideoElement} */ ($('pip-video'));
// A video shown bigger or smaller (window, layout, picture size) may want another layer.
const viewObserver = new ResizeObserver(() => reportViews());
for (const video of [stageVideo, pipVideo]) {
  viewObserver.observe(video);
  video.addEventListener('resize', () => reportViews());
}
/** @type {Source[]} */
const SOURCES = ['camera', 'mic', 'screen'];
/** The camera and microphone panel (devices.js). */
const devices = new DevicePicker({ onChange: scheduleRender, redraw: render, media: () => media });
// issue 16: mute all and speak all, seminar mode and cameras, attendance, network quality.
/** @type {import('./moderation.js').ClassPage} */
const classPage = {
  room, me, act, announce, showError, scheduleRender, toggleMedia, reportViews,
  connection: () => connection, media: () => media, activeSpeaker: () => activeSpeaker,
};
const moderation = new Moderation(classPage);
const gallery = new Gallery(classPage);
const attendance = new AttendancePanel(classPage);
const qualities = new NetworkQualities();
const polls = new Polls(classPage); // issue 13
const liveQuiz = new LiveQuizPanel(classPage); // issue 13
/** @type {import('./moderation.js').Actions} */
const moreActions = { ...moderation.actions, ...gallery.actions, ...attendance.actions, ...polls.actions, ...liveQuiz.actions };

// ---- Join link and messages to the user -------------------------------------------------

/** @param {string} text @param {boolean} [sticky] keep it until the page is reloaded */
function showError(text, sticky = false) {
  const box = $('error');
  box.textContent = text;
  box.hidden = false;
  clearTimeout(errorTimer);
  if (!sticky) errorTimer = setTimeout(() => (box.hidden = true), ERROR_SHOWN_MS);
}

/** The page is done: say why, and offer to join again where that makes sense. @param {string} reason */
function finish(reason) {
  if (reason === 'left') announce(STRINGS.announceLeft);
  else if (reason === 'class_ended' && lastAnnounced !== STRINGS.announceClassEnded) announce(STRINGS.announceClassEnded);
  finished = true;
  devices.finish();
  media?.close();
  media = null;
  $('notice-text').textContent = STRINGS.closing[reason] ?? STRINGS.status.closed;
  $('rejoin').hidden = !REJOINABLE.includes(reason);
  scheduleRender();
  focusAfterFinish();
}

// ---- Actions -----------------------------------------------------------------------------

/**
 * Sends a request; a refusal is shown to the user.
 * @param {RequestType} type
 * @param {Record<string, unknown>} [fields]
 * @returns {Promise<boolean>} whether the server accepted it
 */
async function act(type, fields) {
  try {
    if (!connection) return false;
    await connection.request(type, fields);
    return true;
  } catch (e) {
    const { code = '', message = '' } = /** @type {{code?: string, message?: string}} */ (e);
    showError(STRINGS.errors[code] ?? message);
    return false;
  }
}

function toggleHand() {
  if (me.role !== 'observer' && !isStaffRole(me.role)) act(room.hasHandRaised(me.id) ? 'hand_lower' : 'hand_raise');
}

async function sendChat() {
  const text = chatInput.value.trim();
  if (!text) return;
  const [kind, id] = chatTo.value.split(':');
  chatSend.disabled = true;
  if (await act('chat_send', { to: id ? { kind, id } : { kind }, text })) chatInput.value = '';
  chatSend.disabled = false;
  chatInput.focus();
}

/** Staff: address the next message privately to one participant. @param {string} id */
function replyTo(id) {
  chatTo.querySelector('option[data-private]')?.remove();
  const option = /** @type {HTMLOptionElement} */ (make('option', '', STRINGS.chatToParticipant(nameOf(id))));
  option.value = `participant:${id}`;
  option.dataset.private = '';
  chatTo.append(option);
  chatTo.value = option.value;
  chatInput.focus();
}

/** Every button with `data-action`, static or drawn, lands here. @param {MouseEvent} e */
function onActionClick(e) {
  const button = e.target instanceof Element ? e.target.closest('button[data-action]') : null;
  if (!(button instanceof HTMLElement)) return;
  const { action = '', participant: participant_id = '', seq = '', reaction } = button.dataset;
  switch (action) {
    case 'call_on':
    case 'hand_lower_for':
    case 'admit':
    case 'mute':
    case 'allow_speak':
    case 'revoke_speak':
    case 'stage_grant':
      return void act(action, participant_id ? { participant_id } : {});
    case 'stage_revoke':
    case 'class_start':
    case 'hand_lower_all':
      return void act(action);
    case 'class_end':
      return void (confirm(STRINGS.confirmEnd) && act('class_end'));
    case 'remove':
      return void (confirm(STRINGS.confirmRemove(nameOf(participant_id))) && act('remove', { participant_id }));
    case 'chat_lock':
      return void act('chat_lock', { locked: !room.chatLocked });
    case 'recording_toggle':
      return void act(room.recording ? 'recording_stop' : 'recording_start');
    case 'chat_delete':
      return void act('chat_delete', { seq: Number(seq) });
    case 'react':
      return void act('react', { reaction });
    case 'reply':
      return replyTo(participant_id);
    case 'hand_toggle':
      return toggleHand();
    case 'leave':
      return openLeaveDialog();
    case 'leave_stay':
      return closeLeaveDialog('stay');
    case 'leave_confirm':
      return closeLeaveDialog('leave');
    case 'stage_pin':
      return toggleStagePin();
    case 'stage_fullscreen':
      return void toggleStageFullscreen();
    case 'rejoin':
      return location.reload();
    case 'camera_toggle':
      return void toggleMedia('camera');
    case 'mic_toggle':
      return void toggleMedia('mic');
    case 'screen_toggle':
      return void toggleMedia('screen');
    case 'sound_unlock':
      return unlockSound();
    case 'devices_toggle':
      return devices.isOpen ? devices.close() : devices.open(button);
    case 'enter_class':
      return devices.close();
    default:
      return moreActions[action]?.(button); // issue 16
  }
}

/** @param {KeyboardEvent} e */
function onKeyDown(e) {
  if (!e.altKey || e.ctrlKey || e.metaKey || !welcomed || finished) return;
  /** @type {Record<string, () => unknown>} */
  const shortcuts = {
    KeyH: toggleHand,
    KeyC: () => chatInput.focus(),
    KeyN: () => isStaffRole(me.role) && act('call_on'),
    KeyM: () => (!$('mic-toggle').hidden ? toggleMedia('mic') : me.role === 'student' && showSpeakHint()),
  };
  if (!shortcuts[e.code]) return;
  e.preventDefault();
  shortcuts[e.code]();
}

/** Alt+M while the microphone is not ours to use: say why (shown briefly and announced). */
function showSpeakHint() {
  const hint = $('speak-hint');
  hint.textContent = STRINGS.cannotSpeak;
  hint.hidden = false;
  announce(STRINGS.cannotSpeak);
  clearTimeout(hintTimer);
  hintTimer = setTimeout(() => (hint.hidden = true), HINT_SHOWN_MS);
}

// ---- Drawing -----------------------------------------------------------------------------

/** @param {string} label @param {string} action @param {Record<string, string>} [data] */
function actionButton(label, action, data = {}) {
  const button = /** @type {HTMLButtonElement} */ (make('button', 'small', label));
  button.type = 'button';
  Object.assign(button.dataset, { action, ...data });
  return button;
}

/** @param {string} id */
function nameOf(id) {
  return room.participants.get(id)?.name ?? id;
}

/**
 * Rebuilds a list, keeping keyboard focus on the same action button if it is still there.
 * @param {HTMLElement} list @param {HTMLElement[]} items
 */
function replaceList(list, items) {
  const focused = document.activeElement;
  const had = focused instanceof HTMLElement && list.contains(focused) ? { ...focused.dataset } : null;
  list.replaceChildren(...items);
  if (!had?.action) return;
  for (const button of list.querySelectorAll('button')) {
    if (button.dataset.action === had.action && button.dataset.participant === had.participant) {
      return button.focus();
    }
  }
}

/**
 * Draws at most once per frame, however many events arrive. Background tabs get no animation
 * frames, so a timer (throttled there by the browser) draws them.
 */
function scheduleRender() {
  if (!renderQueued) {
    renderQueued = true;
    setTimeout(renderQueuedNow, 100); // also when no frames are drawn (a hidden tab)
  }
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(() => {
    frameRequested = false;
    // Joining a class, the page draws once its first media answer is out (media.js says
    // why); the media session's change callback schedules this again then.
    if (!media?.firstAnswerPending) renderQueuedNow();
  });
}

function renderQueuedNow() {
  if (!renderQueued) return;
  renderQueued = false;
  render();
}

function render() {
  const self = room.participants.get(me.id);
  const staff = isStaffRole(me.role);
  const inLobby = self ? self.in_lobby : !staff && room.classState !== 'live';
  $('notice').hidden = !finished;
  $('lobby').hidden = finished || !welcomed || !inLobby;
  $('classroom').hidden = finished || !welcomed || inLobby || !devices.entered;
  $('leave').hidden = finished || !welcomed;
  devices.render(me.role === 'observer');
  if (!welcomed) return;

  const title = room.title || STRINGS.appName;
  $('class-title').textContent = title;
  document.title = `${unread ? `(${unread}) ` : ''}${title} · ${STRINGS.appName}`;
  $('class-state').textContent = STRINGS.classState[room.classState];
  $('whoami').textContent = STRINGS.whoami(me.name, STRINGS.roles[me.role]);
  // Everyone sees that the class is recorded, in the lobby too (before their media is).
  $('recording-badge').hidden = !room.recording;
  renderClock();
  renderClassTimer();
  // After the end, the lobby says so (and nothing about a start that is due).
  const ended = room.classState === 'ended';
  $('lobby-heading').textContent = ended ? STRINGS.lobbyEndedHeading : STRINGS.lobbyHeading;
  $('lobby-body').textContent = ended ? STRINGS.lobbyEndedBody : STRINGS.lobbyBody;
  if (finished || inLobby) return;

  const raised = room.hasHandRaised(me.id);
  const hand = $('hand-toggle');
  hand.textContent = raised ? STRINGS.lowerHand : STRINGS.raiseHand;
  hand.setAttribute('aria-pressed', String(raised));
  for (const id of ['reaction-buttons', 'chat-form']) $(id).hidden = me.role === 'observer';
  // Staff call on others; they have no hand to raise.
  $('hand-toggle').hidden = me.role === 'observer' || staff;
  $('speak-note').hidden = staff || !self?.can_speak;
  if (self?.can_speak) $('speak-hint').hidden = true;
  $('staff-controls').hidden = !staff;
  moderation.render(staff); // issue 16
  attendance.render(staff);
  polls.render(staff); // issue 13
  liveQuiz.render(staff);
  qualities.renderSelf($('my-network'), me.id);
  $('start-class').hidden = room.classState === 'live';
  $('end-class').hidden = room.classState !== 'live';
  const lock = $('chat-lock');
  lock.textContent = room.chatLocked ? STRINGS.unlockChat : STRINGS.lockChat;
  lock.setAttribute('aria-pressed', String(room.chatLocked));
  $('chat-locked-note').hidden = !room.chatLocked;
  const rec = $('recording-toggle');
  rec.textContent = room.recording ? STRINGS.stopRecording : STRINGS.startRecording;
  rec.setAttribute('aria-pressed', String(room.recording));
  rec.hidden = room.classState !== 'live' && !room.recording;
  $('chat-more').hidden = room.chatHistoryComplete;
  const badge = $('chat-unread');
  badge.hidden = unread === 0;
  badge.textContent = STRINGS.chatUnread(unread);
  // Out of view (e.g. below the stage on a phone), the badge floats at the bottom of the screen.
  badge.classList.toggle('floating', !chatInView);
  chatInput.disabled = chatSend.disabled = room.chatLocked && !staff;

  renderHands(staff);
  renderRoster(staff);
  renderChat(staff);
  updateMedia();
  renderStage();
}

/** @param {boolean} staff */
function renderHands(staff) {
  const items = room.handQueue.map(({ participant_id: id }) => {
    const li = make('li');
    li.dataset.participant = id;
    li.append(make('span', 'name', nameOf(id)));
    if (id === me.id) li.append(' ', make('span', 'muted-text', STRINGS.you));
    if (staff) {
      const data = { participant: id };
      li.append(actionButton(STRINGS.callOn, 'call_on', data), actionButton(STRINGS.lower, 'hand_lower_for', data));
    }
    return li;
  });
  replaceList($('hand-queue'), items);
  $('hands-empty').hidden = items.length > 0;
  for (const id of ['call-next', 'lower-all']) $(id).toggleAttribute('disabled', items.length === 0);
}

/** @param {boolean} staff */
function renderRoster(staff) {
  const people = [...room.participants.values()].sort(
    (a, b) => ROLE_ORDER.indexOf(a.role) - ROLE_ORDER.indexOf(b.role),
  );
  const b = STRINGS.badges;
  const items = people.map((p) => {
    const li = make('li', p.connected ? '' : 'away');
    li.dataset.participant = p.id;
    if (p.id === activeSpeaker) li.classList.add('speaking');
    const line = make('div', 'person');
    line.append(make('span', 'name', p.name));
    if (p.id === me.id) line.append(' ', make('span', 'muted-text', STRINGS.you));
    line.append(' ', make('span', `role role-${p.role}`, STRINGS.roles[p.role]));
    const network = qualities.indicator(p.id); // issue 16
    if (network) line.append(' ', network);
    /** @type {[boolean, string, string][]} */
    const badges = [
      [room.hasHandRaised(p.id), b.hand, 'hand'],
      [p.in_lobby, b.lobby, 'lobby'],
      [p.hard_muted, b.muted, 'muted'],
      [p.can_speak && !isStaffRole(p.role) && !p.presenter, b.speak, 'speak'],
      [p.presenter, b.presenter, 'presenter'],
      [!p.connected, b.away, 'away'],
      [p.id === activeSpeaker, b.speaking, 'speaking'],
      [p.media.mic, b.mic, 'media'],
      [p.media.camera, b.camera, 'media'],
      [p.media.screen, b.screen, 'media'],
    ];
    const list = make('ul', 'badges');
    for (const [shown, label, kind] of badges) if (shown) list.append(make('li', `badge badge-${kind}`, label));
    li.append(line, list);
    if (staff && p.id !== me.id && !isStaffRole(p.role)) li.append(moderationButtons(p));
    return li;
  });
  replaceList($('roster'), items);
  $('roster-count').textContent = String(people.filter((p) => !p.in_lobby).length);
}

/** Staff buttons for one student or observer (who may not speak or present). @param {ParticipantInfo} p */
function moderationButtons(p) {
  const row = make('div', 'button-row');
  const data = { participant: p.id };
  if (p.in_lobby) {
    row.append(actionButton(STRINGS.admit, 'admit', data));
  } else if (p.role !== 'observer') {
    if (!p.hard_muted) row.append(actionButton(STRINGS.mute, 'mute', data));
    const speaking = p.can_speak && !p.hard_muted;
    row.append(
      actionButton(speaking ? STRINGS.revokeSpeak : STRINGS.allowSpeak, speaking ? 'revoke_speak' : 'allow_speak', data),
      actionButton(p.presenter ? STRINGS.revokeStage : STRINGS.grantStage, p.presenter ? 'stage_revoke' : 'stage_grant', data),
      ...moderation.cameraButtons(p), // issue 16
    );
  }
  row.append(actionButton(STRINGS.remove, 'remove', data));
  return row;
}

/** @param {ChatMessage} m @param {boolean} staff */
function chatItem(m, staff) {
  const li = make('li', m.to.kind === 'everyone' ? '' : 'private');
  li.dataset.seq = String(m.seq);
  const head = make('div', 'chat-head');
  head.append(make('span', 'name', m.from_name));
  if (isStaffRole(m.from_role)) head.append(' ', make('span', 'role', STRINGS.roles[m.from_role]));
  if (m.to.kind === 'staff') head.append(' ', make('span', 'chat-to', STRINGS.toStaffTag));
  if (m.to.kind === 'participant') {
    const to = m.to.id === me.id ? STRINGS.you : nameOf(m.to.id);
    head.append(' ', make('span', 'chat-to', STRINGS.toParticipantTag(to)));
  }
  const time = /** @type {HTMLTimeElement} */ (make('time'));
  const sent = new Date(m.sent_at);
  time.dateTime = sent.toISOString();
  time.textContent = sent.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  head.append(' ', time);
  li.append(head, make('p', 'chat-text', m.text));
  if (staff) {
    const row = make('div', 'button-row');
    if (m.from !== me.id && !isStaffRole(m.from_role)) row.append(actionButton(STRINGS.reply, 'reply', { participant: m.from }));
    row.append(actionButton(STRINGS.delete, 'chat_delete', { seq: String(m.seq) }));
    li.append(row);
  }
  return li;
}

/** Adds new messages and drops deleted ones without redrawing the rest. @param {boolean} staff */
function renderChat(staff) {
  const atBottom = chatLog.scrollHeight - chatLog.scrollTop - chatLog.clientHeight < 40;
  const wanted = new Set(room.chat.map((m) => m.seq));
  for (const [seq, li] of chatItems) {
    if (wanted.has(seq)) continue;
    li.remove();
    chatItems.delete(seq);
  }
  /** @type {HTMLElement | null} */
  let previous = null;
  for (const m of room.chat) {
    let li = chatItems.get(m.seq);
    if (!li) {
      li = chatItem(m, staff);
      chatItems.set(m.seq, li);
      if (previous) previous.after(li);
      else chatLog.prepend(li);
    }
    previous = li;
  }
  if (atBottom) chatLog.scrollTop = chatLog.scrollHeight;
}

/** @param {string} participantId @param {Reaction} reaction */
function showReaction(participantId, reaction) {
  const [emoji, label] = STRINGS.reactions[reaction] ?? ['', reaction];
  const li = make('li', 'reaction');
  li.title = label;
  li.append(make('span', 'emoji', emoji), ' ', make('span', '', nameOf(participantId)));
  const shown = $('reactions-shown');
  shown.append(li);
  while (shown.children.length > 8) shown.firstElementChild?.remove();
  setTimeout(() => li.remove(), REACTION_SHOWN_MS);
}

// ---- Media ---------------------------------------------------------------------------------

/**
 * Keeps the media session in step with the room: started once admitted (and again after a
 * reconnect), publishing only what the room allows (the server enforces the same rule).
 */
function updateMedia() {
  const self = room.participants.get(me.id);
  if (!self || self.in_lobby || finished || connection?.status !== 'open') return;
  if (!media && iceServers === null) return; // media_config follows the welcome
  if (!media) {
    media = new MediaSession({
      connection,
      iceServers: iceServers ?? [],
      onChange: scheduleRender,
      deviceId: chosenDevice,
      onError(error, source) {
        console.warn('media', source, error);
        const { code = '' } = /** @type {{code?: string}} */ (error);
        if (source) showError(STRINGS.mediaFailed[source]);
        else showError(STRINGS.errors[code] ?? STRINGS.mediaNegotiationFailed);
      },
    });
  }
  media.setAllowed({
    audio: me.role !== 'observer' && self.can_speak && !self.hard_muted,
    video: isStaffRole(me.role) || self.presenter || !!self.camera_allowed, // camera_allowed: issue 16
  });
  if (mediaRestart) {
    mediaRestart = false;
    media.restart();
  } else {
    media.start(false, mediaStartedByServer);
  }
  mediaStartedByServer = false;
  const offer = earlyOffer;
  earlyOffer = null;
  if (offer) media.handleMessage(offer);
}

/** @param {Source} source */
async function toggleMedia(source) {
  if (!media) return;
  const button = $(`${source}-toggle`);
  button.toggleAttribute('disabled', true);
  if (media.isPublishing(source)) await media.unpublish(source);
  else await media.publish(source);
  button.toggleAttribute('disabled', false);
  scheduleRender();
}

/**
 * The class ended: staff stay in the room, but their camera, microphone and screen go off
 * (the tracks stopped, so the devices are released) until they switch them on again.
 */
function stopPublishing() {
  for (const source of SOURCES) if (media?.isPublishing(source)) void media.unpublish(source);
  scheduleRender();
}

/** Tells the room what we publish (also when a revoked permission switched something off). */
function reportSwitches() {
  const self = room.participants.get(me.id);
  if (!media || !self) return;
  const switches = { mic: media.isPublishing('mic'), camera: media.isPublishing('camera'), screen: media.isPublishing('screen') };
  const json = JSON.stringify(switches);
  if (!reportedSwitches) reportedSwitches = JSON.stringify({ mic: self.media.mic, camera: self.media.camera, screen: self.media.screen });
  if (json === reportedSwitches) return;
  reportedSwitches = json;
  act('set_media', { media: switches });
}

/** The student on stage, else the instructor (else a TA) who shows video, else the first instructor. */
function stageParticipant() {
  if (gallery.pinned) return gallery.pinned; // issue 16: a gallery tile pinned to the stage
  if (room.presenter && room.participants.has(room.presenter)) return room.presenter;
  const staff = [...room.participants.values()]
    .filter((p) => isStaffRole(p.role))
    .sort((a, b) => ROLE_ORDER.indexOf(a.role) - ROLE_ORDER.indexOf(b.role));
  return (staff.find((p) => videosOf(p.id).length > 0) ?? staff[0])?.id ?? null;
}

/**
 * A participant's video streams, main first: the screen before the camera for ourselves; for
 * others the newest m-line first (a screen share usually starts after the camera).
 * @param {string} id
 * @returns {{stream: MediaStream, mid: string}[]}
 */
function videosOf(id) {
  if (!media) return [];
  if (id === me.id) {
    return media.localTracks
      .filter((t) => t.source !== 'mic')
      .sort((a, b) => Number(b.source === 'screen') - Number(a.source === 'screen'))
      .map((t) => ({ stream: t.stream, mid: t.source }));
  }
  return media.remoteTracks
    .filter((t) => t.kind === 'video' && t.participantId === id)
    .reverse()
    .map((t) => ({ stream: t.stream, mid: t.mid }));
}

/**
 * @param {HTMLVideoElement} video
 * @param {{stream: MediaStream, mid: string} | undefined} source
 * @param {string} participantId
 */
function showVideo(video, source, participantId) {
  const stream = source?.stream ?? null;
  if (video.srcObject !== stream) {
    video.srcObject = stream;
    if (stream) video.play().catch(() => undefined); // muted: allowed to autoplay
  }
  video.dataset.participant = stream ? participantId : '';
  video.dataset.mid = source?.mid ?? '';
  video.hidden = video === pipVideo && !stream;
}

/** Tells the SFU how big each received video is shown (it picks a simulcast layer to fit). */
function reportViews() {
  if (!media) return;
  /** @type {Map<string, {width: number, height: number}>} */
  const views = new Map();
  for (const t of media.remoteTracks) if (t.kind === 'video') views.set(t.mid, { width: 0, height: 0 });
  for (const video of [stageVideo, pipVideo]) {
    const mid = video.dataset.mid ?? '';
    if (views.has(mid)) views.set(mid, shownSize(video));
  }
  gallery.addViews(views); // issue 16: tiles' sizes, hidden pages paused
  media.setViews(views);
}

function renderStage() {
  const self = room.participants.get(me.id);
  const staff = isStaffRole(me.role);
  const auto = stageParticipant();
  // A pinned video stays large; what the stage would show otherwise goes to the small picture.
  const pinned = pinnedVideo();
  const stageId = pinned?.participantId ?? auto;
  const videos = stageId ? videosOf(stageId) : [];
  if (pinned) videos.sort((a, b) => Number(b.mid === pinned.mid) - Number(a.mid === pinned.mid));
  showVideo(stageVideo, videos[0], stageId ?? '');
  // The small picture: the presenter's other video, or the instructor while a student presents.
  /** @type {{stream: MediaStream, mid: string} | undefined} */
  let pip = videos[1];
  let pipId = stageId ?? '';
  if (!pip && auto && stageId !== auto) [pip, pipId] = [videosOf(auto)[0], auto];
  if (!pip && stageId && stageId === room.presenter) {
    const teacher = [...room.participants.values()].find((p) => p.role === 'instructor' && videosOf(p.id).length > 0);
    if (teacher) [pip, pipId] = [videosOf(teacher.id).at(-1), teacher.id];
  }
  showVideo(pipVideo, pip, pipId);
  gallery.render(); // issue 16
  reportViews();
  $('stage-name').textContent = stageId ? nameOf(stageId) : '';
  $('stage').classList.toggle('speaking', !!stageId && stageId === activeSpeaker);
  $('stage-empty').hidden = videos.length > 0;
  // A student handed the stage sees so, with what to do while nothing is shown yet.
  const presenting = !staff && !!self?.presenter;
  $('presenting-note').hidden = !presenting;
  $('stage-empty').textContent = presenting ? STRINGS.stageEmptyPresenting : STRINGS.stageEmpty;
  renderStageTools(videos.length > 0);

  const controls = $('media-controls');
  controls.hidden = !media || !(staff || self?.presenter || self?.can_speak || self?.camera_allowed) || me.role === 'observer';
  for (const source of SOURCES) {
    const button = $(`${source}-toggle`);
    const on = media?.isPublishing(source) ?? false;
    // issue 16: a student allowed a camera (not presenting) shares no screen.
    const studentScreen = source === 'screen' && !staff && !self?.presenter;
    button.hidden = (!media?.mayPublish(source) || studentScreen) && !on;
    button.textContent = STRINGS.mediaButtons[source][on ? 1 : 0];
    button.setAttribute('aria-pressed', String(on));
  }
  renderAudio();
  reportSwitches();
}

/** One `<audio>` per remote audio track; video elements stay muted so they may autoplay. */
function renderAudio() {
  const wanted = new Map((media?.remoteTracks ?? []).filter((t) => t.kind === 'audio').map((t) => [t.mid, t]));
  for (const [mid, element] of audioItems) {
    if (wanted.get(mid)?.stream === element.srcObject) continue;
    element.srcObject = null;
    element.remove();
    audioItems.delete(mid);
  }
  for (const [mid, t] of wanted) {
    if (audioItems.has(mid)) continue;
    const element = /** @type {HTMLAudioElement} */ (make('audio'));
    element.autoplay = true;
    element.srcObject = t.stream;
    element.dataset.participant = t.participantId;
    element.dataset.mid = mid;
    audioItems.set(mid, element);
    $('stage-audio').append(element);
    element.play().catch(() => ($('sound-unlock').hidden = false)); // autoplay refused: needs a click
  }
}

/** A click is what browsers need before playing sound. */
function unlockSound() {
  $('sound-unlock').hidden = true;
  for (const element of audioItems.values()) element.play().catch(() => ($('sound-unlock').hidden = false));
}

// ---- Clock -------------------------------------------------------------------------------------

/** `m:ss` (or `h:mm:ss`) until `at`, never negative. @param {number} at Unix ms */
function timeLeft(at) {
  return clockText(Math.ceil((at - Date.now()) / 1000));
}

/** `m:ss` (or `h:mm:ss`) of a number of seconds, never negative. @param {number} seconds */
function clockText(seconds) {
  const total = Math.max(0, seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/**
 * The lobby's countdown to a scheduled start and the classroom's ending-soon note, from the
 * scheduled times in the snapshot and `class_ending_soon`. Redrawn every second while shown.
 */
function renderClock() {
  const countdown = $('lobby-countdown');
  const start = room.scheduledStart;
  const showCountdown = start !== null && room.classState === 'not_started';
  countdown.hidden = !showCountdown;
  if (start !== null && showCountdown) {
    countdown.textContent = start > Date.now() ? STRINGS.lobbyCountdown(timeLeft(start)) : STRINGS.lobbyPastStart;
  }
  const ending = $('ending-soon');
  const end = room.scheduledEnd;
  const warned = room.endingSoon || (room.warnsAt !== null && Date.now() >= room.warnsAt);
  const showEnding = warned && end !== null && room.classState === 'live';
  ending.hidden = !showEnding;
  if (end !== null && showEnding) {
    ending.textContent = end > Date.now() ? STRINGS.endingSoon(timeLeft(end)) : STRINGS.endingNow;
  }
  const ticking = !finished && (showCountdown || showEnding);
  if (ticking && clockTimer === undefined) {
    clockTimer = setInterval(renderClock, 1000);
  } else if (!ticking && clockTimer !== undefined) {
    clearInterval(clockTimer);
    clockTimer = undefined;
  }
}

// ---- Connection ----------------------------------------------------------------------------

/**
 * Says `text` in the live region (`#announcer`). Cleared first and set a moment later, so the
 * same message twice in a row is read again.
 * @param {string} text
 */
function announce(text) {
  const region = $('announcer');
  lastAnnounced = text;
  region.textContent = '';
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => (region.textContent = text), 100);
}

/**
 * What to announce of a room event: new chat from others, being called on, allowed to speak or
 * not, muted, handed the stage or not, the class starting and ending.
 * @param {import('./protocol.js').RoomEvent} event
 */
function announceEvent(event) {
  let text = '';
  if (event.kind === 'chat' && event.message.from !== me.id && !replaying && !chatIsSeen()) unread += 1;
  if (event.kind === 'chat' && event.message.from !== me.id) {
    const m = event.message;
    text = (m.to.kind === 'everyone' ? STRINGS.announceChat : STRINGS.announcePrivate)(m.from_name, m.text);
  } else if (event.kind === 'called_on' && event.participant_id === me.id) {
    text = STRINGS.announceCalledOn;
  } else if (event.kind === 'class_started') {
    text = STRINGS.announceClassStarted;
  } else if (event.kind === 'class_ended') {
    text = STRINGS.announceClassEnded;
  } else if (event.kind === 'stage_granted' && event.participant_id === me.id) {
    text = STRINGS.announceStageGranted;
  } else if (event.kind === 'stage_revoked' && event.participant_id === me.id) {
    text = STRINGS.announceStageRevoked;
  } else if (event.kind === 'muted' && event.participant_id === me.id) {
    text = STRINGS.announceMuted;
  } else if (event.kind === 'speak_allowed' && event.participant_id === me.id) {
    text = STRINGS.announceMaySpeak;
  } else if (event.kind === 'speak_revoked' && event.participant_id === me.id) {
    text = STRINGS.announceMayNotSpeak;
  } else if (event.kind === 'recording_started') {
    text = STRINGS.announceRecordingStarted;
  } else if (event.kind === 'recording_stopped') {
    text = event.reason === 'disk_full' ? STRINGS.announceRecordingDiskFull : STRINGS.announceRecordingStopped;
  } else if (event.kind === 'class_ending_soon') {
    const at = new Date(event.closes_at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    text = STRINGS.announceEndingSoon(at);
  }
  if (!text) text = moderation.announcement(event); // issue 16
  if (!text) text = polls.announcement(event); // issue 13
  if (!text) text = liveQuiz.announcement(event);
  if (text && !replaying) announce(text);
}

/**
 * @param {string} token @param {string} roomId
 * @param {import('./join-link.js').EarlySocket | null} early the socket join-link.js opened
 */
function connect(token, roomId, early) {
  connection = new Connection({
    url: classSocketUrl(roomId),
    token,
    early,
    onWelcome(snapshot, welcome) {
      if (media?.started) mediaRestart = true;
      // The hello asked for media at the welcome: the server started it if we are in class.
      const self = snapshot?.roster.find((p) => p.id === welcome.participant_id);
      mediaStartedByServer = !!connection?.mediaStartAsked && !!self && !self.in_lobby;
      activeSpeaker = null; // the server says again who speaks, right after the welcome
      qualities.clear(); // and the network qualities (issue 16)
      me.id = welcome.participant_id;
      // Staff publish: they choose their devices first (the link's role claim said so already).
      if (!welcomed && isStaffRole(welcome.role) && me.role !== welcome.role && !devices.isOpen) {
        devices.openBeforeClass();
      }
      me.role = welcome.role;
      welcomed = true;
      replaying = !snapshot;
      if (snapshot) room.applySnapshot(snapshot);
      if (snapshot) noteClassStart(snapshot);
      if (snapshot) polls.onSnapshot(snapshot); // issue 13
      if (snapshot) liveQuiz.onSnapshot(snapshot);
      scheduleRender();
    },
    onSnapshot(snapshot) {
      room.applySnapshot(snapshot);
      polls.onSnapshot(snapshot); // issue 13
      liveQuiz.onSnapshot(snapshot);
      noteClassStart(snapshot);
      scheduleRender();
    },
    onEvent(seq, event, at) {
      room.applyEvent(seq, event);
      noteClassEvent(event, at);
      announceEvent(event);
      moderation.onEvent(event); // issue 16
      attendance.onEvent(event);
      polls.onEvent(event); // issue 13
      liveQuiz.onEvent(event);
      if (event.kind === 'class_ended') stopPublishing();
      scheduleRender();
    },
    onReplayDone: () => (replaying = false),
    onReaction: showReaction,
    onActiveSpeaker(participantId) {
      activeSpeaker = participantId;
      scheduleRender();
    },
    onPollResults: (results) => polls.onResults(results), // issue 13
    onQuizProgress: (quizId, submitted) => liveQuiz.onProgress(quizId, submitted),
    onNetworkQuality(changes) {
      qualities.apply(changes); // issue 16
      scheduleRender();
    },
    onMediaConfig(servers) {
      iceServers = servers;
      media?.setIceServers(servers);
      updateMedia();
    },
    onMedia(message) {
      // The SFU's first offer may come before the page has made its MediaSession (it follows
      // the welcome when the hello asked for `media_start`): kept until then.
      if (media) media.handleMessage(message);
      else if (message.type === 'sfu_offer') earlyOffer = message;
    },
    onError: (code, message) => showError(STRINGS.errors[code] ?? message, JOIN_ERRORS.includes(code)),
    onClosing(reason) {
      // Several nodes: a redirect is followed at once, silently.
      if (reason === 'redirected') return;
      const reconnecting = reason === 'server_shutdown' || reason === 'slow_consumer' || reason === 'room_moved';
      if (reconnecting) showError(STRINGS.closing[reason]);
      else if (reason !== 'handshake_failed') finish(reason);
      else if ($('error').hidden) showError(STRINGS.closing[reason], true);
    },
    onStatus(status) {
      $('status').textContent = STRINGS.status[status];
      $('status').dataset.state = status;
      if (status === 'open') scheduleRender();
    },
  });
  connection.connect();
}

/** Whether the reader can see the newest chat message now. */
function chatIsSeen() {
  const atBottom = chatLog.scrollHeight - chatLog.scrollTop - chatLog.clientHeight < 40;
  return chatInView && !document.hidden && atBottom;
}

/** Scroll-back: asks the server for the page of chat before the oldest message shown, keeping the view where it was. */
async function loadEarlierChat() {
  const button = /** @type {HTMLButtonElement} */ ($('chat-more'));
  if (!connection || button.disabled) return;
  button.disabled = true;
  const before = room.chat[0]?.seq ?? room.seq + 1;
  try {
    const page = await connection.chatHistory(before);
    const fromBottom = chatLog.scrollHeight - chatLog.scrollTop;
    room.addOlderChat(page);
    renderChat(isStaffRole(me.role));
    chatLog.scrollTop = chatLog.scrollHeight - fromBottom;
  } catch {
    showError(STRINGS.chatMoreFailed);
  } finally {
    button.disabled = false;
    scheduleRender();
  }
}

/** Fills in the static text and the reaction buttons, and listens for clicks and keys. */
function setUp() {
  for (const element of document.querySelectorAll('[data-text]')) {
    const key = /** @type {HTMLElement} */ (element).dataset.text ?? '';
    element.textContent = /** @type {Record<string, any>} */ (STRINGS)[key];
  }
  chatInput.placeholder = STRINGS.chatPlaceholder;
  $('reaction-buttons').setAttribute('aria-label', STRINGS.reactionsLabel);
  for (const [reaction, [emoji, label]] of Object.entries(STRINGS.reactions)) {
    const button = actionButton(emoji, 'react', { reaction });
    button.setAttribute('aria-label', label);
    button.title = label;
    $('reaction-buttons').append(button);
  }
  for (const [keys, what] of STRINGS.shortcuts) $('shortcut-list').append(make('dt', '', keys), make('dd', '', what));
  setUpLeaveDialog();
  setUpStageTools();
  for (const tool of [moderation, gallery, attendance, polls, liveQuiz]) tool.setUp(); // issues 16, 13
  document.addEventListener('click', onActionClick);
  document.addEventListener('keydown', onKeyDown);
  $('chat-more').addEventListener('click', () => void loadEarlierChat());
  // Unread chat: cleared once the newest message can be seen.
  const seen = () => {
    if (unread && chatIsSeen()) {
      unread = 0;
      scheduleRender();
    }
  };
  new IntersectionObserver((entries) => {
    chatInView = entries.some((e) => e.isIntersecting);
    seen();
    scheduleRender(); // the badge floats while the chat is out of view
  }, { threshold: 0.2 }).observe($('chat'));
  chatLog.addEventListener('scroll', seen);
  document.addEventListener('visibilitychange', seen);
  $('chat-unread').addEventListener('click', () => {
    $('chat').scrollIntoView({ block: 'nearest' });
    chatLog.scrollTop = chatLog.scrollHeight;
    chatInput.focus();
  });
  $('chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sendChat();
  });
}

// ---- Leaving: the confirmation dialog, and where focus goes after ------------------------------

const leaveDialog = /** @type {HTMLDialogElement} */ ($('leave-dialog'));

/** Escape (the dialog's `cancel`) and "Stay" keep the class; focus goes back to "Leave class". */
function setUpLeaveDialog() {
  leaveDialog.addEventListener('close', () => {
    if (leaveDialog.returnValue === 'leave') return void connection?.leave().then(() => finish('left'));
    $('leave').focus();
  });
}

/** "Leave class": asks first, with "Stay" focused (the safe answer). */
function openLeaveDialog() {
  if (leaveDialog.open || finished) return;
  if (document.fullscreenElement) void document.exitFullscreen().catch(() => undefined);
  leaveDialog.returnValue = '';
  leaveDialog.showModal();
  $('leave-stay').focus();
}

/** @param {'leave' | 'stay'} answer */
function closeLeaveDialog(answer) {
  if (leaveDialog.open) leaveDialog.close(answer);
}

/**
 * The page reached its end screen: focus moves to "Join again" (or the notice's text when
 * joining again makes no sense), never left on the body or on a hidden control.
 */
function focusAfterFinish() {
  if (leaveDialog.open) leaveDialog.close('stay');
  if (document.fullscreenElement) void document.exitFullscreen().catch(() => undefined);
  render(); // the notice is shown now, so it can take focus
  const rejoin = $('rejoin');
  (rejoin.hidden ? $('notice-text') : rejoin).focus();
}

// ---- Stage: pin and full screen --------------------------------------------------------------

/**
 * The video the user pinned to the stage (a participant's camera or screen, by its mid; our
 * own by source), kept large instead of the presenter's newest video. Null: the stage follows
 * the class by itself. The seminar gallery may pin a tile through `pinStage` too.
 * @type {{participantId: string, mid: string} | null}
 */
let stagePin = null;

/** Pins a video to the stage, or unpins with null. @param {{participantId: string, mid: string} | null} pin */
function pinStage(pin) {
  stagePin = pin;
  scheduleRender();
}

/** The pinned video if it is still there; a pin whose video went away is dropped. */
function pinnedVideo() {
  if (!stagePin) return null;
  const { participantId, mid } = stagePin;
  if (!videosOf(participantId).some((v) => v.mid === mid)) stagePin = null;
  return stagePin;
}

/** "Pin stage": keeps the stage on what it shows now; pressed again, the stage follows the class. */
function toggleStagePin() {
  if (stagePin) return pinStage(null);
  const participantId = stageVideo.dataset.participant ?? '';
  const mid = stageVideo.dataset.mid ?? '';
  if (participantId && mid) pinStage({ participantId, mid });
}

/** Full screen shows the stage alone (its small picture and reactions too); Escape leaves it. */
async function toggleStageFullscreen() {
  try {
    if (document.fullscreenElement) await document.exitFullscreen();
    else await $('stage-view').requestFullscreen();
  } catch (error) {
    console.warn('fullscreen', error);
  }
}

function setUpStageTools() {
  $('stage-tools').setAttribute('aria-label', STRINGS.stageToolsLabel);
  $('reactions-shown').setAttribute('aria-label', STRINGS.reactionsShownLabel);
  $('stage-pin').title = STRINGS.stagePinTitle;
  // Browsers leave full screen on Escape themselves; this covers those that hand the key to the page.
  $('stage-view').addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && document.fullscreenElement) void document.exitFullscreen().catch(() => undefined);
  });
  document.addEventListener('fullscreenchange', () => {
    renderStageTools($('stage-empty').hidden === true); // the empty-stage text is hidden while a video shows
    if (!document.fullscreenElement && document.activeElement === document.body) $('stage-fullscreen').focus();
  });
}

/** @param {boolean} showing a video is on the stage */
function renderStageTools(showing) {
  const pin = $('stage-pin');
  pin.hidden = !showing && !stagePin;
  pin.textContent = STRINGS.stagePin[stagePin ? 1 : 0];
  pin.setAttribute('aria-pressed', String(!!stagePin));
  const full = $('stage-fullscreen');
  const inFullscreen = document.fullscreenElement === $('stage-view');
  full.hidden = !document.fullscreenEnabled || (!showing && !inFullscreen); // nothing to show large yet
  full.textContent = STRINGS.stageFullscreen[inFullscreen ? 1 : 0];
  full.setAttribute('aria-pressed', String(inFullscreen));
}

// ---- Class timer (staff) -----------------------------------------------------------------------

/**
 * When the class went live (Unix ms): the snapshot's `class_started_at`, else the `at` of the
 * `class_started` event this page saw, else (a server that sends neither) when this page first
 * saw the class live. Null while it is not live.
 * @type {number | null}
 */
let classStartedAt = null;
/** @type {ReturnType<typeof setInterval> | undefined} */
let classTimerTicker;

/** @param {import('./protocol.js').Snapshot} snapshot */
function noteClassStart(snapshot) {
  if (snapshot.class_state !== 'live') classStartedAt = null;
  else if (snapshot.class_started_at) classStartedAt = snapshot.class_started_at;
  else classStartedAt ??= Date.now();
}

/** @param {import('./protocol.js').RoomEvent} event @param {number | undefined} at */
function noteClassEvent(event, at) {
  if (event.kind === 'class_started') classStartedAt = at ?? Date.now();
  else if (event.kind === 'class_ended') classStartedAt = null;
}

/** Staff see how long the class has been live (and how long is left of a scheduled one), each second. */
function renderClassTimer() {
  const timer = $('class-timer');
  const start = classStartedAt;
  const show = welcomed && !finished && isStaffRole(me.role) && room.classState === 'live' && start !== null;
  timer.hidden = !show;
  if (show) {
    const end = room.scheduledEnd;
    timer.textContent = STRINGS.classTimer(clockText(Math.floor((Date.now() - start) / 1000)), end !== null ? timeLeft(end) : null);
  }
  if (show && classTimerTicker === undefined) {
    classTimerTicker = setInterval(renderClassTimer, 1000);
  } else if (!show && classTimerTicker !== undefined) {
    clearInterval(classTimerTicker);
    classTimerTicker = undefined;
  }
}

function main() {
  setUp();
  // join-link.js read the link (and opened the class's socket) before this module loaded.
  const { token, claims, early } = joinLink;
  if (!token) return showError(STRINGS.linkMissing, true);
  if (!claims) return showError(STRINGS.linkInvalid, true);
  if (claims.exp * 1000 <= Date.now()) return showError(STRINGS.linkExpired, true);
  // A course session's room (`course.session`): its members have a course home.
  if (claims.room.includes('.')) {
    const home = /** @type {HTMLAnchorElement} */ ($('course-home'));
    home.href = `/course.html#token=${encodeURIComponent(token)}`;
    home.hidden = false;
    liveQuiz.setCourse(claims.room.split('.')[0], token);
  }
  me.name = claims.name;
  // Staff see the camera and microphone panel first; the class connects meanwhile.
  if (claims.role && isStaffRole(claims.role)) {
    me.role = claims.role;
    devices.openBeforeClass();
  }
  connect(token, claims.room, early);
}

main();
