// @ts-check
/**
 * The camera and microphone panel: a preview of the chosen camera, and a list of the cameras
 * and microphones to choose from. Staff see it before they enter the class; anyone who may
 * publish can open it from the lobby or the class. The choice is kept for this tab
 * (sessionStorage) and read by the media session at each capture (`chosenDevice`).
 */
import { captureConstraints } from './media.js';
import { $, make } from './dom.js';
import { STRINGS } from './strings.js';

/** @typedef {'camera' | 'mic'} Device */
/** @typedef {import('./media.js').MediaSession} MediaSession */

/** The chosen devices (`MediaDeviceInfo.deviceId`), for this tab. @type {Record<Device, string>} */
const DEVICE_KEYS = { camera: 'lectern.camera', mic: 'lectern.mic' };

/**
 * The device chosen in this tab, or null for the browser's default.
 * @param {Device} source
 * @returns {string | null}
 */
export function chosenDevice(source) {
  return sessionStorage.getItem(DEVICE_KEYS[source]);
}

/**
 * The chosen camera (falling back to the default, then to no camera) and, the first time, the
 * microphone too: device labels need the permission.
 * @param {boolean} withMic
 * @returns {Promise<MediaStream>}
 */
async function capturePreview(withMic) {
  const mic = withMic ? (captureConstraints('mic', chosenDevice('mic')).audio ?? true) : false;
  /** @type {MediaStreamConstraints[]} */
  const attempts = [
    { ...captureConstraints('camera', chosenDevice('camera')), audio: mic },
    { video: true, audio: withMic },
  ];
  if (withMic) attempts.push({ audio: true }); // no camera: the microphones' labels at least
  let failure;
  for (const constraints of attempts) {
    try {
      return await navigator.mediaDevices.getUserMedia(constraints);
    } catch (error) {
      failure = error;
    }
  }
  throw failure;
}

/**
 * Fills one list with the devices found; the chosen one (else the one the preview got) is
 * selected.
 * @param {HTMLSelectElement} select @param {MediaDeviceInfo[]} devices @param {Device} source
 * @param {string | undefined} inUse
 */
function fillDeviceSelect(select, devices, source, inUse) {
  const options = devices.map((d, i) => {
    const option = /** @type {HTMLOptionElement} */ (make('option', '', d.label || STRINGS.deviceN[source](i + 1)));
    option.value = d.deviceId;
    return option;
  });
  if (!options.length) options.push(/** @type {HTMLOptionElement} */ (make('option', '', STRINGS.noDevice[source])));
  select.replaceChildren(...options);
  select.disabled = devices.length === 0;
  const wanted = chosenDevice(source) ?? inUse;
  if (wanted && devices.some((d) => d.deviceId === wanted)) select.value = wanted;
}

/**
 * @typedef {object} DevicePickerOptions
 * @property {() => void} onChange something the page shows changed: draw it (at the next frame)
 * @property {() => void} redraw draw the page now: closing the panel shows the class, and
 *   focus moves into it only once it is visible
 * @property {() => MediaSession | null} media the media session, if any: a camera or microphone
 *   it publishes moves to a newly chosen device
 */

/** The panel (`#devices` in index.html) and its two opening buttons. One per page. */
export class DevicePicker {
  /** @type {DevicePickerOptions} */
  #options;
  #open = false;
  /** Past the panel shown before the class (staff), or never shown it (students). */
  #entered = true;
  /** The page reached a final state: the panel stays closed. */
  #done = false;
  /** Each preview start counts up, so a slow one that lost the race stops its tracks. */
  #previewRun = 0;
  /** The microphone was asked for once (device labels need a permission). */
  #micAsked = false;
  /** The camera preview's tracks. @type {MediaStream | null} */
  #previewStream = null;
  /** The button that opened the panel, focused again when it closes. @type {HTMLElement | null} */
  #opener = null;
  #cameraSelect = /** @type {HTMLSelectElement} */ ($('camera-select'));
  #micSelect = /** @type {HTMLSelectElement} */ ($('mic-select'));
  #previewVideo = /** @type {HTMLVideoElement} */ ($('preview-video'));

