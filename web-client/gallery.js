// @ts-check
/**
 * The seminar gallery (issue 16): a tile for every participant whose camera is on (students and
 * staff, this user too), under the stage, a page at a time (9 tiles; `?gallery_page_size=N` in
 * the page's address changes it, for tests). The active speaker's tile is highlighted.
 *
 * Each tile tells the SFU its size (`media_view`, through app.js's `reportViews`, which calls
 * `addViews`), so tiles get the small simulcast layer; tiles on other pages are `paused` (the
 * SFU forwards none of their video) unless the stage shows the same video.
 *
 * A tile can be pinned: the stage then shows that participant (app.js asks `pinned`). In seminar
 * mode with nothing to present (no presenter, no screen shared, nothing pinned) the stage's
 * picture is folded away and the gallery is the class. In lecture mode the gallery shows only
 * students' cameras (asked for or allowed by staff), when there are any; staff and the presenter
 * are on the stage.
 */
import { $, actionButton, make, shownSize } from './dom.js';
import { isStaffRole } from './protocol.js';
import { TEACHING_STRINGS as T, STRINGS } from './strings.js';

/** @typedef {import('./protocol.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./moderation.js').ClassPage} ClassPage */
/** @typedef {import('./media.js').View} View */
/** @typedef {{stream: MediaStream, mid: string}} TileVideo `mid` is '' for this user's own camera */
/** @typedef {{id: string, video: TileVideo}} Entry */
/** @typedef {{root: HTMLElement, video: HTMLVideoElement, name: HTMLElement, speaking: HTMLElement, pin: HTMLButtonElement}} Tile */

export const DEFAULT_PAGE_SIZE = 9;
const MAX_PAGE_SIZE = 25;
const ROLE_ORDER = ['instructor', 'ta', 'student', 'observer'];

/** The tiles per page: `?gallery_page_size=N` (1 to 25) or 9. */
export function pageSizeFromAddress() {
  const asked = Number(new URLSearchParams(location.search).get('gallery_page_size'));
  return Number.isInteger(asked) && asked >= 1 && asked <= MAX_PAGE_SIZE ? asked : DEFAULT_PAGE_SIZE;
}

export class Gallery {
  #page = 0;
  /** @type {string | null} */
  #pinned = null;
  /** Every tile in order, all pages. @type {Entry[]} */
  #entries = [];
  /** The tiles drawn (this page's), by participant. @type {Map<string, Tile>} */
  #tiles = new Map();
  #shown = false;
  #observer = new ResizeObserver(() => this.page.reportViews());

  /** @param {ClassPage} page @param {number} [pageSize] */
  constructor(page, pageSize = pageSizeFromAddress()) {
    this.page = page;
    this.pageSize = pageSize;
    /** @type {import('./moderation.js').Actions} */
    this.actions = {
      gallery_previous: () => this.#turn(-1),
      gallery_next: () => this.#turn(1),
      gallery_pin: (b) => this.#pin(b.dataset.participant ?? ''),
    };
  }

  setUp() {
    $('gallery-previous').textContent = T.galleryPrevious;
    $('gallery-next').textContent = T.galleryNext;
  }

  /** The participant pinned to the stage (their camera is still on), or null. */
  get pinned() {
    return this.#pinned;
  }

