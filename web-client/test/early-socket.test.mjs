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
const { openEarly, HELLO_PROTOCOL_VERSION } = await import('../join-link.js');

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
