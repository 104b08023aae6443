// Several nodes (issue 14): the Connection follows a `redirect` to the room's node with the same
// hello, ignores URLs it must not follow, caps redirects per attempt, and after `room_moved`
// reconnects at once to the address first used (node --test, with a fake WebSocket).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mock } from 'node:test';
import { Connection, MAX_REDIRECTS, ROOM_MOVED_AGAIN_MS, ROOM_MOVED_FIRST_MS, followableRedirect } from '../protocol.js';

/** A WebSocket stand-in: records what is sent; the test plays the server. */
class FakeSocket {
  /** @type {FakeSocket[]} */
  static opened = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.onopen = null;
    this.onmessage = null;
    this.onclose = null;
    FakeSocket.opened.push(this);
    queueMicrotask(() => this.onopen?.());
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    queueMicrotask(() => this.onclose?.());
  }
  /** The server sends `message`. */
  receive(message) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
}
globalThis.WebSocket = /** @type {any} */ (FakeSocket);

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
async function waitFor(what, predicate) {
  const end = Date.now() + 2000;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function redirectThenClose(socket, url) {
  socket.receive({ type: 'redirect', room_id: 'r', url });
  socket.receive({ type: 'closing', reason: 'redirected', message: 'elsewhere' });
  socket.close();
}

test('only ws: and wss: URLs are followed', () => {
  assert.ok(followableRedirect('ws://127.0.0.1:8081/ws?room=r&placed=1'));
  assert.ok(followableRedirect('wss://node-2.example.edu/ws?room=r'));
  for (const bad of ['javascript:alert(1)', 'http://a/ws', 'file:///etc/passwd', 'ws://', 'not a url', 42, null]) {
    assert.equal(followableRedirect(bad), false, String(bad));
  }
});

test('a redirect is followed with the same hello, and a reconnect starts from the first address', async () => {
  FakeSocket.opened = [];
  const welcomes = [];
  const connection = new Connection({ url: 'ws://a/ws', token: 'T', onWelcome: (s) => welcomes.push(s) });
  connection.connect();
  await tick();
  const first = FakeSocket.opened[0];
  assert.deepEqual(first.sent, [{ type: 'hello', protocol_version: 1, token: 'T' }]);
  redirectThenClose(first, 'ws://b/ws?room=r&placed=1');
  await waitFor('the redirect', () => FakeSocket.opened.length === 2);
  const second = FakeSocket.opened[1];
  assert.equal(second.url, 'ws://b/ws?room=r&placed=1');
  await tick();
  assert.deepEqual(second.sent, [{ type: 'hello', protocol_version: 1, token: 'T' }]);
  second.receive({ type: 'welcome', protocol_version: 1, participant_id: 'p', role: 'student', rejoined: false,
    snapshot: { room_id: 'r', title: 't', class_state: 'live', chat_locked: false, chat: [], hand_queue: [], roster: [], seq: 7 } });
  assert.equal(welcomes.length, 1);
  // The node loses the room: reconnect at once, to the first address, resuming after seq 7.
  second.receive({ type: 'closing', reason: 'room_moved', message: 'moving' });
  second.close();
  await waitFor('the reconnect', () => FakeSocket.opened.length === 3);
  const third = FakeSocket.opened[2];
  assert.equal(third.url, 'ws://a/ws');
  await tick();
  assert.deepEqual(third.sent, [{ type: 'hello', protocol_version: 1, token: 'T', last_seq: 7 }]);
  connection.close();
});

test('bad redirect URLs are ignored and redirects are capped per attempt', async () => {
  FakeSocket.opened = [];
  const connection = new Connection({ url: 'ws://a/ws', token: 'T' });
  connection.connect();
  await tick();
  redirectThenClose(FakeSocket.opened[0], 'javascript:alert(1)');
  // Not followed: the next socket is the usual reconnect to the first address, after a backoff.
  await waitFor('the reconnect', () => FakeSocket.opened.length === 2);
  assert.equal(FakeSocket.opened[1].url, 'ws://a/ws');
  for (let i = 0; i < MAX_REDIRECTS; i++) {
    redirectThenClose(FakeSocket.opened.at(-1), `ws://n${i}/ws`);
    await waitFor(`redirect ${i}`, () => FakeSocket.opened.at(-1).url === `ws://n${i}/ws`);
  }
  const before = FakeSocket.opened.length;
  redirectThenClose(FakeSocket.opened.at(-1), 'ws://one-too-many/ws');
  await waitFor('the reconnect after too many redirects', () => FakeSocket.opened.length === before + 1);
  assert.equal(FakeSocket.opened.at(-1).url, 'ws://a/ws');
  connection.close();
});

test('while the room stays between nodes, reconnects after room_moved are paced', async () => {
  FakeSocket.opened = [];
  mock.timers.enable({ apis: ['setTimeout'] });
  const connection = new Connection({ url: 'ws://a/ws', token: 'T' });
  try {
    connection.connect();
    await Promise.resolve();
    const moved = async () => {
      const socket = FakeSocket.opened.at(-1);
      socket.receive({ type: 'closing', reason: 'room_moved', message: 'moving' });
      socket.onclose?.();
      await Promise.resolve();
    };
    // The first room_moved: back within ROOM_MOVED_FIRST_MS.
    await moved();
    mock.timers.tick(ROOM_MOVED_FIRST_MS);
    assert.equal(FakeSocket.opened.length, 2);
    // Again before any welcome: not before half of ROOM_MOVED_AGAIN_MS, always by all of it.
    for (let round = 0; round < 3; round++) {
      const before = FakeSocket.opened.length;
      await moved();
      mock.timers.tick(ROOM_MOVED_AGAIN_MS / 2 - 1);
      assert.equal(FakeSocket.opened.length, before, `round ${round}: reconnected too soon`);
      mock.timers.tick(ROOM_MOVED_AGAIN_MS / 2 + 1);
      assert.equal(FakeSocket.opened.length, before + 1, `round ${round}: not reconnected`);
    }
    // A welcome resets it: the next room_moved is quick again.
    FakeSocket.opened.at(-1).receive({ type: 'welcome', protocol_version: 1, participant_id: 'p', role: 'student', resumed: false,
      snapshot: { room_id: 'r', title: 't', class_state: 'live', chat_locked: false, chat: [], hand_queue: [], roster: [], seq: 1 } });
    const before = FakeSocket.opened.length;
    await moved();
    mock.timers.tick(ROOM_MOVED_FIRST_MS);
    assert.equal(FakeSocket.opened.length, before + 1);
  } finally {
    // Also on a failed assertion, so no reconnect loop keeps the test process alive.
    connection.close();
    mock.timers.reset();
  }
});
