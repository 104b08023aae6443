// The replay page in a real browser (Debian Chromium through playwright-core from tests/e2e):
//   node web-client/test/replay-page.mjs        (exits non-zero when a check fails)
//
// Chromium itself makes the recording's segments (MediaRecorder: a red canvas for the
// instructor's camera, a blue one for a student's presentation, an oscillator for the
// instructor's microphone); replay-fixture.mjs serves them with Range support, the page's files
// and a fake `/replay/v1/recordings/<id>` answer. The page is then driven as a reader would
// (chapters, the slider, the keyboard, play at 2x) and checked: the decoded colour of the stage,
// exactly the chat sent before the playhead, chapters, the media in step, errors, phone width.
// Needs /usr/bin/chromium (or CHROMIUM=...) and `cd tests/e2e && npm ci`.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFixtureServer } from './replay-fixture.mjs';
import { REPLAY_STRINGS as S } from '../strings.js';

const here = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** A folder for screenshots of the page (wide and phone width), when set. */
const SHOTS = process.env.LECTERN_REPLAY_SCREENSHOTS ?? '';
/** The flags of /work/shared/TESTING.md that matter for a page without WebRTC. */
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1',
];

let chromium;
try {
  ({ chromium } = createRequire(resolve(here, '../../tests/e2e/package.json'))('playwright-core'));
} catch {
  console.error('playwright-core is missing: run `cd tests/e2e && npm ci` first.');
  process.exit(2);
}

// ---- Waiting and checking ----------------------------------------------------------------------

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns something truthy (returned) or the deadline passes (throws). */
async function waitFor(what, probe, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (error) {
      if (error?.fatal) throw error;
      last = error instanceof Error ? error.message : error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await delay(100);
  }
}

let passed = 0;
async function check(name, body) {
  const started = Date.now();
  try {
    const note = await body();
    passed += 1;
    console.log(`ok   ${name} (${Date.now() - started} ms)${note ? `: ${note}` : ''}`);
  } catch (error) {
    console.log(`FAIL ${name}\n     ${error instanceof Error ? error.message : error}`);
    throw error;
  }
}

function assertEqual(actual, expected, what) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

// ---- The recording -----------------------------------------------------------------------------

const STARTED_AT = Date.UTC(2026, 0, 12, 9, 0, 0);
const ADA_VIDEO_AT = 3000;
const TRICKY_TEXT = '<img src=x onerror="document.title=1"> is this text?';

function person(id, name, role) {
  return {
    id, name, role, connected: true, in_lobby: false, hard_muted: false, can_speak: role !== 'student',
    speak_granted: false, presenter: false, media: { mic: role !== 'student', camera: role !== 'student', screen: false },
  };
}

function chatLine(t, seq, from, fromName, fromRole, text, to = { kind: 'everyone' }) {
  return { t, type: 'event', seq: 100 + seq, at: STARTED_AT + t, event: { kind: 'chat', message: { seq, from, from_name: fromName, from_role: fromRole, to, text, sent_at: STARTED_AT + t } } };
}

function event(t, kind, fields) {
  return { t, type: 'event', seq: 1000 + t, at: STARTED_AT + t, event: { kind, ...fields } };
}

