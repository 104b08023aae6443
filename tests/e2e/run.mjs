// Lectern end to end in a real browser: the server binary, Debian's Chromium driven by
// playwright-core, fake cameras playing solid-colour clips. See README.md.
//
// Exit code 0 when every check passed; the last line printed is `N passed, N failed`.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import {
  BLUE, CHROMIUM, RED, axeCheck, checklist, chromiumArgs, close, delay, participantId, recordPeerConnections, runCli, startClientProxy,
  startServer, stopServer, videoState, waitFor, writeToneWav, writeY4m,
  finish,
} from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const SCREENSHOTS = join(here, 'screenshots');
/** Serve web-client/* from disk instead of the copy embedded in the binary (edit without rebuilding). */
const CLIENT_FROM_DISK = process.env.LECTERN_E2E_CLIENT_FROM_DISK === '1';
const CLIENT_DIR = resolve(here, '../../web-client');
/** The page's files: every `.html`, `.css` and `.js` in web-client/ (the server embeds each one). */
const CLIENT_FILES = readdirSync(CLIENT_DIR).filter((f) => /\.(html|css|js)$/.test(f)).sort();


// ---- The server -----------------------------------------------------------------------------

/**
 * For the extra servers of the later checks: with LECTERN_E2E_CLIENT_FROM_DISK=1, their pages
 * go through a proxy of their own too (`server.proxy`, closed by `closeProxy`).
 */
async function clientFromDisk(server) {
  if (!CLIENT_FROM_DISK) return server;
  server.proxy = await startClientProxy(server.url);
  for (const key of Object.keys(server.links)) server.links[key] = server.links[key].replace(server.url, server.proxy.url);
  server.url = server.proxy.url;
  return server;
}

function closeProxy(server) {
  server?.proxy?.server.closeAllConnections();
  server?.proxy?.server.close();
}

// ---- The browser ----------------------------------------------------------------------------

/**
 * An init script: keeps every WebSocket a page opens, so a test can drop the connection as a
 * network failure would. While `window.__lecternHoldSockets` is true, new sockets go to a path
 * the server refuses, so the client stays disconnected (retrying with its backoff) until the
 * test lets it through.
 */
function recordSockets() {
  const OriginalSocket = window.WebSocket;
  const sockets = [];
  Object.defineProperty(window, '__lecternSockets', { value: sockets });
  window.WebSocket = class extends OriginalSocket {
    constructor(url, protocols) {
      super(window.__lecternHoldSockets ? String(url).replace('/ws?', '/ws-held-by-the-test?') : url, protocols);
      sockets.push(this);
    }
  };
}

const pages = /** @type {{name: string, page: import('playwright-core').Page, log: string[]}[]} */ ([]);

/** Makes every peer connection of the page relay-only, as on a network where only TURN gets through. */
function forceRelay() {
  const Original = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Original {
    constructor(config = {}, ...rest) {
      super({ ...config, iceTransportPolicy: 'relay' }, ...rest);
    }

    setConfiguration(config = {}) {
      return super.setConfiguration({ ...config, iceTransportPolicy: 'relay' });
    }
  };
}

/** Opens a join link; waits for `ready` (the classroom, or `#lobby` before the class starts). */
async function openPage(browser, name, link, ready = '#classroom', { relayOnly = false } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.addInitScript(recordPeerConnections);
  await context.addInitScript(recordSockets);
  if (relayOnly) await context.addInitScript(forceRelay);
  const page = await context.newPage();
  const log = [];
  page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
  page.on('requestfailed', (r) => log.push(`[requestfailed] ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => r.status() >= 400 && log.push(`[http ${r.status()}] ${r.url()}`));
  pages.push({ name, page, log });
  await page.goto(link);
  await waitFor(`${name}: ${ready}`, () => page.locator(ready).isVisible(), { timeout: 20_000 });
  return page;
}

/** In the page: video stats of the live peer connections, for one track id or all video. */
async function inboundVideo(page, trackId = null) {
  return page.evaluate(async (trackId) => {
    const out = [];
    for (const pc of window.__lecternPeerConnections) {
      if (pc.connectionState === 'closed') continue;
      const report = await pc.getStats();
      report.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video' && (!trackId || s.trackIdentifier === trackId)) {
          out.push({ mid: s.mid, trackId: s.trackIdentifier, framesDecoded: s.framesDecoded ?? 0, packets: s.packetsReceived ?? 0, width: s.frameWidth ?? 0 });
        }
      });
    }
    return out;
  }, trackId);
}

/** In the page: the chat log as drawn, oldest first: seq, sender and text of each `li[data-seq]`. */
async function chatLog(page) {
  return page.evaluate(() => [...document.querySelectorAll('#chat-log li[data-seq]')].map((li) => ({
    seq: /** @type {HTMLElement} */ (li).dataset.seq ?? '',
    from: li.querySelector('.chat-head .name')?.textContent ?? '',
    text: li.querySelector('.chat-text')?.textContent ?? '',
  })));
}

/** Types a message in the chat box and sends it; resolves once the server accepted it (box emptied). */
async function sendChat(page, who, text) {
  await page.locator('#chat-input').fill(text);
  await page.locator('#chat-send').click();
  await waitFor(`${who}: the chat box to empty (message accepted)`, async () => (await page.locator('#chat-input').inputValue()) === '');
}

/** Waits until `text` is in the page's chat log, then requires it there exactly once and every seq unique. */
async function chatShowsOnce(page, who, text) {
  const log = await waitFor(`${who}: the chat log to show ${JSON.stringify(text)}`, () => chatLog(page).then((l) => (l.some((m) => m.text === text) ? l : null)));
  const copies = log.filter((m) => m.text === text).length;
  if (copies !== 1) throw new Error(`${who}: ${JSON.stringify(text)} shown ${copies} times`);
  const seqs = log.map((m) => m.seq);
  if (new Set(seqs).size !== seqs.length) throw new Error(`${who}: duplicate chat seqs ${seqs}`);
  return log;
}

/** In the page: the hand queue's participant ids, in the order shown. */
async function handQueue(page) {
  return page.evaluate(() => [...document.querySelectorAll('#hand-queue > li')].map((li) => /** @type {HTMLElement} */ (li).dataset.participant ?? ''));
}

/** framesDecoded of the stage track goes up by `frames` (after the current value). */
async function decodesStage(page, who, frames = 15, timeout = 25_000) {
  // The stage's track is read again at every poll: after a reconnect the stage may still show
  // the last frame of the closed peer connection's track (a picture, no stats) for a while.
  const { stage, first } = await waitFor(`${who}: a decoded picture on #stage-video whose track has inbound-rtp stats`, async () => {
    const stage = await videoState(page);
    if (!(stage.width > 0 && stage.trackId)) return { ok: false, stage };
    const [first] = await inboundVideo(page, stage.trackId);
    return first ? { stage, first } : { ok: false, stage, inbound: await inboundVideo(page) };
  }, { timeout });
  const later = await waitFor(`${who}: framesDecoded to increase by ${frames} from ${first.framesDecoded}`, async () => {
    const [now] = await inboundVideo(page, stage.trackId);
    return now && now.framesDecoded >= first.framesDecoded + frames ? now : null;
  }, { timeout });
  return { stage, first, later };
}

// ---- The checks -----------------------------------------------------------------------------

const { results, check } = checklist();

/** Waits until `page`'s live region (`#announcer`) says something matching `pattern`; returns the text. */
async function announced(page, who, pattern) {
  return waitFor(`${who}'s live region to announce ${pattern}`, () => page.evaluate((source) => {
    const text = document.getElementById('announcer')?.textContent ?? '';
    return new RegExp(source, 'i').test(text) ? text : { ok: false, text };
  }, pattern.source));
}


/**
 * In the page: the main landmarks not hidden (`<main>` or role="main") and whether the part of
 * the page that should be the main content (`selector`) is inside the one main landmark.
 */
async function mainLandmark(page, who, selector) {
  const found = await page.evaluate((selector) => {
    const shown = (e) => !e.closest('[hidden]') && e.getClientRects().length > 0;
    const mains = [...document.querySelectorAll('main, [role="main"]')].filter(shown);
    const part = document.querySelector(selector);
    return { mains: mains.map((m) => m.id || m.tagName), inside: !!part && mains.length === 1 && mains[0].contains(part) && shown(part) };
  }, selector);
  if (found.mains.length !== 1 || !found.inside) throw new Error(`${who}: main landmarks shown ${JSON.stringify(found.mains)}, ${selector} inside the one main: ${found.inside}`);
  return `one main (#${found.mains[0]}) holding ${selector}`;
}