  /** Draws the gallery (call from the stage's render: the pin and the stage depend on each other). */
  render() {
    const { room } = this.page;
    const seminar = room.mode === 'seminar';
    const entries = this.#collect(seminar);
    this.#entries = entries;
    if (this.#pinned && !entries.some((e) => e.id === this.#pinned)) {
      this.#pinned = null; // their camera went off: the stage picks its own again, next frame
      this.page.scheduleRender();
    }
    this.#shown = seminar || entries.length > 0;
    $('gallery').hidden = !this.#shown;
    const pages = Math.max(1, Math.ceil(entries.length / this.pageSize));
    this.#page = Math.min(this.#page, pages - 1);
    const visible = this.#shown ? entries.slice(this.#page * this.pageSize, (this.#page + 1) * this.pageSize) : [];
    this.#draw(visible);

    $('gallery-heading').textContent = `${T.galleryHeading} (${entries.length})`;
    $('gallery-nav').hidden = pages < 2;
    $('gallery-page').textContent = T.galleryPage(this.#page + 1, pages);
    $('gallery-previous').setAttribute('aria-disabled', String(this.#page === 0));
    $('gallery-next').setAttribute('aria-disabled', String(this.#page >= pages - 1));
    // Nothing to present in a seminar: the gallery is the class, the stage's picture folds away.
    const presenting = !!room.presenter || !!this.#pinned || [...room.participants.values()].some((p) => p.media.screen);
    $('stage').classList.toggle('gallery-only', seminar && !presenting);
  }

  /**
   * Adds the tiles to the sizes reported for `media_view` (by mid): the larger of the stage's and
   * the tile's; `paused` for the tiles on other pages that nothing else shows.
   * @param {Map<string, View>} views
   */
  addViews(views) {
    /** @type {Set<string>} */
    const drawn = new Set();
    for (const tile of this.#tiles.values()) {
      const mid = tile.video.dataset.mid ?? '';
      const view = views.get(mid);
      if (!mid || !view) continue;
      drawn.add(mid);
      const size = shownSize(tile.video);
      views.set(mid, { width: Math.max(view.width, size.width), height: Math.max(view.height, size.height) });
    }
    if (!this.#shown) return;
    for (const { video } of this.#entries) {
      const view = views.get(video.mid);
      if (video.mid && !drawn.has(video.mid) && view && view.width === 0 && view.height === 0) {
        views.set(video.mid, { width: 0, height: 0, paused: true });
      }
    }
  }

  /**
   * Who gets a tile, in order: staff first, then as they joined. In lecture mode, students only.
   * @param {boolean} seminar
   * @returns {Entry[]}
   */
  #collect(seminar) {
    const { room } = this.page;
    const people = [...room.participants.values()]
      .filter((p) => !p.in_lobby && (seminar || (!isStaffRole(p.role) && !p.presenter)))
      .sort((a, b) => ROLE_ORDER.indexOf(a.role) - ROLE_ORDER.indexOf(b.role));
    return people.flatMap((p) => {
      const video = this.#cameraOf(p);
      return video ? [{ id: p.id, video }] : [];
    });
  }

  /**
   * A participant's camera: this user's own, or for others their oldest video m-line (a screen
   * share is usually added after the camera), while the room says their camera is on.
   * @param {ParticipantInfo} p
   * @returns {TileVideo | null}
   */
  #cameraOf(p) {
    const media = this.page.media();
    if (!media) return null;
    if (p.id === this.page.me.id) {
      const local = media.localTracks.find((t) => t.source === 'camera');
      return local ? { stream: local.stream, mid: '' } : null;
    }
    if (!p.media.camera) return null;
    const remote = media.remoteTracks.find((t) => t.kind === 'video' && t.participantId === p.id);
    return remote ? { stream: remote.stream, mid: remote.mid } : null;
  }

  /** @param {Entry[]} visible */
  #draw(visible) {
    const wanted = new Set(visible.map((e) => e.id));
    for (const [id, tile] of this.#tiles) {
      if (wanted.has(id)) continue;
      this.#observer.unobserve(tile.video);
      tile.video.srcObject = null;
      tile.root.remove();
      this.#tiles.delete(id);
    }
    const speaker = this.page.activeSpeaker();
    const list = $('gallery-tiles');
    for (const { id, video } of visible) {
      const tile = this.#tiles.get(id) ?? this.#newTile(id);
      if (tile.video.srcObject !== video.stream) {
        tile.video.srcObject = video.stream;
        tile.video.play().catch(() => undefined); // muted: allowed to autoplay
      }
      tile.video.dataset.mid = video.mid;
      const name = this.page.room.participants.get(id)?.name ?? id;
      const you = id === this.page.me.id ? ` ${STRINGS.you}` : '';
      tile.name.textContent = `${name}${you}`;
      const speaking = id === speaker;
      tile.root.classList.toggle('speaking', speaking);
      tile.speaking.hidden = !speaking;
      const pinned = id === this.#pinned;
      tile.root.classList.toggle('pinned', pinned);
      // One name whatever the state (the visible "Pin" in it); pressed while pinned.
      tile.pin.setAttribute('aria-pressed', String(pinned));
      tile.pin.setAttribute('aria-label', T.pinLabel(name));
    }
    // Reordered only when the order changed: moving a playing video is not free.
    const order = visible.map((e) => /** @type {Tile} */ (this.#tiles.get(e.id)).root);
    if (order.some((root, i) => list.children[i] !== root) || list.children.length !== order.length) {
      const focused = document.activeElement;
      const refocus = focused instanceof HTMLElement && list.contains(focused) ? focused : null;
      list.replaceChildren(...order);
      if (refocus?.isConnected) refocus.focus();
    }
  }

  /** @param {string} id @returns {Tile} */
  #newTile(id) {
    const root = make('li', 'tile');
    root.dataset.participant = id;
    const video = /** @type {HTMLVideoElement} */ (make('video'));
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    video.dataset.participant = id;
    video.addEventListener('resize', () => this.page.reportViews());
    this.#observer.observe(video);
    const bar = make('div', 'tile-bar');
    const name = make('span', 'name');
    const speaking = make('span', 'badge badge-speaking', T.speaking);
    const pin = actionButton(T.pin, 'gallery_pin', { participant: id });
    bar.append(name, ' ', speaking, pin);
    root.append(video, bar);
    /** @type {Tile} */
    const tile = { root, video, name, speaking, pin };
    this.#tiles.set(id, tile);
    return tile;
  }

  /** @param {number} step */
  #turn(step) {
    const pages = Math.max(1, Math.ceil(this.#entries.length / this.pageSize));
    const next = Math.min(pages - 1, Math.max(0, this.#page + step));
    if (next === this.#page) return;
    this.#page = next;
    this.page.scheduleRender(); // the stage's render draws the gallery, then reports the views
  }

  /** @param {string} id */
  #pin(id) {
    this.#pinned = this.#pinned === id ? null : id;
    this.page.scheduleRender();
  }
}
