// A student on a poor link (issue 15, point 6): one Chromium student runs in a network namespace
// this script creates, joined to the machine by a veth pair whose egress towards the student is
// limited to 400 kbit/s with `tc qdisc ... tbf` (this kernel has tbf, not netem). The instructor's
// Chromium sends its camera as simulcast (320 and 640 wide). Once both students decode the
// 640 layer, the limit is switched on: the limited student must be switched to the 320 layer
// within 5 s and keep decoding (no gap in decoded frames longer than 1 s once switched, or than
// the open student's own longest gap meanwhile when the machine stalls both), while the student
// on the open link keeps the 640 layer.
//
// Needs root (network namespaces, veth, tc). Skipped, saying so, where they are not allowed.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import {
  CHROMIUM, checklist, chromiumArgs, finish, recordPeerConnections, startServer, stopServer, waitFor,
} from './harness.mjs';

const TAG = randomBytes(3).toString('hex');
const NS = `lectern-poor-${TAG}`;
const HOST_IF = `lp${TAG}a`;
const NS_IF = `lp${TAG}b`;
// A /30 of the link-local-free private range, unlikely to clash with the machine's own.
const HOST_IP = '10.213.77.1';
const NS_IP = '10.213.77.2';
const LIMIT = '400kbit';
/** The layer switch must come within this long of the limit. */
const SWITCH_WITHIN_MS = 5_000;
/**
 * No longer gap in decoded frames once switched. On a busy machine the instructor's encoder (or
 * the whole machine) stalls now and then, and both students see the same gap: the open student's
 * longest gap over the same seconds shows it, and the limited student's counts against its link
 * only beyond that (by more than `SAME_GAP_MS`).
 */
const MAX_FREEZE_MS = 1_000;
const SAME_GAP_MS = 250;
/** Tries when the instructor's browser lets its 640 layer fall below the limit by itself. */
const ATTEMPTS = 3;

/** @param {string[]} args */
function ip(...args) {
  execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** @param {string[]} args */
function tc(...args) {
  execFileSync('tc', args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The namespace and the veth pair; false (after saying why) where that is not allowed. */
function makeNetwork() {
  try {
    ip('netns', 'add', NS);
  } catch (e) {
    console.log(`skipped: network namespaces are not allowed here (ip netns add: ${String(e.stderr ?? e).trim()})`);
    return false;
  }
  ip('link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF);
  ip('link', 'set', NS_IF, 'netns', NS);
  ip('addr', 'add', `${HOST_IP}/30`, 'dev', HOST_IF);
  ip('link', 'set', HOST_IF, 'up');
  ip('netns', 'exec', NS, 'ip', 'addr', 'add', `${NS_IP}/30`, 'dev', NS_IF);
  ip('netns', 'exec', NS, 'ip', 'link', 'set', NS_IF, 'up');
  ip('netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up');
  return true;
}

function removeNetwork() {
  try { ip('link', 'del', HOST_IF); } catch { /* gone with the namespace */ }
  try { ip('netns', 'del', NS); } catch { /* never made */ }
}

/** In the page: the live inbound video streams: width, frames decoded, packets lost. */
async function inbound(page) {
  return page.evaluate(async () => {
    const out = [];
    for (const pc of window.__lecternPeerConnections) {
      if (pc.connectionState === 'closed') continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          out.push({ width: s.frameWidth ?? 0, frames: s.framesDecoded ?? 0, lost: s.packetsLost ?? 0, freezes: s.freezeCount ?? 0 });
        }
      });
    }
    return out;
  });
}

/** In the instructor's page: bytes sent so far on the 640 layer (the simulcast stream `h`). */
async function largeLayerBytes(page) {
  return page.evaluate(async () => {
    let bytes = 0;
    for (const pc of window.__lecternPeerConnections) {
      (await pc.getStats()).forEach((st) => {
        if (st.type === 'outbound-rtp' && st.kind === 'video' && st.rid === 'h') bytes += st.bytesSent ?? 0;
      });
    }
    return bytes;
  });
}

/**
 * A YUV 4:2:0 clip of `frames` frames (looping seamlessly): random 16x16 blocks panning sideways,
 * plus fine detail that only the full size shows: fresh random values every frame in each 2x2
 * cell, summing to zero, so halving the picture (the 320 layer) averages them away. The 640
 * layer then costs its encoder all it may spend (~1 Mbit/s, more than the limited link), while
 * the 320 layer is cheap and keeps the full frame rate: a clip of plain noise makes both layers
 * costly, and the 320 layer's encoder drops to 2 frames a second of 12 kB keyframes, which no
 * link or SFU can show without gaps.
 */
function writeDetailY4m(path, w, h, frames) {
  const header = Buffer.from(`YUV4MPEG2 W${w} H${h} F15:1 Ip A1:1 C420jpeg\n`);
  const bw = w / 16;
  const blocks = randomBytes(bw * Math.ceil(h / 16) * 3);
  const dx = w / frames;
  const parts = [header];
  for (let i = 0; i < frames; i++) {
    const y = Buffer.alloc(w * h);
    const u = Buffer.alloc((w / 2) * (h / 2));
    const v = Buffer.alloc((w / 2) * (h / 2));
    const detail = randomBytes((w / 2) * (h / 2) * 2);
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        const k = Math.floor(r / 16) * bw + Math.floor(((c + i * dx) % w) / 16);
        // 48..207 plus at most 40 either way: never clipped, so each cell's sum stays zero.
        const base = 48 + Math.floor((blocks[k * 3] * 160) / 256);
        const cell = (r >> 1) * (w / 2) + (c >> 1);
        const a = (detail[cell * 2] % 81) - 40;
        const b = (detail[cell * 2 + 1] % 81) - 40;
        y[r * w + c] = base + (r % 2 === 0 ? (c % 2 === 0 ? a : -a) : (c % 2 === 0 ? -b : b));
        if (r % 2 === 0 && c % 2 === 0) {
          u[(r / 2) * (w / 2) + c / 2] = 64 + (blocks[k * 3 + 1] >> 1);
          v[(r / 2) * (w / 2) + c / 2] = 64 + (blocks[k * 3 + 2] >> 1);
        }
      }
    }
    parts.push(Buffer.from('FRAME\n'), y, u, v);
  }
  writeFileSync(path, Buffer.concat(parts));
}

