// Several nodes in a real browser (issue 14): two `lectern` nodes share one PostgreSQL schema and
// one Redis key prefix, behind a TCP balancer standing in for the reverse proxy of
// docker-compose.cluster.yml (it sends each connection to the next node that accepts it). The
// instructor's Chromium enters through the balancer; a student's Chromium enters through the
// node that does not host the class and is sent on by the `redirect`. Then the hosting node is
// killed with SIGKILL: both pages must reconnect, rejoin and renegotiate media by themselves,
// the student decoding the instructor's camera again, the chat intact. Prints the time from the
// kill until the student decodes again.
//
// Needs PostgreSQL (`psql`, LECTERN_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test)
// and Redis (LECTERN_TEST_REDIS_URL, default redis://127.0.0.1:6379); skipped, saying so, with
// LECTERN_SKIP_POSTGRES=1 or LECTERN_SKIP_REDIS=1.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import {
  CHROMIUM, RED, checklist, chromiumArgs, close, finish, recordPeerConnections, startServer, stopServer, videoState, waitFor, writeY4m,
} from './harness.mjs';

const POSTGRES = process.env.LECTERN_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS = process.env.LECTERN_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Runs SQL on the test's PostgreSQL with psql (stops on the first error). @param {string} sql */
function psql(sql) {
  execFileSync('psql', [POSTGRES, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * A TCP balancer on 127.0.0.1: each connection goes to the next backend in turn that accepts it
 * (a dead node refuses, so it is skipped, as a proxy with health checks does).
 * @param {() => {host: string, port: number}[]} backends
 */
async function startBalancer(backends) {
  let next = 0;
  const sockets = new Set();
  const server = createServer((inbound) => {
    sockets.add(inbound);
    inbound.on('close', () => sockets.delete(inbound));
    inbound.pause();
    const list = backends();
    const start = next++;
    const attempt = (i) => {
      if (i >= list.length) return inbound.destroy();
      const target = list[(start + i) % list.length];
      const outbound = connect(target.port, target.host);
      outbound.once('connect', () => {
        sockets.add(outbound);
        outbound.on('close', () => sockets.delete(outbound));
        inbound.pipe(outbound).pipe(inbound);
        inbound.on('error', () => outbound.destroy());
        outbound.on('error', () => inbound.destroy());
        inbound.on('close', () => outbound.destroy());
        outbound.on('close', () => inbound.destroy());
        inbound.resume();
      });
      outbound.once('error', () => attempt(i + 1));
    };
    attempt(0);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** Keeps the URL of every WebSocket the page opens in `window.__lecternSocketUrls`. */
function recordSocketUrls() {
  const Original = window.WebSocket;
  const urls = [];
  Object.defineProperty(window, '__lecternSocketUrls', { value: urls });
  window.WebSocket = class extends Original {
    constructor(url, protocols) {
      super(url, protocols);
      urls.push(String(url));
    }
  };
}

/** In the page: frames decoded by the live inbound video of peer connections made from index `from` on. */
async function framesDecodedSince(page, from) {
  return page.evaluate(async (from) => {
    let frames = 0;
    for (const pc of window.__lecternPeerConnections.slice(from)) {
      if (pc.connectionState === 'closed') continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0;
      });
    }
    return frames;
  }, from);
}

/** In the page: the chat texts drawn, oldest first. */
async function chatTexts(page) {
  return page.evaluate(() => [...document.querySelectorAll('#chat-log li[data-seq] .chat-text')].map((e) => e.textContent ?? ''));
}

/** `lectern_cluster_rooms_hosted` of a node (0 when it does not answer). */
async function roomsHosted(node) {
  try {
    const text = await (await fetch(`${node.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('lectern_cluster_rooms_hosted'));
    return Number(line?.split(/\s+/)[1] ?? 0);
  } catch {
    return 0;
  }
}

const { results, check } = checklist();

async function main() {
  if (process.env.LECTERN_SKIP_POSTGRES === '1' || process.env.LECTERN_SKIP_REDIS === '1') {
    console.log('skipped: this test needs PostgreSQL and Redis (LECTERN_SKIP_POSTGRES / LECTERN_SKIP_REDIS is 1)');
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'lectern-e2e-cluster-'));
  const schema = `lectern_e2e_${randomBytes(6).toString('hex')}`;
  const secret = randomBytes(24).toString('hex');
  const prefix = `lectern-e2e-${randomBytes(4).toString('hex')}:`;
  /** @type {any[]} */
  const nodes = [];
  /** @type {import('playwright-core').Browser[]} */
  const browsers = [];
  let balancer = null;
  let schemaMade = false;
  const s = /** @type {Record<string, any>} */ ({});
  try {
    await check('a PostgreSQL schema of the test\'s own (psql)', async () => {
      psql(`CREATE SCHEMA ${schema}`);
      schemaMade = true;
      return schema;
    });
    await check('two nodes start on one PostgreSQL schema and one Redis, behind a balancer', async () => {
      const sep = POSTGRES.includes('?') ? '&' : '?';
      for (const id of ['e2e-a', 'e2e-b']) {
        const dir = join(tmp, id);
        // One after the other: the first one seeds the demo course in the shared store.
        nodes.push(await startServer(dir, {
          LECTERN_STORE_URL: `${POSTGRES}${sep}options[search_path]=${schema}`,
          LECTERN_CLUSTER_REDIS_URL: REDIS,
          LECTERN_CLUSTER_KEY_PREFIX: prefix,
          LECTERN_CLUSTER_NODE_ID: id,
          LECTERN_AUTH_HS256_SECRET: secret,
          LECTERN_ROOM_AUTO_START: 'true',
        }));
      }
      balancer = await startBalancer(() => nodes.filter((n) => !n.exited).map((n) => {
        const url = new URL(n.url);
        return { host: url.hostname, port: Number(url.port) };
      }));
      return `${nodes.map((n) => n.url).join(', ')} behind ${balancer.url}`;
    });
    await check('Chromium starts (a red camera)', async () => {
      const clip = join(tmp, 'red.y4m');
      writeY4m(clip, RED, [640, 360]);
      browsers.push(await chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs(clip) }));
      return browsers[0].version();
    });
    const openPage = async (name, link, ready) => {
      const context = await browsers[0].newContext({ viewport: { width: 1280, height: 800 } });
      await context.addInitScript(recordPeerConnections);
      await context.addInitScript(recordSocketUrls);
      const page = await context.newPage();
      const log = [];
      page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
      s[`${name}Log`] = log;
      await page.goto(link);
      await waitFor(`${name}: ${ready}`, () => page.locator(ready).isVisible(), { timeout: 20_000 });
      return page;
    };
    await check('the instructor enters through the balancer, turns the camera on and sends video; one node hosts the class', async () => {
      const link = nodes[0].links.instructor.replace(nodes[0].url, balancer.url);
      s.instructor = await openPage('instructor', link, '#devices');
      await s.instructor.locator('#enter-class').click();
      await waitFor('the classroom', () => s.instructor.locator('#classroom').isVisible());
      const button = s.instructor.locator('#camera-toggle');
      await waitFor('#camera-toggle to be shown', () => button.isVisible());
      await button.click();
      await waitFor('outbound video', () => s.instructor.evaluate(async () => {
        for (const pc of window.__lecternPeerConnections) {
          for (const st of (await pc.getStats()).values()) if (st.type === 'outbound-rtp' && st.kind === 'video' && st.packetsSent > 20) return true;
        }
        return false;
      }), { timeout: 25_000 });
      const hosted = await Promise.all(nodes.map(roomsHosted));
      s.host = hosted.findIndex((n) => n > 0);
      if (s.host < 0 || hosted.filter((n) => n > 0).length !== 1) throw new Error(`rooms hosted per node: ${hosted}`);
      return `hosted by ${['e2e-a', 'e2e-b'][s.host]}`;
    });
    await check('a student entering through the other node is redirected to the host and decodes the instructor (red)', async () => {
      const other = nodes[1 - s.host];
      const link = nodes[0].links['student 1'].replace(nodes[0].url, other.url);
      s.student = await openPage('student', link, '#classroom');
      const sockets = await s.student.evaluate(() => window.__lecternSocketUrls);
      const hostWs = nodes[s.host].url.replace(/^http/, 'ws');
      if (!sockets.some((u) => u.startsWith(hostWs))) throw new Error(`sockets ${JSON.stringify(sockets)}: none to the host ${hostWs}`);
      await waitFor('the student: the red picture, decoding', async () => {
        const v = await videoState(s.student);
        return close(v.rgb, RED) && (await framesDecodedSince(s.student, 0)) > 15 ? v : { ok: false, ...v };
      }, { timeout: 25_000 });
      return `sockets ${sockets.map((u) => new URL(u).port).join(' -> ')}`;
    });
    await check('chat between the two', async () => {
      await s.student.locator('#chat-input').fill('before the crash');
      await s.student.locator('#chat-send').click();
      await waitFor('the instructor to see the message', () => chatTexts(s.instructor).then((t) => t.includes('before the crash')));
    });
    await check('kill -9 of the hosting node: both pages come back by themselves, the student decodes the instructor again, the chat is intact', async () => {
      const pcsBefore = await s.student.evaluate(() => window.__lecternPeerConnections.length);
      const killed = Date.now();
      nodes[s.host].child.kill('SIGKILL');
      await waitFor('the host to exit', () => nodes[s.host].exited, { timeout: 10_000 });
      const back = await waitFor('the student to decode the instructor on a new peer connection', async () => {
        const frames = await framesDecodedSince(s.student, pcsBefore);
        const v = await videoState(s.student);
        return frames > 15 && close(v.rgb, RED) ? Date.now() - killed : null;
      }, { timeout: 45_000 });
      const hosted = await roomsHosted(nodes[1 - s.host]);
      if (hosted < 1) throw new Error('the surviving node does not host the class');
      for (const page of [s.student, s.instructor]) {
        const texts = await waitFor('the chat restored', () => chatTexts(page).then((t) => (t.includes('before the crash') ? t : null)));
        const copies = texts.filter((t) => t === 'before the crash').length;
        if (copies !== 1) throw new Error(`the message is shown ${copies} times`);
      }
      await s.student.locator('#chat-input').fill('after the crash');
      await s.student.locator('#chat-send').click();
      await waitFor('the instructor to see the new message', () => chatTexts(s.instructor).then((t) => t.includes('after the crash')));
      console.log(`cluster failover in Chromium: SIGKILL of the host to the student decoding again: ${back} ms`);
      return `media back ${back} ms after the kill`;
    });
  } finally {
    for (const b of browsers) await b.close().catch(() => {});
    balancer?.close();
    for (const n of nodes) await stopServer(n);
    if (schemaMade) {
      try {
        psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } catch (e) {
        console.log(`could not drop schema ${schema}: ${e}`);
      }
    }
    rmSync(tmp, { recursive: true, force: true });
  }
}

await finish(results, main);
