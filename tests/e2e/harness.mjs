// Shared by the browser test (run.mjs) and the join-speed benchmark (join-speed.mjs): the
// server binary started with the demo course, Chromium's flags, fake media files, waiting.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { connect as netConnect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = resolve(here, process.env.LECTERN_BIN ?? '../../target/debug/lectern');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

export const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` until it returns a truthy value (returned) or the deadline passes (throws with
 * the last value seen). Every wait of the browser test goes through here.
 */
export async function waitFor(what, probe, { timeout = 20_000, interval = 250 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last && !(typeof last === 'object' && 'ok' in last && !last.ok)) return last;
    } catch (error) {
      if (error?.fatal) throw error;
      last = error instanceof Error ? error.message : error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    }
    await delay(interval);
  }
}

/** A solid-colour Y4M clip (full-range BT.601, 4:2:0) for --use-file-for-fake-video-capture. */
export function writeY4m(path, [r, g, b], [w, h] = [320, 240]) {
  const clamp = (v) => Math.max(0, Math.min(255, Math.round(v)));
  const y = clamp(0.299 * r + 0.587 * g + 0.114 * b);
  const u = clamp(128 - 0.168736 * r - 0.331264 * g + 0.5 * b);
  const v = clamp(128 + 0.5 * r - 0.418688 * g - 0.081312 * b);
  const frames = 10;
  const frame = Buffer.concat([
    Buffer.from('FRAME\n'),
    Buffer.alloc(w * h, y),
    Buffer.alloc((w / 2) * (h / 2), u),
    Buffer.alloc((w / 2) * (h / 2), v),
  ]);
  const header = Buffer.from(`YUV4MPEG2 W${w} H${h} F15:1 Ip A1:1 C420jpeg\n`);
  writeFileSync(path, Buffer.concat([header, ...Array(frames).fill(frame)]));
}

// ---- The server -----------------------------------------------------------------------------

export async function startServer(dataDir, extraEnv = {}) {
  // The server refuses unknown LECTERN_* settings, so pass only ours.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LECTERN_')));
  Object.assign(env, {
    LECTERN_SERVER_LISTEN: '127.0.0.1:0',
    LECTERN_SERVER_DATA_DIR: dataDir,
    LECTERN_DEMO_ENABLED: 'true',
    // The instructor starts the class: students join first and wait in the lobby.
    LECTERN_ROOM_AUTO_START: 'false',
    RUST_BACKTRACE: '0',
  });
  // For a binary built before the media plane existed (it would refuse the setting).
  if (process.env.LECTERN_E2E_NO_MEDIA_BIND !== '1') env.LECTERN_MEDIA_BIND = '127.0.0.1:0';
  Object.assign(env, extraEnv);
  const child = spawn(BIN, [], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const server = { child, url: '', links: /** @type {Record<string, string>} */ ({}), output: '', exited: null };
  child.on('exit', (code, signal) => (server.exited = { code, signal }));
  child.on('error', (error) => (server.exited = { error: String(error) }));
  const onData = (chunk) => {
    server.output += chunk;
    for (const line of chunk.toString().split('\n')) {
      const listening = line.match(/lectern listening on (\S+)/);
      if (listening) server.url = listening[1].replace(/\/$/, '');
      const link = line.match(/^\s*(instructor|student 1|student 2)\s*: (\S+)/);
      if (link) server.links[link[1]] = link[2];
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', (chunk) => (server.output += chunk));
  await waitFor('the server to print its URL and three demo links', () => {
    if (server.exited) {
      throw Object.assign(new Error(`server exited: ${JSON.stringify(server.exited)}\n${server.output}`), { fatal: true });
    }
    return server.url && Object.keys(server.links).length === 3;
  }, { timeout: 60_000 });
  return server;
}

/** Runs the `lectern` CLI on a data directory; resolves with its stdout, rejects on failure. */
export function runCli(dataDir, args) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LECTERN_')));
  Object.assign(env, { LECTERN_SERVER_DATA_DIR: dataDir, LECTERN_LOG_FILTER: 'warn' });
  return new Promise((resolvePromise, reject) => {
    const child = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (err += chunk));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolvePromise(out) : reject(new Error(`lectern ${args.join(' ')}: exit ${code}\n${err}`))));
  });
}

export async function stopServer(server) {
  if (!server || server.exited) return;
  server.child.kill('SIGTERM');
  try {
    await waitFor('the server to exit', () => server.exited, { timeout: 10_000 });
  } catch {
    server.child.kill('SIGKILL');
  }
}

/**
 * With LECTERN_E2E_CLIENT_FROM_DISK=1: a loopback HTTP proxy in front of the server that
 * answers the client's files from web-client/ (with the server's own headers, CSP included)
 * and passes everything else, WebSocket upgrades too, to the server. (Playwright's
 * route.fulfill would do for scripts, but a fulfilled document is not on loopback for
 * Chromium's Local Network Access checks, which then block the WebSocket.)
 * Resolves with `{server, url}`.
 */
export async function startClientProxy(target) {
  const clientDir = resolve(here, '../../web-client');
  const clientFiles = readdirSync(clientDir).filter((f) => /\.(html|css|js)$/.test(f));
  const upstream = new URL(target);
  const files = new Map([['/', 'index.html'], ...clientFiles.map((f) => [`/${f}`, f])]);
  const types = { html: 'text/html', css: 'text/css', js: 'text/javascript' };
  const proxy = createServer((req, res) => {
    const forward = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      const file = files.get(new URL(req.url ?? '/', 'http://x').pathname);
      if (!file) {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
        return;
      }
      up.resume();
      const body = readFileSync(join(clientDir, file));
      const headers = { ...up.headers, 'content-type': `${types[file.split('.').pop()]}; charset=utf-8`, 'content-length': String(body.length) };
      delete headers['transfer-encoding'];
      res.writeHead(200, headers);
      res.end(body);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  proxy.on('upgrade', (req, socket, head) => {
    const up = netConnect(Number(upstream.port), upstream.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  return { server: proxy, url: `http://127.0.0.1:${proxy.address().port}` };
}

