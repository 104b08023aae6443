// @ts-check
/**
 * Network quality (issue 16): the server's `network_quality` messages (from the SFU's own
 * statistics of each participant's peer) kept by participant, and the small indicator drawn in
 * each roster row and for this user: bars for the eye, "Network: poor" for screen readers.
 * Participants without a media session are `unknown` and show nothing.
 */
import { make } from './dom.js';
import { TEACHING_STRINGS as T } from './strings.js';

/** @typedef {import('./protocol.js').NetworkQuality} NetworkQuality */

/** How many of the three bars are lit. @type {Record<NetworkQuality, number>} */
const BARS = { good: 3, fair: 2, poor: 1, unknown: 0 };

export class NetworkQualities {
  /** @type {Map<string, NetworkQuality>} */
  #byParticipant = new Map();

  /**
   * A `network_quality` message: the participants whose quality changed.
   * @param {{participant_id: string, quality: NetworkQuality}[]} changes
   */
  apply(changes) {
    for (const { participant_id: id, quality } of changes) {
      if (typeof id !== 'string' || !(quality in BARS)) continue;
      if (quality === 'unknown') this.#byParticipant.delete(id);
      else this.#byParticipant.set(id, quality);
    }
  }

  /** A new welcome: the server sends the current values again. */
  clear() {
    this.#byParticipant.clear();
  }

  /** @param {string} id @returns {NetworkQuality} */
  of(id) {
    return this.#byParticipant.get(id) ?? 'unknown';
  }

  /**
   * This user's own indicator ("Your network: good"), hidden while unknown.
   * @param {HTMLElement} element
   * @param {string} myId
   */
  renderSelf(element, myId) {
    const quality = this.of(myId);
    element.hidden = quality === 'unknown';
    if (element.dataset.quality === quality) return;
    element.dataset.quality = quality;
    const indicator = qualityIndicator(quality);
    indicator.lastElementChild?.classList.remove('visually-hidden');
    if (indicator.lastElementChild) indicator.lastElementChild.textContent = T.myNetwork(T.quality[quality]);
    element.replaceChildren(indicator);
  }

  /**
   * The indicator for one participant, or null while unknown.
   * @param {string} id
   * @returns {HTMLElement | null}
   */
  indicator(id) {
    const quality = this.of(id);
    if (quality === 'unknown') return null;
    return qualityIndicator(quality);
  }
}

/**
 * Three bars (the lit ones coloured by quality, drawn by style.css) and the text a screen reader
 * says; `title` gives sighted mouse users the same words.
 * @param {NetworkQuality} quality
 */
export function qualityIndicator(quality) {
  const box = make('span', `net net-${quality}`);
  box.dataset.quality = quality;
  box.title = T.network(T.quality[quality]);
  const bars = make('span', 'net-bars');
  bars.setAttribute('aria-hidden', 'true');
  for (let i = 1; i <= 3; i++) bars.append(make('span', i <= BARS[quality] ? 'net-bar lit' : 'net-bar'));
  box.append(bars, make('span', 'visually-hidden', T.network(T.quality[quality])));
  return box;
}
