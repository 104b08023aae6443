// A student on a poor link (issue 15, point 6): one Chromium student runs in a network namespace
// this script creates, joined to the machine by a veth pair whose egress towards the student is
// limited to 400 kbit/s with `tc qdisc ... tbf` (this kernel has tbf, not netem). The instructor's
// Chromium sends its camera as simulcast (320 and 640 wide). Once both students decode the
// 640 layer, the limit is switched on: the limited student must be switched to the 320 layer
// within 5 s and keep decoding (no gap in decoded frames longer than 1 s once switched), while the
// student on the open link keeps the 640 layer.
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
/** No longer gap in decoded frames once switched. */
const MAX_FREEZE_MS = 1_000;

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

/** A YUV 4:2:0 clip of `frames` frames of random pixels. */
function writeNoiseY4m(path, w, h, frames) {
  const header = Buffer.from(`YUV4MPEG2 W${w} H${h} F15:1 Ip A1:1 C420jpeg\n`);
  const size = w * h + 2 * (w / 2) * (h / 2);
  const parts = [header];
  for (let i = 0; i < frames; i++) parts.push(Buffer.from('FRAME\n'), randomBytes(size));
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
      // Noise, so the encoder spends what each layer may (a solid colour costs the 640 layer a
      // few kbit/s and would fit any link).
      const clip = join(tmp, 'noise.y4m');
      writeNoiseY4m(clip, 640, 360, 30);
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
      await page.goto(link);
      await waitFor(ready, () => page.locator(ready).isVisible(), { timeout: 30_000 });
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
      tc('qdisc', 'add', 'dev', HOST_IF, 'root', 'tbf', 'rate', LIMIT, 'burst', '16kb', 'latency', '300ms');
      const limitedAt = Date.now();
      const switchedAfter = await waitFor('the limited student on the 320 layer', async () => {
        const v = await inbound(s.limited);
        return v.some((x) => x.width === 320) ? Date.now() - limitedAt : null;
      }, { timeout: 30_000, interval: 100 });
      // Decoding goes on: sample frames decoded every 100 ms for 8 s.
      let longestGap = 0;
      let last = (await inbound(s.limited)).reduce((n, v) => n + v.frames, 0);
      let lastChange = Date.now();
      const until = Date.now() + 8_000;
      while (Date.now() < until) {
        await new Promise((r) => setTimeout(r, 100));
        const frames = (await inbound(s.limited)).reduce((n, v) => n + v.frames, 0);
        if (frames > last) {
          longestGap = Math.max(longestGap, Date.now() - lastChange);
          last = frames;
          lastChange = Date.now();
        }
      }
      longestGap = Math.max(longestGap, Date.now() - lastChange);
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
      const detail = `switched after ${switchedAfter} ms; longest gap in decoded frames ${longestGap} ms; open student ${openWidths}, limited ${limitedWidths}; instructor sends ${sent}`;
      console.log(`poor link: ${detail}`);
      if (switchedAfter > SWITCH_WITHIN_MS) throw new Error(`too slow: ${detail}`);
      if (longestGap > MAX_FREEZE_MS) throw new Error(`froze: ${detail}`);
      if (!openWidths.includes(640)) throw new Error(`the open student lost the 640 layer: ${detail}`);
      if (limitedWidths.includes(640)) throw new Error(`the limited student is back on the 640 layer: ${detail}`);
      return detail;
    });
  } finally {
    for (const b of browsers) await b.close().catch(() => {});
    await stopServer(server);
    removeNetwork();
    rmSync(tmp, { recursive: true, force: true });
  }
}

await finish(results, main);
