// A class recorded and replayed in a real browser: the `lectern` binary with the demo course,
// Debian's Chromium through playwright-core (real WebRTC, real decoding), red and blue fake
// cameras. A class with a student presentation and chat is recorded; the recording is found
// with the CLI and the admin API; the replay page is opened as a student and as the
// instructor, seeked into and before the presentation, played at 2x. See README.md.
//
// Exit code 0 when every check passed; the last line printed is `N passed, N failed`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import {
  BLUE, CHROMIUM, RED, axeCheck, checklist, chromiumArgs, close, participantId, recordPeerConnections, runCli, startServer, stopServer, videoState,
  waitFor, writeToneWav, writeY4m,
  finish,
} from './harness.mjs';

/** A chosen playhead stays at least this far (ms) from every chat message and stage change. */
const MARGIN_MS = 500;
/** The replay slider's step (`#seek` step="100"): playheads the test seeks to are multiples of it. */
const STEP_MS = 100;

const NAMES = { instructor: 'Instructor Grace', student1: 'Student Ada', student2: 'Student Alan' };

const colourName = (rgb) => (close(rgb, RED) ? 'red' : close(rgb, BLUE) ? 'blue' : `rgb(${rgb})`);

// ---- Checks ------------------------------------------------------------------------------------

const { results, check } = checklist();


function assertEqual(actual, expected, what) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

// ---- The class pages ---------------------------------------------------------------------------

const pages = /** @type {{name: string, page: import('playwright-core').Page, log: string[]}[]} */ ([]);