// ---- The browser ----------------------------------------------------------------------------

/** A 440 Hz tone (48 kHz mono 16-bit PCM, one second; Chromium loops it) for --use-file-for-fake-audio-capture: loud enough to be speech for the active-speaker detection. */
export function writeToneWav(path) {
  const rate = 48_000;
  const samples = rate;
  const data = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) data.writeInt16LE(Math.round(0.5 * 32767 * Math.sin((2 * Math.PI * 440 * i) / rate)), i * 2);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16); // fmt chunk size
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28); // byte rate
  header.writeUInt16LE(2, 32); // block align
  header.writeUInt16LE(16, 34); // bits per sample
  header.write('data', 36);
  header.writeUInt32LE(data.length, 40);
  writeFileSync(path, Buffer.concat([header, data]));
}

/** Chromium features the tests turn off (see `chromiumArgs`); Playwright passes its own `--disable-features`, so ours go in one switch. */
const DISABLED_FEATURES = 'WebRtcHideLocalIpsWithMdns,WebUIOmniboxPopup,WebUIOmniboxFullPopup,WebUIOmniboxAimPopup';

/** Flags for pages without media (the course home, the board, quizzes): no camera, no WebRTC. */
export function pageArgs() {
  return ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', `--disable-features=${DISABLED_FEATURES}`];
}

