// The join link, read as early as the page can: the token and its claims, and the class's
// WebSocket opened with its hello sent before the rest of the page (app.js and the modules it
// imports) has loaded. index.html loads this module with `async`, ahead of app.js; it imports
// nothing, so it runs as soon as it arrives. app.js imports it too, and the browser runs it once.
//
// What it saves: the join waits for the server's `welcome` and the media offer, not for the
// page's other modules to be fetched and compiled (issue 15, point 8).

/**
 * protocol.js's PROTOCOL_VERSION, for the hello (not imported, so that this module waits for
 * no other; test/early-socket.test.mjs checks the two are equal).
 */
export const HELLO_PROTOCOL_VERSION = 1;

/** Where the join token is kept for reloads of the page (the link's `#token=` is removed). */
export const TOKEN_KEY = 'lectern.token';

/**
 * @typedef {{name: string, room: string, exp: number, role?: import('./protocol.js').Role}} JoinClaims
 */

/**
 * A WebSocket opened before the page's `Connection` existed, for it to adopt
 * (`ConnectionOptions.early`).
 * @typedef {object} EarlySocket
 * @property {WebSocket} socket
 * @property {string} url the URL it was opened with
 * @property {string} token the token its hello carries
 * @property {boolean} helloSent whether the hello has been sent on it
 * @property {boolean} mediaStart whether its hello asks for `media_start` at the welcome
 * @property {string[]} received the text frames received so far, in order, not yet handled
 * @property {((text: string) => void) | null} deliver set by the adopter: frames go there
 *   instead of `received` from then on
 */

/**
 * The join token: from the link (`#token=...`) or, on a reload, from this tab's session storage
 * (read only when the link has none). Reads the address bar and nothing else when the link has
 * one: `rememberToken` then removes it from the address bar and keeps it for reloads, once the
 * socket is opening (both ask other processes of the browser, see `readJoinLink`).
 * @returns {{token: string | null, fromLink: boolean}}
 */
export function readToken() {
  const fromLink = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromLink) return { token: fromLink, fromLink: true };
  return { token: sessionStorage.getItem(TOKEN_KEY), fromLink: false };
}

/**
 * Removes the link's `#token=` from the address bar (so it is not shared by a copied URL or a
 * screenshot) and keeps the token in this tab's session storage for reloads.
 * @param {string} token
 * @param {boolean} fromLink whether it came from the link (then the address bar has it)
 */
export function rememberToken(token, fromLink) {
  if (fromLink) history.replaceState(null, '', location.pathname + location.search);
  sessionStorage.setItem(TOKEN_KEY, token);
}

/**
 * The JWT payload, unverified (the server checks the signature), or null when malformed.
 * @param {string} token
 * @returns {JoinClaims | null}
 */
export function readClaims(token) {
  try {
    const base64 = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))));
    const ok = typeof claims.name === 'string' && typeof claims.room === 'string' && typeof claims.exp === 'number';
    return ok ? claims : null;
  } catch {
    return null;
  }
}

/**
 * The class's WebSocket URL on this page's server.
 * @param {string} roomId
 */
export function classSocketUrl(roomId) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.host}/ws?room=${encodeURIComponent(roomId)}`;
}

/**
 * Whether a participant with this role starts with nothing to send, so that their first
 * negotiation is the SFU's offer of the room's tracks: students and observers. Staff choose
 * their camera and microphone first and make the first offer themselves.
 * @param {JoinClaims} claims
 */
export function receivesFirst(claims) {
  return claims.role === undefined || claims.role === 'student' || claims.role === 'observer';
}

/**
 * Opens `url` and sends the hello with `token` as soon as it opens, keeping what arrives until
 * a `Connection` adopts it. With `mediaStart`, the hello asks the server to start this
 * participant's media at the welcome (`media_start: true`): the SFU's offer then follows the
 * welcome without the page asking (PROTOCOL.md, "hello").
 * @param {string} url
 * @param {string} token
 * @param {boolean} [mediaStart]
 * @returns {EarlySocket}
 */
export function openEarly(url, token, mediaStart = false) {
  const socket = new WebSocket(url);
  /** @type {EarlySocket} */
  const early = { socket, url, token, helloSent: false, mediaStart, received: [], deliver: null };
  socket.onopen = () => {
    /** @type {{type: 'hello', protocol_version: number, token: string, media_start?: boolean}} */
    const hello = { type: 'hello', protocol_version: HELLO_PROTOCOL_VERSION, token };
    if (mediaStart) hello.media_start = true;
    socket.send(JSON.stringify(hello));
    early.helloSent = true;
  };
  socket.onmessage = (message) => {
    if (typeof message.data !== 'string') return;
    if (early.deliver) early.deliver(message.data);
    else early.received.push(message.data);
  };
  return early;
}

/**
 * Reads the join link and, when it is usable, opens the class's socket: `token` and `claims`
 * (null when missing or malformed) and `early`, the socket already opening.
 *
 * The socket is created first and the token remembered after: the first use of session storage
 * in a page loads its storage area and asks the browser process whether storage is allowed, and
 * `history.replaceState` tells the browser process of the new address, each a synchronous
 * round trip to another process that waits when that process is busy (a Chromium trace of a
 * join: `StorageArea::GetAll` and `ContentSettingsManager::AllowStorageAccess` inside this
 * module's evaluation, 4–60 ms together). A link without a token reads the storage first: it
 * has nothing else to go on.
 * @returns {{token: string | null, claims: JoinClaims | null, early: EarlySocket | null}}
 */
export function readJoinLink() {
  const { token, fromLink } = readToken();
  const claims = token ? readClaims(token) : null;
  if (!token || !claims || claims.exp * 1000 <= Date.now()) {
    if (token && fromLink) history.replaceState(null, '', location.pathname + location.search);
    return { token, claims, early: null };
  }
  const early = openEarly(classSocketUrl(claims.room), token, receivesFirst(claims));
  rememberToken(token, fromLink);
  return { token, claims, early };
}

/**
 * The link as this page read it, once (`readJoinLink`).
 * @type {{token: string | null, claims: JoinClaims | null, early: EarlySocket | null}}
 */
export const joinLink = typeof location === 'undefined' ? { token: null, claims: null, early: null } : readJoinLink();