const { results, check } = checklist();

async function main() {
  if (process.getuid?.() !== 0) {
    console.log('skipped: the poor-link test needs root (network namespaces, veth, tc)');
    return;
  }
  if (!makeNetwork()) return;
  const tmp = mkdtempSync(join(tmpdir(), 'lectern-e2e-poor-'));
  /** @type {import('playwright-core').Browser[]} */
  const browsers = [];
  let server = null;
  const s = /** @type {Record<string, any>} */ ({});
  try {
    await check('the server listens on the host end of the veth pair', async () => {
      server = await startServer(join(tmp, 'data'), {
        LECTERN_SERVER_LISTEN: `${HOST_IP}:0`,
        LECTERN_MEDIA_BIND: `${HOST_IP}:0`,
        LECTERN_ROOM_AUTO_START: 'true',
      });
      return server.url;
    });
    await check('Chromium: the instructor (red camera) and the open student on the host, the limited student in the namespace', async () => {
      // Detail only the 640 layer shows, so it needs more than the limited link (a solid colour
      // costs it a few kbit/s and would fit any link) and the 320 layer little (see the clip).
      const clip = join(tmp, 'detail.y4m');
      writeDetailY4m(clip, 640, 360, 32);
      // Playwright talks to the browser over pipes, which `ip netns exec` passes through.
      const inNs = join(tmp, 'chromium-in-ns');
      writeFileSync(inNs, `#!/bin/sh\nexec ip netns exec ${NS} ${CHROMIUM} "$@"\n`);
      chmodSync(inNs, 0o755);
      // The harness's resolver rules let only loopback through: add the server's address.
      // And http://10.…, unlike http://127.0.0.1, is no secure context: the camera needs one.
      const args = chromiumArgs(clip).map((a) => (a.startsWith('--host-resolver-rules=') ? `${a} , EXCLUDE ${HOST_IP}` : a));
      args.push(`--unsafely-treat-insecure-origin-as-secure=${server.url}`);
      browsers.push(await chromium.launch({ executablePath: CHROMIUM, headless: true, args }));
      browsers.push(await chromium.launch({ executablePath: inNs, headless: true, args }));
      return browsers[1].version();
    });
    const open = async (browser, link, ready) => {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await context.addInitScript(recordPeerConnections);
      const page = await context.newPage();
      const consoleLines = [];
      page.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
      page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
      await page.goto(link, { timeout: 60_000 });
      try {
        await waitFor(ready, () => page.locator(ready).isVisible(), { timeout: 30_000 });
      } catch (error) {
        // Once (CI, 2026-12-07) the instructor's page never showed its device picker here, with
        // nothing to tell why. What this test checks is the SFU on a poor link, and run.mjs checks
        // the page's first load: say what the page said, and load it once more.
        console.log(`poor link: ${ready} not shown in 30 s; the page's console:\n${consoleLines.slice(-30).join('\n')}\nloading it again`);
        await page.reload({ timeout: 60_000 });
        await waitFor(ready, () => page.locator(ready).isVisible(), { timeout: 30_000 });
      }
      return page;
    };
    await check('the instructor sends the camera as simulcast; both students decode the 640 layer', async () => {
      s.instructor = await open(browsers[0], server.links.instructor, '#devices');
      await s.instructor.locator('#enter-class').click();
      await waitFor('#camera-toggle', () => s.instructor.locator('#camera-toggle').isVisible());
      await s.instructor.locator('#camera-toggle').click();
      s.open = await open(browsers[0], server.links['student 1'], '#classroom');
      s.limited = await open(browsers[1], server.links['student 2'], '#classroom');
      for (const who of ['open', 'limited']) {
        await waitFor(`${who}: the 640 layer decoding`, async () => (await inbound(s[who])).some((v) => v.width === 640 && v.frames > 30), { timeout: 40_000 });
      }
    });
    await check(`the limited student's link drops to ${LIMIT}: switched to the 320 layer within ${SWITCH_WITHIN_MS / 1000} s, decoding on without a gap over ${MAX_FREEZE_MS / 1000} s; the open student keeps 640`, async () => {
      for (let attempt = 1; ; attempt++) {
        // The 640 layer must need well more than the limit when it comes. An instructor's Chromium
        // short of CPU (or whose own estimate of its uplink dipped) sends it slower for a while, at
        // times hardly above 400 kbit/s, and a link that is hardly full shows congestion only after
        // many seconds (one such run took 26 s); wait for it to send at least 1.5 times the limit.
        let large = { bytes: await largeLayerBytes(s.instructor), at: Date.now() };
        let largeKbps = 0;
        await waitFor('the 640 layer sent at 600 kbit/s or more', async () => {
          await new Promise((r) => setTimeout(r, 1_000));
          const now = { bytes: await largeLayerBytes(s.instructor), at: Date.now() };
          largeKbps = Math.round(((now.bytes - large.bytes) * 8) / (now.at - large.at));
          large = now;
          return largeKbps >= 600;
        }, { timeout: 60_000, interval: 0 });
        tc('qdisc', 'add', 'dev', HOST_IF, 'root', 'tbf', 'rate', LIMIT, 'burst', '16kb', 'latency', '300ms');
        const limitedAt = Date.now();
        if (process.env.POOR_LINK_SERVER_LOG) console.log(`limit on at ${new Date(limitedAt).toISOString()}`);
        // No switch in 30 s: Infinity, judged below (too slow, unless the 640 layer fell).
        const switchedAfter = await waitFor('the limited student on the 320 layer', async () => {
          const v = await inbound(s.limited);
          return v.some((x) => x.width === 320) ? Date.now() - limitedAt : null;
        }, { timeout: 30_000, interval: 100 }).catch(() => Infinity);
        const switchedAt = Date.now();
        const largeAtSwitch = await largeLayerBytes(s.instructor);
        const largeUntilSwitch = Math.round((largeAtSwitch - large.bytes) * 8 / (switchedAt - large.at));
        // Decoding goes on: sample frames decoded every 100 ms for 8 s.
        // The open student's longest gap alongside: what the instructor's encoder and this
        // machine allow at all.
        const gaps = { limited: 0, open: 0 };
        const last = { limited: { frames: 0, at: Date.now() }, open: { frames: 0, at: Date.now() } };
        for (const who of ['limited', 'open']) last[who].frames = (await inbound(s[who])).reduce((n, v) => n + v.frames, 0);
        const until = Date.now() + 8_000;
        while (Date.now() < until) {
          await new Promise((r) => setTimeout(r, 100));
          for (const who of ['limited', 'open']) {
            const frames = (await inbound(s[who])).reduce((n, v) => n + v.frames, 0);
            if (frames > last[who].frames) {
              gaps[who] = Math.max(gaps[who], Date.now() - last[who].at);
              last[who] = { frames, at: Date.now() };
            }
          }
        }
        for (const who of ['limited', 'open']) gaps[who] = Math.max(gaps[who], Date.now() - last[who].at);
        const longestGap = gaps.limited;
        const openWidths = (await inbound(s.open)).map((v) => v.width);
        const limitedWidths = (await inbound(s.limited)).map((v) => v.width);
        const sent = await s.instructor.evaluate(async () => {
          const out = [];
          for (const pc of window.__lecternPeerConnections) {
            (await pc.getStats()).forEach((st) => {
              if (st.type === 'outbound-rtp' && st.kind === 'video') out.push(`${st.rid}:${st.frameWidth ?? 0}${st.qualityLimitationReason && st.qualityLimitationReason !== 'none' ? `(${st.qualityLimitationReason})` : ''}`);
            });
          }
          return out.join(' ');
        });
        const largeAfter = Math.round(((await largeLayerBytes(s.instructor)) - largeAtSwitch) * 8 / (Date.now() - switchedAt));
        const detail = `attempt ${attempt}: 640 layer sent at ${largeKbps} kbit/s before the limit, ${largeUntilSwitch} kbit/s until the switch, ${largeAfter} kbit/s after; switched after ${switchedAfter} ms; longest gap in decoded frames ${longestGap} ms (open student: ${gaps.open} ms); open student ${openWidths}, limited ${limitedWidths}; instructor sends ${sent}`;
        console.log(`poor link: ${detail}`);
        if (largeUntilSwitch < 600 || largeAfter < 400) {
          // The instructor's own browser stopped or slowed its 640 layer (short of CPU): the run
          // says nothing about the SFU. Lift the limit, wait for the limited student to be back on
          // 640 (after the SFU's hold) and try again.
          tc('qdisc', 'del', 'dev', HOST_IF, 'root');
          if (attempt === ATTEMPTS) throw new Error(`the instructor's browser did not keep its 640 layer above the limit in ${ATTEMPTS} attempts: ${detail}`);
          console.log('poor link: the 640 layer fell below the limit by itself; trying again');
          await waitFor('the limited student back on the 640 layer', async () => (await inbound(s.limited)).some((v) => v.width === 640), { timeout: 90_000, interval: 500 });
          continue;
        }
        if (switchedAfter > SWITCH_WITHIN_MS) throw new Error(`too slow: ${detail}`);
        if (longestGap > Math.max(MAX_FREEZE_MS, gaps.open + SAME_GAP_MS)) throw new Error(`froze: ${detail}`);
        if (!openWidths.includes(640)) throw new Error(`the open student lost the 640 layer: ${detail}`);
        if (limitedWidths.includes(640)) throw new Error(`the limited student is back on the 640 layer: ${detail}`);
        return detail;
      }
    });
  } finally {
    for (const b of browsers) await b.close().catch(() => {});
    // Whether the SFU itself dropped datagrams (its send queue full while its socket was): a
    // student on an open link that loses packets is otherwise taken for a congested one.
    if (server) {
      try {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        const sends = text.split('\n').filter((l) => /^lectern_media_datagrams_send_(failed|dropped)_total/.test(l));
        console.log(`poor link: the SFU's sends: ${sends.join(', ')}`);
      } catch (e) {
        console.log(`poor link: no metrics (${e})`);
      }
    }
    await stopServer(server);
    if (results.some((r) => !r.ok) && server) {
      const lines = server.output.split('\n').filter((l) => l.includes('downlink'));
      console.log(`--- the SFU's downlink decisions (last ${Math.min(lines.length, 40)} of ${lines.length}) ---\n${lines.slice(-40).join('\n')}`);
    }
    // For a look at the SFU's decisions: RUST_LOG=warn,lectern_sfu=debug and a path here.
    if (process.env.POOR_LINK_SERVER_LOG && server) writeFileSync(process.env.POOR_LINK_SERVER_LOG, server.output);
    removeNetwork();
    rmSync(tmp, { recursive: true, force: true });
  }
}

await finish(results, main);
