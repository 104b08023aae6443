// Issue 16's class-wide controls end to end in a real browser: mute all, allow everyone to speak,
// seminar mode and its gallery (small layers, pages, hidden pages paused, the speaker, a pin),
// a student's camera stopped and asked for, network quality, the attendance panel. The server
// binary with the demo class, Debian's Chromium driven by playwright-core, fake cameras playing
// solid-colour clips (instructor red, students blue). See README.md.
//
// Exit code 0 when every check passed; the last line printed is `N passed, N failed`.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import {
  BLUE, CHROMIUM, RED, axeCheck, checklist, chromiumArgs, close, delay, participantId, recordPeerConnections, startClientProxy, startServer, stopServer,
  videoState, waitFor, writeToneWav, writeY4m,
  finish,
} from './harness.mjs';

const CLIENT_FROM_DISK = process.env.LECTERN_E2E_CLIENT_FROM_DISK === '1';
const SCREENSHOTS = join(dirname(fileURLToPath(import.meta.url)), 'screenshots');

const pages = /** @type {{name: string, page: import('playwright-core').Page, log: string[]}[]} */ ([]);

/** Opens a join link at 1280x800; waits for `ready`. */
async function openPage(browser, name, link, ready) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.addInitScript(recordPeerConnections);
  const page = await context.newPage();
  const log = [];
  page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
  page.on('dialog', (d) => void d.accept()); // a native confirm() (e.g. "End class") is accepted
  pages.push({ name, page, log });
  await page.goto(link);
  await waitFor(`${name}: ${ready}`, () => page.locator(ready).isVisible());
  return page;
}

/** In the page: inbound video stats of the live peer connections (one track, or all). */
async function inboundVideo(page, trackId = null) {
  return page.evaluate(async (trackId) => {
    const out = [];
    for (const pc of window.__lecternPeerConnections) {
      if (pc.connectionState === 'closed') continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video' && (!trackId || s.trackIdentifier === trackId)) {
          out.push({ trackId: s.trackIdentifier, frames: s.framesDecoded ?? 0, packets: s.packetsReceived ?? 0, width: s.frameWidth ?? 0 });
        }
      });
    }
    return out;
  }, trackId);
}

/** In the page: the track ids of the live peer connections' video receivers (transceivers receiving now). */
async function receivingVideo(page) {
  return page.evaluate(() => window.__lecternPeerConnections.filter((pc) => pc.connectionState !== 'closed').flatMap((pc) =>
    pc.getTransceivers()
      .filter((t) => t.receiver.track.kind === 'video' && (t.currentDirection === 'recvonly' || t.currentDirection === 'sendrecv'))
      .map((t) => t.receiver.track.id)));
}

/** In the page: inbound audio packets of one track (-1 without stats yet). */
async function inboundAudioPackets(page, trackId) {
  return page.evaluate(async (trackId) => {
    for (const pc of window.__lecternPeerConnections) {
      if (pc.connectionState === 'closed') continue;
      for (const s of (await pc.getStats()).values()) {
        if (s.type === 'inbound-rtp' && s.kind === 'audio' && s.trackIdentifier === trackId) return s.packetsReceived ?? 0;
      }
    }
    return -1;
  }, trackId);
}

const tileSelector = (id) => `#gallery-tiles > li.tile[data-participant="${id}"] video`;

/** The tiles drawn on the gallery's current page, in order. */
async function tilesShown(page) {
  return page.evaluate(() => [...document.querySelectorAll('#gallery-tiles > li.tile')].map((li) => /** @type {HTMLElement} */ (li).dataset.participant ?? ''));
}

/**
 * A remote participant's tile decodes: the expected colour, and its track's framesDecoded rising.
 * Returns the track id and the received frame width.
 */
