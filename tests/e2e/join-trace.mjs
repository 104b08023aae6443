// Join trace (a diagnostic, not a test; scripts/test.sh does not run it): student joins like
// join-speed.mjs, the last one with a Chromium performance trace of the student's browser
// (CDP Tracing on the whole browser: every process). Prints each join's steps (page clock, ms
// since navigation start), then, from the trace, the student renderer main thread's tasks of
// at least JOIN_TRACE_MIN_MS (default 2) with what they did, each process's busy time, and
// the main thread's busy time between consecutive steps. The trace is kept (JOIN_TRACE_OUT,
// default /tmp/join-trace.json) for chrome://tracing or Perfetto.
//
//   (cd tests/e2e && LECTERN_BIN=<lectern> JOINS=3 node join-trace.mjs)
//
// JOIN_TRACE_ARGS: more Chromium switches for the student's browser only (space-separated).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { delay, stopServer, waitFor } from './harness.mjs';
import { instrument, setUpJoins } from './join-page.mjs';

const JOINS = Number(process.env.JOINS ?? 3);
const OUT = process.env.JOIN_TRACE_OUT ?? '/tmp/join-trace.json';
const MIN_MS = Number(process.env.JOIN_TRACE_MIN_MS ?? 2);
const EXTRA_ARGS = (process.env.JOIN_TRACE_ARGS ?? '').split(' ').filter(Boolean);