/** A new context and page, its console and failed requests kept for a failure report. */
async function newPage(browser, name, { peerConnections = false } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  if (peerConnections) await context.addInitScript(recordPeerConnections);
  const page = await context.newPage();
  const log = [];
  page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
  page.on('requestfailed', (r) => log.push(`[requestfailed] ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => r.status() >= 400 && log.push(`[http ${r.status()}] ${r.url()}`));
  pages.push({ name, page, log });
  return page;
}

/**
 * The room's sequenced events as a page receives them on its WebSocket (`{seq, at, event}`,
 * `at` in Unix ms by the server's clock), appended to `into`.
 */
function keepEvents(page, into) {
  page.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => {
    try {
      const message = JSON.parse(String(payload));
      if (message?.type === 'event' && message.event) into.push({ seq: message.seq, at: message.at, event: message.event });
    } catch {
      // Not JSON: not an event.
    }
  }));
}

/** In the page: framesDecoded of the inbound video track `trackId` (-1 when it has no stats). */
async function framesDecoded(page, trackId) {
  return page.evaluate(async (trackId) => {
    for (const pc of window.__lecternPeerConnections) {
      if (pc.connectionState === 'closed') continue;
      for (const s of (await pc.getStats()).values()) {
        if (s.type === 'inbound-rtp' && s.kind === 'video' && s.trackIdentifier === trackId) return s.framesDecoded ?? 0;
      }
    }
    return -1;
  }, trackId);
}

/**
 * Waits until `page`'s stage shows `participant` in `colour` and its framesDecoded rose by
 * `frames`; returns when the colour was first seen (Date.now()) and the frame counts.
 */
async function decodes(page, who, participant, colour, frames = 15) {
  const shown = await waitFor(`${who}: the stage to show ${participant} in ${colourName(colour)}`, () => videoState(page).then((v) =>
    v.participant === participant && v.trackId && close(v.rgb, colour) ? v : { ok: false, ...v }), { timeout: 25_000 });
  const seenAt = Date.now();
  const first = await waitFor(`${who}: inbound stats of the stage track`, async () => {
    const n = await framesDecoded(page, shown.trackId);
    return n >= 0 ? { n } : null;
  });
  const later = await waitFor(`${who}: framesDecoded to rise by ${frames} from ${first.n}`, async () => {
    const n = await framesDecoded(page, shown.trackId);
    return n >= first.n + frames ? { n } : null;
  }, { timeout: 25_000 });
  return { seenAt, trackId: shown.trackId, summary: `${colourName(shown.rgb)}, framesDecoded ${first.n} -> ${later.n}` };
}

/** Waits until framesDecoded of `trackId` on `page` rose by `frames` from now. */
async function keepsDecoding(page, who, trackId, frames) {
  const first = await framesDecoded(page, trackId);
  await waitFor(`${who}: framesDecoded to rise by ${frames} from ${first}`, async () => (await framesDecoded(page, trackId)) >= first + frames, { timeout: 25_000 });
  return `framesDecoded ${first} -> ${await framesDecoded(page, trackId)}`;
}


/** In the page: the chat log's texts, oldest first. */
async function chatTexts(page) {
  return page.evaluate(() => [...document.querySelectorAll('#chat-log li[data-seq] .chat-text')].map((p) => p.textContent ?? ''));
}

/** The recording badge on every page: shown (`on`) or hidden. */
async function badgesAre(s, who, on) {
  for (const name of who) {
    await waitFor(`${name}: the recording badge ${on ? 'shown' : 'gone'}`, async () => (await s[name].locator('#recording-badge').isVisible()) === on);
  }
}

// ---- The replay page ---------------------------------------------------------------------------

/** Runs in the replay page: what it shows now, read in one go (so the parts agree). */
function replayState() {
  const root = document.documentElement;
  const pixel = (video) => {
    if (!video || video.readyState < 2 || !video.videoWidth) return null;
    const canvas = document.createElement('canvas');
    [canvas.width, canvas.height] = [video.videoWidth, video.videoHeight];
    const g = canvas.getContext('2d', { willReadFrequently: true });
    g.drawImage(video, 0, 0);
    const size = 8;
    const data = g.getImageData((canvas.width - size) >> 1, (canvas.height - size) >> 1, size, size).data;
    const sum = [0, 0, 0];
    for (let i = 0; i < data.length; i += 4) for (let c = 0; c < 3; c++) sum[c] += data[i + c];
    return sum.map((v) => Math.round(v / (size * size)));
  };
  const video = (role) => {
    const v = /** @type {HTMLVideoElement | null} */ (document.querySelector(`#stage-view video[data-role="${role}"]`));
    return v && {
      participant: v.dataset.participant, segment: v.dataset.segment, rgb: pixel(v), size: `${v.videoWidth}x${v.videoHeight}`, paused: v.paused,
      currentTime: v.currentTime, rate: v.playbackRate, frames: v.getVideoPlaybackQuality().totalVideoFrames,
    };
  };
  return {
    state: root.dataset.state,
    playhead: Number(root.dataset.playheadMs),
    playing: root.dataset.playing === 'true',
    loading: root.dataset.loading === 'true',
    main: video('main'),
    small: video('small'),
    audio: [...document.querySelectorAll('#replay-audio audio')].map((a) => ({
      participant: /** @type {HTMLElement} */ (a).dataset.participant, segment: /** @type {HTMLElement} */ (a).dataset.segment,
      role: /** @type {HTMLElement} */ (a).dataset.role, paused: /** @type {HTMLAudioElement} */ (a).paused,
      currentTime: /** @type {HTMLAudioElement} */ (a).currentTime, rate: /** @type {HTMLAudioElement} */ (a).playbackRate,
      // Chromium's count of decoded audio bytes: the sound is decoded, not only the clock moving.
      decoded: /** @type {any} */ (a).webkitAudioDecodedByteCount ?? -1,
    })),
    chat: [...document.querySelectorAll('#chat-log > li')].map((li) => li.querySelector('.chat-text')?.textContent ?? ''),
    current: document.querySelector('#chapters button[aria-current="true"] .chapter-title')?.textContent ?? null,
    unlock: !document.getElementById('sound-unlock')?.hidden,
    error: document.getElementById('error')?.hidden ? null : document.getElementById('error')?.textContent,
  };
}

/** Moves the replay's position slider to `t` as a reader letting go of it would. */
async function seekTo(page, t) {
  await page.evaluate((value) => {
    const input = /** @type {HTMLInputElement} */ (document.getElementById('seek'));
    input.value = String(value);
    input.dispatchEvent(new Event('input', { bubbles: true }));
    input.dispatchEvent(new Event('change', { bubbles: true }));
  }, t);
}

/**
 * A playhead in [lo, hi] (multiples of STEP_MS) at least MARGIN_MS from every time in
 * `avoid`, chosen by `score` (highest wins); throws when there is none.
 */
function pickPlayhead(what, lo, hi, avoid, score) {
  let best = null;
  for (let t = Math.ceil(lo / STEP_MS) * STEP_MS; t <= hi; t += STEP_MS) {
    const margin = Math.min(Infinity, ...avoid.map((a) => Math.abs(a - t)));
    if (margin < MARGIN_MS) continue;
    const s = score(t, margin);
    if (!best || s > best.s) best = { t, s, margin };
  }
  if (!best) throw new Error(`no playhead for ${what} in [${lo}, ${hi}] ms at least ${MARGIN_MS} ms from ${JSON.stringify(avoid)}`);
  return best;
}

// ---- The test ----------------------------------------------------------------------------------

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'lectern-replay-e2e-'));
  const dataDir = join(tmp, 'data');
  const redClip = join(tmp, 'red.y4m');
  const blueClip = join(tmp, 'blue.y4m');
  // 640x360 as in run.mjs: wide enough for the client to send the camera as simulcast (two layers; one is recorded).
  writeY4m(redClip, RED, [640, 360]);
  writeY4m(blueClip, BLUE);
  const tone = join(tmp, 'tone.wav');
  writeToneWav(tone);
  let server = null;
  const browsers = [];
  /** The instructor's view of the room's events, with the server's `at`. */
  const events = [];
  const s = { events: () => events };
  /** Every chat message sent: text, sender, who it was for, deleted or not; `at` from the server. */
  const sent = [];
  /** Step times on the recording's clock (ms since the recording started). */
  const when = {};
  try {
    await check('server starts with the demo course; Chromium starts (instructor: red camera and a tone, students: blue camera)', async () => {
      server = await startServer(dataDir);
      s.course = server.output.match(/Demo course ".*" \(([^)\s]+)\)/)?.[1];
      if (!s.course) throw new Error('no demo course id in the server output');
      for (const [clip, wav] of [[redClip, tone], [blueClip, null]]) {
        browsers.push(await chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs(clip, wav) }));
      }
      return `${server.url}, course ${s.course}, Chromium ${browsers[0].version()}`;
    });

    // ---- 1. The class, recorded ------------------------------------------------------------
    await check('the instructor and student 1 join; the class starts; camera and microphone on; student 1 decodes the instructor (red)', async () => {
      s.instructor = await newPage(browsers[0], 'instructor', { peerConnections: true });
      keepEvents(s.instructor, events);
      await s.instructor.goto(server.links.instructor);
      // As run.mjs: "Enter class" once the panel lists the devices and previews the camera.
      await waitFor('the device panel with a camera preview', () => s.instructor.evaluate(() => {
        const video = /** @type {HTMLVideoElement} */ (document.getElementById('preview-video'));
        return !!document.querySelector('#camera-select option[value]:not([value=""])') && video.videoWidth > 0;
      }));
      await s.instructor.locator('#enter-class').click();
      await waitFor('the Start class button', () => s.instructor.evaluate(() => {
        const shown = (id) => { const e = document.getElementById(id); return !!e && !e.hidden && e.getClientRects().length > 0; };
        const r = { devices: shown('devices'), classroom: shown('classroom'), start: shown('start-class'), status: document.getElementById('status')?.dataset.state, state: document.getElementById('class-state')?.textContent };
        return r.start ? r : { ok: false, ...r };
      }));
      s.student1 = await newPage(browsers[1], 'student 1', { peerConnections: true });
      await s.student1.goto(server.links['student 1']);
      await waitFor('student 1 in the lobby', () => s.student1.locator('#lobby').isVisible());
      if (await s.instructor.locator('#recording-toggle').isVisible()) throw new Error('"Start recording" is offered before the class is live');
      await s.instructor.locator('#start-class').click();
      await waitFor('student 1 in the classroom', () => s.student1.locator('#classroom').isVisible());
      s.instructorId = await participantId(s.instructor, NAMES.instructor);
      s.student1Id = await participantId(s.instructor, NAMES.student1);
      await s.instructor.locator('#camera-toggle').click();
      await waitFor('the camera on', () => s.instructor.locator('#camera-toggle[aria-pressed="true"]').isVisible());
      await s.instructor.locator('#mic-toggle').click();
      await waitFor('the microphone on', () => s.instructor.locator('#mic-toggle[aria-pressed="true"]').isVisible());
      const { summary } = await decodes(s.student1, 'student 1', s.instructorId, RED, 10);
      return summary;
    });

    await check('a chat message before the recording (it will be in the recording\'s start snapshot)', async () => {
      await say(s, sent, 'instructor', 'Welcome! This class will be recorded.');
      return '';
    });

    await check('the instructor presses "Start recording": recording_started, the badge on both pages, the button reads "Stop recording"', async () => {
      if (await s.instructor.locator('#recording-badge').isVisible()) throw new Error('the badge is shown before recording');
      const toggle = s.instructor.locator('#staff-controls #recording-toggle[data-action="recording_toggle"]');
      if ((await toggle.textContent()) !== 'Start recording') throw new Error(`the toggle reads ${JSON.stringify(await toggle.textContent())}`);
      await toggle.click();
      const started = await waitFor('recording_started on the instructor\'s socket', () => events.find((e) => e.event.kind === 'recording_started'));
      s.recordingStartAt = started.at;
      if (started.event.by !== s.instructorId) throw new Error(`recording_started by ${started.event.by}, want ${s.instructorId}`);
      await badgesAre(s, ['instructor', 'student1'], true);
      await waitFor('the toggle to read "Stop recording"', async () => (await toggle.textContent()) === 'Stop recording' && (await toggle.getAttribute('aria-pressed')) === 'true');
      return `at ${new Date(started.at).toISOString()}`;
    });

    await check('student 2 joins after the recording started: the badge is there as the classroom first shows', async () => {
      s.student2 = await newPage(browsers[1], 'student 2', { peerConnections: true });
      await s.student2.goto(server.links['student 2']);
      // Read together: the first look that shows the classroom must show the badge too.
      const first = await waitFor('student 2 in the classroom', () => s.student2.evaluate(() => {
        const shown = (id) => { const e = document.getElementById(id); return !!e && !e.hidden && e.getClientRects().length > 0; };
        return shown('classroom') ? { classroom: true, badge: shown('recording-badge'), text: document.getElementById('recording-badge')?.textContent } : null;
      }), { interval: 20 });
      if (!first.badge) throw new Error(`the classroom is shown without the badge: ${JSON.stringify(first)}`);
      s.student2Id = await participantId(s.instructor, NAMES.student2);
      return `badge "${first.text}"`;
    });

    await check('chat before the presentation; student 2 (late) decodes the instructor (red)', async () => {
      await say(s, sent, 'student1', 'Before the presentation: hello from Ada');
      await say(s, sent, 'student2', 'Alan here: will the slides be shared?');
      // Also puts time between the last message and the presentation (a clean place to seek to).
      const { summary } = await decodes(s.student2, 'student 2', s.instructorId, RED, 20);
      return summary;
    });

    await check('the instructor gives the stage to student 1 (roster "Give stage"); student 1 turns the camera on; the instructor and student 2 decode it (blue)', async () => {
      await s.instructor.locator(`#roster button[data-action="stage_grant"][data-participant="${s.student1Id}"]`).click();
      const granted = await waitFor('stage_granted', () => events.find((e) => e.event.kind === 'stage_granted' && e.event.participant_id === s.student1Id));
      when.grant = granted.at - s.recordingStartAt;
      await waitFor('student 1 to get the camera button', () => s.student1.locator('#camera-toggle').isVisible());
      await s.student1.locator('#camera-toggle').click();
      const out = [];
      const seen = [];
      for (const who of ['student2', 'instructor']) {
        const { seenAt, trackId, summary } = await decodes(s[who], who, s.student1Id, BLUE, 10);
        if (who === 'student2') s.blueTrack = trackId;
        seen.push(seenAt);
        out.push(`${who} ${summary}`);
      }
      when.blue = Math.min(...seen) - s.recordingStartAt;
      return out.join('; ');
    });

    await check('chat during the presentation: a public message, one the instructor deletes, a private one to staff, a private reply to student 2; a stretch without chat; one more', async () => {
      await say(s, sent, 'student1', 'Slide 1: the thin lens equation');
      const oops = await say(s, sent, 'student1', 'Oops, that was for another window');
      await s.instructor.locator(`#chat-log li[data-seq="${oops.seq}"] button[data-action="chat_delete"]`).click();
      await waitFor('chat_deleted', () => events.find((e) => e.event.kind === 'chat_deleted' && e.event.seq === oops.seq));
      oops.deleted = true;
      for (const who of ['instructor', 'student1', 'student2']) {
        await waitFor(`${who}: the deleted message gone`, async () => !(await chatTexts(s[who])).includes(oops.text));
      }
      await s.student1.locator('#chat-to').selectOption('staff');
      await say(s, sent, 'student1', 'Ada to staff: may I have two more minutes?', { to: 'staff' });
      await s.student1.locator('#chat-to').selectOption('everyone');
      // "Reply" on student 2's message addresses the next one privately to them.
      const alan = sent.find((m) => m.from === 'student2');
      await s.instructor.locator(`#chat-log li[data-seq="${alan.seq}"] button[data-action="reply"]`).click();
      await waitFor('the chat addressed to student 2', async () => (await s.instructor.locator('#chat-to').inputValue()) === `participant:${s.student2Id}`);
      await say(s, sent, 'instructor', 'Grace to Alan: yes, after class', { to: 'student2' });
      await s.instructor.locator('#chat-to').selectOption('everyone');
      // A stretch of the presentation without chat (where the replay will seek to): student 2
      // decodes 30 more frames of student 1 before the next message.
      const decoded = await keepsDecoding(s.student2, 'student 2', s.blueTrack, 30);
      await say(s, sent, 'student1', 'Slide 2: real images and virtual images');
      return `deleted seq ${oops.seq}; student 2 ${decoded} before the last one`;
    });

    await check('the instructor takes the stage back: student 2 shows the instructor (red) again', async () => {
      await s.instructor.locator(`#roster button[data-action="stage_revoke"][data-participant="${s.student1Id}"]`).click();
      const revoked = await waitFor('stage_revoked', () => events.find((e) => e.event.kind === 'stage_revoked' && e.event.participant_id === s.student1Id));
      when.revoke = revoked.at - s.recordingStartAt;
      const { summary } = await decodes(s.student2, 'student 2', s.instructorId, RED, 10);
      return summary;
    });

    await check('more chat (each student saw only the private messages for them), then "Stop recording": recording_stopped, the badge gone on every page', async () => {
      await say(s, sent, 'instructor', 'Thanks, Ada. Back to the board.');
      await say(s, sent, 'student2', 'Thank you!');
      // In class, each saw what was for them: with the last message shown, the private ones were not.
      for (const who of ['student1', 'student2']) {
        await waitFor(`${who}: the last message shown`, async () => (await chatTexts(s[who])).includes('Thank you!'));
      }
      const [s1, s2] = [await chatTexts(s.student1), await chatTexts(s.student2)];
      if (!s1.includes('Ada to staff: may I have two more minutes?') || s1.includes('Grace to Alan: yes, after class')) throw new Error(`student 1's chat: ${JSON.stringify(s1)}`);
      if (s2.includes('Ada to staff: may I have two more minutes?') || !s2.includes('Grace to Alan: yes, after class')) throw new Error(`student 2's chat: ${JSON.stringify(s2)}`);
      await s.instructor.locator('#recording-toggle').click();
      const stopped = await waitFor('recording_stopped', () => events.find((e) => e.event.kind === 'recording_stopped'));
      if (stopped.event.reason !== 'stopped') throw new Error(`reason ${stopped.event.reason}`);
      when.stop = stopped.at - s.recordingStartAt;
      await badgesAre(s, ['instructor', 'student1', 'student2'], false);
      await waitFor('the toggle to read "Start recording"', async () => (await s.instructor.locator('#recording-toggle').textContent()) === 'Start recording');
      for (const m of sent) m.t = m.at - s.recordingStartAt;
      const chat = sent.map((m) => `${m.t}${m.deleted ? ' (deleted)' : ''}`).join(', ');
      return `on the recording's clock (ms): presentation granted ${when.grant}, student 1 decoded ${when.blue}, revoked ${when.revoke}, stop ${when.stop}; chat at ${chat}`;
    });

    // ---- 2. The recording ------------------------------------------------------------------
    await check('`lectern recording list --course <demo> --json` lists it; it becomes ready', async () => {
      const list = async () => JSON.parse(await runCli(dataDir, ['recording', 'list', '--course', s.course, '--json']));
      const ready = await waitFor('the recording to be ready', async () => {
        const all = await list();
        if (all.length !== 1) return { ok: false, all };
        return all[0].state === 'ready' ? all[0] : { ok: false, state: all[0].state };
      }, { timeout: 30_000 });
      s.recording = ready;
      if (ready.replay_path !== `/replay.html?recording=${ready.id}`) throw new Error(`replay_path ${ready.replay_path}`);
      if (ready.stop_reason !== 'stopped' || ready.interrupted) throw new Error(`stop_reason ${ready.stop_reason}, interrupted ${ready.interrupted}`);
      const length = ready.duration_ms - when.stop;
      if (Math.abs(length) > 2000) throw new Error(`duration ${ready.duration_ms} ms, the stop came at ${when.stop} ms`);
      return `${ready.id}: ${ready.state}, ${ready.duration_ms} ms, ${ready.bytes} bytes`;
    });

    await check('the admin API (key from `lectern apikey create`) lists the same recording', async () => {
      const key = (await runCli(dataDir, ['apikey', 'create', '--name', 'e2e'])).trim();
      const response = await fetch(`${server.url}/api/v1/courses/${encodeURIComponent(s.course)}/recordings`, { headers: { Authorization: `Bearer ${key}` } });
      if (response.status !== 200) throw new Error(`status ${response.status}: ${await response.text()}`);
      const list = await response.json();
      assertEqual(list.map((r) => [r.id, r.state, r.replay_path]), [[s.recording.id, 'ready', s.recording.replay_path]], 'the API\'s list');
      return `${list.length} recording`;
    });

    // ---- 3. The replay page, as student 2 and as the instructor ----------------------------
    for (const [viewer, browser] of [['student2', browsers[1]], ['instructor', browsers[0]]]) {
      await replayChecks(viewer, browser, server, s, sent, when);
    }
  } finally {
    if (results.some((r) => !r.ok)) {
      for (const { name, log } of pages) if (log.length) console.log(`--- ${name} console ---\n${log.slice(-40).join('\n')}`);
      if (server) console.log(`--- server output (last 6000 chars) ---\n${server.output.slice(-6000)}`);
    }
    for (const browser of browsers) await browser.close().catch(() => undefined);
    await stopServer(server);
    if (process.env.LECTERN_E2E_KEEP === '1') console.log(`kept ${tmp} (the server's data directory, recordings included)`);
    else rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * `who` sends `text` (to everyone, or as the chat box is addressed); waits until the server
 * accepted it and the instructor's socket carried it; remembers it with its `at` and `seq`.
 */
async function say(s, sent, who, text, { to = 'everyone' } = {}) {
  const page = s[who];
  await page.locator('#chat-input').fill(text);
  await page.locator('#chat-send').click();
  await waitFor(`${who}: the chat box to empty (message accepted)`, async () => (await page.locator('#chat-input').inputValue()) === '');
  // The instructor (staff) receives every message, private ones included.
  const line = await waitFor(`the chat event for ${JSON.stringify(text)}`, () => s.events().find((e) => e.event.kind === 'chat' && e.event.message?.text === text));
  const m = { text, from: who, to, at: line.at, seq: line.event.message.seq, deleted: false, t: 0 };
  sent.push(m);
  return m;
}

/** Whether `viewer` could read `m` in class (and so in the replay): staff all, students public, their own, theirs. */
function visibleTo(viewer, m) {
  if (m.deleted) return false;
  if (viewer === 'instructor' || m.from === viewer || m.to === 'everyone') return true;
  return m.to === viewer;
}

/** The texts `viewer` must see in the replay's chat at playhead `t`: sent at or before it (the recording's start for earlier ones). */
function expectedChat(sent, viewer, t) {
  return sent.filter((m) => visibleTo(viewer, m) && Math.max(0, m.t) <= t).map((m) => m.text);
}

async function replayChecks(viewer, browser, server, s, sent, when) {
  const name = `replay as ${viewer}`;
  const r = {};
  const state = () => r.page.evaluate(replayState);
  const colourOf = (who) => (who === s.student1Id ? BLUE : RED);
  /** Waits until the page, paused, shows `t`: not loading, `who`'s picture decoded in their colour, exactly the chat before `t`. */
  const settled = (what, t, who) => {
    const chat = expectedChat(sent, viewer, t);
    return waitFor(`${viewer}: ${what}`, async () => {
      const x = await state();
      const ok = x.playhead === t && !x.loading && x.main?.participant === who && close(x.main.rgb, colourOf(who)) &&
        JSON.stringify(x.chat) === JSON.stringify(chat);
      return ok ? x : { ok: false, ...x, want: { t, who, chat } };
    });
  };

  await check(`${name}: the page opens with their join token, ready; the token leaves the address bar`, async () => {
    const token = new URLSearchParams(new URL(server.links[viewer === 'student2' ? 'student 2' : 'instructor']).hash.slice(1)).get('token');
    if (!token) throw new Error('no token in the demo link');
    r.page = await newPage(browser, name);
    await r.page.goto(`${server.url}${s.recording.replay_path}#token=${token}`);
    const ready = await waitFor(`${viewer}: the replay page ready`, async () => {
      const x = await state();
      if (x.state === 'error') throw Object.assign(new Error(`the page says: ${x.error}`), { fatal: true });
      return x.state === 'ready' && x;
    });
    const hash = await r.page.evaluate(() => location.hash);
    if (hash) throw new Error(`the token is still in the address bar: ${hash}`);
    // The server's own view of the recording, read with the same token: where the segments are.
    r.answer = await r.page.evaluate(async ([id, token]) => (await fetch(`/replay/v1/recordings/${id}`, { headers: { Authorization: `Bearer ${token}` } })).json(), [s.recording.id, token]);
    const drift = r.answer.recording.started_at - s.recordingStartAt;
    if (Math.abs(drift) > 1000) throw new Error(`the recording started at ${r.answer.recording.started_at}, recording_started says ${s.recordingStartAt}`);
    const segments = r.answer.segments.map((g) => `${g.participant_id === s.instructorId ? 'instructor' : g.participant_id === s.student1Id ? 'student1' : g.participant_id} ${g.kind} ${g.offset_ms}+${g.duration_ms}`);
    return `viewer ${JSON.stringify(r.answer.viewer)}; segments: ${segments.join(', ')}; chat shown at 0: ${ready.chat.length}`;
  });

  await check(`${name}: the recording holds student 1's camera over the presentation and the instructor's camera and microphone`, async () => {
    const seg = (who, kind) => r.answer.segments.filter((g) => g.participant_id === who && g.kind === kind);
    const [ada] = seg(s.student1Id, 'video');
    if (!ada) throw new Error('no video segment of student 1');
    // The recorder took the same keyframe the pages decoded: its segment starts by the time they showed blue.
    if (ada.offset_ms > when.blue + 500 || ada.offset_ms < when.grant - 500) throw new Error(`student 1's video starts at ${ada.offset_ms} ms: granted ${when.grant}, decoded live ${when.blue}`);
    if (ada.offset_ms + ada.duration_ms < when.revoke - 1000) throw new Error(`student 1's video ends at ${ada.offset_ms + ada.duration_ms} ms, the stage was revoked at ${when.revoke}`);
    const video = seg(s.instructorId, 'video');
    const audio = seg(s.instructorId, 'audio');
    if (!video.length || !audio.length) throw new Error(`instructor segments: ${video.length} video, ${audio.length} audio`);
    r.instructorVideoFrom = Math.min(...video.map((g) => g.offset_ms));
    if (r.instructorVideoFrom >= when.grant) throw new Error(`the instructor's camera is recorded from ${r.instructorVideoFrom} ms only, after the presentation began`);
    // The recording's stage changes where the class saw them.
    const granted = r.answer.events.find((l) => l.type === 'event' && l.event.kind === 'stage_granted');
    if (!granted || Math.abs(granted.t - when.grant) > 1000) throw new Error(`stage_granted at ${granted?.t} on the recording's clock, the class saw it at ${when.grant}`);
    return `student 1 video ${ada.width}x${ada.height} ${ada.offset_ms}+${ada.duration_ms} ms; instructor video ${video.map((g) => `${g.width}x${g.height}`).join(', ')} from ${r.instructorVideoFrom} ms, ${audio.length} audio segment(s)`;
  });

  await check(`${name}: seeked into the presentation, the stage shows student 1 (blue; the instructor, red, in the small picture) and exactly the chat sent before`, async () => {
    const lo = Math.max(when.blue, when.grant) + 700;
    const hi = when.revoke - 700;
    const middle = (lo + hi) / 2;
    const avoid = sent.map((m) => m.t);
    // Near the middle, but after the deleted and the private messages (so their place in the
    // chat is checked here, and seeking back before the presentation drops messages).
    const reply = sent.find((m) => m.to === 'student2');
    // A second clear of every message if there is one, else the clearest; then the nearest the middle.
    const { t, margin } = pickPlayhead('the presentation', Math.max(lo, reply.t), hi, avoid, (t, m) => Math.min(m, 1000) * 1e4 - Math.abs(t - middle));
    r.mid = t;
    await seekTo(r.page, t);
    const x = await settled(`the stage at ${t} ms`, t, s.student1Id);
    // The instructor in the small picture meanwhile, as in class.
    const small = await waitFor(`${viewer}: the instructor (red) in the small picture`, async () => {
      const y = await state();
      return y.small?.participant === s.instructorId && close(y.small.rgb, RED) ? y.small : { ok: false, small: y.small };
    });
    return `at ${t} ms (span ${Math.round(lo)}-${hi}, ${margin} ms from any message): main rgb(${x.main.rgb}), small rgb(${small.rgb}); chat ${JSON.stringify(x.chat)}`;
  });

  await check(`${name}: axe-core finds no serious or critical violation on the replay page (seeked into the presentation: videos, chapters, chat)`, async () => {
    return axeCheck(r.page, `the replay page (${viewer})`);
  });

  await check(`${name}: playing from there, the stage video decodes frames (student 1, blue)`, async () => {
    const before = await state();
    await r.page.locator('#play').click();
    const later = await waitFor(`${viewer}: frames decoded rising while playing`, async () => {
      const x = await state();
      const ok = x.playing && x.main?.participant === s.student1Id && !x.main.paused && close(x.main.rgb, BLUE) && x.main.frames >= before.main.frames + 10;
      return ok ? x : { ok: false, ...x };
    });
    await r.page.locator('#play').click();
    await waitFor(`${viewer}: paused`, async () => !(await state()).playing);
    return `totalVideoFrames ${before.main.frames} -> ${later.main.frames}, playhead ${before.playhead} -> ${later.playhead} ms`;
  });

  await check(`${name}: the chapters list "Presentation: ${NAMES.student1}"; clicking it seeks there`, async () => {
    const chapters = await r.page.$$eval('#chapters button', (bs) => bs.map((b) => [Number(/** @type {HTMLElement} */ (b).dataset.t), b.querySelector('.chapter-title')?.textContent ?? '']));
    const titles = chapters.map(([, title]) => title);
    const chapter = chapters.find(([, title]) => title === `Presentation: ${NAMES.student1}`);
    if (!chapter) throw new Error(`chapters: ${JSON.stringify(chapters)}`);
    if (!titles.includes('Presentation ended')) throw new Error(`no "Presentation ended" in ${JSON.stringify(titles)}`);
    const [t] = chapter;
    await r.page.locator(`#chapters button[data-t="${t}"]`).click();
    const x = await waitFor(`${viewer}: the playhead at the chapter`, async () => {
      const y = await state();
      return y.playhead === t && y.current === chapter[1] && !y.loading ? y : { ok: false, ...y };
    });
    return `${JSON.stringify(titles)}; clicked: playhead ${x.playhead} ms (granted in class at ${when.grant} ms)`;
  });

  await check(`${name}: seeked back before the presentation, the stage shows the instructor (red) and the chat shrinks to exactly the earlier messages`, async () => {
    const lo = r.instructorVideoFrom + 700;
    const hi = when.grant - 700;
    const avoid = sent.map((m) => m.t);
    // As late as possible before the presentation (the most messages before it), clear of them all.
    const { t, margin } = pickPlayhead('before the presentation', lo, hi, avoid, (t, m) => expectedChat(sent, viewer, t).length * 1e6 + Math.min(m, 2000));
    r.before = t;
    await seekTo(r.page, r.mid);
    const mid = await settled(`back at ${r.mid} ms`, r.mid, s.student1Id);
    await seekTo(r.page, t);
    const x = await settled(`the stage at ${t} ms`, t, s.instructorId);
    if (x.chat.length >= mid.chat.length) throw new Error(`the chat did not shrink: ${mid.chat.length} -> ${x.chat.length}`);
    return `at ${t} ms (${margin} ms from any message): ${x.main.size} rgb(${x.main.rgb}); chat ${mid.chat.length} -> ${x.chat.length}: ${JSON.stringify(x.chat)}`;
  });

  await check(`${name}: at 2x the instructor's voice plays (<audio> not paused, at rate 2, currentTime and decoded bytes rising) in step with the clock`, async () => {
    await r.page.locator('#speed').selectOption('2');
    await r.page.locator('#play').click();
    const voice = (x) => x.audio.find((a) => a.participant === s.instructorId && a.role === 'audio');
    const first = await waitFor(`${viewer}: the instructor's <audio> playing`, async () => {
      const x = await state();
      if (x.unlock) throw Object.assign(new Error('the browser refused to play sound ("Turn sound on" shown)'), { fatal: true });
      const a = voice(x);
      return x.playing && !x.loading && a && !a.paused && a.rate === 2 ? { x, a, wall: Date.now() } : { ok: false, ...x };
    });
    const later = await waitFor(`${viewer}: the voice 2 s further on`, async () => {
      const x = await state();
      const a = voice(x);
      return x.playing && a && !a.paused && a.currentTime >= first.a.currentTime + 2 && a.decoded > first.a.decoded ? { x, a, wall: Date.now() } : { ok: false, ...x };
    });
    await r.page.locator('#play').click();
    await waitFor(`${viewer}: paused`, async () => !(await state()).playing);
    // In step: the element's position on the recording's clock against the playhead (same look).
    const segment = r.answer.segments.find((g) => String(g.n) === later.a.segment);
    const offBy = later.x.playhead - (segment.offset_ms + later.a.currentTime * 1000);
    if (Math.abs(offBy) > 1000) throw new Error(`the voice is ${Math.round(offBy)} ms off the clock`);
    const rate = (later.x.playhead - first.x.playhead) / (later.wall - first.wall);
    return `audio ${first.a.currentTime.toFixed(2)} -> ${later.a.currentTime.toFixed(2)} s, decoded ${first.a.decoded} -> ${later.a.decoded} bytes; clock ${first.x.playhead} -> ${later.x.playhead} ms (${rate.toFixed(2)}x wall time), voice ${Math.round(offBy)} ms off`;
  });

  await check(`${name}: at the end, the chat is every message ${viewer === 'instructor' ? 'but the deleted one (staff see the private ones)' : 'they could see in class: not the deleted one, not the one to staff, the reply to them'}`, async () => {
    const end = Number(await r.page.locator('#seek').getAttribute('max'));
    // The End key (the slider's steps may not reach the last millisecond).
    await r.page.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());
    await r.page.keyboard.press('End');
    const want = expectedChat(sent, viewer, end);
    const x = await waitFor(`${viewer}: the whole chat`, async () => {
      const y = await state();
      return y.playhead === end && JSON.stringify(y.chat) === JSON.stringify(want) ? y : { ok: false, ...y, want };
    });
    const deleted = sent.filter((m) => m.deleted).map((m) => m.text);
    if (x.chat.some((text) => deleted.includes(text))) throw new Error('a deleted message is shown');
    return `${x.chat.length} of ${sent.length} messages`;
  });

  await check(`${name}: ${viewer === 'instructor' ? 'the one-file export (the Download link) plays in Chromium: the stage video decodes, blue in the presentation, and the mixed voices decode' : 'no Download link (the demo course does not let students download)'}`, async () => {
    const link = r.page.locator('#download');
    if (viewer !== 'instructor') {
      if (await link.isVisible()) throw new Error('a student sees the Download link');
      return 'hidden';
    }
    const href = await link.getAttribute('href');
    if (!href) throw new Error('no Download link for staff');
    // A fresh <video> element plays the downloaded file from the presentation's middle.
    await r.page.evaluate(({ href, at }) => {
      const v = document.createElement('video');
      v.id = 'export-check';
      v.muted = false;
      v.src = href;
      v.currentTime = at / 1000;
      document.body.append(v);
      v.addEventListener('loadedmetadata', () => { v.currentTime = at / 1000; }, { once: true });
      v.addEventListener('seeked', () => { void v.play(); }, { once: true });
    }, { href, at: r.mid });
    const got = await waitFor(`${viewer}: the export decodes video and audio`, () => r.page.evaluate(() => {
      const v = /** @type {HTMLVideoElement} */ (document.getElementById('export-check'));
      if (!v || v.error) return { ok: false, error: v?.error?.code };
      const frames = v.getVideoPlaybackQuality().totalVideoFrames;
      const audio = /** @type {any} */ (v).webkitAudioDecodedByteCount ?? 0;
      let rgb = null;
      if (v.videoWidth > 0) {
        const c = document.createElement('canvas');
        [c.width, c.height] = [v.videoWidth, v.videoHeight];
        const g = c.getContext('2d', { willReadFrequently: true });
        if (g) {
          g.drawImage(v, 0, 0);
          const d = g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
          rgb = [d[0], d[1], d[2]];
        }
      }
      const out = { frames, audio, rgb, t: v.currentTime, duration: v.duration, size: `${v.videoWidth}x${v.videoHeight}` };
      return frames >= 10 && audio > 0 && !v.paused ? out : { ok: false, ...out };
    }));
    if (!close(got.rgb, BLUE)) throw new Error(`the export shows rgb(${got.rgb}) at ${r.mid} ms, want about ${BLUE} (student 1 presenting)`);
    await r.page.evaluate(() => document.getElementById('export-check')?.remove());
    return `${got.frames} frames decoded (${got.size}, rgb(${got.rgb})), ${got.audio} bytes of audio decoded, at ${got.t.toFixed(1)} of ${Number(got.duration).toFixed(1)} s`;
  });

  await check(`${name}: no errors on the page`, async () => {
    const log = pages.find((p) => p.name === name)?.log ?? [];
    const errors = log.filter((line) => line.startsWith('[pageerror]') || line.startsWith('[error]') || line.startsWith('[http'));
    if (errors.length) throw new Error(errors.join('\n'));
    await r.page.context().close();
    return '';
  });
}

await finish(results, main);
