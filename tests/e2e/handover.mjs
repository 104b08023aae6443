// Stage handover (a benchmark, not a test; scripts/test.sh does not run it): how long the
// class waits, after a student handed the stage turns the camera on, for the first frame of that
// camera on every other page.
//
//   cargo build -p lectern-server && (cd tests/e2e && npm ci && node handover.mjs)
//
// The server runs as in run.mjs (demo class, LECTERN_ROOM_AUTO_START=true so nobody waits in
// the lobby, media on 127.0.0.1). One instructor page (camera on: a red 320x240 clip, so the
// stage shows it in the picture-in-picture while a student presents) and STUDENTS student pages
// (the demo's two students plus more from `lectern token` for the demo's room), all 1280x800.
// The students' browser films a blue 640x480 clip: wide enough for the client to publish it as
// simulcast (a 320x240 layer `l` and the 640x480 one `h`), as a real webcam is.
//
// HANDOVERS times, in turn: the instructor presses "Give stage" on the next student's roster row
// (the previous presenter loses the stage and its camera goes off), and that student presses
// "Turn camera on" as soon as the button shows. Measured, per handover and per other page (the
// instructor and the other students): from the presenter's camera being on (its getUserMedia
// resolving with a live track, in the presenter's page) to the first frame of the presenter's
// video shown on that page's stage (`requestVideoFrameCallback` presentation time). All pages
// run on this machine and every time is on the wall clock (`Date.now()`; see `now` below). The
// grant's time is when the presenter's page received `stage_granted`.
//
// Along the way, for the slow cases: each receiving page polls its receiver's `inbound-rtp`
// (first packet, first decoded frame, framesDecoded, keyFramesDecoded, pliCount, firCount,
// nackCount) and the presenter's page its `outbound-rtp` per rid (when each layer encoded its
// first frame, framesEncoded, frameWidth, qualityLimitationReason).
//
// Prints one line per handover, a table (n, median, p90, p99, max; per page and per handover's
// slowest page), the cases slower than SLOW_MS with their stats, then one JSON line. No
// pass/fail on timing: the exit code is non-zero only if a frame never arrived.
//
// Environment: LECTERN_BIN (default ../../target/debug/lectern), CHROMIUM, STUDENTS (default
// 4), HANDOVERS (default 50), HOLD_MS (how long each presentation lasts after every page has its
// first frame; default 1000), SLOW_MS (default 1000), INSTRUCTOR_CAMERA (default 1; 0: off),
// TIMEOUT_MS (a frame that has not arrived by then never will; default 15000); DEBUG=1 (print
// the pages' console and, per handover, the camera-on time, to compare with the server's log),
// SERVER_LOG (the server's LECTERN_LOG_FILTER, e.g. info,lectern_sfu=debug) and
// SERVER_LOG_FILE (where to write the server's output at the end).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { BIN, BLUE, CHROMIUM, RED, chromiumArgs, delay, runCli, startServer, stopServer, waitFor, writeY4m } from './harness.mjs';

const STUDENTS = Number(process.env.STUDENTS ?? 4);
const HANDOVERS = Number(process.env.HANDOVERS ?? 50);
const HOLD_MS = Number(process.env.HOLD_MS ?? 1000);
const SLOW_MS = Number(process.env.SLOW_MS ?? 1000);
const TIMEOUT_MS = Number(process.env.TIMEOUT_MS ?? 15_000);
const INSTRUCTOR_CAMERA = process.env.INSTRUCTOR_CAMERA !== '0';

/**
 * Init script of every page (runs before the client). `window.__handover` collects:
 * - `cameraOn`: times the page's getUserMedia resolved with a live video track;
 * - `grants`: `{participant, at, t}` for each `stage_granted` event received (`at`: server);
 * - `frames`: the first frame shown on #stage-video for each new stream the client attaches
 *   (one per track received, also on a reused m-line): `{participant, t, width, height, n}`
 *   (`n` numbers the streams of the page);
 * - `rx`: per stage stream `n`, its `inbound-rtp` polled every 50 ms until its first decoded
 *   frame (and once more after): first packet and first decoded frame times, counters;
 * - `tx`: per camera-on, the `outbound-rtp` per rid polled every 50 ms for 5 s: when each rid
 *   first encoded a frame, and its last counters.
 */