/** Exactly the flags of /work/shared/TESTING.md, plus the fake camera's clip (and microphone's tone). */
export function chromiumArgs(y4m, wav = null) {
  return [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    '--allow-loopback-in-peer-connection',
    // WebUIOmnibox*: each new browser context is a new window, whose omnibox popup Chromium
    // builds as a WebUI page in a renderer of its own (chrome://omnibox-popup.top-chrome:
    // ~200 ms of that renderer's main thread, ~200 ms of its workers and ~200 ms of the browser's
    // main thread in a trace of a join, on 2 cores shared with the page under test). A real
    // student's browser built it when its window opened, not when the join link is clicked.
    `--disable-features=${DISABLED_FEATURES}`,
    '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1',
    `--use-file-for-fake-video-capture=${y4m}`,
    ...(wav ? [`--use-file-for-fake-audio-capture=${wav}`] : []),
  ];
}

/**
 * The checks of a test script, run in order: each prints `ok`, `FAIL` (with why) or, after a
 * failure, `SKIP` (the later checks need what failed). `results` collects them for the closing
 * `N passed, N failed` line.
 */
export function checklist() {
  /** @type {{name: string, ok: boolean, detail?: string}[]} */
  const results = [];
  let blocked = '';
  /** @param {string} name @param {() => Promise<string | void>} body */
  async function check(name, body) {
    if (blocked) {
      results.push({ name, ok: false, detail: `not run: needs "${blocked}"` });
      console.log(`SKIP ${name} (needs "${blocked}")`);
      return;
    }
    const started = Date.now();
    try {
      const detail = await body();
      results.push({ name, ok: true, detail });
      console.log(`ok   ${name} (${Date.now() - started} ms)${detail ? ` - ${detail}` : ''}`);
    } catch (error) {
      results.push({ name, ok: false, detail: String(error?.stack ?? error) });
      console.log(`FAIL ${name} (${Date.now() - started} ms)\n     ${String(error?.message ?? error).replace(/\n/g, '\n     ')}`);
      blocked = name;
    }
  }
  return { results, check };
}

/**
 * Runs a script's checks (`main`), counts an exception outside any check as a failed `harness`
 * check, prints the closing `N passed, N failed` line and sets the exit code (1 on any failure).
 * @param {{name: string, ok: boolean, detail?: string}[]} results @param {() => Promise<void>} main
 */
export async function finish(results, main) {
  try {
    await main();
  } catch (error) {
    results.push({ name: 'harness', ok: false, detail: String(error) });
    console.log(`FAIL harness: ${error instanceof Error ? error.stack : error}`);
  }
  const passed = results.filter((r) => r.ok).length;
  console.log(`${passed} passed, ${results.length - passed} failed`);
  process.exitCode = passed === results.length ? 0 : 1;
}

/** The published colours (RGB): the instructor's browser films red, the students' blue. */
export const RED = [200, 40, 40];
export const BLUE = [40, 100, 220];
/** Per-channel tolerance for a decoded pixel (VP8, YUV<->RGB rounding and range). */
export const COLOUR_TOLERANCE = 45;

/** Whether a decoded pixel `rgb` is about the colour `want`. @param {number[] | null | undefined} rgb @param {number[]} want */
export const close = (rgb, want) => !!rgb && rgb.every((v, i) => Math.abs(v - want[i]) <= COLOUR_TOLERANCE);

/** The roster's participant id for a display name (drawn from the room state). @param {import('playwright-core').Page} page @param {string} name */
/**
 * In the page: what a video element shows (default: the stage): whether it is there, its size,
 * its publisher (`data-participant`), its track and stream, and the colour at its centre (an 8x8 average,
 * null until a frame is drawn).
 */