async function tileDecodes(page, who, id, colour, frames = 10) {
  const shown = await waitFor(`${who}: ${id}'s tile showing ${colour === RED ? 'red' : 'blue'}`, () => videoState(page, tileSelector(id)).then((v) =>
    v.width > 0 && v.trackId && close(v.rgb, colour) ? v : { ok: false, ...v }), { timeout: 30_000 });
  const [first] = await waitFor(`${who}: inbound stats of ${id}'s tile`, () => inboundVideo(page, shown.trackId).then((s) => s.length && s));
  const later = await waitFor(`${who}: framesDecoded of ${id}'s tile to rise by ${frames} from ${first.frames}`, async () => {
    const [now] = await inboundVideo(page, shown.trackId);
    return now && now.frames >= first.frames + frames ? now : { ok: false, now };
  }, { timeout: 30_000 });
  return { trackId: shown.trackId, rgb: shown.rgb, frames: `${first.frames} -> ${later.frames}`, width: later.width };
}

/** framesDecoded of a track stays flat over a 2 s window (or the track is gone). */
async function staysFlat(page, who, trackId) {
  return waitFor(`${who}: framesDecoded of ${trackId} to stay flat for 2 s`, async () => {
    const [a] = await inboundVideo(page, trackId);
    await delay(2000); // one sampling window, inside the deadline
    const [b] = await inboundVideo(page, trackId);
    return !a || !b || (a.frames === b.frames && a.packets === b.packets) ? { a, b } : { ok: false, a, b };
  });
}

/** Waits until the page's live region (`#announcer`) says something matching `pattern`. */
async function announced(page, who, pattern) {
  return waitFor(`${who}'s live region to announce ${pattern}`, () => page.evaluate((source) => {
    const text = document.getElementById('announcer')?.textContent ?? '';
    return new RegExp(source, 'i').test(text) ? text : { ok: false, text };
  }, pattern.source));
}

/** The page's local track of a kind that a live sender still sends, or null. */
async function sendingTrack(page, kind) {
  return page.evaluate((kind) => {
    for (const pc of window.__lecternPeerConnections) {
      if (pc.connectionState === 'closed') continue;
      const sender = pc.getSenders().find((s) => s.track?.kind === kind && s.track.readyState === 'live');
      if (sender?.track) return sender.track.id;
    }
    return null;
  }, kind);
}

/** A student page hears `id`: its `<audio>` for them has packetsReceived rising. */
async function hears(page, who, id) {
  const trackId = await waitFor(`${who}: an <audio> for ${id}`, () => page.evaluate((id) => {
    const element = /** @type {HTMLAudioElement | null} */ (document.querySelector(`#stage-audio audio[data-participant="${id}"]`));
    return /** @type {MediaStream | null} */ (element?.srcObject ?? null)?.getAudioTracks()[0]?.id ?? null;
  }, id));
  const first = await waitFor(`${who}: inbound audio stats of ${id}`, async () => { const n = await inboundAudioPackets(page, trackId); return n >= 0 ? { n } : null; });
  const later = await waitFor(`${who}: audio packetsReceived of ${id} to rise by 25 from ${first.n}`, async () => {
    const n = await inboundAudioPackets(page, trackId);
    return n >= first.n + 25 ? { n } : { ok: false, n };
  });
  return `${first.n} -> ${later.n}`;
}

const pressed = (page, selector) => page.locator(selector).getAttribute('aria-pressed');