function instrument() {
  // The wall clock, the one clock all pages (and the server) share. Not `timeOrigin + now()`:
  // each page's timeOrigin is a wall-clock reading at its start, and the monotonic clock
  // drifts from the wall clock (5 ms/s on the machine this was written on), so two pages
  // started a minute apart would disagree by a fraction of a second.
  const now = () => Date.now();
  /** A `performance.now()` time (e.g. a frame's presentationTime) on the wall clock. */
  const wall = (t) => Date.now() - (performance.now() - t);
  const h = { cameraOn: [], grants: [], frames: [], rx: {}, tx: [], signalling: [] };
  Object.defineProperty(window, '__handover', { value: h });
  const pcs = [];
  const OriginalPc = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends OriginalPc {
    constructor(...args) {
      super(...args);
      pcs.push(this);
      window.__pcs = pcs;
    }
  };
  const OriginalSocket = window.WebSocket;
  window.WebSocket = class extends OriginalSocket {
    send(data) {
      const type = typeof data === 'string' ? /"type":"(media_offer|media_answer)"/.exec(data)?.[1] : null;
      if (type) h.signalling.push({ what: `sent ${type}`, t: now() });
      super.send(data);
    }
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        if (typeof e.data === 'string' && e.data.startsWith('{"type":"sfu_')) h.signalling.push({ what: `got ${e.data.slice(9, 18)}`, t: now() });
        if (typeof e.data !== 'string' || !e.data.includes('stage_granted')) return;
        try {
          const m = JSON.parse(e.data);
          if (m.event?.kind === 'stage_granted') h.grants.push({ participant: m.event.participant_id, at: m.at, t: now() });
        } catch {
          // not ours to judge
        }
      });
    }
  };

  /** The outbound video streams of this page, by rid. */
  async function outbound() {
    const out = {};
    for (const pc of pcs) {
      if (pc.connectionState === 'closed') continue;
      const report = await pc.getStats();
      for (const s of report.values()) {
        if (s.type !== 'outbound-rtp' || s.kind !== 'video') continue;
        out[`${s.mid}/${s.rid ?? '-'}`] = {
          mid: s.mid, rid: s.rid ?? null, framesEncoded: s.framesEncoded ?? 0, keyFramesEncoded: s.keyFramesEncoded ?? 0,
          packetsSent: s.packetsSent ?? 0, frameWidth: s.frameWidth ?? 0, frameHeight: s.frameHeight ?? 0,
          qualityLimitationReason: s.qualityLimitationReason ?? null, active: s.active ?? null,
          targetBitrate: s.targetBitrate ?? null, pliCount: s.pliCount ?? 0, firCount: s.firCount ?? 0, nackCount: s.nackCount ?? 0,
        };
      }
    }
    return out;
  }
  const devices = navigator.mediaDevices;
  const originalGum = devices.getUserMedia.bind(devices);
  devices.getUserMedia = async (constraints) => {
    const stream = await originalGum(constraints);
    const track = stream.getVideoTracks()[0];
    if (track && track.readyState === 'live') {
      const t = now();
      h.cameraOn.push(t);
      // The presenter's layers: when each rid encodes its first frame since the camera went on.
      // Counted from where they were: the client takes up its parked camera m-line again.
      const entry = { t, base: null, first: {}, last: {} };
      h.tx.push(entry);
      const started = performance.now();
      const poll = async () => {
        const out = await outbound().catch(() => ({}));
        entry.base ??= Object.fromEntries(Object.entries(out).map(([k, s]) => [k, s.framesEncoded]));
        for (const [k, s] of Object.entries(out)) {
          entry.last[k] = s;
          if (s.framesEncoded > (entry.base[k] ?? 0)) entry.first[k] ??= now() - t;
        }
        if (performance.now() - started < 5000) setTimeout(poll, 50);
      };
      setTimeout(poll, 0);
    }
    return stream;
  };

  let count = 0;
  const seen = new WeakSet();
  async function inbound(track) {
    for (const pc of pcs) {
      for (const r of pc.getReceivers()) {
        if (r.track !== track) continue;
        const report = await r.getStats();
        for (const s of report.values()) {
          if (s.type === 'inbound-rtp' && s.kind === 'video') return s;
        }
      }
    }
    return null;
  }
  function watchTrack(track, participant, n) {
    const rx = { participant, t0: now(), firstPacket: null, firstDecoded: null, stats: null };
    h.rx[n] = rx;
    let after = 0;
    // The SFU reuses an m-line (and so the receiver and its track) for the next presenter: the
    // counters are taken from where the previous one left them.
    let base = null;
    const poll = async () => {
      const s = await inbound(track).catch(() => null);
      if (s) {
        const counters = ['packetsReceived', 'framesDecoded', 'keyFramesDecoded', 'pliCount', 'firCount', 'nackCount', 'packetsLost'];
        base ??= Object.fromEntries(counters.map((c) => [c, s[c] ?? 0]));
        const d = Object.fromEntries(counters.map((c) => [c, (s[c] ?? 0) - base[c]]));
        if (d.packetsReceived > 0) rx.firstPacket ??= now();
        if (d.framesDecoded > 0) rx.firstDecoded ??= now();
        rx.stats = { ...d, frameWidth: s.frameWidth ?? 0, frameHeight: s.frameHeight ?? 0 };
      }
      if (rx.firstDecoded !== null) after++;
      if (after < 10 && now() - rx.t0 < 20_000 && track.readyState === 'live') setTimeout(poll, 50);
    };
    setTimeout(poll, 0);
  }
  // What the stage shows is told apart by its stream: the client makes a new one for each
  // track it receives, also when the SFU reuses an m-line (and so its receiver track) for the
  // next presenter.
  const watch = () => {
    const video = /** @type {HTMLVideoElement} */ (document.getElementById('stage-video'));
    let current = null;
    let currentSince = 0;
    let currentN = 0;
    let shown = false;
    const start = (stream, track, participant) => {
      current = stream;
      currentSince = now();
      shown = false;
      if (!seen.has(stream)) {
        seen.add(stream);
        currentN = ++count;
        watchTrack(track, participant, currentN);
      }
    };
    const onFrame = (_, metadata) => {
      const stream = /** @type {MediaStream | null} */ (video.srcObject);
      const track = stream?.getVideoTracks()[0] ?? null;
      const participant = video.dataset.participant ?? '';
      // Only received tracks count (a presenter's own stage shows its local camera).
      const remote = track && pcs.some((pc) => pc.getReceivers().some((r) => r.track === track));
      if (stream && track && remote && stream !== current) start(stream, track, participant);
      // A frame of a reused track received before this stream was shown is the previous
      // presenter's (whose camera went off before the grant, hundreds of ms earlier; the
      // margin covers a page slow to draw the new stream).
      const fresh = metadata.receiveTime === undefined || wall(metadata.receiveTime) >= currentSince - 200;
      if (stream === current && remote && !shown && metadata.width > 0 && fresh) {
        shown = true;
        h.frames.push({ participant, t: wall(metadata.presentationTime), width: metadata.width, height: metadata.height, n: currentN });
      }
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
    // A new stream on the stage: look at it even before its first frame (for the rx polling).
    setInterval(() => {
      const stream = /** @type {MediaStream | null} */ (video.srcObject);
      const track = stream?.getVideoTracks()[0] ?? null;
      if (!stream || !track || seen.has(stream) || !pcs.some((pc) => pc.getReceivers().some((r) => r.track === track))) return;
      start(stream, track, video.dataset.participant ?? '');
    }, 20);
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', watch);
  else watch();
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  // Nearest rank: the smallest value with at least q of the samples at or below it.
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
};
const summarize = (xs) => ({ n: xs.length, median: quantile(xs, 0.5), p90: quantile(xs, 0.9), p99: quantile(xs, 0.99), max: Math.max(...xs) });
const r = (x) => (x === null || x === undefined ? null : Math.round(x));

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'lectern-handover-'));
  const red = join(tmp, 'red.y4m');
  const blue = join(tmp, 'blue.y4m');
  writeY4m(red, RED);
  writeY4m(blue, BLUE, [640, 480]);
  const dataDir = join(tmp, 'data');
  let server = null;
  const browsers = [];
  let missing = 0;
  const logs = [];
  try {
    server = await startServer(dataDir, { LECTERN_ROOM_AUTO_START: 'true', ...(process.env.SERVER_LOG ? { LECTERN_LOG_FILTER: process.env.SERVER_LOG } : {}) });
    const room = server.output.match(/\(room (\S+)\)/)?.[1];
    if (!room) throw new Error(`no room in the server's output:\n${server.output}`);
    const links = [server.links['student 1'], server.links['student 2']];
    for (let i = 3; i <= STUDENTS; i++) {
      const out = await runCli(dataDir, ['token', '--room', room, '--name', `Student ${i}`]);
      links.push(`${server.url}/#token=${out.trim().split('\n')[0]}`);
    }
    links.length = STUDENTS;
    browsers.push(await chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs(red) }));
    browsers.push(await chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs(blue) }));
    const [teacherBrowser, studentBrowser] = browsers;
    const open = async (browser, link, tag = link.slice(-6)) => {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await context.addInitScript(instrument);
      const page = await context.newPage();
      page.on('console', (m) => logs.push(`${Date.now()} ${tag} ${m.type()} ${m.text()}`));
      page.on('pageerror', (e) => logs.push(`${Date.now()} pageerror ${e}`));
      await page.goto(link);
      return page;
    };
    const teacher = await open(teacherBrowser, server.links.instructor, "i");
    await waitFor('#enter-class', () => teacher.locator('#enter-class').isVisible());
    await teacher.locator('#enter-class').click();
    if (INSTRUCTOR_CAMERA) {
      await waitFor('#camera-toggle', () => teacher.locator('#camera-toggle').isVisible());
      await teacher.locator('#camera-toggle').click();
    }
    const students = [];
    for (const [i, link] of links.entries()) students.push(await open(studentBrowser, link, `s${i + 1}`));
    for (const page of students) await waitFor('a student in the classroom', () => page.locator('#classroom').isVisible());
    // Which page is which participant: the instructor's roster lists the students' ids (on its
    // "Give stage" buttons); the stage is given to each once (not timed) to see whose page
    // shows the camera button.
    const studentIds = students.map(() => null);
    const grantable = await waitFor(`${STUDENTS} students in the instructor's roster`, async () => {
      const list = await teacher.evaluate(() => [...document.querySelectorAll('#roster button[data-action="stage_grant"]')].map((b) => /** @type {HTMLElement} */ (b).dataset.participant));
      return list.length >= STUDENTS ? list : null;
    });
    for (const id of grantable) {
      let i = null;
      // Pressed again if no page shows the button after a while (a busy machine: the roster
      // may be redrawn under the click).
      for (let attempt = 0; attempt < 4 && i === null; attempt++) {
        await teacher.locator(`#roster button[data-action="stage_grant"][data-participant="${id}"]`).click().catch(() => undefined);
        i = await waitFor(`the page of ${id}`, async () => {
          for (let k = 0; k < students.length; k++) {
            if (studentIds[k] === null && (await students[k].locator('#camera-toggle').isVisible())) return k + 1;
          }
          return null;
        }, { timeout: 8000 }).catch(() => null);
      }
      if (i === null) throw new Error(`no page shows the camera button for ${id}`);
      studentIds[i - 1] = id;
    }
    await teacher.locator(`#roster button[data-action="stage_revoke"]`).first().click();
    await waitFor('no camera buttons', async () => {
      for (const s of students) if (await s.locator('#camera-toggle').isVisible()) return false;
      return true;
    });
    await delay(1000);
    console.log(`server ${server.url} (${BIN}), Chromium ${studentBrowser.version()}, ${STUDENTS} students, ${HANDOVERS} handovers, instructor camera ${INSTRUCTOR_CAMERA ? 'on' : 'off'}`);

    const pages = [{ page: teacher, who: 'instructor' }, ...students.map((page, i) => ({ page, who: `student ${i + 1}` }))];
    const samples = [];
    const handovers = [];
    for (let k = 0; k < HANDOVERS; k++) {
      const p = k % STUDENTS;
      const presenter = students[p];
      const presenterId = studentIds[p];
      const cameraCount = await presenter.evaluate(() => window.__handover.cameraOn.length);
      await teacher.locator(`#roster button[data-action="stage_grant"][data-participant="${presenterId}"]`).click();
      await presenter.locator('#camera-toggle').click({ timeout: 10_000 });
      const cameraOn = await waitFor('the camera on', () => presenter.evaluate((n) => window.__handover.cameraOn[n] ?? null, cameraCount));
      const grant = await presenter.evaluate((id) => window.__handover.grants.filter((g) => g.participant === id).at(-1) ?? null, presenterId);
      const others = pages.filter((x) => x.page !== presenter);
      const results = await Promise.all(others.map(async ({ page, who }) => {
        const frame = await waitFor(`handover ${k + 1}: the first frame on ${who}`, () => page.evaluate(({ id, t }) => window.__handover.frames.find((f) => f.participant === id && f.t >= t) ?? null, { id: presenterId, t: cameraOn }), { timeout: TIMEOUT_MS, interval: 20 }).catch(() => null);
        return { who, page, frame };
      }));
      // Let the last polls of the pages finish (10 x 50 ms after the first decoded frame).
      await delay(600);
      const tx = await presenter.evaluate((t) => window.__handover.tx.find((e) => e.t === t) ?? null, cameraOn);
      const signalling = await presenter.evaluate((t) => window.__handover.signalling.filter((e) => e.t >= t - 2000 && e.t <= t + 5000), cameraOn);
      const row = { handover: k + 1, presenter: `student ${p + 1}`, grantToCameraOn: grant ? r(cameraOn - grant.t) : null, pages: [], tx, signalling: signalling.map((e) => `${e.what} ${e.t >= cameraOn ? '+' : ''}${r(e.t - cameraOn)}`).join(', ') };
      for (const { who, page, frame } of results) {
        const rx = await page.evaluate(({ id, t, n }) => {
          const all = Object.entries(window.__handover.rx).filter(([, x]) => x.participant === id && x.t0 >= t - 5000);
          const found = n === null ? all.at(-1) : all.find(([key]) => Number(key) === n);
          return found ? found[1] : null;
        }, { id: presenterId, t: cameraOn, n: frame?.n ?? null });
        const ms = frame ? frame.t - cameraOn : null;
        if (ms === null) missing++;
        else samples.push(ms);
        row.pages.push({ who, ms: r(ms), width: frame?.width ?? null, firstPacket: rx?.firstPacket ? r(rx.firstPacket - cameraOn) : null, firstDecoded: rx?.firstDecoded ? r(rx.firstDecoded - cameraOn) : null, rx: rx?.stats ?? null });
      }
      handovers.push(row);
      if (process.env.DEBUG && row.pages.some((x) => x.ms === null)) {
        console.log(logs.join('\n'));
        console.log(JSON.stringify(await presenter.evaluate(async () => {
          const out = [];
          for (const t of document.querySelectorAll('#camera-toggle')) out.push(t.getAttribute('aria-pressed'), t.textContent);
          for (const pc of window.__pcs) out.push(pc.signalingState, pc.connectionState, pc.getTransceivers().map((t) => `${t.mid} ${t.direction} ${t.currentDirection} ${t.sender.track?.readyState}`));
          return out;
        })));
      }
      const worst = row.pages.reduce((m, x) => (x.ms === null ? Infinity : Math.max(m, x.ms)), 0);
      row.worst = worst === Infinity ? null : worst;
      const layers = Object.entries(tx?.first ?? {}).map(([key, ms]) => `${key.split('/')[1]} +${r(ms)}`).join(' ');
      console.log(`handover ${String(k + 1).padStart(3)} to ${row.presenter}: grant->camera ${row.grantToCameraOn} ms; camera->frame ${row.pages.map((x) => `${x.who.replace('student ', 's').replace('instructor', 'i')} ${x.ms ?? 'NEVER'}`).join(', ')} (layers encoded: ${layers || '?'})${process.env.DEBUG ? ` camera on at ${new Date(cameraOn).toISOString()}` : ''}`);
      await delay(HOLD_MS);
    }

    const perHandover = handovers.map((h) => h.worst).filter((x) => x !== null);
    const fmt = (s) => `${String(s.n).padStart(5)} ${String(r(s.median)).padStart(7)} ${String(r(s.p90)).padStart(7)} ${String(r(s.p99)).padStart(7)} ${String(r(s.max)).padStart(7)}`;
    const all = summarize(samples);
    const worst = summarize(perHandover);
    const grants = summarize(handovers.map((h) => h.grantToCameraOn).filter((x) => x !== null));
    console.log('\ncamera on -> first frame shown (ms)');
    console.log('                              n  median     p90     p99     max');
    console.log(`every other page          ${fmt(all)}`);
    console.log(`slowest page per handover ${fmt(worst)}`);
    console.log(`(grant -> camera on       ${fmt(grants)})`);
    if (missing) console.log(`${missing} first frames never arrived (within ${TIMEOUT_MS} ms)`);

    const slow = handovers.filter((h) => h.worst === null || h.worst > SLOW_MS);
    console.log(`\nslow handovers (a page over ${SLOW_MS} ms): ${slow.length}`);
    for (const h of slow) {
      console.log(`handover ${h.handover} to ${h.presenter} (grant->camera ${h.grantToCameraOn} ms), presenter's signalling (ms from camera on): ${h.signalling}`);
      for (const [key, s] of Object.entries(h.tx?.last ?? {})) {
        const first = h.tx.first[key];
        console.log(`  presenter ${key}: first frame encoded ${first === undefined ? 'never (in 5 s)' : `+${r(first)} ms`}, framesEncoded ${s.framesEncoded}, keyFramesEncoded ${s.keyFramesEncoded}, ${s.frameWidth}x${s.frameHeight}, qualityLimitation ${s.qualityLimitationReason}, pli ${s.pliCount}, fir ${s.firCount}, nack ${s.nackCount}`);
      }
      for (const x of h.pages) {
        const s = x.rx;
        console.log(`  ${x.who.padEnd(10)} frame ${x.ms === null ? 'NEVER' : `+${x.ms} ms`} (first packet +${x.firstPacket} ms, first decoded +${x.firstDecoded} ms) ${s ? `framesDecoded ${s.framesDecoded}, keyFramesDecoded ${s.keyFramesDecoded}, ${s.frameWidth}x${s.frameHeight}, pli ${s.pliCount}, fir ${s.firCount}, nack ${s.nackCount}, lost ${s.packetsLost}` : 'no stats'}`);
      }
    }
    // How large each page's description is after the run: the SFU reuses m-lines, so this
    // stays at the most tracks a page received at once (it grew by one m-line per camera).
    const sdp = await Promise.all(pages.map(async ({ page, who }) => ({ who, ...(await page.evaluate(() => {
      const pc = /** @type {RTCPeerConnection[]} */ (window.__pcs ?? []).filter((p) => p.connectionState !== 'closed').at(-1);
      const text = pc?.localDescription?.sdp ?? '';
      return { mlines: text.split('\r\nm=').length - 1, chars: text.length, peerConnections: (window.__pcs ?? []).length };
    })) })));
    console.log(`descriptions after ${HANDOVERS} handovers: ${sdp.map((x) => `${x.who} ${x.mlines} m-lines ${x.chars} chars${x.peerConnections > 1 ? ` (${x.peerConnections} peer connections)` : ''}`).join(', ')}`);
    const summary = { benchmark: 'handover_camera_on_to_first_frame_ms', students: STUDENTS, handovers: HANDOVERS, perPage: all, perHandover: worst, grantToCameraOn: grants, missing, sdp, binary: BIN, all: handovers.map((h) => h.pages.map((x) => x.ms)) };
    console.log(JSON.stringify(summary));
  } finally {
    for (const b of browsers) await b.close().catch(() => undefined);
    await stopServer(server);
    if (process.env.SERVER_LOG_FILE && server) writeFileSync(process.env.SERVER_LOG_FILE, server.output);
    rmSync(tmp, { recursive: true, force: true });
  }
  if (missing) process.exit(1);
}

await main();
