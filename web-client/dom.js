// @ts-check
/**
 * The DOM helpers the page's modules share. Text goes in as `textContent` only: nothing a
 * user wrote is ever parsed as HTML.
 */

/**
 * The page's element with this id; a missing one is a bug in index.html, so it throws.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function $(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`missing #${id}`);
  return element;
}

/**
 * A new element.
 * @param {string} tag @param {string} [className] @param {string} [text] set as text, never HTML
 * @returns {HTMLElement}
 */
export function make(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

/**
 * A small button that app.js's click handler dispatches by its `data-action` (and the other
 * `data-*` given, e.g. `participant`).
 * @param {string} label @param {string} action @param {Record<string, string>} [data]
 * @returns {HTMLButtonElement}
 */
export function actionButton(label, action, data = {}) {
  const button = /** @type {HTMLButtonElement} */ (make('button', 'small', label));
  button.type = 'button';
  Object.assign(button.dataset, { action, ...data });
  return button;
}

/**
 * The size a video is shown at inside its element (`object-fit: contain`), in device pixels;
 * 0x0 when hidden or not in the page.
 * @param {HTMLVideoElement} video
 */
export function shownSize(video) {
  if (video.hidden || !video.isConnected) return { width: 0, height: 0 };
  const [boxW, boxH] = [video.clientWidth, video.clientHeight];
  const [vw, vh] = [video.videoWidth, video.videoHeight];
  const scale = vw > 0 && vh > 0 ? Math.min(boxW / vw, boxH / vh) : 1;
  const [w, h] = vw > 0 && vh > 0 ? [vw * scale, vh * scale] : [boxW, boxH];
  const dpr = window.devicePixelRatio || 1;
  return { width: Math.round(w * dpr), height: Math.round(h * dpr) };
}
