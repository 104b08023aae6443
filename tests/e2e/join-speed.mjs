// Join speed (a benchmark, not a test; scripts/test.sh does not run it): how long a student
// waits from opening the join link to the first decoded frame of the lecture video.
//
//   cargo build -p lectern-server && (cd tests/e2e && npm ci && node join-speed.mjs)
//
// The server runs as in run.mjs (demo class, LECTERN_ROOM_AUTO_START=true so nobody waits in
// the lobby, media on 127.0.0.1). The instructor's page publishes the fake camera (a 320x240
// Y4M clip). Then, JOINS times, a fresh student page (its own browser context: no cache,
// no session) opens its join link.
//
// What is measured: the page has no "join" button; opening the join link is the join (the
// page connects by itself). So the clock starts at the student page's navigation start
// (`performance.timeOrigin`, time 0 of the page's clock) and stops at the presentation
// time of the first frame of the instructor's video shown by `#stage-video`, from
// `requestVideoFrameCallback` (`metadata.presentationTime`, same clock). Along the way the page
// records when its WebSocket opened and when its RTCPeerConnection reached `connected`, and the
// first time of every step (each message type sent and received, the peer connection created,
// ICE and connection states), printed as medians in the order they happen: where the time goes.
//
// Prints one line per join, the step medians, then the median and worst, then one JSON line.
// Like the browser test it wants an emoji font (fonts-noto-color-emoji; scripts/test.sh
// installs it): without one, Chromium's first layout of the classroom searches every font for
// the reaction buttons' emoji, tens of milliseconds that no real desktop spends.
// Environment: LECTERN_BIN (default ../../target/debug/lectern), CHROMIUM, JOINS (default 10),
// JOIN_SPEED_SERVER_LOG (a file: the server's log, e.g. with RUST_LOG=info,lectern_server=debug,
// then each join's navigation start as Unix ms, to place the server's steps on the page's clock),
// JOIN_SPEED_ARGS (more Chromium switches for the student's browser only, space-separated, e.g.
// `--enable-logging --log-file=/tmp/chromium.log --vmodule=*/p2p/base/*=4` for WebRTC's ICE log).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, delay, stopServer, waitFor } from './harness.mjs';
import { instrument, setUpJoins } from './join-page.mjs';

const JOINS = Number(process.env.JOINS ?? 10);
const EXTRA_ARGS = (process.env.JOIN_SPEED_ARGS ?? '').split(' ').filter(Boolean);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'lectern-join-speed-'));
  /** @type {{ server: any, browsers: import('playwright-core').Browser[] }} */
  const env = { server: null, browsers: [] };
  try {
    const { server, studentBrowser } = await setUpJoins(tmp, env, EXTRA_ARGS);
    console.log(`server ${server.url}, Chromium ${studentBrowser.version()}, ${JOINS} joins`);
    const joins = [];
    /** Each join's navigation start, Unix ms. @type {number[]} */
    const origins = [];
    /** Per join: step name to page-clock ms. @type {Record<string, number | null>[]} */
    const steps = [];
    for (let i = 0; i < JOINS; i++) {
      const link = server.links[i % 2 ? 'student 2' : 'student 1'];
      const context = await studentBrowser.newContext({ viewport: { width: 1280, height: 800 } });
      await context.addInitScript(instrument);
      const page = await context.newPage();
      await page.goto(link);
      const marks = await waitFor(`join ${i + 1}: the first frame`, () => page.evaluate(() => (window.__joinMarks.firstFrame !== null ? window.__joinMarks : null)), { timeout: 30_000, interval: 20 });
      const nav = await page.evaluate(() => {
        const n = /** @type {PerformanceNavigationTiming} */ (performance.getEntriesByType('navigation')[0]);
        return { responseEnd: n.responseEnd, domContentLoaded: n.domContentLoadedEventEnd, timeOrigin: performance.timeOrigin };
      });
      origins.push(nav.timeOrigin);
      const r = (x) => (x === null ? null : Math.round(x));
      steps.push({ ...Object.fromEntries(Object.entries(marks.steps).map(([k, v]) => [k, r(v)])), 'page HTML received': r(nav.responseEnd), 'DOMContentLoaded': r(nav.domContentLoaded), 'first frame shown': r(marks.firstFrame) });
      const row = { join: i + 1, firstFrameMs: r(marks.firstFrame), wsOpenMs: r(marks.wsOpen), pcConnectedMs: r(marks.pcConnected), domContentLoadedMs: r(nav.domContentLoaded), frameWidth: marks.frameWidth };
      joins.push(row);
      console.log(`join ${String(i + 1).padStart(2)}: first frame ${row.firstFrameMs} ms (page loaded ${row.domContentLoadedMs} ms, WebSocket open ${row.wsOpenMs} ms, peer connected ${row.pcConnectedMs} ms)`);
      await context.close();
      await delay(500); // the server notices the close before the next join
    }
    const times = joins.map((j) => j.firstFrameMs);
    // Where the time goes: each step's median over the joins, in the order they happen.
    const names = [...new Set(steps.flatMap((s) => Object.keys(s)))].filter((n) => steps.every((s) => typeof s[n] === 'number'));
    const timeline = names.map((name) => ({ name, median: median(steps.map((s) => /** @type {number} */ (s[name]))) })).sort((a, b) => a.median - b.median);
    console.log('step medians (ms since navigation start):');
    for (const { name, median: m } of timeline) console.log(`  ${String(m).padStart(7)}  ${name}`);
    const summary = { benchmark: 'join_to_first_frame_ms', joins: times.length, median: median(times), worst: Math.max(...times), best: Math.min(...times), target: 300, all: times,
      wsOpenMedian: median(joins.map((j) => j.wsOpenMs)), pcConnectedMedian: median(joins.map((j) => j.pcConnectedMs)), timeline, binary: BIN };
    console.log(`join to first decoded frame: median ${summary.median} ms, worst ${summary.worst} ms (target <= 300 ms)`);
    console.log(JSON.stringify(summary));
    if (process.env.JOIN_SPEED_SERVER_LOG) {
      const starts = origins.map((o, i) => `join ${i + 1} navigation start ${new Date(o).toISOString()} (${o.toFixed(1)})`).join('\n');
      writeFileSync(process.env.JOIN_SPEED_SERVER_LOG, `${server.output}\n${starts}\n`);
    }
  } finally {
    for (const b of env.browsers) await b.close().catch(() => undefined);
    await stopServer(env.server);
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