/** The answer the server would give the instructor, around segments of the given lengths. */
function makeAnswer(ms) {
  const segments = [
    { n: 1, file: 'seg-1.webm', participant_id: 'p_iris', kind: 'video', track: '1', offset_ms: 0, duration_ms: ms.red, width: 320, height: 240, open: false },
    { n: 2, file: 'seg-2.webm', participant_id: 'p_iris', kind: 'audio', track: '2', offset_ms: 0, duration_ms: ms.audio, open: false },
    { n: 3, file: 'seg-3.webm', participant_id: 'p_ada', kind: 'video', track: '3', offset_ms: ADA_VIDEO_AT, duration_ms: ms.blue, width: 320, height: 240, open: false },
  ];
  const events = [
    {
      t: 0, type: 'start', started_at: STARTED_AT,
      snapshot: {
        room_id: 'physics-1', title: 'Optics', class_state: 'live', roster: [person('p_iris', 'Iris', 'instructor'), person('p_ada', 'Ada', 'student')],
        hand_queue: [], presenter: null, chat_locked: false, seq: 99,
        chat: [{ seq: 1, from: 'p_iris', from_name: 'Iris', from_role: 'instructor', to: { kind: 'everyone' }, text: 'Welcome to optics', sent_at: STARTED_AT - 60_000 }],
      },
    },
    chatLine(500, 2, 'p_iris', 'Iris', 'instructor', 'Today: lenses'),
    event(1000, 'participant_joined', { participant: person('p_bob', 'Bob', 'student') }),
    chatLine(1500, 3, 'p_bob', 'Bob', 'student', 'hello from Bob'),
    event(2000, 'called_on', { participant_id: 'p_bob', by: 'p_iris' }),
    chatLine(2500, 4, 'p_bob', 'Bob', 'student', TRICKY_TEXT, { kind: 'staff' }),
    // Ada has the stage 0.2 s before her camera's first frame: the instructor stays on stage till then.
    event(2800, 'stage_granted', { participant_id: 'p_ada', by: 'p_iris' }),
    chatLine(4000, 5, 'p_ada', 'Ada', 'student', 'Slide one'),
    { t: 4100, type: 'active_speaker', participant_id: 'p_iris' },
    chatLine(6000, 6, 'p_iris', 'Iris', 'instructor', 'Thanks, Ada'),
    event(7000, 'stage_revoked', { participant_id: 'p_ada', by: 'p_iris' }),
    event(7500, 'class_ended', { by: 'p_iris' }),
    { t: 7600, type: 'stop', reason: 'class_ended' },
  ];
  const duration = Math.max(ms.red, ms.audio, ADA_VIDEO_AT + ms.blue, 7600);
  return {
    recording: {
      id: 'rec_test', course_id: 'physics', room: 'physics-1', title: 'Optics, week 2', state: 'ready',
      started_at: STARTED_AT, ended_at: STARTED_AT + duration, duration_ms: duration, downloadable: true,
    },
    viewer: { participant_id: 'p_iris', role: 'instructor' },
    segments,
    gaps: [{ n: 1, at_ms: 5000, duration_ms: 300, reason: 'queue_full' }],
    events,
    download_url: '/replay/v1/recordings/rec_test/download?grant=d',
  };
}

/** The chat the page must show at `t`: worked out here from the log, not by the page's model. */
function expectedChat(answer, t) {
  const start = answer.events[0];
  return [
    ...start.snapshot.chat.map((m) => m.seq),
    ...answer.events.filter((l) => l.type === 'event' && l.event.kind === 'chat' && l.t <= t).map((l) => l.event.message.seq),
  ];
}

/** Who the stage must show at `t`: Ada while she has the stage and her video runs, else Iris while hers does. */
function expectedStage(answer, t) {
  const [iris, , ada] = answer.segments;
  const runs = (seg) => t >= seg.offset_ms && t < seg.offset_ms + seg.duration_ms;
  if (t >= 2800 && t < 7000 && runs(ada)) return 'p_ada';
  return runs(iris) ? 'p_iris' : null;
}

/** Runs in the blank fixture page: records a red and a blue canvas and a tone; base64 WebM files. */
async function recordSegments({ redMs, blueMs, audioMs }) {
  const toBase64 = async (blob) => {
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let binary = '';
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(binary);
  };
  const record = async (stream, mimeType, ms) => {
    const recorder = new MediaRecorder(stream, { mimeType, videoBitsPerSecond: 400_000 });
    const chunks = [];
    recorder.ondataavailable = (e) => e.data.size && chunks.push(e.data);
    const stopped = new Promise((r) => (recorder.onstop = r));
    const began = performance.now();
    recorder.start(200);
    await new Promise((r) => setTimeout(r, ms)); // the length of the clip itself
    recorder.stop();
    await stopped;
    return { ms: Math.floor(performance.now() - began), base64: await toBase64(new Blob(chunks)) };
  };
  const canvasClip = (colour, ms) => {
    const canvas = document.createElement('canvas');
    [canvas.width, canvas.height] = [320, 240];
    const g = canvas.getContext('2d');
    const paint = () => {
      g.fillStyle = colour;
      g.fillRect(0, 0, 320, 240);
    };
    paint();
    const timer = setInterval(paint, 40); // a canvas stream has frames only when painted
    return record(canvas.captureStream(25), 'video/webm;codecs=vp8', ms).finally(() => clearInterval(timer));
  };
  const audioClip = async (ms) => {
    const context = new AudioContext();
    await context.resume();
    const oscillator = context.createOscillator();
    const destination = context.createMediaStreamDestination();
    oscillator.connect(destination);
    oscillator.start();
    return record(destination.stream, 'audio/webm;codecs=opus', ms).finally(() => context.close());
  };
  const [red, blue, audio] = await Promise.all([canvasClip('#ff0000', redMs), canvasClip('#0000ff', blueMs), audioClip(audioMs)]);
  return { red, blue, audio };
}

