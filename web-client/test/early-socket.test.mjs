// Unit tests (node --test) of the early socket (issue 15, point 8): join-link.js opens the
// class's WebSocket and says hello before app.js has loaded; protocol.js's Connection adopts
// it on its first connect instead of opening another. Node has no WebSocket here, so a small
// stand-in records what the code does with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';

/** What the code under test can see of a WebSocket; `sent` and `closed` record its calls. */
class SocketDouble {
  static made = /** @type {SocketDouble[]} */ ([]);
  /** @param {string} url */
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    /** @type {string[]} */
    this.sent = [];
    /** @type {number | undefined} */
    this.closedWith = undefined;
    this.onopen = null;
    this.onmessage = null;
    this.onclose = null;
    SocketDouble.made.push(this);
  }
  /** @param {string} text */
  send(text) {
    assert.equal(this.readyState, 1, 'sent on a socket that is not open');
    this.sent.push(text);
  }
  /** @param {number} [code] */
  close(code) {
    this.closedWith = code ?? 1005;
    this.readyState = 3;
  }
  /** The server accepts the connection. */
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  /** The server sends a message. @param {object} message */
  receive(message) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  /** The connection ends. */
  end() {
    this.readyState = 3;
    this.onclose?.();
  }
  hellos() {
    return this.sent.map((t) => JSON.parse(t)).filter((m) => m.type === 'hello');
  }
}
globalThis.WebSocket = /** @type {any} */ (SocketDouble);

const { Connection, PROTOCOL_VERSION } = await import('../protocol.js');
const { openEarly, receivesFirst, readJoinLink, HELLO_PROTOCOL_VERSION, TOKEN_KEY } = await import('../join-link.js');

const URL = 'ws://lectern.test/ws?room=algebra';
const TOKEN = 'a.b.c';
const WELCOME = {
  type: 'welcome', participant_id: 'p1', role: 'student', room_id: 'algebra',
  snapshot: { room_id: 'algebra', title: 'Algebra', class_state: 'live', chat_locked: false, chat: [], hand_queue: [], seq: 7, roster: [] },
};