const { results, check } = checklist();

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'lectern-seminar-'));
  const redClip = join(tmp, 'red.y4m');
  const blueClip = join(tmp, 'blue.y4m');
  writeY4m(redClip, RED, [640, 360]); // wide enough for simulcast: tiles get the 320 layer
  writeY4m(blueClip, BLUE);
  const tone = join(tmp, 'tone.wav');
  writeToneWav(tone);
  mkdirSync(SCREENSHOTS, { recursive: true });
  let server = null;
  let proxy = null;
  const browsers = [];
  const s = {};
  try {
    await check('server starts and prints its URL and demo links', async () => {
      server = await startServer(join(tmp, 'data'), process.env.E2E_LOG ? { LECTERN_LOG_FILTER: process.env.E2E_LOG } : {});
      if (CLIENT_FROM_DISK) {
        proxy = await startClientProxy(server.url);
        for (const key of Object.keys(server.links)) server.links[key] = server.links[key].replace(server.url, proxy.url);
        server.url = proxy.url;
      }
      return `${server.url}${CLIENT_FROM_DISK ? ' (client from disk)' : ''}`;
    });
    await check('Chromium starts (instructor: red camera and a tone; students: blue camera and a tone)', async () => {
      for (const clip of [redClip, blueClip]) {
        browsers.push(await chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs(clip, tone) }));
      }
      return browsers[0].version();
    });
    await check('the instructor starts the class with camera and microphone on; two students join (student 2 with one gallery tile per page)', async () => {
      s.instructor = await openPage(browsers[0], 'instructor', server.links.instructor, '#devices');
      await s.instructor.locator('#enter-class').click();
      await waitFor('Start class', () => s.instructor.locator('#start-class').isVisible());
      await s.instructor.locator('#start-class').click();
      await waitFor('End class', () => s.instructor.locator('#end-class').isVisible());
      for (const source of ['camera', 'mic']) {
        await waitFor(`#${source}-toggle`, () => s.instructor.locator(`#${source}-toggle`).isVisible());
        await s.instructor.locator(`#${source}-toggle`).click();
        await waitFor(`${source} on`, async () => (await pressed(s.instructor, `#${source}-toggle`)) === 'true');
      }
      s.student1 = await openPage(browsers[1], 'student 1', server.links['student 1'], '#classroom');
      const paged = new URL(server.links['student 2']);
      paged.searchParams.set('gallery_page_size', '1');
      s.student2 = await openPage(browsers[1], 'student 2', paged.toString(), '#classroom');
      s.instructorId = await participantId(s.instructor, 'Instructor Grace');
      s.student1Id = await participantId(s.instructor, 'Student Ada');
      s.student2Id = await participantId(s.instructor, 'Student Alan');
      // Lecture: the stage, no gallery; students have no camera button.
      const stage = await waitFor('student 1: the instructor on the stage, 640 wide', async () => {
        const v = await videoState(s.student1, '#stage-video');
        const [inbound] = v.trackId ? await inboundVideo(s.student1, v.trackId) : [];
        return v.participant === s.instructorId && inbound?.width === 640 ? inbound : { ok: false, v, inbound };
      }, { timeout: 30_000 });
      for (const who of ['student1', 'student2']) {
        if (await s[who].locator('#gallery').isVisible()) throw new Error(`${who}: the gallery is shown in a lecture`);
        if (await s[who].locator('#camera-toggle').isVisible()) throw new Error(`${who}: a camera button in a lecture`);
      }
      return `student 1 receives the instructor's ${stage.width} layer on the stage`;
    });

    // ---- Mute all, allow everyone to speak --------------------------------------------------

    await check('"Mute all": a student allowed to speak, microphone on, is muted (button gone, track stopped, announced)', async () => {
      await s.instructor.locator(`#roster button[data-action="allow_speak"][data-participant="${s.student1Id}"]`).click();
      await waitFor('student 1: the microphone button', () => s.student1.locator('#mic-toggle').isVisible());
      await s.student1.locator('#mic-toggle').click();
      await waitFor('student 1: sending audio', () => sendingTrack(s.student1, 'audio'));
      await s.instructor.locator('#mute-all').click();
      await waitFor('student 1: the microphone button to go', async () => !(await s.student1.locator('#mic-toggle').isVisible()));
      await waitFor('student 1: no live audio sender', async () => (await sendingTrack(s.student1, 'audio')) === null);
      const said = await announced(s.student1, 'student 1', /muted everyone/);
      await waitFor("the instructor's roster: both students muted", () => s.instructor.evaluate((ids) =>
        ids.every((id) => document.querySelector(`#roster > li[data-participant="${id}"] .badge-muted`)), [s.student1Id, s.student2Id]));
      if (!(await s.instructor.locator('#mic-toggle').isVisible())) throw new Error('the instructor lost the microphone');
      return `announced "${said}"`;
    });
    await check('"Allow everyone to speak" (pressed): a student never called on unmutes and is heard by the others; off again, the microphones go', async () => {
      await s.instructor.locator('#speak-all').click();
      await waitFor('#speak-all pressed', async () => (await pressed(s.instructor, '#speak-all')) === 'true');
      await announced(s.student2, 'student 2', /everyone may speak/);
      for (const who of ['student1', 'student2']) await waitFor(`${who}: the microphone button`, () => s[who].locator('#mic-toggle').isVisible());
      await s.student2.locator('#mic-toggle').click();
      const byInstructor = await hears(s.instructor, 'instructor', s.student2Id);
      const byStudent1 = await hears(s.student1, 'student 1', s.student2Id);
      await s.instructor.locator('#speak-all').click();
      await waitFor('#speak-all not pressed', async () => (await pressed(s.instructor, '#speak-all')) === 'false');
      for (const who of ['student1', 'student2']) await waitFor(`${who}: the microphone button to go`, async () => !(await s[who].locator('#mic-toggle').isVisible()));
      await waitFor('student 2: no live audio sender', async () => (await sendingTrack(s.student2, 'audio')) === null);
      return `student 2 heard: instructor packets ${byInstructor}, student 1 ${byStudent1}`;
    });

    // ---- Seminar mode and the gallery ----------------------------------------------------------

    await check('seminar mode: every page shows the gallery, students get a camera button, the stage folds away', async () => {
      await s.instructor.locator('#mode-toggle').click();
      await waitFor('#mode-toggle pressed', async () => (await pressed(s.instructor, '#mode-toggle')) === 'true');
      for (const who of ['instructor', 'student1', 'student2']) await waitFor(`${who}: the gallery`, () => s[who].locator('#gallery').isVisible());
      for (const who of ['student1', 'student2']) {
        await waitFor(`${who}: the camera button`, () => s[who].locator('#camera-toggle').isVisible());
        await waitFor(`${who}: the stage's picture folded away`, async () => !(await s[who].locator('.stage-view').isVisible()));
      }
      return await announced(s.student1, 'student 1', /seminar/);
    });
    await check('students turn their cameras on: the instructor and student 1 decode every tile (red instructor, blue students) at the small layer', async () => {
      for (const who of ['student1', 'student2']) {
        await s[who].locator('#camera-toggle').click();
        await waitFor(`${who}: camera on`, async () => (await pressed(s[who], '#camera-toggle')) === 'true');
      }
      const out = [];
      for (const [who, id, colour] of [
        ['instructor', s.student1Id, BLUE], ['instructor', s.student2Id, BLUE],
        ['student1', s.instructorId, RED], ['student1', s.student2Id, BLUE],
      ]) {
        const tile = await tileDecodes(s[who], who, id, colour);
        out.push(`${who} <- ${id}: ${tile.width} wide, frames ${tile.frames}`);
        if (colour === RED) s.instructorTileWidth = tile.width;
      }
      // The instructor sends 640 and 320; a tile is about 200 pixels wide: the 320 layer.
      const small = await waitFor("student 1: the instructor's tile at the 320 layer", async () => {
        const v = await videoState(s.student1, tileSelector(s.instructorId));
        const [inbound] = await inboundVideo(s.student1, v.trackId);
        return inbound?.width === 320 ? inbound : { ok: false, inbound };
      });
      for (const who of ['instructor', 'student1']) await s[who].screenshot({ path: join(SCREENSHOTS, `seminar-${who}.png`), fullPage: true });
      const own = await waitFor('student 1: its own tile (local camera)', () => videoState(s.student1, tileSelector(s.student1Id)).then((v) => (v.width > 0 && close(v.rgb, BLUE) ? v : { ok: false, ...v })));
      const axe = [];
      for (const who of ['instructor', 'student1']) axe.push(await axeCheck(s[who], `the seminar gallery (${who})`));
      return `${out.join('; ')}; instructor tile on student 1 receives ${small.width}; own tile ${own.width} wide; ${axe.join('; ')}`;
    });
    await check('paging (1 tile per page on student 2): page 1 shows the instructor and student 1\'s video is paused; Next shows student 1 and pauses the instructor', async () => {
      const page = s.student2;
      await waitFor('student 2: "Page 1 of 3"', async () => (await page.locator('#gallery-nav').isVisible()) && /1 of 3/.test((await page.locator('#gallery-page').textContent()) ?? ''));
      const first = await tilesShown(page);
      if (JSON.stringify(first) !== JSON.stringify([s.instructorId])) throw new Error(`page 1 shows ${first}`);
      const instructorTile = await tileDecodes(page, 'student 2', s.instructorId, RED);
      // Student 1's camera is received (a transceiver for it) but, paused from the start, may
      // never have had a packet (then it has no inbound-rtp stats at all: flat too).
      const others = await waitFor("student 2: a receiver for student 1's camera", () => receivingVideo(page).then((ids) => {
        const rest = ids.filter((id) => id !== instructorTile.trackId);
        return rest.length ? rest : null;
      }));
      const hidden = [];
      for (const trackId of others) hidden.push(await staysFlat(page, 'student 2', trackId));
      await page.locator('#gallery-next').click();
      await waitFor('student 2: "Page 2 of 3" with student 1', async () => /2 of 3/.test((await page.locator('#gallery-page').textContent()) ?? '') &&
        JSON.stringify(await tilesShown(page)) === JSON.stringify([s.student1Id]));
      const student1Tile = await tileDecodes(page, 'student 2', s.student1Id, BLUE);
      const paused = await staysFlat(page, 'student 2', instructorTile.trackId);
      await page.locator('#gallery-next').click();
      await waitFor('student 2: "Page 3 of 3" with its own tile', async () => JSON.stringify(await tilesShown(page)) === JSON.stringify([s.student2Id]));
      if ((await page.locator('#gallery-next').getAttribute('aria-disabled')) !== 'true') throw new Error('Next is not disabled on the last page');
      await page.locator('#gallery-previous').click();
      await page.locator('#gallery-previous').click();
      await waitFor('student 2: back on page 1', async () => JSON.stringify(await tilesShown(page)) === JSON.stringify([s.instructorId]));
      await tileDecodes(page, 'student 2', s.instructorId, RED);
      return `page 1: student 1 flat at ${hidden.map((h) => h.b?.frames ?? 'no packets').join(',')} frames; page 2: student 1 frames ${student1Tile.frames}, instructor flat at ${paused.b?.frames}; back on page 1 the instructor decodes again`;
    });
    await check('the speaking instructor\'s tile is highlighted', async () => {
      const shown = await waitFor("student 1: the instructor's tile marked as speaking", () => s.student1.evaluate((id) => {
        const tile = document.querySelector(`#gallery-tiles > li.tile[data-participant="${id}"]`);
        const badge = tile?.querySelector('.badge-speaking');
        return tile?.classList.contains('speaking') && badge && !(/** @type {HTMLElement} */ (badge).hidden) ? badge.textContent : null;
      }, s.instructorId));
      return `"${shown}"`;
    });
    await check('a pinned tile goes on the stage (student 1 pins student 2: blue on #stage-video); unpinned, the stage folds away again', async () => {
      const page = s.student1;
      await page.locator(`#gallery-tiles button[data-action="gallery_pin"][data-participant="${s.student2Id}"]`).click();
      const stage = await waitFor('student 1: student 2 on the stage, blue', async () => {
        const v = await videoState(page, '#stage-video');
        return (await page.locator('.stage-view').isVisible()) && v.participant === s.student2Id && close(v.rgb, BLUE) ? v : { ok: false, ...v };
      });
      await page.locator(`#gallery-tiles button[data-action="gallery_pin"][data-participant="${s.student2Id}"]`).click();
      await waitFor("student 1: the stage's picture folded away", async () => !(await page.locator('.stage-view').isVisible()));
      return `stage ${stage.width} wide rgb(${stage.rgb})`;
    });

    // ---- Cameras stopped and asked for ----------------------------------------------------------

    await check('"Stop camera" on student 1: its camera goes off (announced), its tile leaves the other pages', async () => {
      await s.instructor.locator(`#roster button[data-action="camera_stop"][data-participant="${s.student1Id}"]`).click();
      await waitFor('student 1: the camera button to go', async () => !(await s.student1.locator('#camera-toggle').isVisible()));
      await waitFor('student 1: no live video sender', async () => (await sendingTrack(s.student1, 'video')) === null);
      const said = await announced(s.student1, 'student 1', /turned your camera off/);
      await waitFor("the instructor's gallery without student 1", async () => !(await tilesShown(s.instructor)).includes(s.student1Id));
      return `announced "${said}"`;
    });
    await check('"Ask to turn camera on": student 1 sees the prompt (announced), "Turn on" publishes, the instructor decodes it again', async () => {
      await s.instructor.locator(`#roster button[data-action="camera_request"][data-participant="${s.student1Id}"]`).click();
      await waitFor('student 1: the prompt', () => s.student1.locator('#camera-prompt').isVisible());
      const text = await s.student1.locator('#camera-prompt-text').textContent();
      if (!/instructor asks you to turn your camera on/i.test(text ?? '')) throw new Error(`the prompt says ${JSON.stringify(text)}`);
      await announced(s.student1, 'student 1', /asks you to turn your camera on/);
      const axe = await axeCheck(s.student1, 'the camera prompt');
      await s.student1.locator('#camera-prompt-on').click();
      await waitFor('student 1: camera on, prompt gone, focus on the camera button', async () => (await pressed(s.student1, '#camera-toggle')) === 'true' &&
        !(await s.student1.locator('#camera-prompt').isVisible()) && (await s.student1.evaluate(() => document.activeElement?.id)) === 'camera-toggle');
      const tile = await tileDecodes(s.instructor, 'instructor', s.student1Id, BLUE);
      return `prompt "${text}"; ${axe}; instructor decodes student 1 again, frames ${tile.frames}`;
    });

    // ---- Network quality -----------------------------------------------------------------------

    await check("network quality: the instructor's roster shows a value for each student, and its own", async () => {
      const rows = await waitFor('a quality indicator in both students\' rows', () => s.instructor.evaluate((ids) => {
        const out = [];
        for (const id of ids) {
          const net = /** @type {HTMLElement | null} */ (document.querySelector(`#roster > li[data-participant="${id}"] .net`));
          const text = net?.textContent ?? '';
          if (!net || !/^(good|fair|poor)$/.test(net.dataset.quality ?? '') || !/Network: (good|fair|poor)/.test(text)) return null;
          out.push(`${id}: ${text}`);
        }
        return out;
      }, [s.student1Id, s.student2Id]), { timeout: 30_000 });
      const mine = await waitFor('the instructor\'s own indicator', async () => {
        const text = (await s.instructor.locator('#my-network').isVisible()) ? await s.instructor.locator('#my-network').textContent() : '';
        return /Your network: (good|fair|poor)/.test(text ?? '') ? text : null;
      });
      return `${rows.join(', ')}; "${mine}"`;
    });

    // ---- Attendance ----------------------------------------------------------------------------

    await check('attendance panel: everyone present; after student 2 leaves, its row says Left; Escape closes it', async () => {
      const page = s.instructor;
      await page.locator('#attendance-open').click();
      const rows = () => page.evaluate(() => [...document.querySelectorAll('#attendance-rows > tr')].map((tr) => ({
        id: /** @type {HTMLElement} */ (tr).dataset.participant ?? '',
        cells: [...tr.children].map((c) => c.textContent ?? ''),
      })));
      const all = [s.instructorId, s.student1Id, s.student2Id];
      const before = await waitFor('three rows, all Present', () => rows().then((r) =>
        r.length === 3 && all.every((id) => r.find((x) => x.id === id)?.cells[2] === 'Present') ? r : { ok: false, r }));
      const axe = await axeCheck(page, 'the attendance panel');
      // Student 2 leaves (a confirmation, if the page asks, is accepted).
      await s.student2.locator('#leave').click();
      await waitFor('student 2: left', async () => {
        if (await s.student2.locator('#notice').isVisible()) return true;
        const confirm = s.student2.getByRole('dialog').getByRole('button', { name: /^leave/i });
        if (await confirm.isVisible().catch(() => false)) await confirm.click();
        return false;
      });
      const after = await waitFor("student 2's row: Left, with a time", () => rows().then((r) => {
        const row = r.find((x) => x.id === s.student2Id);
        return row?.cells[2] === 'Left' && /\d/.test(row.cells[4]) && r.find((x) => x.id === s.student1Id)?.cells[2] === 'Present' ? r : { ok: false, r };
      }));
      await page.locator('#attendance-heading').focus();
      await page.keyboard.press('Escape');
      await waitFor('the panel closed, focus back on its button', () => page.evaluate(() =>
        document.getElementById('attendance')?.hidden && document.activeElement?.id === 'attendance-open'));
      return `${before.map((r) => r.cells.slice(0, 3).join('/')).join('; ')} -> ${after.find((x) => x.id === s.student2Id)?.cells.join('/')}; ${axe}`;
    });
    await check('back to lecture mode: student 1\'s camera goes off and its gallery closes', async () => {
      await s.instructor.locator('#mode-toggle').click();
      await waitFor('#mode-toggle not pressed', async () => (await pressed(s.instructor, '#mode-toggle')) === 'false');
      await waitFor('student 1: the camera button to go', async () => !(await s.student1.locator('#camera-toggle').isVisible()));
      await waitFor('student 1: no live video sender', async () => (await sendingTrack(s.student1, 'video')) === null);
      await waitFor('student 1: no gallery, the stage back', async () => !(await s.student1.locator('#gallery').isVisible()) && (await s.student1.locator('.stage-view').isVisible()));
      return await announced(s.student1, 'student 1', /lecture/);
    });
    await check('the instructor turns camera and microphone off, then the camera on again: student 1, who received nothing else, shows it again (neither page\'s connection breaks when every track it had goes)', async () => {
      const before = await waitFor('student 1: the instructor on the stage', () => videoState(s.student1, '#stage-video')
        .then((v) => (v.width > 0 && close(v.rgb, RED) ? v : { ok: false, ...v })));
      for (const sel of ['#camera-toggle', '#mic-toggle']) {
        if ((await pressed(s.instructor, sel)) === 'true') await s.instructor.locator(sel).click();
        await waitFor(`instructor: ${sel} off`, async () => (await pressed(s.instructor, sel)) === 'false');
      }
      // Student 1 receives nothing now: every transceiver it had is inactive (the SFU keeps the
      // m-lines for the next tracks) or stopped, and its own are parked.
      const stopped = await waitFor('student 1: no receiving transceiver left', () => s.student1.evaluate(() => {
        const pcs = /** @type {any} */ (window).__lecternPeerConnections ?? [];
        const pc = pcs.filter((p) => p.connectionState !== 'closed').at(-1);
        if (!pc) return null;
        const ts = pc.getTransceivers().filter((t) => t.direction !== 'sendonly');
        const all = ts.map((t) => `${t.mid}:${t.receiver.track.kind}:${t.direction}/${t.currentDirection}`).join(" ");
        return ts.length > 0 && ts.every((t) => t.currentDirection === 'stopped' || t.currentDirection === 'inactive')
          ? `${ts.length} inactive or stopped (${all}), signalling ${pc.signalingState}` : { ok: false, all, state: pc.signalingState, conn: pcs.map((p) => `${p.connectionState}/${p.iceConnectionState}/${p.sctp?.state ?? '-'}`).join(' ') };
      }));
      await s.instructor.locator('#camera-toggle').click();
      // The SFU sends it on the m-line it had (the same receiver track), which the client shows
      // as a new stream.
      const v = await waitFor('student 1: the instructor red on the stage again', () => videoState(s.student1, '#stage-video')
        .then((v) => (v.width > 0 && v.streamId !== before.streamId && close(v.rgb, RED) ? v : { ok: false, ...v })), { timeout: 20_000 });
      return `${stopped}; then a new stream${v.trackId === before.trackId ? ' on the same m-line' : ''}, ${v.width} wide, red`;
    });
  } finally {
    if (results.some((r) => !r.ok)) {
      for (const { name, log } of pages) if (log.length) console.log(`--- ${name} console ---\n${log.slice(-40).join('\n')}`);
      if (server) console.log(`--- server output (last 4000 chars) ---\n${server.output.slice(process.env.E2E_LOG ? -400000 : -4000)}`);
    }
    for (const browser of browsers) await browser.close().catch(() => undefined);
    proxy?.server.closeAllConnections();
    proxy?.server.close();
    await stopServer(server);
    rmSync(tmp, { recursive: true, force: true });
  }
}

await finish(results, main);