/** Runs in the replay page: what it shows now, read in one go (so the parts agree). */
function pageState() {
  const root = document.documentElement;
  const pixel = (video) => {
    if (!video || video.readyState < 2 || !video.videoWidth) return null;
    const canvas = document.createElement('canvas');
    [canvas.width, canvas.height] = [8, 8];
    const g = canvas.getContext('2d', { willReadFrequently: true });
    g.drawImage(video, 0, 0, 8, 8);
    const [r, gr, b] = g.getImageData(4, 4, 1, 1).data;
    return r > 170 && gr < 90 && b < 90 ? 'red' : b > 170 && r < 90 && gr < 90 ? 'blue' : `rgb(${r},${gr},${b})`;
  };
  const video = (role) => {
    const v = document.querySelector(`#stage-view video[data-role="${role}"]`);
    return v && {
      participant: v.dataset.participant, segment: v.dataset.segment, colour: pixel(v), paused: v.paused,
      currentTime: v.currentTime, rate: v.playbackRate, readyState: v.readyState,
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
      segment: a.dataset.segment, role: a.dataset.role, paused: a.paused, currentTime: a.currentTime, rate: a.playbackRate,
    })),
    chat: [...document.querySelectorAll('#chat-log > li')].map((li) => Number(li.dataset.seq)),
    stageName: document.getElementById('stage-name')?.textContent,
    stageEmpty: !document.getElementById('stage-empty')?.hidden,
    current: document.querySelector('#chapters button[aria-current="true"] .chapter-title')?.textContent ?? null,
    announced: document.getElementById('announcer')?.textContent,
    error: document.getElementById('error')?.hidden ? null : document.getElementById('error')?.textContent,
  };
}

// ---- The test ------------------------------------------------------------------------------------