  /** Listens to the lists, to devices coming and going, and to Escape. @param {DevicePickerOptions} options */
  constructor(options) {
    this.#options = options;
    this.#cameraSelect.addEventListener('change', () => void this.#choose('camera'));
    this.#micSelect.addEventListener('change', () => void this.#choose('mic'));
    navigator.mediaDevices?.addEventListener('devicechange', () => {
      if (this.#open) void this.#fillLists();
    });
    $('devices').addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.#entered) this.close();
    });
  }

  /** The panel is shown. */
  get isOpen() {
    return this.#open;
  }

  /** False while the panel shown before the class is open: the class stays hidden until "Enter class". */
  get entered() {
    return this.#entered;
  }

  /** Staff: shows the panel before the class; its button says "Enter class". */
  openBeforeClass() {
    this.#entered = false;
    this.open();
  }

  /** Shows the panel and starts the preview. @param {HTMLElement | null} [opener] focused again on close */
  open(opener = null) {
    if (this.#done) return;
    this.#open = true;
    this.#opener = opener;
    this.#drawPanel();
    if (opener) this.#cameraSelect.focus();
    void this.#startPreview();
    this.#options.onChange();
  }

  /** "Enter class" / "Done": stops the preview, shows the class. */
  close() {
    this.#open = false;
    this.#entered = true;
    this.#stopPreview();
    this.#options.redraw();
    const target = this.#opener ?? $('camera-toggle');
    this.#opener = null;
    if (target.offsetParent !== null) target.focus();
  }

  /** The page is done (left, removed, class ended, ...): closes the panel for good. */
  finish() {
    this.#done = true;
    this.#open = false;
    this.#stopPreview();
  }

  /** @param {boolean} observer observers publish nothing, so they get no button to open it */
  render(observer) {
    this.#drawPanel();
    for (const id of ['devices-toggle', 'lobby-devices']) $(id).hidden = observer;
  }

  #drawPanel() {
    $('devices').hidden = !this.#open || this.#done;
    $('enter-class').textContent = this.#entered ? STRINGS.devicesDone : STRINGS.enterClass;
    for (const id of ['devices-toggle', 'lobby-devices']) $(id).setAttribute('aria-expanded', String(this.#open));
  }

  #stopPreview() {
    this.#previewRun++;
    for (const track of this.#previewStream?.getTracks() ?? []) track.stop();
    this.#previewStream = null;
    this.#previewVideo.srcObject = null;
  }

  /** (Re)starts the preview of the chosen camera and fills both lists. */
  async #startPreview() {
    this.#stopPreview();
    const run = this.#previewRun;
    const note = $('devices-note');
    note.hidden = true;
    /** @type {MediaStream | null} */
    let stream = null;
    try {
      stream = await capturePreview(!this.#micAsked);
    } catch (error) {
      console.warn('preview', error);
      note.textContent = STRINGS.devicesDenied;
      note.hidden = false;
    }
    this.#micAsked = true;
    if (run !== this.#previewRun || !this.#open) {
      for (const track of stream?.getTracks() ?? []) track.stop();
      return;
    }
    const inUse = {
      camera: stream?.getVideoTracks()[0]?.getSettings().deviceId,
      mic: stream?.getAudioTracks()[0]?.getSettings().deviceId,
    };
    for (const track of stream?.getAudioTracks() ?? []) track.stop(); // asked for the labels only
    const video = stream?.getVideoTracks() ?? [];
    this.#previewStream = video.length ? new MediaStream(video) : null;
    this.#previewVideo.srcObject = this.#previewStream;
    if (this.#previewStream) this.#previewVideo.play().catch(() => undefined); // muted: allowed to autoplay
    await this.#fillLists(inUse);
  }

  /** @param {Partial<Record<Device, string>>} [inUse] the devices the preview got */
  async #fillLists(inUse = {}) {
    /** @type {MediaDeviceInfo[]} */
    let all = [];
    try {
      all = await navigator.mediaDevices.enumerateDevices();
    } catch (error) {
      console.warn('enumerateDevices', error);
    }
    fillDeviceSelect(this.#cameraSelect, all.filter((d) => d.kind === 'videoinput'), 'camera', inUse.camera);
    fillDeviceSelect(this.#micSelect, all.filter((d) => d.kind === 'audioinput'), 'mic', inUse.mic);
  }

  /** A list changed: remember it, preview it, and move a published track to it. @param {Device} source */
  async #choose(source) {
    const id = (source === 'camera' ? this.#cameraSelect : this.#micSelect).value;
    if (id) sessionStorage.setItem(DEVICE_KEYS[source], id);
    else sessionStorage.removeItem(DEVICE_KEYS[source]);
    if (source === 'camera' && this.#open) void this.#startPreview();
    const media = this.#options.media();
    if (media?.isPublishing(source)) await media.switchDevice(source); // failures: onError
    this.#options.onChange();
  }
}
