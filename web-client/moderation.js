// @ts-check
/**
 * Class-wide teaching controls (issue 16), beside app.js's per-person ones:
 * - staff: "Mute all", "Allow everyone to speak" (a toggle showing the room's `speak_all`), the
 *   lecture/seminar switch (`set_mode`), and on a student's roster row "Ask to turn camera on",
 *   "Allow camera" and "Stop camera";
 * - a student: the non-modal prompt after `camera_requested` ("Turn on" / "Not now"), and what
 *   the live region says about these events.
 * The room's state (protocol.js `RoomState`) applies the events; this draws from it.
 */
import { $, actionButton } from './dom.js';
import { isStaffRole } from './protocol.js';
import { TEACHING_STRINGS as T } from './strings.js';

/** @typedef {import('./protocol.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./protocol.js').RoomEvent} RoomEvent */
/** @typedef {import('./protocol.js').RequestType} RequestType */
/**
 * The part of the class page (app.js) that its modules (moderation.js, gallery.js,
 * attendance.js) use.
 * @typedef {object} ClassPage
 * @property {import('./protocol.js').RoomState} room
 * @property {{id: string, role: import('./protocol.js').Role, name: string}} me
 * @property {(type: RequestType, fields?: Record<string, unknown>) => Promise<boolean>} act a
 *   request; a refusal is shown to the user
 * @property {() => import('./protocol.js').Connection | null} connection
 * @property {() => import('./media.js').MediaSession | null} media
 * @property {(source: import('./media.js').Source) => Promise<void>} toggleMedia
 * @property {() => string | null} activeSpeaker
 * @property {(text: string) => void} announce says it in the live region
 * @property {(message: string) => void} showError
 * @property {() => void} scheduleRender
 * @property {() => void} reportViews the shown sizes of videos changed
 */
/** A button's handler, by `data-action`. @typedef {Record<string, (button: HTMLElement) => void>} Actions */

export class Moderation {
  /** The student dismissed the camera prompt (or turned the camera on); a new request shows it again. */
  #promptShown = false;

  /** @param {ClassPage} page */
  constructor(page) {
    this.page = page;
    /** @type {Actions} */
    this.actions = {
      mute_all: () => void page.act('mute_all'),
      speak_all_toggle: () => void page.act('speak_all', { allowed: !page.room.speakAll }),
      mode_toggle: () => void page.act('set_mode', { mode: page.room.mode === 'seminar' ? 'lecture' : 'seminar' }),
      camera_request: (b) => void page.act('camera_request', { participant_id: b.dataset.participant ?? '' }),
      camera_allow: (b) => void page.act('camera_allow', { participant_id: b.dataset.participant ?? '' }),
      camera_stop: (b) => void page.act('camera_stop', { participant_id: b.dataset.participant ?? '' }),
      camera_prompt_on: () => void this.#acceptPrompt(),
      camera_prompt_dismiss: () => this.#closePrompt(),
    };
  }

  /** The static text (index.html's teaching tools and the prompt). */
  setUp() {
    $('mute-all').textContent = T.muteAll;
    $('speak-all').textContent = T.speakAll;
    $('mode-toggle').textContent = T.seminarMode;
    $('camera-prompt-text').textContent = T.cameraPrompt;
    $('camera-prompt-on').textContent = T.cameraPromptOn;
    $('camera-prompt-dismiss').textContent = T.cameraPromptLater;
  }

  /** Draws the staff toggles and the student's prompt. @param {boolean} staff */
  render(staff) {
    const { room } = this.page;
    $('class-tools').hidden = !staff;
    if (staff) {
      const live = room.classState === 'live';
      $('mute-all').hidden = !live;
      $('speak-all').hidden = !live;
      $('speak-all').setAttribute('aria-pressed', String(room.speakAll));
      $('mode-toggle').setAttribute('aria-pressed', String(room.mode === 'seminar'));
    }
    const self = room.participants.get(this.page.me.id);
    const publishing = this.page.media()?.isPublishing('camera') ?? false;
    // Gone once the camera is on, or when it may no longer be.
    if (this.#promptShown && (publishing || !self?.camera_allowed || self.in_lobby)) this.#promptShown = false;
    $('camera-prompt').hidden = !this.#promptShown;
  }

  /**
   * A student's camera buttons in their roster row (staff): ask or allow while not allowed, stop
   * (and ask, while the camera is off) once allowed.
   * @param {ParticipantInfo} p
   * @returns {HTMLElement[]}
   */
  cameraButtons(p) {
    if (p.role !== 'student' || p.in_lobby) return [];
    const data = { participant: p.id };
    const ask = actionButton(T.askCamera, 'camera_request', data);
    if (!p.camera_allowed) return [ask, actionButton(T.allowCamera, 'camera_allow', data)];
    return p.media.camera ? [actionButton(T.stopCamera, 'camera_stop', data)] : [ask, actionButton(T.stopCamera, 'camera_stop', data)];
  }

  /**
   * A room event (after the room state applied it): `camera_requested` for this user opens the
   * prompt (also when replayed after a reconnect: the request still stands).
   * @param {RoomEvent} event
   */
  onEvent(event) {
    if (event.kind === 'camera_requested' && event.participant_id === this.page.me.id) {
      this.#promptShown = !(this.page.media()?.isPublishing('camera') ?? false);
    }
  }

  /**
   * What the live region says of an event of these tools, or '' (app.js says the rest).
   * @param {RoomEvent} event
   */
  announcement(event) {
    const { me } = this.page;
    const student = !isStaffRole(me.role) && me.role !== 'observer';
    switch (event.kind) {
      case 'all_muted':
        return student ? T.announceAllMuted : '';
      case 'speak_all_changed':
        return student ? (event.allowed ? T.announceSpeakAll : T.announceSpeakAllOff) : '';
      case 'mode_changed':
        return event.mode === 'seminar' ? T.announceSeminar : T.announceLecture;
      case 'camera_requested':
        return event.participant_id === me.id ? T.cameraPrompt : '';
      case 'camera_allowed':
        return event.participant_id === me.id ? T.announceCameraAllowed : '';
      case 'camera_stopped':
        return event.participant_id === me.id ? T.announceCameraStopped : '';
      default:
        return '';
    }
  }

  async #acceptPrompt() {
    this.#promptShown = false;
    $('camera-prompt').hidden = true;
    // The camera button is disabled while the camera starts: focus goes to it afterwards.
    if (!this.page.media()?.isPublishing('camera')) await this.page.toggleMedia('camera');
    this.#closePrompt();
  }

  /** The prompt goes; focus moves to the camera button (it was on the prompt's, now hidden). */
  #closePrompt() {
    this.#promptShown = false;
    const prompt = $('camera-prompt');
    const hadFocus = prompt.contains(document.activeElement) || document.activeElement === document.body;
    prompt.hidden = true;
    const camera = $('camera-toggle');
    if (hadFocus && camera.getClientRects().length > 0) camera.focus();
    this.page.scheduleRender();
  }
}