const tmp = mkdtempSync(join(tmpdir(), 'lectern-replay-'));
let browser;
let fixture;
let failed = false;
try {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  // A blank page on the fixture's origin records the segments (with a click first: sound).
  fixture = await startFixtureServer(new Map());
  let answer;
  const files = new Map();
  await check('Chromium records the segments: a red and a blue VP8 canvas, an Opus tone', async () => {
    const page = await browser.newPage();
    await page.goto(`${fixture.url}/fixture/blank.html`);
    await page.click('#b');
    const clips = await page.evaluate(recordSegments, { redMs: 8000, blueMs: 4000, audioMs: 8000 });
    await page.close();
    for (const [n, clip] of [[1, clips.red], [2, clips.audio], [3, clips.blue]]) {
      const path = join(tmp, `seg-${n}.webm`);
      const bytes = Buffer.from(clip.base64, 'base64');
      if (bytes.length < 1000 || bytes.readUInt32BE(0) !== 0x1a45dfa3) throw new Error(`segment ${n} is not a WebM file (${bytes.length} bytes)`);
      writeFileSync(path, bytes);
      files.set(n, path);
    }
    answer = makeAnswer({ red: clips.red.ms, blue: clips.blue.ms, audio: clips.audio.ms });
    writeFileSync(join(tmp, 'answer.json'), JSON.stringify(answer, null, 2));
    return `red ${clips.red.ms} ms, blue ${clips.blue.ms} ms, tone ${clips.audio.ms} ms`;
  });
  await fixture.close();
  // The same recording twice more: as after a crash (two segment files end 3 s before the
  // manifest says), and behind a slow link.
  const cut = makeAnswer({ red: answer.segments[0].duration_ms + 3000, blue: answer.segments[2].duration_ms, audio: answer.segments[1].duration_ms + 3000 });
  const tokens = { token: 'good-token', otherCourseToken: 'other-course' };
  fixture = await startFixtureServer(new Map([
    ['rec_test', { answer, files, ...tokens }],
    ['rec_cut', { answer: cut, files, ...tokens }],
    ['rec_slow', { answer: makeAnswer({ red: answer.segments[0].duration_ms, blue: answer.segments[2].duration_ms, audio: answer.segments[1].duration_ms }), files, ...tokens, segmentDelayMs: 700 }],
  ]));
  const duration = answer.recording.duration_ms;
  const base = `${fixture.url}/replay.html`;

  await check('errors are said in words: no link, bad token, other course, no such recording, network', async () => {
    const cases = [
      [`${base}?recording=rec_test`, S.linkMissing],
      [`${base}#token=good-token`, S.recordingMissing],
      [`${base}?recording=rec_test#token=nope`, S.unauthorized],
      [`${base}?recording=rec_test#token=other-course`, S.forbidden],
      [`${base}?recording=rec_gone#token=good-token`, S.notFound],
      [`${base}?recording=rec_drop#token=good-token`, S.networkError],
    ];
    for (const [url, text] of cases) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(url);
      const state = await waitFor(`the error of ${url}`, async () => {
        const s = await page.evaluate(pageState);
        return s.state === 'error' && s;
      });
      assertEqual(state.error, text, url);
      if (!(await page.isVisible('#error[role="alert"]')) || (await page.isVisible('#replay'))) throw new Error(`${url}: error not shown alone`);
      await context.close();
    }
    return `${cases.length} cases`;
  });

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && pageErrors.push(m.text()));
  const state = () => page.evaluate(pageState);
  /** Waits until the page, paused, shows `t`: the stage's colours decoded and the chat exactly right. */
  const settled = async (what, t) => {
    const who = expectedStage(answer, t);
    const colour = who === 'p_ada' ? 'blue' : 'red';
    const chat = expectedChat(answer, t);
    return waitFor(what, async () => {
      const s = await state();
      const stage = who === null ? s.main === null && s.stageEmpty : s.main?.participant === who && s.main.colour === colour;
      const ok = s.playhead === t && stage && !s.loading &&
        JSON.stringify(s.chat) === JSON.stringify(chat) &&
        (who !== 'p_ada' || (s.small?.participant === 'p_iris' && s.small.colour === 'red'));
      if (!ok) throw new Error(`${JSON.stringify(s)}; want ${JSON.stringify({ t, who, colour, chat })}`);
      return s;
    });
  };
  const seekWithSlider = (t) =>
    page.evaluate((value) => {
      const input = document.getElementById('seek');
      input.value = String(value);
      input.dispatchEvent(new Event('input', { bubbles: true }));
      input.dispatchEvent(new Event('change', { bubbles: true }));
    }, t);
  const blur = () => page.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());

  await check('the page loads the recording; the token leaves the address bar and survives a reload', async () => {
    await page.goto(`${base}?recording=rec_test#token=good-token`);
    await waitFor('the page ready', async () => (await state()).state === 'ready');
    const where = await page.evaluate(() => [location.hash, location.search, sessionStorage.getItem('lectern.replay-token')]);
    assertEqual(where, ['', '?recording=rec_test', 'good-token'], 'address and storage');
    await page.reload();
    await waitFor('the page ready after a reload', async () => (await state()).state === 'ready');
    const head = await page.evaluate(() => [document.getElementById('replay-title').textContent, document.title,
      document.getElementById('download').hidden, document.getElementById('download').getAttribute('href')]);
    assertEqual(head, ['Optics, week 2', 'Optics, week 2 · Lectern', false, `${fixture.url}/replay/v1/recordings/rec_test/download?grant=d`], 'title and download link');
  });

  await check('chapters from the events, gaps included', async () => {
    const chapters = await page.$$eval('#chapters button', (buttons) => buttons.map((b) => [Number(b.dataset.t), b.querySelector('.chapter-title')?.textContent]));
    assertEqual(chapters, [
      [0, 'Class started'], [2000, 'Bob called on'], [2800, 'Presentation: Ada'], [5000, 'Recording gap'],
      [7000, 'Presentation ended'], [7500, 'Class ended'],
    ], 'chapters');
  });

  await check('at 0:00 the instructor is on stage (red decoded), with only the chat from before the recording', async () => {
    const s = await settled('the stage at 0', 0);
    assertEqual([s.main.segment, s.small, s.stageName, s.current], ['1', null, 'Iris', 'Class started'], 'stage at 0');
    return `pixel ${s.main.colour}`;
  });

  await check('chapter "Presentation: Ada" seeks to 2.8 s: Ada has no video yet, so the instructor stays', async () => {
    await page.click('#chapters button[data-t="2800"]');
    const s = await settled('the stage at 2.8 s', 2800);
    assertEqual(s.current, 'Presentation: Ada', 'current chapter');
    await waitFor('the seek announced', async () => (await state()).announced === '0:02, Presentation: Ada');
    // The private message is marked, and its text is text (no element made of it).
    const row = await page.$eval('#chat-log li[data-seq="4"]', (li) => [li.className, li.querySelector('.private-tag')?.textContent,
      li.querySelector('.chat-text')?.textContent, li.querySelectorAll('img').length, document.title]);
    assertEqual(row, ['private', 'privately to staff', TRICKY_TEXT, 0, 'Optics, week 2 · Lectern'], 'the private row');
  });

  await check('the slider to 3.5 s: Ada presents (blue), the instructor in the small picture (red)', async () => {
    await seekWithSlider(3500);
    const s = await settled('the stage at 3.5 s', 3500);
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'replay-wide.png'), fullPage: true });
    return `main ${s.main.participant} ${s.main.colour}, small ${s.small.participant} ${s.small.colour}`;
  });

  await check('keyboard: Home, End and the arrows seek backward and forward with exactly the chat before the playhead', async () => {
    await blur();
    await page.keyboard.press('Home');
    await settled('Home', 0);
    await page.keyboard.press('End');
    await settled('End', duration);
    await page.keyboard.press('ArrowLeft');
    await settled('End, then 5 s back', duration - 5000);
    await page.keyboard.press('ArrowLeft');
    await settled('10 s back (clamped to 0)', 0);
    await page.keyboard.press('ArrowRight');
    const s = await settled('5 s on', 5000);
    assertEqual(s.current, 'Recording gap', 'the gap is the chapter at 5 s');
    await seekWithSlider(6900);
    await settled('the slider to 6.9 s', 6900);
    await seekWithSlider(1400);
    const back = await settled('the slider back to 1.4 s', 1400);
    assertEqual(back.chat, [1, 2], 'chat at 1.4 s');
  });

  await check('Space plays and pauses; at 2x from 3.5 s every element plays in step with the clock', async () => {
    await seekWithSlider(3500);
    await settled('3.5 s', 3500);
    await page.selectOption('#speed', '2');
    await blur();
    await page.keyboard.press('Space');
    // In one look: the clock moved on, and each element is where the clock says (within 0.5 s).
    const s = await waitFor('playing past 5 s', async () => {
      const s = await state();
      return s.playing && !s.loading && s.playhead > 5200 && s.playhead < 6900 && s;
    });
    const mainAt = (s.playhead - ADA_VIDEO_AT) / 1000;
    const audioAt = s.playhead / 1000;
    const tone = s.audio.find((a) => a.segment === '2');
    if (!tone || tone.paused || tone.rate !== 2 || Math.abs(tone.currentTime - audioAt) > 0.5) throw new Error(`tone out of step: ${JSON.stringify(tone)} at ${s.playhead}`);
    if (s.main.paused || s.main.rate !== 2 || Math.abs(s.main.currentTime - mainAt) > 0.5) throw new Error(`video out of step: ${JSON.stringify(s.main)} at ${s.playhead}`);
    assertEqual(s.chat, expectedChat(answer, s.playhead), `chat while playing at ${s.playhead}`);
    await page.keyboard.press('Space');
    const paused = await waitFor('paused', async () => {
      const p = await state();
      return !p.playing && p;
    });
    const later = await state();
    if (later.playhead !== paused.playhead || !later.audio.every((a) => a.paused) || !later.main.paused) throw new Error(`not paused: ${JSON.stringify(later)}`);
    return `tone at ${tone.currentTime.toFixed(2)} s, video at ${s.main.currentTime.toFixed(2)} s, clock ${s.playhead} ms`;
  });

  await check('playing on, the stage goes back to the instructor (red) when the stage is revoked, then the end', async () => {
    // How often the tone is seeked to keep it in step, while nobody seeks (reported, not judged).
    await page.evaluate(() => {
      window.toneSeeks = 0;
      document.querySelector('#replay-audio audio[data-segment="2"]')?.addEventListener('seeking', () => (window.toneSeeks += 1));
    });
    await blur();
    await page.keyboard.press('Space');
    const s = await waitFor('the instructor back on stage while playing', async () => {
      const s = await state();
      return s.playing && s.playhead > 7100 && s.main?.participant === 'p_iris' && s.main.colour === 'red' && s;
    });
    await waitFor('the end', async () => {
      const e = await state();
      return !e.playing && e.playhead === duration && e.announced === S.announceEnd && JSON.stringify(e.chat) === JSON.stringify(expectedChat(answer, duration));
    });
    return `red at ${s.playhead} ms; the tone was seeked ${await page.evaluate(() => window.toneSeeks)} times to stay in step`;
  });

  await check('segments were fetched with HTTP Range requests', async () => {
    const ranged = fixture.log.filter((e) => e.path.includes('/segments/') && e.range && e.status === 206);
    if (ranged.length === 0) throw new Error(JSON.stringify(fixture.log.filter((e) => e.path.includes('/segments/'))));
    return `${ranged.length} range requests`;
  });

  await check('labels and landmarks: main, headings, the labelled slider, a polite live region', async () => {
    const a11y = await page.evaluate(() => ({
      main: document.querySelectorAll('main').length,
      h2: [...document.querySelectorAll('main h2')].length,
      slider: [document.getElementById('seek').labels?.[0]?.textContent, document.getElementById('seek').getAttribute('aria-valuetext')],
      speed: document.getElementById('speed').labels?.[0]?.textContent,
      live: [document.getElementById('announcer').getAttribute('aria-live'), document.getElementById('announcer').getAttribute('role')],
    }));
    const total = `${Math.floor(duration / 60_000)}:${String(Math.floor(duration / 1000) % 60).padStart(2, '0')}`;
    assertEqual(a11y, { main: 1, h2: 4, slider: ['Position', `${total} of ${total}`], speed: 'Speed', live: ['polite', 'status'] }, 'accessibility');
  });

  await check('phone width: one column, nothing wider than the screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const layout = await waitFor('one column', () => page.evaluate(() => {
      const box = (id) => document.getElementById(id).getBoundingClientRect();
      const [player, chapters, chat] = [box('player'), box('chapters-panel'), box('replay-chat')];
      const one = Math.abs(player.left - chat.left) < 1 && Math.abs(player.left - chapters.left) < 1 && chat.top >= player.bottom;
      return one && document.documentElement.scrollWidth <= window.innerWidth && { width: Math.round(player.width) };
    }));
    if (SHOTS) {
      await seekWithSlider(3500);
      await settled('3.5 s at phone width', 3500);
      await page.screenshot({ path: join(SHOTS, 'replay-phone.png'), fullPage: true });
    }
    return `panels ${layout.width} px wide`;
  });

  await check('segment files shorter than the manifest says (a crash): their last frame, and the clock goes on', async () => {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${base}?recording=rec_cut#token=good-token`);
    await waitFor('the page ready', async () => (await state()).state === 'ready');
    const fileEnd = answer.segments[0].duration_ms;
    await seekWithSlider(Math.ceil((fileEnd + 1500) / 100) * 100);
    await waitFor('the last red frame, not loading', async () => {
      const s = await state();
      return s.main?.participant === 'p_iris' && s.main.colour === 'red' && !s.loading;
    });
    await seekWithSlider(Math.floor((fileEnd - 500) / 100) * 100);
    await blur();
    await page.keyboard.press('Space');
    const s = await waitFor('the clock past the end of the files', async () => {
      const s = await state();
      return s.playhead > fileEnd + 1000 && s;
    });
    await page.keyboard.press('Space');
    return `playhead ${s.playhead} ms, files end at ${fileEnd} ms`;
  });

  await check('behind a slow link the clock waits for the media, saying "Loading…"', async () => {
    await page.goto(`${base}?recording=rec_slow#token=good-token`);
    await waitFor('the page ready', async () => (await state()).state === 'ready');
    await blur();
    await page.keyboard.press('Space');
    const waiting = await state();
    const shown = await page.isVisible('#buffering');
    if (!waiting.loading || waiting.playhead !== 0 || !shown) throw new Error(`not waiting: ${JSON.stringify(waiting)}, note shown: ${shown}`);
    // Until it first has loaded, the clock holds.
    let looks = 0;
    await waitFor('loaded', async () => {
      const s = await state();
      looks += 1;
      if (s.loading && s.playhead !== 0) throw Object.assign(new Error(`the clock moved while loading: ${s.playhead}`), { fatal: true });
      return !s.loading;
    });
    const moving = await waitFor('the clock running once loaded', async () => {
      const s = await state();
      return !s.loading && s.playhead > 500 && s;
    });
    assertEqual([moving.main?.participant, moving.main?.paused, await page.isVisible('#buffering')], ['p_iris', false, false], 'after loading');
    await page.keyboard.press('Space');
    return `held for ${looks} looks`;
  });

  await check('no errors on the page', async () => {
    if (pageErrors.length) throw new Error(pageErrors.join('; '));
  });
  await context.close();
} catch {
  failed = true;
} finally {
  await browser?.close();
  await fixture?.close();
  if (process.env.LECTERN_KEEP_FIXTURE) console.log(`fixture kept in ${tmp} (node web-client/test/replay-fixture.mjs ${tmp})`);
  else rmSync(tmp, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed ? 1 : 0} failed`);
process.exit(failed ? 1 : 0);