export async function videoState(page, selector = '#stage-video') {
  return page.evaluate((selector) => {
    const video = /** @type {HTMLVideoElement | null} */ (document.querySelector(selector));
    if (!video) return { found: false, width: 0, height: 0, participant: '', trackId: null, streamId: null, rgb: null };
    const stream = /** @type {MediaStream | null} */ (video.srcObject);
    const track = stream?.getVideoTracks()[0];
    // A reused m-line keeps its receiver's track: the stream (one per offered track) tells
    // one presenter's video from the next.
    const result = {
      found: true, width: video.videoWidth, height: video.videoHeight, participant: video.dataset.participant ?? '',
      trackId: track?.id ?? null, streamId: stream?.id ?? null, rgb: /** @type {number[] | null} */ (null),
    };
    if (video.videoWidth > 0 && video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA) {
      const canvas = document.createElement('canvas');
      [canvas.width, canvas.height] = [video.videoWidth, video.videoHeight];
      const g = canvas.getContext('2d', { willReadFrequently: true });
      g.drawImage(video, 0, 0);
      const size = 8;
      const data = g.getImageData((canvas.width - size) >> 1, (canvas.height - size) >> 1, size, size).data;
      const sum = [0, 0, 0];
      for (let i = 0; i < data.length; i += 4) for (let c = 0; c < 3; c++) sum[c] += data[i + c];
      result.rgb = sum.map((v) => Math.round(v / (size * size)));
    }
    return result;
  }, selector);
}

export async function participantId(page, name) {
  return waitFor(`the roster to list ${name}`, () => page.evaluate((name) => {
    for (const li of document.querySelectorAll('#roster > li')) {
      if (li.querySelector('.name')?.textContent === name) return /** @type {HTMLElement} */ (li).dataset.participant;
    }
    return null;
  }, name));
}

// ---- Accessibility (axe-core) ----------------------------------------------------------------

/** axe-core's browser build, read once. */
let axeSource = '';

/**
 * Runs axe-core on `page` as it is now and throws, listing them, on any serious or critical
 * violation; returns a one-line summary (violations of lower impact named, not failed).
 *
 * The pages' CSP allows no inline script, so axe is not added as a `<script>` (Playwright's
 * addScriptTag inlines the file's content, which the CSP blocks): its source is evaluated
 * through the DevTools protocol (`page.evaluate`), which the CSP does not govern, and the page
 * keeps its CSP for the run.
 * @param {import('playwright-core').Page} page
 * @param {string} what which page state, for the messages
 * @param {{exclude?: string[]}} [options] selectors axe leaves out
 */
export async function axeCheck(page, what, { exclude = [] } = {}) {
  if (!axeSource) {
    const { createRequire } = await import('node:module');
    const { readFileSync } = await import('node:fs');
    axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  }
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const result = await page.evaluate(async (exclude) => {
    const axe = /** @type {any} */ (window).axe;
    const context = exclude.length ? { include: [document], exclude: exclude.map((s) => [s]) } : document;
    const r = await axe.run(context, { resultTypes: ['violations'] });
    return {
      version: axe.version,
      violations: r.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary?.replace(/\s+/g, ' ') ?? ''}`),
        count: v.nodes.length,
      })),
    };
  }, exclude);
  const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (serious.length) {
    const list = serious.map((v) => `${v.impact} ${v.id} (${v.help}), ${v.count} element(s):\n  ${v.nodes.join('\n  ')}`).join('\n');
    throw new Error(`axe-core ${result.version} on ${what}: ${serious.length} serious or critical violation(s):\n${list}`);
  }
  const minor = result.violations.map((v) => `${v.id} (${v.impact})`);
  return `axe-core ${result.version}: no serious or critical violation${minor.length ? `; lesser: ${minor.join(', ')}` : ''}`;
}

/**
 * An init script (`context.addInitScript(recordPeerConnections)`): keeps every
 * RTCPeerConnection a page makes in `window.__lecternPeerConnections`, so a test reads their
 * stats without hooks in the client.
 */
export function recordPeerConnections() {
  const Original = window.RTCPeerConnection;
  /** @type {RTCPeerConnection[]} */
  const all = [];
  Object.defineProperty(window, '__lecternPeerConnections', { value: all });
  window.RTCPeerConnection = class extends Original {
    constructor(...args) {
      super(...args);
      all.push(this);
    }
  };
}