/** In the page: the id (or tag) of the focused element. */
async function focused(page) {
  return page.evaluate(() => document.activeElement?.id || document.activeElement?.tagName || '');
}

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'lectern-e2e-'));
  const redClip = join(tmp, 'red.y4m');
  const blueClip = join(tmp, 'blue.y4m');
  // 640x360: wide enough for the client to send the camera as simulcast (two layers).
  writeY4m(redClip, RED, [640, 360]);
  writeY4m(blueClip, BLUE);
  const tone = join(tmp, 'tone.wav');
  writeToneWav(tone);
  mkdirSync(SCREENSHOTS, { recursive: true });
  let server = null;
  const browsers = [];
  const s = {};
  try {
    await check('server starts and prints its URL and demo links', async () => {
      server = await startServer(join(tmp, 'data'));
      return server.url;
    });
    if (CLIENT_FROM_DISK) {
      await check('client proxy serves web-client/ from disk', async () => {
        s.proxy = await startClientProxy(server.url);
        for (const key of Object.keys(server.links)) server.links[key] = server.links[key].replace(server.url, s.proxy.url);
        server.url = s.proxy.url;
        return server.url;
      });
    }
    await check(`server serves the client (/ and web-client/'s ${CLIENT_FILES.length} files)`, async () => {
      const missing = [];
      for (const path of ['/', ...CLIENT_FILES.map((f) => `/${f}`)]) {
        const response = await fetch(server.url + path);
        if (response.status !== 200) missing.push(`${path} -> ${response.status}`);
      }
      if (missing.length && !CLIENT_FROM_DISK) throw new Error(`not served: ${missing.join(', ')}`);
      return missing.length ? `served from disk instead: ${missing.join(', ')}` : '';
    });
    await check('Chromium starts (instructor browser: red camera and a tone on the microphone, students browser: blue camera)', async () => {
      for (const [clip, wav] of [[redClip, tone], [blueClip, null]]) {
        browsers.push(await chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs(clip, wav) }));
      }
      return browsers[0].version();
    });
    await check('instructor page opens on the camera and microphone panel: cameras and microphones listed, the preview plays (red)', async () => {
      s.instructor = await openPage(browsers[0], 'instructor', server.links.instructor, '#devices');
      const panel = await waitFor('both device lists filled and a picture in #preview-video', () => s.instructor.evaluate(() => {
        const named = (id) => [...document.querySelectorAll(`#${id} option`)].filter((o) => /** @type {HTMLOptionElement} */ (o).value).map((o) => o.textContent);
        const video = /** @type {HTMLVideoElement} */ (document.getElementById('preview-video'));
        const r = { cameras: named('camera-select'), mics: named('mic-select'), width: video.videoWidth, height: video.videoHeight, rgb: /** @type {number[] | null} */ (null) };
        // A size comes with the metadata, before a frame can be drawn (drawn then, it reads black).
        if (video.videoWidth > 0 && video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA) {
          const canvas = document.createElement('canvas');
          [canvas.width, canvas.height] = [video.videoWidth, video.videoHeight];
          const g = canvas.getContext('2d', { willReadFrequently: true });
          g.drawImage(video, 0, 0);
          const d = g.getImageData(canvas.width >> 1, canvas.height >> 1, 1, 1).data;
          r.rgb = [d[0], d[1], d[2]];
        }
        return r.cameras.length > 0 && r.mics.length > 0 && r.rgb ? r : { ok: false, ...r };
      }));
      if (await s.instructor.locator('#classroom').isVisible()) throw new Error('the classroom is shown before "Enter class"');
      if (!close(panel.rgb, RED)) throw new Error(`preview colour ${panel.rgb}, want about ${RED}`);
      return `cameras ${JSON.stringify(panel.cameras)}, microphones ${JSON.stringify(panel.mics)}, preview ${panel.width}x${panel.height} rgb(${panel.rgb})`;
    });
    await check('the camera and microphone panel is in the page\'s one main landmark; axe-core finds no serious or critical violation there', async () => {
      const landmark = await mainLandmark(s.instructor, 'instructor', '#devices');
      return `${landmark}; ${await axeCheck(s.instructor, 'the camera and microphone panel')}`;
    });
    await check('instructor presses "Enter class": joins the class (not started yet: "Start class" shown), the preview stops', async () => {
      await s.instructor.locator('#enter-class').click();
      await waitFor('the classroom', () => s.instructor.locator('#classroom').isVisible());
      await waitFor('the Start class button', () => s.instructor.locator('#start-class').isVisible());
      await waitFor('the panel to close and its preview to stop', () => s.instructor.evaluate(() =>
        document.getElementById('devices')?.hidden && !(/** @type {HTMLVideoElement} */ (document.getElementById('preview-video')).srcObject)));
      // Drawn in the same pass as "Start class": the chat is empty, so there is nothing older to
      // show, and staff call on others instead of raising a hand.
      if (await s.instructor.locator('#chat-more').isVisible()) throw new Error('"Show earlier messages" is shown with an empty chat');
      if (await s.instructor.locator('#hand-toggle').isVisible()) throw new Error('the instructor has a "Raise hand" button');
      return await s.instructor.locator('#class-state').textContent();
    });
    await check('two students join before the class starts: both wait in the lobby', async () => {
      s.student1 = await openPage(browsers[1], 'student 1', server.links['student 1'], '#lobby');
      s.student2 = await openPage(browsers[1], 'student 2', server.links['student 2'], '#lobby');
      for (const who of ['student1', 'student2']) {
        if (await s[who].locator('#classroom').isVisible()) throw new Error(`${who}: the classroom is shown in the lobby`);
        if (await s[who].locator('#devices').isVisible()) throw new Error(`${who}: students skip the device panel, but it is shown`);
      }
      s.instructorId = await participantId(s.instructor, 'Instructor Grace');
      s.student1Id = await participantId(s.instructor, 'Student Ada');
      s.student2Id = await participantId(s.instructor, 'Student Alan');
      await waitFor("the instructor's roster to mark both students as in the lobby", () => s.instructor.evaluate((ids) =>
        ids.every((id) => document.querySelector(`#roster > li[data-participant="${id}"] .badge-lobby`)), [s.student1Id, s.student2Id]));
      return `instructor ${s.instructorId}, students ${s.student1Id}, ${s.student2Id}`;
    });
    await check('the lobby is in the page\'s one main landmark; axe-core finds no serious or critical violation there', async () => {
      const landmark = await mainLandmark(s.student1, 'student 1', '#lobby');
      return `${landmark}; ${await axeCheck(s.student1, 'the lobby')}`;
    });
    await check('instructor presses "Start class": both students leave the lobby for the classroom', async () => {
      await s.instructor.locator('#start-class').click();
      for (const who of ['student1', 'student2']) {
        await waitFor(`${who}: the classroom`, async () => (await s[who].locator('#classroom').isVisible()) && !(await s[who].locator('#lobby').isVisible()));
      }
      await waitFor('the instructor to see "End class" instead of "Start class"', async () =>
        (await s.instructor.locator('#end-class').isVisible()) && !(await s.instructor.locator('#start-class').isVisible()));
      await waitFor("the lobby badges to leave the instructor's roster", () => s.instructor.evaluate(() => !document.querySelector('#roster .badge-lobby')));
      return await s.instructor.locator('#class-state').textContent();
    });
    await check('the instructor sees a class timer (role="timer", not announced) counting up from the start; students do not', async () => {
      const timer = s.instructor.locator('#class-timer');
      // The demo's room is a scheduled session: the time left to its end follows.
      const pattern = /^Live for (\d+):(\d\d)(?: · (?:\d+:)?\d+:\d\d left)?$/;
      const first = await waitFor('the timer', async () => {
        const text = (await timer.isVisible()) ? (await timer.textContent()) ?? '' : '';
        return pattern.test(text) ? text : { ok: false, text };
      });
      const [, m, sec] = first.match(pattern) ?? [];
      if (Number(m) * 60 + Number(sec) > 120) throw new Error(`"${first}" just after the start`);
      if (!first.endsWith(' left')) throw new Error(`"${first}": no time left to the demo session's scheduled end`);
      const attrs = await timer.evaluate((e) => ({ role: e.getAttribute('role'), live: e.getAttribute('aria-live') }));
      if (attrs.role !== 'timer' || (attrs.live && attrs.live !== 'off')) throw new Error(`timer attributes ${JSON.stringify(attrs)}`);
      const next = await waitFor('the timer to advance', async () => {
        const text = (await timer.textContent()) ?? '';
        return text !== first && pattern.test(text) ? text : null;
      });
      for (const who of ['student1', 'student2']) if (await s[who].locator('#class-timer').isVisible()) throw new Error(`${who} sees the class timer`);
      return `"${first}" -> "${next}"`;
    });
    await check('instructor turns the camera on: local preview on the stage', async () => {
      const button = s.instructor.locator('#camera-toggle');
      await waitFor('#camera-toggle to be shown', () => button.isVisible());
      await button.click();
      // The first frame drawn may still be black on a busy machine: wait for the red picture.
      const preview = await waitFor('a red local preview in #stage-video', () => videoState(s.instructor).then((v) => (v.width > 0 && close(v.rgb, RED) ? v : { ok: false, width: v.width, rgb: v.rgb })));
      return `${preview.width}x${preview.height} rgb(${preview.rgb})`;
    });
    await check('instructor peer connection connects and sends video', async () => {
      const sent = await waitFor('outbound video packets', () => s.instructor.evaluate(async () => {
        for (const pc of window.__lecternPeerConnections) {
          const report = await pc.getStats();
          for (const st of report.values()) {
            if (st.type === 'outbound-rtp' && st.kind === 'video' && st.packetsSent > 20) return { state: pc.connectionState, packets: st.packetsSent, frames: st.framesEncoded };
          }
        }
        return { ok: false, states: window.__lecternPeerConnections.map((pc) => [pc.connectionState, pc.signalingState]) };
      }), { timeout: 25_000 });
      return JSON.stringify(sent);
    });
    for (const who of ['student1', 'student2']) {
      await check(`${who} decodes the instructor's camera on the stage (framesDecoded rising, red centre pixel)`, async () => {
        const { stage, first, later } = await decodesStage(s[who], who);
        if (stage.participant !== s.instructorId) throw new Error(`stage shows ${stage.participant}, want ${s.instructorId}`);
        const colour = await waitFor('the red picture', () => videoState(s[who]).then((v) => (close(v.rgb, RED) ? v : { ok: false, rgb: v.rgb })));
        return `${stage.width}x${stage.height}, framesDecoded ${first.framesDecoded} -> ${later.framesDecoded}, rgb(${colour.rgb})`;
      });
    }
    await check('simulcast: the instructor sends the camera twice (320 and 640 wide); student 2 shown at phone width is sent the small layer, at full width the large one', async () => {
      const layers = await waitFor('two outbound camera layers', () => s.instructor.evaluate(async () => {
        const widths = [];
        for (const pc of window.__lecternPeerConnections) {
          if (pc.connectionState === 'closed') continue;
          (await pc.getStats()).forEach((st) => {
            if (st.type === 'outbound-rtp' && st.kind === 'video' && st.rid && (st.frameWidth ?? 0) > 0) widths.push(`${st.rid}:${st.frameWidth}`);
          });
        }
        return widths.length >= 2 ? widths.sort() : { ok: false, widths };
      }), { timeout: 30_000 });
      const page = s.student2;
      const width = async () => (await inboundVideo(page)).map((v) => v.width);
      const big = await waitFor('student 2 receiving the 640 layer', async () => ((await width()).includes(640) ? width() : null), { timeout: 30_000 });
      await page.setViewportSize({ width: 320, height: 568 });
      const small = await waitFor('student 2 (phone width) receiving the 320 layer', async () => ((await width()).includes(320) ? width() : null), { timeout: 20_000 });
      await page.setViewportSize({ width: 1280, height: 800 });
      const back = await waitFor('student 2 (full width again) receiving the 640 layer', async () => ((await width()).includes(640) ? width() : null), { timeout: 20_000 });
      await decodesStage(page, 'student2');
      return `instructor sends ${layers.join(', ')}; student 2 receives ${big} -> phone width ${small} -> full width ${back}, still decoding`;
    });
    await check('instructor switches the camera while it is on: replaceTrack (same m-lines, new sending track, old one stopped), students keep decoding (red)', async () => {
      const page = s.instructor;
      // The sending camera track now; kept in the page to see it stopped afterwards.
      const sending = () => page.evaluate(() => {
        const pc = window.__lecternPeerConnections.filter((p) => p.connectionState !== 'closed').at(-1);
        const sender = pc?.getSenders().find((x) => x.track?.kind === 'video');
        return { trackId: sender?.track?.id ?? null, state: sender?.track?.readyState ?? null, transceivers: pc?.getTransceivers().length ?? 0 };
      });
      const before = await sending();
      if (!before.trackId) throw new Error('no sending video track');
      await page.evaluate(() => {
        const pc = window.__lecternPeerConnections.filter((p) => p.connectionState !== 'closed').at(-1);
        window.__lecternOldCamera = pc?.getSenders().find((x) => x.track?.kind === 'video')?.track;
      });
      const stages = {};
      for (const who of ['student1', 'student2']) stages[who] = (await videoState(s[who])).trackId;
      await page.locator('#devices-toggle').click();
      await waitFor('the device panel with a camera listed', () => page.evaluate(() => !document.getElementById('devices')?.hidden &&
        [...document.querySelectorAll('#camera-select option')].some((o) => /** @type {HTMLOptionElement} */ (o).value)));
      const cameras = await page.locator('#camera-select option').evaluateAll((os) => os.map((o) => /** @type {HTMLOptionElement} */ (o).value).filter(Boolean));
      const current = await page.locator('#camera-select').inputValue();
      const target = cameras.find((id) => id !== current) ?? current; // one fake camera: the same one again
      await page.locator('#camera-select').selectOption(target);
      const after = await waitFor('a new live track on the video sender', () => sending().then((x) =>
        x.trackId && x.trackId !== before.trackId && x.state === 'live' ? x : { ok: false, ...x }));
      if (after.transceivers !== before.transceivers) throw new Error(`transceivers ${before.transceivers} -> ${after.transceivers}: renegotiated`);
      const oldState = await page.evaluate(() => window.__lecternOldCamera?.readyState);
      if (oldState !== 'ended') throw new Error(`the old camera track is ${oldState}, want ended`);
      await waitFor("the instructor's own stage to show the new track", () => videoState(page).then((v) => (v.trackId === after.trackId && v.width > 0 ? v : { ok: false, ...v })));
      const out = [];
      for (const who of ['student1', 'student2']) {
        const { stage, first, later } = await decodesStage(s[who], who, 15);
        if (stage.trackId !== stages[who]) throw new Error(`${who}: stage track ${stages[who]} -> ${stage.trackId}, want the same receiver track`);
        const colour = await waitFor(`${who}: the red picture`, () => videoState(s[who]).then((v) => (close(v.rgb, RED) ? v : { ok: false, rgb: v.rgb })));
        out.push(`${who} framesDecoded ${first.framesDecoded} -> ${later.framesDecoded} rgb(${colour.rgb})`);
      }
      await page.locator('#enter-class').click(); // "Done"
      await waitFor('the device panel to close', () => page.evaluate(() => document.getElementById('devices')?.hidden));
      return `${cameras.length} camera(s), ${target === current ? 'same device again' : 'another device'}; sender track replaced, ${after.transceivers} transceivers; ${out.join(', ')}`;
    });
    await check("student 1's chat message appears exactly once on every page", async () => {
      const text = 'Hello from Ada: is the homework due Friday?';
      await sendChat(s.student1, 'student 1', text);
      const out = [];
      for (const who of ['instructor', 'student2', 'student1']) {
        const log = await chatShowsOnce(s[who], who, text);
        const m = log.find((x) => x.text === text);
        if (m.from !== 'Student Ada') throw new Error(`${who}: sender shown as ${JSON.stringify(m.from)}`);
        out.push(`${who} seq ${m.seq}`);
      }
      // The live region announces it to the others.
      await waitFor("student 2's live region to announce the message", () => s.student2.evaluate((text) => document.getElementById('announcer')?.textContent?.includes(text), text));
      return out.join(', ');
    });
    await check('a chat message with HTML (<img onerror>) is shown as text on every page, never run', async () => {
      const text = '<img src=x onerror="window.__xss=1">';
      await sendChat(s.student2, 'student 2', text);
      for (const who of ['instructor', 'student1', 'student2']) {
        await chatShowsOnce(s[who], who, text);
        const found = await s[who].evaluate(() => ({
          images: document.querySelectorAll('#chat-log img').length,
          xss: typeof (/** @type {any} */ (window).__xss),
          shown: [...document.querySelectorAll('#chat-log .chat-text')].some((p) => p.textContent === '<img src=x onerror="window.__xss=1">' && p.children.length === 0),
        }));
        if (found.images !== 0 || found.xss !== 'undefined' || !found.shown) throw new Error(`${who}: ${JSON.stringify(found)}`);
      }
      return 'literal text in #chat-log, no <img>, window.__xss undefined';
    });
    await check('two students raise hands: the queue shows them in order; "Call on next" calls on the first', async () => {
      await s.student1.locator('#hand-toggle').click();
      await waitFor("student 1's hand in the instructor's queue", () => handQueue(s.instructor).then((q) => q.length === 1 && q[0] === s.student1Id));
      await s.student2.locator('#hand-toggle').click();
      const order = [s.student1Id, s.student2Id];
      for (const who of ['instructor', 'student1', 'student2']) {
        await waitFor(`${who}: #hand-queue to show student 1 then student 2`, () => handQueue(s[who]).then((q) => (JSON.stringify(q) === JSON.stringify(order) ? q : { ok: false, q })));
      }
      await waitFor('student 1 hand button to read "Lower hand"', () => s.student1.locator('#hand-toggle[aria-pressed="true"]').isVisible());
      await s.instructor.locator('#call-next').click();
      for (const who of ['instructor', 'student1', 'student2']) {
        await waitFor(`${who}: #hand-queue to keep only student 2`, () => handQueue(s[who]).then((q) => (q.length === 1 && q[0] === s.student2Id ? q : { ok: false, q })));
      }
      await waitFor("the instructor's roster to mark student 1 as allowed to speak", () => s.instructor.evaluate((id) =>
        !!document.querySelector(`#roster > li[data-participant="${id}"] .badge-speak`), s.student1Id));
      await waitFor('student 1 to see "You may speak now"', () => s.student1.locator('#speak-note').isVisible());
      const announced = await waitFor("student 1's live region to announce being called on", () => s.student1.evaluate(() => {
        const text = document.getElementById('announcer')?.textContent ?? '';
        return /called on/i.test(text) ? text : null;
      }));
      return `order ${order.join(', ')}; called on ${s.student1Id}; announced "${announced}"`;
    });
    await check('screenshots of the classroom (instructor.png, student.png): video on the stage, chat shown', async () => {
      for (const [who, file] of [['instructor', 'instructor.png'], ['student2', 'student.png']]) {
        await waitFor(`${who}: a picture on the stage`, () => videoState(s[who]).then((v) => v.width > 0));
        await s[who].evaluate(() => window.scrollTo(0, 0));
        // The whole page (stage, controls, hands, roster, chat), 1280 wide.
        await s[who].screenshot({ path: join(SCREENSHOTS, file), fullPage: true });
      }
      return SCREENSHOTS;
    });
    for (const [who, label] of [['instructor', 'the classroom as instructor'], ['student2', 'the classroom as student']]) {
      await check(`${label}: one main landmark; axe-core finds no serious or critical violation (video on the stage, hands, roster, chat)`, async () => {
        const landmark = await mainLandmark(s[who], who, '#classroom');
        return `${landmark}; ${await axeCheck(s[who], label)}`;
      });
    }
    await check('a reaction shows over the stage (inside the stage view, on every page) for a few seconds, not under the controls', async () => {
      await s.student2.locator('#reaction-buttons button[data-reaction="clap"]').click();
      const out = [];
      for (const who of ['instructor', 'student1', 'student2']) {
        const where = await waitFor(`${who}: the reaction over the stage`, () => s[who].evaluate(() => {
          const item = document.querySelector('#reactions-shown .reaction');
          const view = document.getElementById('stage-view');
          if (!item || !view) return null;
          const [r, v] = [item.getBoundingClientRect(), view.getBoundingClientRect()];
          const over = view.contains(item) && r.width > 0 && r.left >= v.left && r.right <= v.right && r.top >= v.top && r.bottom <= v.bottom;
          return { over, underControls: !!item.closest('#controls'), text: item.textContent };
        }));
        if (!where.over || where.underControls) throw new Error(`${who}: reaction ${JSON.stringify(where)}`);
        out.push(`${who}: "${where.text}"`);
      }
      await waitFor('the reaction to go again', () => s.instructor.evaluate(() => !document.querySelector('#reactions-shown .reaction')), { timeout: 15_000 });
      return `${out.join(', ')}; gone again`;
    });
    await check('instructor turns the microphone on: students play it in an <audio> (packetsReceived rising)', async () => {
      await s.instructor.locator('#mic-toggle').click();
      const out = [];
      for (const who of ['student1', 'student2']) {
        const audio = await waitFor(`${who}: an <audio> for the instructor`, () => s[who].evaluate((id) => {
          const element = /** @type {HTMLAudioElement | null} */ (document.querySelector(`#stage-audio audio[data-participant="${id}"]`));
          const track = /** @type {MediaStream | null} */ (element?.srcObject ?? null)?.getAudioTracks()[0];
          return element && track ? { trackId: track.id, paused: element.paused } : null;
        }, s.instructorId));
        const packets = () => s[who].evaluate(async (trackId) => {
          for (const pc of window.__lecternPeerConnections) {
            if (pc.connectionState === 'closed') continue;
            for (const st of (await pc.getStats()).values()) {
              if (st.type === 'inbound-rtp' && st.kind === 'audio' && st.trackIdentifier === trackId) return st.packetsReceived ?? 0;
            }
          }
          return -1;
        }, audio.trackId);
        const first = await waitFor(`${who}: inbound audio stats`, async () => { const n = await packets(); return n >= 0 ? { n } : null; });
        const later = await waitFor(`${who}: audio packetsReceived to rise by 25 from ${first.n}`, async () => { const n = await packets(); return n >= first.n + 25 ? { n } : null; });
        out.push(`${who} ${first.n} -> ${later.n}${audio.paused ? ' (element paused: autoplay refused)' : ''}`);
      }
      return out.join(', ');
    });
    await check('the instructor speaks (a tone): every page highlights them as the active speaker in the roster and on the stage', async () => {
      const out = [];
      for (const who of ['instructor', 'student1', 'student2']) {
        const shown = await waitFor(`${who}: the instructor marked as speaking`, () => s[who].evaluate((id) => {
          const li = document.querySelector(`#roster > li[data-participant="${id}"]`);
          const badge = li?.querySelector('.badge-speaking')?.textContent ?? '';
          const stage = document.getElementById('stage')?.classList.contains('speaking') ?? false;
          return li?.classList.contains('speaking') && badge ? { badge, stage } : null;
        }, s.instructorId));
        out.push(`${who}: "${shown.badge}"${shown.stage ? ' + stage outline' : ''}`);
      }
      return out.join(', ');
    });
    await check('instructor switches the microphone while it is on: the sending audio track is replaced, students keep receiving', async () => {
      const page = s.instructor;
      const sendingAudio = () => page.evaluate(() => {
        const pc = window.__lecternPeerConnections.filter((p) => p.connectionState !== 'closed').at(-1);
        const sender = pc?.getSenders().find((x) => x.track?.kind === 'audio');
        if (sender) window.__lecternLastMic ??= sender.track;
        return { trackId: sender?.track?.id ?? null, state: sender?.track?.readyState ?? null, transceivers: pc?.getTransceivers().length ?? 0 };
      });
      const before = await sendingAudio();
      await page.locator('#devices-toggle').click();
      await waitFor('the device panel with microphones listed', () => page.evaluate(() => !document.getElementById('devices')?.hidden &&
        [...document.querySelectorAll('#mic-select option')].some((o) => /** @type {HTMLOptionElement} */ (o).value)));
      const mics = await page.locator('#mic-select option').evaluateAll((os) => os.map((o) => /** @type {HTMLOptionElement} */ (o).value).filter(Boolean));
      const current = await page.locator('#mic-select').inputValue();
      const target = mics.find((id) => id !== current) ?? current;
      await page.locator('#mic-select').selectOption(target);
      const after = await waitFor('a new live track on the audio sender', () => sendingAudio().then((x) =>
        x.trackId && x.trackId !== before.trackId && x.state === 'live' ? x : { ok: false, ...x }));
      if (after.transceivers !== before.transceivers) throw new Error(`transceivers ${before.transceivers} -> ${after.transceivers}: renegotiated`);
      const oldState = await page.evaluate(() => window.__lecternLastMic?.readyState);
      if (oldState !== 'ended') throw new Error(`the old microphone track is ${oldState}, want ended`);
      const packets = () => s.student1.evaluate(async (id) => {
        const element = /** @type {HTMLAudioElement | null} */ (document.querySelector(`#stage-audio audio[data-participant="${id}"]`));
        const trackId = /** @type {MediaStream | null} */ (element?.srcObject ?? null)?.getAudioTracks()[0]?.id;
        for (const pc of window.__lecternPeerConnections) {
          if (pc.connectionState === 'closed') continue;
          for (const st of (await pc.getStats()).values()) {
            if (st.type === 'inbound-rtp' && st.kind === 'audio' && st.trackIdentifier === trackId) return st.packetsReceived ?? 0;
          }
        }
        return -1;
      }, s.instructorId);
      const first = await waitFor('student 1: inbound audio stats', async () => { const n = await packets(); return n >= 0 ? { n } : null; });
      const later = await waitFor(`student 1: audio packetsReceived to rise by 25 from ${first.n}`, async () => { const n = await packets(); return n >= first.n + 25 ? { n } : null; });
      await page.keyboard.press('Escape'); // closes the panel too
      await waitFor('the device panel to close', () => page.evaluate(() => document.getElementById('devices')?.hidden));
      return `${mics.length} microphones, ${target === current ? 'same device again' : 'another device'}; student 1 packetsReceived ${first.n} -> ${later.n}`;
    });
    await check('Alt+M (listed in the shortcuts) turns the microphone off and on again', async () => {
      const page = s.instructor;
      const listed = await page.locator('#shortcut-list').textContent();
      if (!listed?.includes('Alt+M')) throw new Error(`shortcuts listed: ${listed}`);
      const pressed = () => page.locator('#mic-toggle').getAttribute('aria-pressed');
      if ((await pressed()) !== 'true') throw new Error('the microphone should be on before');
      await page.keyboard.press('Alt+KeyM');
      await waitFor('the microphone off', async () => (await pressed()) === 'false');
      await page.keyboard.press('Alt+KeyM');
      await waitFor('the microphone on again', async () => (await pressed()) === 'true');
      return 'on -> off -> on';
    });
    await check('at 1280x800 the instructor sees the whole stage while on a roster row\'s "Give stage" (focused from the keyboard)', async () => {
      const page = s.instructor;
      const size = page.viewportSize();
      if (size?.width !== 1280 || size?.height !== 800) throw new Error(`viewport ${JSON.stringify(size)}`);
      await page.evaluate(() => window.scrollTo(0, 0));
      // Tab from the roster row's first button to "Give stage", as a keyboard user would.
      const give = page.locator(`#roster button[data-action="stage_grant"][data-participant="${s.student1Id}"]`);
      const onGive = () => give.evaluate((b) => b === document.activeElement);
      // Again from the row's first button if the row was redrawn under the keys (a roster
      // update between the focus and a Tab): a keyboard user would simply press Tab again.
      await waitFor('"Give stage" focused by Tab from its row\'s first button', async () => {
        await page.locator(`#roster > li[data-participant="${s.student1Id}"] button`).first().focus();
        for (let i = 0; i < 6 && !(await onGive()); i++) await page.keyboard.press('Tab');
        return onGive();
      }, { timeout: 10_000 });
      const seen = await page.evaluate(() => {
        const button = document.activeElement;
        const inView = (e) => {
          const r = e.getBoundingClientRect();
          return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= window.innerHeight && r.right <= window.innerWidth;
        };
        const view = document.getElementById('stage-view');
        const rect = (e) => { const r = e.getBoundingClientRect(); return `${Math.round(r.left)},${Math.round(r.top)} ${Math.round(r.width)}x${Math.round(r.height)}`; };
        return { action: button instanceof HTMLElement ? button.dataset.action : '', button: inView(button), stage: !!view && inView(view), stageRect: view ? rect(view) : '', buttonRect: rect(button), scrollY: window.scrollY };
      });
      await page.screenshot({ path: join(SCREENSHOTS, 'give-stage.png') });
      if (seen.action !== 'stage_grant' || !seen.button || !seen.stage) throw new Error(`focused ${JSON.stringify(seen)}`);
      return `stage ${seen.stageRect}, "Give stage" ${seen.buttonRect}, page scrolled ${seen.scrollY} px`;
    });
    await check('instructor gives the stage to student 1', async () => {
      await s.instructor.locator(`#roster button[data-action="stage_grant"][data-participant="${s.student1Id}"]`).click();
      await waitFor('student 1 to see the camera button', () => s.student1.locator('#camera-toggle').isVisible());
      const said = await announced(s.student1, 'student 1', /you are presenting/);
      await waitFor('student 1 to see "You are presenting" on the stage', async () =>
        (await s.student1.locator('#presenting-note').isVisible()) && /you are presenting/i.test((await s.student1.locator('#presenting-note').textContent()) ?? ''));
      const empty = (await s.student1.locator('#stage-empty').textContent()) ?? '';
      if (!/camera/i.test(empty)) throw new Error(`student 1's empty stage says ${JSON.stringify(empty)}: nothing about turning the camera on`);
      return `announced "${said}"; the stage says "${empty}"`;
    });
    await check('student 1 turns the camera on; student 2 decodes it on the stage (blue)', async () => {
      await s.student1.locator('#camera-toggle').click();
      await waitFor('student 2 stage to show student 1', () => videoState(s.student2).then((v) => (v.participant === s.student1Id && v.width > 0 ? v : { ok: false, ...v })), { timeout: 25_000 });
      const { stage, first, later } = await decodesStage(s.student2, 'student2');
      if (stage.participant !== s.student1Id) throw new Error(`stage shows ${stage.participant}, want ${s.student1Id}`);
      const colour = await waitFor('the blue picture', () => videoState(s.student2).then((v) => (close(v.rgb, BLUE) ? v : { ok: false, rgb: v.rgb })));
      s.student1TrackOnStudent2 = stage.trackId;
      return `framesDecoded ${first.framesDecoded} -> ${later.framesDecoded}, rgb(${colour.rgb})`;
    });
    await screenshots('presenting');
    await check('instructor takes the stage back: student 2 stops decoding student 1', async () => {
      await s.instructor.locator(`#roster button[data-action="stage_revoke"][data-participant="${s.student1Id}"]`).click();
      const still = await waitFor('framesDecoded of student 1 track to stay flat for 2 s', async () => {
        const [a] = await inboundVideo(s.student2, s.student1TrackOnStudent2);
        await delay(2000); // one sampling window, inside the deadline
        const [b] = await inboundVideo(s.student2, s.student1TrackOnStudent2);
        return !a || !b || a.framesDecoded === b.framesDecoded ? { a, b } : { ok: false, a, b };
      }, { timeout: 20_000 });
      await waitFor('student 1 camera button to be hidden again', async () => !(await s.student1.locator('#camera-toggle').isVisible()));
      await announced(s.student1, 'student 1', /no longer presenting/);
      await waitFor('student 1\'s "You are presenting" to go', async () => !(await s.student1.locator('#presenting-note').isVisible()));
      // Student 1's client switched the camera off and reported it (set_media -> media_changed).
      await waitFor("the instructor's roster to drop student 1's camera badge", () => s.instructor.evaluate((id) =>
        !document.querySelector(`#roster > li[data-participant="${id}"] .badge-media`), s.student1Id));
      return still.b ? `flat at ${still.b.framesDecoded} frames` : 'the track has no stats (its m-line is inactive)';
    });
    await check('instructor mutes student 1: student 1 hears it announced; Alt+M then says why the microphone is off', async () => {
      if (!(await s.student1.locator('#mic-toggle').isVisible())) throw new Error('student 1 (called on) should have the microphone button before the mute');
      await s.instructor.locator(`#roster button[data-action="mute"][data-participant="${s.student1Id}"]`).click();
      await waitFor('student 1 microphone button to be hidden', async () => !(await s.student1.locator('#mic-toggle').isVisible()));
      const muted = await announced(s.student1, 'student 1', /muted you/);
      await s.student1.keyboard.press('Alt+KeyM');
      const hint = await waitFor('student 1 to see why Alt+M does nothing', async () => {
        const text = (await s.student1.locator('#speak-hint').isVisible()) ? await s.student1.locator('#speak-hint').textContent() : null;
        return text && /may not speak/i.test(text) ? text : null;
      });
      await announced(s.student1, 'student 1', /may not speak/);
      return `announced "${muted}"; Alt+M: "${hint}"`;
    });
    await check('student 2 still decodes the instructor after the revoke', async () => {
      await waitFor('student 2 stage to show the instructor', () => videoState(s.student2).then((v) => (v.participant === s.instructorId ? v : { ok: false, ...v })));
      const { first, later } = await decodesStage(s.student2, 'student2', 10);
      return `framesDecoded ${first.framesDecoded} -> ${later.framesDecoded}`;
    });
    await check('instructor shares the screen: student 2 shows it on the stage, the camera in the picture-in-picture', async () => {
      const before = await videoState(s.student2);
      await s.instructor.locator('#screen-toggle').click();
      await waitFor('the screen button to read "on"', () => s.instructor.locator('#screen-toggle[aria-pressed="true"]').isVisible());
      const stage = await waitFor('a new instructor track on student 2 stage', () => videoState(s.student2).then((v) =>
        v.participant === s.instructorId && v.trackId && v.trackId !== before.trackId && v.width > 0 ? v : { ok: false, ...v }), { timeout: 25_000 });
      const { first, later } = await decodesStage(s.student2, 'student2', 5);
      const pip = await s.student2.evaluate(() => /** @type {HTMLVideoElement} */ (document.getElementById('pip-video')).videoWidth);
      await screenshots('screen');
      await s.instructor.locator('#screen-toggle').click();
      await waitFor('student 2 stage to go back to the camera', () => videoState(s.student2).then((v) => (v.trackId === before.trackId ? v : { ok: false, ...v })));
      return `screen ${stage.width}x${stage.height}, framesDecoded ${first.framesDecoded} -> ${later.framesDecoded}, pip width ${pip}`;
    });
    await check('student 2 pins the stage on the instructor\'s camera: a screen share then goes to the small picture; unpinned, the stage shows the screen', async () => {
      const page = s.student2;
      const camera = await waitFor('student 2: the instructor\'s camera on the stage', () => videoState(page).then((v) => (v.participant === s.instructorId && v.width > 0 ? v : { ok: false, ...v })));
      await page.locator('#stage-pin').click();
      await waitFor('the pin button pressed', () => page.locator('#stage-pin[aria-pressed="true"]').isVisible());
      await s.instructor.locator('#screen-toggle').click();
      await waitFor('the screen button to read "on"', () => s.instructor.locator('#screen-toggle[aria-pressed="true"]').isVisible());
      const pip = await waitFor('the screen in the small picture, the camera still on the stage', () => page.evaluate(() => {
        const pipVideo = /** @type {HTMLVideoElement} */ (document.getElementById('pip-video'));
        const track = /** @type {MediaStream | null} */ (pipVideo.srcObject)?.getVideoTracks()[0];
        return !pipVideo.hidden && track && pipVideo.videoWidth > 0 ? { trackId: track.id, width: pipVideo.videoWidth } : null;
      }), { timeout: 25_000 });
      const still = await videoState(page);
      if (still.trackId !== camera.trackId || pip.trackId === camera.trackId) throw new Error(`pinned: stage ${still.trackId}, pip ${pip.trackId}, camera ${camera.trackId}`);
      await page.locator('#stage-pin').click();
      const screen = await waitFor('unpinned: the screen on the stage', () => videoState(page).then((v) => (v.trackId === pip.trackId && v.width > 0 ? v : { ok: false, ...v })));
      await s.instructor.locator('#screen-toggle').click();
      await waitFor('student 2 stage to go back to the camera', () => videoState(page).then((v) => (v.trackId === camera.trackId ? v : { ok: false, ...v })));
      return `pinned camera (track ${camera.trackId}) stayed while the screen (${pip.width} wide) was in the small picture; unpinned: screen ${screen.width}x${screen.height} on the stage`;
    });
    await check('student 2 puts the stage in full screen (the stage view is document.fullscreenElement) and leaves it', async () => {
      const page = s.student2;
      await page.locator('#stage-fullscreen').click();
      const entered = await waitFor('the stage view in full screen', () => page.evaluate(() => {
        const id = document.fullscreenElement?.id ?? null;
        return id === 'stage-view' ? { id, label: document.getElementById('stage-fullscreen')?.textContent } : { ok: false, id };
      }));
      await page.keyboard.press('Escape');
      await waitFor('Escape to leave full screen', () => page.evaluate(() => !document.fullscreenElement));
      const label = await waitFor('the button to read "Full screen" again', async () => {
        const text = await page.locator('#stage-fullscreen').textContent();
        return text === 'Full screen' ? text : { ok: false, text };
      });
      await page.locator('#stage-fullscreen').click();
      await waitFor('full screen again (the button)', () => page.evaluate(() => document.fullscreenElement?.id === 'stage-view'));
      await page.locator('#stage-fullscreen').click();
      await waitFor('the button to leave full screen', () => page.evaluate(() => !document.fullscreenElement));
      return `entered (#${entered.id}, button "${entered.label}"), left with Escape (button "${label}"); again and out with the button`;
    });
    await check('student 2 loses its WebSocket: reconnects, makes a new peer connection, decodes the instructor again', async () => {
      const page = s.student2;
      // Stay disconnected until the server has seen it and two messages were sent meanwhile.
      await page.evaluate(() => {
        window.__lecternHoldSockets = true;
        window.__lecternSockets.at(-1)?.close();
      });
      await waitFor("the instructor's roster to mark student 2 as reconnecting", () => s.instructor.evaluate((id) =>
        !!document.querySelector(`#roster > li[data-participant="${id}"] .badge-away`), s.student2Id));
      s.missed = ['Sent while Alan was away (1/2, instructor)', 'Sent while Alan was away (2/2, Ada)'];
      await sendChat(s.instructor, 'instructor', s.missed[0]);
      await sendChat(s.student1, 'student 1', s.missed[1]);
      await page.evaluate(() => (window.__lecternHoldSockets = false));
      await waitFor('the status to show reconnecting or open again', () => page.evaluate(() => window.__lecternSockets.length > 1 && document.getElementById('status')?.dataset.state === 'open'), { timeout: 20_000 });
      const pcs = await waitFor('a second peer connection, the first one closed', () => page.evaluate(() => {
        const all = window.__lecternPeerConnections;
        return all.length >= 2 && all.slice(0, -1).every((pc) => pc.connectionState === 'closed') ? all.map((pc) => pc.connectionState) : null;
      }), { timeout: 20_000 });
      const { first, later } = await decodesStage(page, 'student2', 10);
      const stage = await videoState(page);
      if (stage.participant !== s.instructorId) throw new Error(`stage shows ${stage.participant}, want ${s.instructorId}`);
      return `peer connections ${JSON.stringify(pcs)}, framesDecoded ${first.framesDecoded} -> ${later.framesDecoded}`;
    });
    await check('student 2 shows the chat sent while it was away exactly once (every li[data-seq] unique)', async () => {
      for (const text of s.missed) await chatShowsOnce(s.student2, 'student2', text);
      const [mine, theirs] = [await chatLog(s.student2), await chatLog(s.instructor)];
      const seqs = (log) => log.map((m) => m.seq).join(',');
      if (seqs(mine) !== seqs(theirs)) throw new Error(`student 2 shows seqs ${seqs(mine)}, the instructor ${seqs(theirs)}`);
      return `${mine.length} messages, seqs ${seqs(mine)}`;
    });
    await check('instructor presses "End class": the camera and microphone go off (tracks stopped, buttons off, nothing on the stage), "Start class" again; the students see the class ended', async () => {
      const page = s.instructor;
      const pressed = async () => [await page.locator('#camera-toggle').getAttribute('aria-pressed'), await page.locator('#mic-toggle').getAttribute('aria-pressed')];
      if ((await pressed()).join() !== 'true,true') throw new Error(`camera, microphone pressed ${await pressed()}: want both on before the end`);
      // Every live local track: the senders' and the stage's own preview.
      const count = await page.evaluate(() => {
        const tracks = window.__lecternPeerConnections.filter((pc) => pc.connectionState !== 'closed').flatMap((pc) => pc.getSenders().map((x) => x.track));
        const stage = /** @type {MediaStream | null} */ (/** @type {HTMLVideoElement} */ (document.getElementById('stage-video')).srcObject);
        window.__lecternBeforeEnd = [...tracks, ...(stage?.getTracks() ?? [])].filter((t) => t && t.readyState === 'live');
        return window.__lecternBeforeEnd.length;
      });
      if (count < 2) throw new Error(`${count} live local tracks before the end, want the camera and the microphone`);
      page.once('dialog', (d) => void d.accept());
      await page.locator('#end-class').click();
      await waitFor('"Start class" again', () => page.locator('#start-class').isVisible());
      await waitFor('the class timer to go', () => page.locator('#class-timer').isHidden());
      const after = await waitFor('every local track stopped, both buttons off, the stage empty', async () => {
        const ended = await page.evaluate(() => window.__lecternBeforeEnd.every((t) => t.readyState === 'ended'));
        const [camera, mic] = await pressed();
        const stage = await videoState(page);
        const empty = await page.locator('#stage-empty').isVisible();
        const r = { ended, camera, mic, stageTrack: stage.trackId, empty };
        return ended && camera === 'false' && mic === 'false' && !stage.trackId && empty ? r : { ok: false, ...r };
      });
      for (const who of ['student1', 'student2']) {
        await waitFor(`${who}: the class-ended notice with "Join again"`, async () => (await s[who].locator('#notice').isVisible()) && s[who].locator('#rejoin').isVisible());
      }
      for (const who of ['instructor', 'student1', 'student2']) await announced(s[who], who, /class has ended/);
      return `${count} tracks stopped; ${JSON.stringify(after)}`;
    });
    await check('a student who presses "Join again" after the end waits in a lobby that says the class has ended, and nothing about it starting', async () => {
      const page = s.student1;
      await page.locator('#rejoin').click();
      await waitFor('student 1: the lobby', () => page.locator('#lobby').isVisible(), { timeout: 20_000 });
      const text = await waitFor('the lobby text', () => page.evaluate(() => {
        const lobby = document.getElementById('lobby');
        return lobby && !lobby.hidden ? lobby.innerText : null;
      }));
      const state = await page.locator('#class-state').textContent();
      if (!/ended/i.test(text)) throw new Error(`the lobby says ${JSON.stringify(text)}: nothing about the class having ended`);
      if (/start now|waiting for the class to start|starts in/i.test(text)) throw new Error(`the lobby says ${JSON.stringify(text)} while the class state is "${state}"`);
      return `${JSON.stringify(text.replace(/\s+/g, ' ').trim())}, class state "${state}"`;
    });
    await check('"Leave class" asks first (a dialog, "Stay" focused, no axe-core serious violation); Escape and "Stay" keep the page and give focus back to "Leave class"', async () => {
      const page = s.student1;
      const dialog = page.locator('#leave-dialog');
      await page.locator('#leave').click();
      await waitFor('the leave dialog', () => dialog.isVisible());
      const role = await dialog.evaluate((d) => ({ open: /** @type {HTMLDialogElement} */ (d).open, modal: d.matches(':modal'), name: document.getElementById(d.getAttribute('aria-labelledby') ?? '')?.textContent }));
      if (!role.modal) throw new Error(`the dialog is not modal: ${JSON.stringify(role)}`);
      const first = await focused(page);
      if (first !== 'leave-stay') throw new Error(`focus on ${first} when the dialog opens, want "Stay"`);
      const axe = await axeCheck(page, 'the leave dialog');
      await page.keyboard.press('Escape');
      await waitFor('Escape to close the dialog', () => dialog.isHidden());
      await waitFor('focus back on "Leave class"', async () => (await focused(page)) === 'leave');
      if (!(await page.locator('#lobby').isVisible()) || (await page.locator('#notice').isVisible())) throw new Error('Escape left the class');
      await page.locator('#leave').click();
      await waitFor('the leave dialog again', () => dialog.isVisible());
      await page.locator('#leave-stay').click();
      await waitFor('"Stay" to close the dialog', () => dialog.isHidden());
      await waitFor('focus back on "Leave class"', async () => (await focused(page)) === 'leave');
      if (!(await page.locator('#lobby').isVisible())) throw new Error('"Stay" left the class');
      return `dialog "${role.name}", modal; ${axe}`;
    });
    await check('student 1 confirms "Leave": the live region says so and focus moves to "Join again" (not the page body)', async () => {
      const page = s.student1;
      await page.locator('#leave').click();
      await waitFor('the leave dialog', () => page.locator('#leave-dialog').isVisible());
      await page.locator('#leave-confirm').click();
      await waitFor('student 1: the notice', () => page.locator('#notice').isVisible());
      const said = await announced(page, 'student 1', /you left/);
      const where = await waitFor('focus on "Join again"', async () => {
        const id = await focused(page);
        return id === 'rejoin' ? id : { ok: false, id };
      });
      await mainLandmark(page, 'student 1', '#notice');
      return `announced "${said}"; focus on #${where}`;
    });
    await check('a student early for a scheduled session sees the lobby count down to its start', async () => {
      // A course with a session five minutes from now (its room opens 15 minutes before),
      // set up with the CLI on the server's data directory, and a link for one student.
      const dataDir = join(tmp, 'data');
      const start = new Date(Date.now() + 5 * 60_000);
      const day = start.toISOString().slice(0, 10);
      const hhmm = start.toISOString().slice(11, 16);
      const weekday = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'][start.getUTCDay()];
      const csv = join(tmp, 'countdown.csv');
      writeFileSync(csv, 'member_id,name,role\ncara,Cara,student\n');
      await runCli(dataDir, ['course', 'create', '--id', 'countdown', '--title', 'Countdown', '--timezone', 'UTC']);
      await runCli(dataDir, ['roster', 'import', '--course', 'countdown', csv]);
      await runCli(dataDir, ['schedule', 'add', '--course', 'countdown', '--days', weekday, '--start', hhmm, '--minutes', '30', '--from', day, '--to', day]);
      const [token] = (await runCli(dataDir, ['link', '--course', 'countdown', '--member', 'cara'])).trim().split('\n');
      const page = await openPage(browsers[1], 'countdown', `${server.url}/#token=${token}`, '#lobby');
      const pattern = /^Class starts in (\d+):(\d\d)$/;
      const first = await waitFor('the lobby countdown', async () => {
        const text = (await page.locator('#lobby-countdown').textContent()) ?? '';
        return (await page.locator('#lobby-countdown').isVisible()) && pattern.test(text) ? text : null;
      });
      const [, m, sec] = first.match(pattern) ?? [];
      const left = Number(m) * 60 + Number(sec);
      if (left > 5 * 60 || left < 60) throw new Error(`"${first}": want about 4 to 5 minutes`);
      const next = await waitFor('the countdown to tick', async () => {
        const text = (await page.locator('#lobby-countdown').textContent()) ?? '';
        return text !== first && pattern.test(text) ? text : null;
      });
      return `${first} -> ${next}`;
    });
    await check('a student joining a scheduled class past its end warning sees how long is left', async () => {
      // Auto-start, a 5-minute warning, a 5-minute session starting this minute: the class is
      // live and already past its warning time when the student arrives.
      const dataDir = join(tmp, 'data');
      const start = new Date();
      const day = start.toISOString().slice(0, 10);
      const hhmm = start.toISOString().slice(11, 16);
      const weekday = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'][start.getUTCDay()];
      const csv = join(tmp, 'ending.csv');
      writeFileSync(csv, 'member_id,name,role\ndan,Dan,student\n');
      await runCli(dataDir, ['course', 'create', '--id', 'ending', '--title', 'Ending', '--timezone', 'UTC', '--auto-start', '--warning-minutes', '5', '--grace-minutes', '1']);
      await runCli(dataDir, ['roster', 'import', '--course', 'ending', csv]);
      await runCli(dataDir, ['schedule', 'add', '--course', 'ending', '--days', weekday, '--start', hhmm, '--minutes', '5', '--from', day, '--to', day]);
      const [token] = (await runCli(dataDir, ['link', '--course', 'ending', '--member', 'dan'])).trim().split('\n');
      const page = await openPage(browsers[1], 'ending', `${server.url}/#token=${token}`, '#classroom');
      const pattern = /^The class ends in (\d+):(\d\d)\.$/;
      const text = await waitFor('the ending-soon note', async () => {
        const t = (await page.locator('#ending-soon').textContent()) ?? '';
        return (await page.locator('#ending-soon').isVisible()) && pattern.test(t) ? t : null;
      });
      const [, m, sec] = text.match(pattern) ?? [];
      const left = Number(m) * 60 + Number(sec);
      if (left > 5 * 60 || left < 3 * 60) throw new Error(`"${text}": want 3 to 5 minutes`);
      return text;
    });
    await scrollBackCheck(browsers, tmp);
    await relayChecks(browsers, tmp);
  } finally {
    await screenshots('final').catch((e) => console.log(`screenshots failed: ${e}`));
    if (results.some((r) => !r.ok)) {
      for (const { name, log } of pages) if (log.length) console.log(`--- ${name} console ---\n${log.slice(-40).join('\n')}`);
      // The whole run's (scripts/test.sh runs the server with the SFU's debug lines): a media
      // failure is often explained by what happened long before the last lines.
      if (server) console.log(`--- server output (last 100000 chars) ---\n${server.output.slice(-100_000)}`);
    }
    if (server && process.env.E2E_SERVER_LOG) writeFileSync(process.env.E2E_SERVER_LOG, server.output);
    for (const browser of browsers) await browser.close().catch(() => undefined);
    s.proxy?.server.closeAllConnections();
    s.proxy?.server.close();
    await stopServer(server);
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ---- Chat scroll-back ----------------------------------------------------------------------------

/** A server whose snapshots carry only the newest 2 chat messages: a late student scrolls back for the rest, then reads the class on a phone-sized page. */
async function scrollBackCheck(browsers, tmp) {
  let server = null;
  const h = {};
  try {
    await check('a late student sees the newest chat, and "Show earlier messages" loads the rest from the server, in order, once each', async () => {
      server = await clientFromDisk(await startServer(join(tmp, 'history-data'), { LECTERN_ROOM_SNAPSHOT_CHAT: '2', LECTERN_ROOM_AUTO_START: 'true' }));
      h.teacher = await openPage(browsers[0], 'history instructor', server.links.instructor, '#devices');
      await h.teacher.locator('#enter-class').click();
      await waitFor('the history instructor in the classroom', () => h.teacher.locator('#classroom').isVisible());
      const sent = ['Chapter 1', 'Chapter 2', 'Chapter 3', 'Chapter 4', 'Chapter 5'];
      for (const text of sent) await sendChat(h.teacher, 'history instructor', text);
      h.late = await openPage(browsers[1], 'history student', server.links['student 1'], '#classroom');
      const first = await waitFor('the snapshot chat', () => chatLog(h.late).then((l) => (l.length ? l : null)));
      if (first.map((m) => m.text).join('|') !== 'Chapter 4|Chapter 5') throw new Error(`snapshot chat ${JSON.stringify(first)}, want the newest two`);
      await h.late.locator('#chat-more').click();
      const all = await waitFor('all five messages', () => chatLog(h.late).then((l) => (l.length >= 5 ? l : null)));
      if (all.map((m) => m.text).join('|') !== sent.join('|')) throw new Error(`chat after scroll-back: ${JSON.stringify(all.map((m) => m.text))}`);
      if (new Set(all.map((m) => m.seq)).size !== all.length) throw new Error('duplicate seqs after scroll-back');
      await waitFor('the button to hide (the start of the chat reached)', () => h.late.locator('#chat-more').isHidden());
      return `${first.length} -> ${all.length} messages: ${all.map((m) => m.text).join(', ')}`;
    });
    await check('at phone width (320x568, the smallest phones) nothing scrolls sideways; chat arriving out of view shows an unread badge (and in the title), cleared by showing the chat', async () => {
      const page = h.late;
      await page.setViewportSize({ width: 320, height: 568 });
      await page.evaluate(() => window.scrollTo(0, 0));
      const layout = await page.evaluate(() => ({
        overflow: document.documentElement.scrollWidth - window.innerWidth,
        chatTop: Math.round(document.getElementById('chat')?.getBoundingClientRect().top ?? 0),
        stageWidth: Math.round(document.getElementById('stage')?.getBoundingClientRect().width ?? 0),
      }));
      if (layout.overflow > 1) throw new Error(`the page is ${layout.overflow} px wider than the phone`);
      if (layout.chatTop < 568) throw new Error(`the chat is on screen at the top of the page (top ${layout.chatTop}): cannot test unread`);
      await sendChat(h.teacher, 'history instructor', 'Chapter 6');
      const badge = await waitFor('the unread badge', async () => {
        const b = h.late.locator('#chat-unread');
        return (await b.isVisible()) ? b.textContent() : null;
      });
      if (badge !== '1 new') throw new Error(`badge "${badge}", want "1 new"`);
      const onScreen = await page.evaluate(() => {
        const r = document.getElementById('chat-unread')?.getBoundingClientRect();
        return !!r && r.top >= 0 && r.bottom <= window.innerHeight && r.right <= window.innerWidth;
      });
      if (!onScreen) throw new Error('the unread badge is off screen while the chat is out of view');
      const title = await page.title();
      if (!title.startsWith('(1) ')) throw new Error(`title "${title}" has no unread count`);
      await page.screenshot({ path: join(SCREENSHOTS, 'phone-student.png') });
      await page.locator('#chat-unread').click();
      await waitFor('the badge to clear once the chat is shown', () => page.locator('#chat-unread').isHidden());
      return `stage ${layout.stageWidth} px wide, chat starts at ${layout.chatTop} px; badge "${badge}", title "${title}", cleared`;
    });
  } finally {
    closeProxy(server);
    await stopServer(server);
  }
}

// ---- Media through a TURN relay (coturn) --------------------------------------------------------

const TURN_SECRET = 'e2e-coturn-shared-secret-0123456789';

/** A free UDP port on 127.0.0.1 (bound and released). */
async function freeUdpPort() {
  const socket = createSocket('udp4');
  await new Promise((r) => socket.bind(0, '127.0.0.1', r));
  const { port } = socket.address();
  await new Promise((r) => socket.close(r));
  return port;
}

/** Whether a STUN binding request to 127.0.0.1:`port` gets a success response within 500 ms. */
async function stunResponds(port) {
  const socket = createSocket('udp4');
  try {
    const request = Buffer.alloc(20);
    request.writeUInt16BE(0x0001, 0); // binding request, no attributes
    request.writeUInt32BE(0x2112a442, 4); // magic cookie
    for (let i = 8; i < 20; i++) request[i] = Math.floor(Math.random() * 256);
    const answered = new Promise((resolve) => {
      socket.on('message', (m) => resolve(m.length >= 20 && m.readUInt16BE(0) === 0x0101 && m.subarray(8, 20).equals(request.subarray(8, 20))));
      setTimeout(() => resolve(false), 500);
    });
    socket.send(request, port, '127.0.0.1');
    return await answered;
  } finally {
    socket.close();
  }
}

/** One coturn on loopback at a free UDP port; rejects with coturn's output if it does not answer STUN within 10 s. */
async function startTurnOnce() {
  const port = await freeUdpPort();
  const child = spawn('turnserver', [
    '-n', '--no-cli', '--no-tls', '--no-dtls', '--log-file=stdout', '--simple-log',
    '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1', `--listening-port=${port}`,
    // The browsers reach it over UDP only (`?transport=udp`). Without this coturn also binds a TCP
    // listener on the same port number, which nothing checked was free: when another process held
    // it, coturn kept retrying that bind before it answered on UDP at all.
    '--no-tcp',
    '--min-port=49200', '--max-port=49400',
    '--use-auth-secret', `--static-auth-secret=${TURN_SECRET}`, '--realm=lectern.test',
    // The SFU listens on 127.0.0.1 in this test: coturn refuses loopback peers unless told.
    '--allow-loopback-peers', '--fingerprint',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const turn = { child, port, output: '', exited: null };
  child.on('exit', (code, signal) => (turn.exited = { code, signal }));
  child.on('error', (error) => (turn.exited = { error: String(error) }));
  child.stdout.on('data', (chunk) => (turn.output += chunk));
  child.stderr.on('data', (chunk) => (turn.output += chunk));
  try {
    await waitFor(`coturn to answer STUN on udp port ${port}`, () => {
      if (turn.exited) throw Object.assign(new Error(`turnserver exited: ${JSON.stringify(turn.exited)}`), { fatal: true });
      return stunResponds(port);
    }, { timeout: 10_000 });
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${error.message}\n--- coturn output (last 2000 chars) ---\n${turn.output.slice(-2000)}`);
  }
  return turn;
}

/**
 * Debian's coturn on loopback, with the TURN REST API secret Lectern signs credentials with. The
 * port is free when chosen, but another process (a browser's or a server's UDP socket) may take it
 * before coturn binds it: a coturn that does not answer is stopped and started again on another
 * port, three times at most, and every failed start is reported with its output.
 */
async function startTurn() {
  const failures = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      const turn = await startTurnOnce();
      if (failures.length) console.log(`coturn answered at attempt ${attempt}; earlier:\n${failures.join('\n')}`);
      return turn;
    } catch (error) {
      failures.push(`attempt ${attempt}: ${error.message}`);
    }
  }
  throw new Error(failures.join('\n'));
}

/** In the page: the candidate types of the selected pair of each live peer connection. */
async function selectedCandidates(page) {
  return page.evaluate(async () => {
    const out = [];
    for (const pc of window.__lecternPeerConnections) {
      if (pc.connectionState === 'closed') continue;
      const report = await pc.getStats();
      for (const transport of report.values()) {
        if (transport.type !== 'transport' || !transport.selectedCandidatePairId) continue;
        const pair = report.get(transport.selectedCandidatePairId);
        const local = pair && report.get(pair.localCandidateId);
        out.push({ state: pc.connectionState, local: local?.candidateType ?? '?', relayProtocol: local?.relayProtocol ?? '', bytes: pair?.bytesReceived ?? 0 });
      }
    }
    return out;
  });
}

/** A second server with `turn.urls` pointing at coturn; an instructor and a student whose browsers may use relay candidates only. */
async function relayChecks(browsers, tmp) {
  const r = {};
  try {
    await check('coturn (Debian turnserver) starts on 127.0.0.1 with a TURN REST API shared secret', async () => {
      r.turn = await startTurn();
      return `udp port ${r.turn.port}`;
    });
    await check('relay-only browsers (iceTransportPolicy "relay") join a server whose ICE servers are that coturn; the instructor turns the camera on', async () => {
      r.server = await clientFromDisk(await startServer(join(tmp, 'relay-data'), {
        LECTERN_TURN_URLS: JSON.stringify([`turn:127.0.0.1:${r.turn.port}?transport=udp`]),
        LECTERN_TURN_SECRET: TURN_SECRET,
        LECTERN_ROOM_AUTO_START: 'true',
      }));
      r.instructor = await openPage(browsers[0], 'relay instructor', r.server.links.instructor, '#devices', { relayOnly: true });
      await r.instructor.locator('#enter-class').click();
      await waitFor('the relay instructor in the classroom', () => r.instructor.locator('#classroom').isVisible());
      r.student = await openPage(browsers[1], 'relay student', r.server.links['student 1'], '#classroom', { relayOnly: true });
      const camera = r.instructor.locator('#camera-toggle');
      await waitFor('#camera-toggle to be shown', () => camera.isVisible());
      await camera.click();
      return r.server.url;
    });
    await check('the student decodes the instructor through the relay: both selected candidate pairs are relay candidates', async () => {
      const { first, later } = await decodesStage(r.student, 'relay student', 15, 40_000);
      const out = [];
      for (const [who, page] of [['instructor', r.instructor], ['student', r.student]]) {
        const pairs = await waitFor(`${who}: a selected candidate pair`, () => selectedCandidates(page).then((p) => (p.length ? p : null)));
        if (!pairs.every((p) => p.local === 'relay')) throw new Error(`${who}: selected local candidates ${JSON.stringify(pairs)}, want relay only`);
        out.push(`${who} ${pairs.map((p) => `${p.local}/${p.relayProtocol}`).join(',')}`);
      }
      return `framesDecoded ${first.framesDecoded} -> ${later.framesDecoded}; ${out.join('; ')}`;
    });
  } finally {
    if (results.some((x) => !x.ok) && r.turn) console.log(`--- coturn output (last 3000 chars) ---\n${r.turn.output.slice(-3000)}`);
    closeProxy(r.server);
    await stopServer(r.server);
    r.turn?.child.kill('SIGTERM');
  }
}

async function screenshots(label) {
  for (const { name, page } of pages) {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(SCREENSHOTS, `${label}-${name.replace(/ /g, '')}.png`), fullPage: false });
  }
}

await finish(results, main);