const CATEGORIES = [
  'devtools.timeline', 'disabled-by-default-devtools.timeline', 'disabled-by-default-devtools.timeline.frame',
  'blink', 'blink.user_timing', 'loading', 'navigation', 'v8', 'v8.execute', 'disabled-by-default-v8.compile',
  'toplevel', 'netlog', 'disabled-by-default-netlog', 'net', 'webrtc', 'fonts', 'benchmark', 'renderer',
  'renderer.scheduler', 'blink.resource', 'content', 'ipc', 'mojom', 'media', 'disabled-by-default-ipc.flow',
];

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'lectern-join-trace-'));
  /** @type {{ server: any, browsers: import('playwright-core').Browser[] }} */
  const env = { server: null, browsers: [] };
  try {
    const { server, studentBrowser } = await setUpJoins(tmp, env, EXTRA_ARGS);
    const cdp = await studentBrowser.newBrowserCDPSession();
    for (let i = 0; i < JOINS; i++) {
      const link = server.links[i % 2 ? 'student 2' : 'student 1'];
      const context = await studentBrowser.newContext({ viewport: { width: 1280, height: 800 } });
      await context.addInitScript(instrument);
      const page = await context.newPage();
      const traced = i === JOINS - 1;
      if (traced) await cdp.send('Tracing.start', { traceConfig: { includedCategories: CATEGORIES, recordMode: 'recordAsMuchAsPossible' }, transferMode: 'ReturnAsStream' });
      await page.goto(link);
      const marks = await waitFor('first frame', () => page.evaluate(() => (window.__joinMarks.firstFrame !== null ? window.__joinMarks : null)), { timeout: 30_000, interval: 20 });
      const nav = await page.evaluate(() => { const n = performance.getEntriesByType('navigation')[0]; return { responseEnd: n.responseEnd, dcl: n.domContentLoadedEventEnd }; });
      console.log(`join ${i + 1}: first frame ${Math.round(marks.firstFrame)} ms, HTML ${Math.round(nav.responseEnd)}, DCL ${Math.round(nav.dcl)}`);
      for (const [k, v] of Object.entries(marks.steps).sort((a, b) => a[1] - b[1])) console.log(`  ${v.toFixed(1).padStart(8)} ${k}`);
      if (traced) {
        await delay(300);
        const done = new Promise((resolve) => cdp.once('Tracing.tracingComplete', resolve));
        await cdp.send('Tracing.end');
        const { stream } = await done;
        let data = '';
        for (;;) {
          const chunk = await cdp.send('IO.read', { handle: stream });
          data += chunk.base64Encoded ? Buffer.from(chunk.data, 'base64').toString() : chunk.data;
          if (chunk.eof) break;
        }
        await cdp.send('IO.close', { handle: stream });
        writeFileSync(OUT, data);
      }
      await context.close();
      await delay(500);
    }
  } finally {
    for (const b of env.browsers) await b.close().catch(() => undefined);
    await stopServer(env.server);
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Reads a trace: the renderer that made the `join:` marks, its main thread's top-level tasks
 * (with their longest inner events), busy time per process, and main-thread busy time between
 * consecutive marks.
 * @param {string} file
 */
function analyze(file) {
  const raw = JSON.parse(readFileSync(file, 'utf8'));
  /** @type {any[]} */
  const ev = Array.isArray(raw) ? raw : raw.traceEvents;
  const threadName = new Map(ev.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => [`${e.pid}:${e.tid}`, e.args.name]));
  const processName = new Map(ev.filter((e) => e.ph === 'M' && e.name === 'process_name').map((e) => [e.pid, e.args.name]));
  const marks = ev.filter((e) => typeof e.name === 'string' && e.name.startsWith('join:') && e.cat?.includes('user_timing'));
  if (!marks.length) return console.log('no join: marks in the trace');
  const pid = marks[0].pid;
  const mainKey = [...threadName].find(([k, v]) => k.startsWith(`${pid}:`) && v === 'CrRendererMain')?.[0];
  const tid = Number(mainKey?.split(':')[1]);
  // The page's clock starts at the last navigationStart before the first mark.
  const t0 = Math.max(...ev.filter((e) => e.pid === pid && e.name === 'navigationStart' && e.ts <= marks[0].ts).map((e) => e.ts));
  const ms = (ts) => ((ts - t0) / 1000).toFixed(1);
  const steps = [...new Map(marks.sort((a, b) => a.ts - b.ts).map((m) => [m.name, m.ts])).entries()];
  const tEnd = steps[steps.length - 1][1];
  const complete = (e) => e.ph === 'X' && typeof e.dur === 'number';
  const main = ev.filter((e) => e.pid === pid && e.tid === tid && complete(e) && e.ts + e.dur >= t0 && e.ts <= tEnd).sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  /** Top-level events of a thread's sorted events. */
  const topLevel = (list) => { const out = []; let end = -Infinity; for (const e of list) if (e.ts >= end) { out.push(e); end = e.ts + e.dur; } return out; };
  const top = topLevel(main);
  console.log(`trace ${file}: student renderer pid ${pid}; main thread tasks >= ${MIN_MS} ms (start +duration: longest inner events)`);
  const stepAt = steps.map(([name, ts]) => ({ name, ts, printed: false }));
  for (const t of top) {
    for (const s of stepAt) if (!s.printed && s.ts <= t.ts) { s.printed = true; console.log(`  ${ms(s.ts).padStart(7)}  ---- ${s.name.slice(5)}`); }
    if (t.dur < MIN_MS * 1000) continue;
    const inner = main.filter((e) => e !== t && e.ts >= t.ts && e.ts + e.dur <= t.ts + t.dur && e.dur >= 1000 && !/RunTask|ThreadController|mojo|OnTaskCompleted/.test(e.name));
    const seen = new Set();
    const desc = inner.sort((a, b) => b.dur - a.dur).filter((e) => !seen.has(e.name) && seen.add(e.name)).slice(0, 6)
      .map((e) => { const d = e.args?.data ?? {}; const what = d.url ?? d.functionName ?? e.args?.fileName ?? ''; return `${e.name}${what ? `(${String(what).split('/').pop().slice(0, 40)})` : ''} ${(e.dur / 1000).toFixed(1)}`; });
    console.log(`  ${ms(t.ts).padStart(7)} +${(t.dur / 1000).toFixed(1).padStart(5)}  ${desc.join(' | ')}`);
  }
  console.log('main-thread busy between steps (ms busy / ms elapsed):');
  for (let i = 0; i + 1 < steps.length; i++) {
    const [a, b] = [steps[i][1], steps[i + 1][1]];
    const busy = top.reduce((sum, t) => sum + Math.max(0, Math.min(t.ts + t.dur, b) - Math.max(t.ts, a)), 0);
    console.log(`  ${steps[i][0].slice(5)} -> ${steps[i + 1][0].slice(5)}: ${(busy / 1000).toFixed(1)} / ${((b - a) / 1000).toFixed(1)}`);
  }
  console.log(`busy time per process from navigation start to the last step (top-level events of each thread, ms):`);
  const byThread = new Map();
  for (const e of ev) if (complete(e) && e.ts >= t0 && e.ts <= tEnd) { const k = `${e.pid}:${e.tid}`; if (!byThread.has(k)) byThread.set(k, []); byThread.get(k).push(e); }
  const byProcess = new Map();
  for (const [k, list] of byThread) {
    const busy = topLevel(list.sort((a, b) => a.ts - b.ts || b.dur - a.dur)).reduce((sum, e) => sum + e.dur, 0);
    const name = `${processName.get(Number(k.split(':')[0])) ?? '?'}${Number(k.split(':')[0]) === pid ? ' (student page)' : ''}`;
    byProcess.set(name, (byProcess.get(name) ?? 0) + busy);
  }
  for (const [name, busy] of [...byProcess].sort((a, b) => b[1] - a[1])) if (busy >= 1000) console.log(`  ${(busy / 1000).toFixed(1).padStart(7)}  ${name}`);
}

if (process.argv[2]) analyze(process.argv[2]);
else {
  await main();
  analyze(OUT);
}
