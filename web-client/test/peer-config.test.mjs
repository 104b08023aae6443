// Unit tests (node --test) of the peer connection's configuration (issue 15, point 8): a
// student's RTCPeerConnection gathers its ICE candidates from the moment it is made
// (`iceCandidatePoolSize`), so that answering the SFU's offer starts the connectivity checks at
// once. Node has no WebRTC here, so a small stand-in records what the code asks of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';

/** What MediaSession.start() touches of an RTCPeerConnection; records its configuration. */
class PeerDouble {
  static made = /** @type {PeerDouble[]} */ ([]);
  /** @param {RTCConfiguration} config */
  constructor(config) {
    this.config = config;
    this.connectionState = 'new';
    this.onconnectionstatechange = null;
    PeerDouble.made.push(this);
  }
  /** @param {string} label */
  createDataChannel(label) {
    return { label };
  }
  close() {
    this.connectionState = 'closed';
  }
}

globalThis.RTCPeerConnection = /** @type {any} */ (PeerDouble);
const { MediaSession, peerConfig } = await import('../media.js');

const signalling = () => ({
  /** @type {string[]} */
  requests: [],
  /** @param {string} type */
  async request(type) {
    this.requests.push(type);
    return {};
  },
  notify() {},
});

test('a student joining makes its peer connection with a candidate pool', () => {
  PeerDouble.made = [];
  const connection = signalling();
  const session = new MediaSession({ connection: /** @type {any} */ (connection), iceServers: [] });
  // The hello asked for the SFU's offer (`media_start`): the page only makes the connection.
  session.start(false, true);
  assert.equal(PeerDouble.made.length, 1);
  const config = PeerDouble.made[0].config;
  assert.ok((config.iceCandidatePoolSize ?? 0) >= 1, `no candidate pool: ${JSON.stringify(config)}`);
  assert.equal(config.bundlePolicy, 'max-bundle');
  assert.deepEqual(connection.requests, []);
  session.close();
});

test('the pool goes with the ICE servers the server sent', () => {
  const servers = [{ urls: 'turn:turn.example:3478', username: 'u', credential: 'c' }];
  const config = peerConfig(servers);
  assert.deepEqual(config.iceServers, servers);
  assert.equal(config.iceCandidatePoolSize, 1);
});