/** A connection that records its welcomes, errors and statuses. */
function connection(early, extra = {}) {
  const seen = { welcomes: 0, errors: /** @type {string[]} */ ([]), statuses: /** @type {string[]} */ ([]) };
  const c = new Connection({
    url: URL,
    token: TOKEN,
    early,
    onWelcome: () => (seen.welcomes += 1),
    onError: (code) => seen.errors.push(code),
    onStatus: (s) => seen.statuses.push(s),
    ...extra,
  });
  return { c, seen };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

test('the early hello speaks the protocol version protocol.js speaks', () => {
  assert.equal(HELLO_PROTOCOL_VERSION, PROTOCOL_VERSION);
});

test('an early socket already welcomed is adopted: one hello, the welcome handled, later frames too', async () => {
  SocketDouble.made.length = 0;
  const early = openEarly(URL, TOKEN);
  const socket = SocketDouble.made[0];
  socket.open();
  assert.equal(socket.hellos().length, 1, 'join-link.js says hello as soon as the socket opens');
  assert.equal(socket.hellos()[0].token, TOKEN);
  socket.receive(WELCOME); // before the page's modules have loaded
  const { c, seen } = connection(early);
  c.connect();
  assert.equal(seen.welcomes, 0, 'what came early is handled after connect() returns');
  await tick();
  assert.equal(SocketDouble.made.length, 1, 'no second socket');
  assert.equal(socket.hellos().length, 1, 'no second hello');
  assert.equal(seen.welcomes, 1);
  assert.equal(c.status, 'open');
  assert.equal(c.lastSeq, 7);
  socket.receive({ type: 'error', code: 'not_permitted', message: 'no' });
  assert.deepEqual(seen.errors, ['not_permitted']);
  c.close();
});

test('an early socket still opening is adopted, and the connection says hello once it opens', async () => {
  SocketDouble.made.length = 0;
  const early = openEarly(URL, TOKEN);
  const socket = SocketDouble.made[0];
  const { c, seen } = connection(early);
  c.connect();
  socket.open();
  assert.equal(socket.hellos().length, 1);
  socket.receive(WELCOME);
  await tick();
  assert.equal(seen.welcomes, 1);
  assert.equal(SocketDouble.made.length, 1);
  c.close();
});

test('an early socket for another link is closed and a new one opened', async () => {
  SocketDouble.made.length = 0;
  const early = openEarly('ws://lectern.test/ws?room=other', TOKEN);
  const { c } = connection(early);
  c.connect();
  assert.equal(SocketDouble.made.length, 2);
  assert.equal(SocketDouble.made[0].closedWith, 1000);
  assert.equal(SocketDouble.made[1].url, URL);
  c.close();
});

test('an early socket refused and closed before app.js loaded: its error and closing are handled', async () => {
  SocketDouble.made.length = 0;
  const early = openEarly(URL, TOKEN);
  const socket = SocketDouble.made[0];
  socket.open();
  socket.receive({ type: 'error', code: 'token_expired', message: 'expired' });
  socket.receive({ type: 'closing', reason: 'handshake_failed', message: 'bye' });
  socket.end();
  const { c, seen } = connection(early);
  c.connect();
  await tick();
  assert.deepEqual(seen.errors, ['token_expired']);
  assert.equal(c.status, 'closed', 'a final closing stops the connection, as on any socket');
  assert.equal(SocketDouble.made.length, 1, 'and it does not reconnect');
});

test('a student\'s or observer\'s early hello asks for media at the welcome; staff\'s does not', () => {
  const claims = (role) => ({ name: 'n', room: 'algebra', exp: 2e9, role });
  assert.equal(receivesFirst(claims('student')), true);
  assert.equal(receivesFirst(claims('observer')), true);
  assert.equal(receivesFirst(claims(undefined)), true, 'a token without a role is a student\'s');
  assert.equal(receivesFirst(claims('instructor')), false, 'staff choose devices and offer first');
  assert.equal(receivesFirst(claims('ta')), false);
});

test('media_start in the early hello: sent once, known to the connection, never on a reconnect', async () => {
  SocketDouble.made.length = 0;
  const early = openEarly(URL, TOKEN, true);
  const socket = SocketDouble.made[0];
  socket.open();
  assert.equal(socket.hellos()[0].media_start, true);
  socket.receive(WELCOME);
  const { c } = connection(early);
  c.connect();
  await tick();
  assert.equal(c.mediaStartAsked, true, 'the page knows the server starts its media');
  socket.end();
  // The reconnect opens a new socket after a backoff; say hello there.
  await new Promise((resolve) => setTimeout(resolve, 0));
  await waitForSocket(2);
  const again = SocketDouble.made[1];
  again.open();
  assert.equal(again.hellos().length, 1);
  assert.equal('media_start' in again.hellos()[0], false, 'a reconnect makes its own peer connection');
  assert.equal(c.mediaStartAsked, false);
  c.close();
});

test('media_start in the hello the connection says on an early socket still opening', async () => {
  SocketDouble.made.length = 0;
  const early = openEarly(URL, TOKEN, true);
  const socket = SocketDouble.made[0];
  const { c } = connection(early);
  c.connect();
  socket.open();
  assert.equal(socket.hellos().length, 1);
  assert.equal(socket.hellos()[0].media_start, true);
  assert.equal(c.mediaStartAsked, true);
  c.close();
});

test('without it, no media_start in the early hello', () => {
  SocketDouble.made.length = 0;
  openEarly(URL, TOKEN);
  const socket = SocketDouble.made[0];
  socket.open();
  assert.equal('media_start' in socket.hellos()[0], false);
});

/**
 * A page at `hash` with its address bar, history and session storage, each recording into one
 * log with the sockets made (what `readJoinLink` asks of other processes, in order).
 * @param {string} hash
 * @param {Record<string, string>} [stored]
 */
function pageAt(hash, stored = {}) {
  const log = /** @type {string[]} */ ([]);
  const store = new Map(Object.entries(stored));
  const g = /** @type {any} */ (globalThis);
  g.location = { hash, pathname: '/', search: '', protocol: 'http:', host: 'lectern.test' };
  g.history = { replaceState: (_state, _title, url) => { log.push(`replaceState ${url}`); g.location.hash = ''; } };
  g.sessionStorage = {
    getItem: (k) => { log.push(`getItem ${k}`); return store.get(k) ?? null; },
    setItem: (k, v) => { log.push(`setItem ${k}`); store.set(k, v); },
  };
  return { log, store, logSocket: () => log.push('socket') };
}

/** A join token with these claims (unsigned: the page does not check the signature). @param {object} claims */
const tokenWith = (claims) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;

test('the join link opens the socket before it touches session storage or history', () => {
  const token = tokenWith({ name: 'Ada', room: 'algebra', exp: Date.now() / 1000 + 3600, role: 'student' });
  const page = pageAt(`#token=${token}`);
  const made = SocketDouble.made.length;
  // The socket double cannot see the log: mark its construction by where the log was then.
  const original = globalThis.WebSocket;
  globalThis.WebSocket = /** @type {any} */ (class extends SocketDouble { constructor(url) { super(url); page.logSocket(); } });
  try {
    const link = readJoinLink();
    assert.equal(link.token, token);
    assert.equal(link.early?.mediaStart, true);
    assert.equal(SocketDouble.made.length, made + 1);
    assert.equal(SocketDouble.made[made].url, 'ws://lectern.test/ws?room=algebra');
    assert.deepEqual(page.log, ['socket', 'replaceState /', `setItem ${TOKEN_KEY}`]);
    assert.equal(page.store.get(TOKEN_KEY), token);
  } finally {
    globalThis.WebSocket = original;
  }
});

test('a reload (no token in the link) reads the kept token, then opens the socket', () => {
  const token = tokenWith({ name: 'Ada', room: 'algebra', exp: Date.now() / 1000 + 3600 });
  const page = pageAt('', { [TOKEN_KEY]: token });
  const original = globalThis.WebSocket;
  globalThis.WebSocket = /** @type {any} */ (class extends SocketDouble { constructor(url) { super(url); page.logSocket(); } });
  try {
    const link = readJoinLink();
    assert.equal(link.token, token);
    assert.deepEqual(page.log, [`getItem ${TOKEN_KEY}`, 'socket', `setItem ${TOKEN_KEY}`]);
  } finally {
    globalThis.WebSocket = original;
  }
});

test('an expired link opens no socket, keeps nothing, and still leaves the address bar', () => {
  const token = tokenWith({ name: 'Ada', room: 'algebra', exp: Date.now() / 1000 - 10 });
  const page = pageAt(`#token=${token}`);
  const made = SocketDouble.made.length;
  const link = readJoinLink();
  assert.equal(link.early, null);
  assert.equal(SocketDouble.made.length, made);
  assert.deepEqual(page.log, ['replaceState /']);
});

/** Waits (up to 5 s) until `n` sockets have been made. @param {number} n */
async function waitForSocket(n) {
  const deadline = Date.now() + 5000;
  while (SocketDouble.made.length < n) {
    if (Date.now() > deadline) throw new Error(`only ${SocketDouble.made.length} sockets were made`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
