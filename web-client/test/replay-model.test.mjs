// Unit tests of replay-model.js (node --test): the stage, the voices, the chat, the roster and
// the chapters at any playhead, from an API answer built here as the server sends it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplayModel, ReplayFormatError, parseAnswer, formatClock, lastAtOrBefore } from '../replay-model.js';

const STARTED_AT = 1_765_000_000_000;

/** A participant as the protocol's roster has it. */
function person(id, name, role) {
  return {
    id, name, role, connected: true, in_lobby: false, hard_muted: false, can_speak: role !== 'student',
    speak_granted: false, presenter: false, media: { mic: false, camera: false, screen: false },
  };
}

function chat(seq, from, fromName, fromRole, text, to = { kind: 'everyone' }) {
  return { seq, from, from_name: fromName, from_role: fromRole, to, text, sent_at: STARTED_AT + seq };
}

let nextSeg = 1;
function segment(participant_id, kind, offset_ms, duration_ms, track = `${participant_id}-${kind}`) {
  const n = nextSeg++;
  return {
    n, file: `seg-${n}.webm`, participant_id, kind, track, offset_ms, duration_ms,
    bytes: 1000, open: false, url: `/replay/v1/recordings/rec_t/segments/${n}?grant=g`,
  };
}

/** An answer: the start line (snapshot), then `lines` as `[t, event]` or whole lines. */
function answer({ roster, presenter = null, snapshotChat = [], classState = 'live', lines = [], segments = [], gaps = [], viewer = { participant_id: 'p_iris', role: 'instructor' }, duration_ms = 0 }) {
  let seq = 100;
  const events = [
    {
      t: 0, type: 'start', started_at: STARTED_AT,
      snapshot: {
        room_id: 'r', title: 'Physics', class_state: classState, roster, hand_queue: [], presenter,
        chat_locked: false, chat: snapshotChat, seq: 99,
      },
    },
    ...lines.map((l) => (Array.isArray(l) ? { t: l[0], type: 'event', seq: ++seq, at: STARTED_AT + l[0], event: l[1] } : l)),
  ];
  return {
    recording: {
      id: 'rec_t', course_id: 'c', room: 'r', title: 'Physics', state: 'ready', started_at: STARTED_AT,
      ended_at: STARTED_AT + duration_ms, duration_ms, downloadable: true,
    },
    viewer, segments, gaps, events, download_url: null,
  };
}

const IRIS = person('p_iris', 'Iris', 'instructor');
const TOM = person('p_tom', 'Tom', 'ta');
const ADA = person('p_ada', 'Ada', 'student');
const BOB = person('p_bob', 'Bob', 'student');

test('the stage follows stage_granted and stage_revoked, with the instructor as small picture', () => {
  const irisCam = segment('p_iris', 'video', 0, 60_000);
  // Ada is given the stage at 10 s; her camera starts sending half a second later.
  const adaCam = segment('p_ada', 'video', 10_500, 19_000);
  const model = ReplayModel.fromAnswer(answer({
    roster: [IRIS, ADA],
    segments: [irisCam, adaCam],
    lines: [
      [10_000, { kind: 'stage_granted', participant_id: 'p_ada', by: 'p_iris' }],
      [29_000, { kind: 'stage_revoked', participant_id: 'p_ada', by: 'p_iris' }],
    ],
  }));
  const at = (t) => {
    const s = model.stageAt(t);
    return [s.participantId, s.main?.n ?? null, s.small?.n ?? null];
  };
  assert.deepEqual(at(0), ['p_iris', irisCam.n, null]);
  assert.deepEqual(at(9_999), ['p_iris', irisCam.n, null]);
  // The presenter without video yet: the instructor stays on stage.
  assert.deepEqual(at(10_000), ['p_iris', irisCam.n, null]);
  assert.deepEqual(at(10_499), ['p_iris', irisCam.n, null]);
  assert.deepEqual(at(10_500), ['p_ada', adaCam.n, irisCam.n]);
  assert.deepEqual(at(20_000), ['p_ada', adaCam.n, irisCam.n]);
  assert.deepEqual(at(28_999), ['p_ada', adaCam.n, irisCam.n]);
  // Revoked: back to the instructor, although Ada's camera still runs until 29.5 s.
  assert.deepEqual(at(29_000), ['p_iris', irisCam.n, null]);
  assert.deepEqual(at(29_400), ['p_iris', irisCam.n, null]);
  // After the instructor's camera ends nobody is on stage.
  assert.deepEqual(at(60_000), [null, null, null]);
  assert.equal(model.presenterAt(9_999), null);
  assert.equal(model.presenterAt(10_000), 'p_ada');
  assert.equal(model.presenterAt(29_000), null);
});

test('a presenter whose video ends falls back to the instructor; with no staff video the stage is empty', () => {
  const irisCam = segment('p_iris', 'video', 5_000, 10_000);
  const adaCam = segment('p_ada', 'video', 0, 3_000);
  const model = ReplayModel.fromAnswer(answer({ roster: [IRIS, ADA], presenter: 'p_ada', segments: [irisCam, adaCam] }));
  assert.equal(model.stageAt(1_000).participantId, 'p_ada');
  assert.equal(model.stageAt(1_000).small, null, 'the instructor has no video yet');
  assert.deepEqual(model.stageAt(4_000), { participantId: null, main: null, small: null });
  assert.equal(model.stageAt(6_000).participantId, 'p_iris', 'presenter without video: the instructor');
  assert.equal(model.stageAt(6_000).main, irisCam);
});

test("of one person's videos the newest is the main picture, the other the small one", () => {
  const adaCam = segment('p_ada', 'video', 0, 30_000, 'cam');
  const adaScreen = segment('p_ada', 'video', 5_000, 10_000, 'screen');
  const irisCam = segment('p_iris', 'video', 0, 30_000);
  const model = ReplayModel.fromAnswer(answer({ roster: [IRIS, ADA], presenter: 'p_ada', segments: [irisCam, adaCam, adaScreen] }));
  assert.deepEqual([model.stageAt(1_000).main, model.stageAt(1_000).small], [adaCam, irisCam]);
  assert.deepEqual([model.stageAt(6_000).main, model.stageAt(6_000).small], [adaScreen, adaCam]);
  assert.deepEqual([model.stageAt(15_000).main, model.stageAt(15_000).small], [adaCam, irisCam]);
});

test('the instructor goes before a TA; the TA when only they show video', () => {
  // Tom (TA) is first in the roster: the role decides, not the order.
  const tomCam = segment('p_tom', 'video', 0, 20_000);
  const irisCam = segment('p_iris', 'video', 5_000, 5_000);
  const model = ReplayModel.fromAnswer(answer({ roster: [TOM, IRIS], segments: [tomCam, irisCam] }));
  assert.equal(model.stageAt(1_000).participantId, 'p_tom');
  assert.equal(model.stageAt(5_000).participantId, 'p_iris');
  assert.equal(model.stageAt(9_999).participantId, 'p_iris');
  assert.equal(model.stageAt(10_000).participantId, 'p_tom');
});

test('every voice running at t plays; segments run on [offset, offset + duration)', () => {
  const irisMic = segment('p_iris', 'audio', 0, 10_000);
  const bobMic1 = segment('p_bob', 'audio', 2_000, 2_000);
  // Bob again after being granted speech a second time: a new segment.
  const bobMic2 = segment('p_bob', 'audio', 8_000, 4_000);
  const model = ReplayModel.fromAnswer(answer({ roster: [IRIS, BOB], segments: [bobMic2, irisMic, bobMic1] }));
  const at = (t) => model.audioAt(t).map((s) => s.n);
  assert.deepEqual(at(0), [irisMic.n]);
  assert.deepEqual(at(2_000), [irisMic.n, bobMic1.n]);
  assert.deepEqual(at(3_999), [irisMic.n, bobMic1.n]);
  assert.deepEqual(at(4_000), [irisMic.n]);
  assert.deepEqual(at(9_000), [irisMic.n, bobMic2.n]);
  assert.deepEqual(at(10_000), [bobMic2.n]);
  assert.deepEqual(at(12_000), []);
  assert.deepEqual(model.videoAt(3_000), []);
  assert.equal(model.durationMs, 12_000);
});

test('seeking backward and forward gives exactly the chat sent at or before the playhead', () => {
  const before = [chat(1, 'p_iris', 'Iris', 'instructor', 'from before the recording')];
  // 5,000 lines at pseudo-random times, some at the same millisecond, one deleted, some private.
  let x = 7;
  const random = () => (x = (x * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648;
  const lines = [];
  let t = 0;
  for (let seq = 2; seq < 5_002; seq++) {
    t += Math.floor(random() * 2_800);
    const to = seq % 50 === 0 ? { kind: 'staff' } : { kind: 'everyone' };
    lines.push([t, { kind: 'chat', message: chat(seq, 'p_ada', 'Ada', 'student', `line ${seq}`, to) }]);
  }
  lines.push([t + 1, { kind: 'chat_deleted', seq: 77, by: 'p_iris' }]);
  const model = ReplayModel.fromAnswer(answer({ roster: [IRIS, ADA], snapshotChat: before, lines }));
  const expected = (playhead) =>
    [[0, { message: before[0] }], ...lines.filter(([, e]) => e.kind === 'chat')]
      .filter(([at, e]) => at <= playhead && e.message.seq !== 77)
      .map(([, e]) => e.message.seq);
  assert.ok(model.durationMs > 2 * 3600 * 1000 * 0.9, 'about two hours long');
  const playheads = [0, -5, 1, lines[10][0], lines[10][0] - 1, model.durationMs, model.durationMs + 1_000];
  for (let i = 0; i < 200; i++) playheads.push(Math.floor(random() * model.durationMs));
  // In this order: jumps forward and backward, the same as a reader seeking about.
  for (const playhead of playheads) {
    assert.deepEqual(model.chatAt(playhead).map((m) => m.seq), expected(playhead), `chat at ${playhead}`);
    assert.equal(model.chatCountAt(playhead), expected(playhead).length);
  }
  const privateOne = model.chat.find((m) => m.seq === 50);
  assert.equal(privateOne?.private, true);
  assert.equal(model.chat.find((m) => m.seq === 51)?.private, false);
  assert.equal(model.chat.some((m) => m.seq === 77), false, 'a deleted message is gone');
});

test('names of people who joined mid-recording: roster, chapters, private messages', () => {
  const model = ReplayModel.fromAnswer(answer({
    roster: [IRIS, ADA],
    viewer: { participant_id: 'p_bob', role: 'student' },
    lines: [
      [5_000, { kind: 'participant_joined', participant: BOB }],
      [6_000, { kind: 'chat', message: chat(10, 'p_bob', 'Bob', 'student', 'hi') }],
      [7_000, { kind: 'called_on', participant_id: 'p_bob', by: 'p_iris' }],
      [8_000, { kind: 'chat', message: chat(11, 'p_iris', 'Iris', 'instructor', 'yes Bob?', { kind: 'participant', id: 'p_bob' }) }],
      [8_500, { kind: 'chat', message: chat(12, 'p_bob', 'Bob', 'student', 'q', { kind: 'participant', id: 'p_ada' }) }],
      [9_000, { kind: 'participant_left', participant_id: 'p_ada', reason: 'left' }],
      [9_500, { kind: 'participant_joined', participant: person('p_cy', 'Cy', 'student') }],
      [9_600, { kind: 'stage_granted', participant_id: 'p_cy', by: 'p_iris' }],
    ],
  }));
  const names = (t) => model.rosterAt(t).map((p) => p.name);
  assert.deepEqual(names(0), ['Iris', 'Ada']);
  assert.deepEqual(names(4_999), ['Iris', 'Ada']);
  assert.deepEqual(names(5_000), ['Iris', 'Ada', 'Bob']);
  assert.deepEqual(names(9_000), ['Iris', 'Bob']);
  assert.deepEqual(names(9_500), ['Iris', 'Bob', 'Cy']);
  assert.notEqual(model.rosterIndexAt(4_999), model.rosterIndexAt(5_000));
  assert.equal(model.rosterIndexAt(5_500), model.rosterIndexAt(5_000));
  assert.equal(model.nameOf('p_bob'), 'Bob');
  assert.equal(model.nameOf('p_nobody'), 'Someone');
  const titles = model.chapters.map((c) => c.title);
  assert.ok(titles.includes('Bob called on'), titles.join('; '));
  assert.ok(titles.includes('Presentation: Cy'), titles.join('; '));
  const [toViewer, toAda] = [model.chat.find((m) => m.seq === 11), model.chat.find((m) => m.seq === 12)];
  assert.deepEqual([toViewer?.private, toViewer?.toViewer, toViewer?.toName], [true, true, 'you']);
  assert.deepEqual([toAda?.private, toAda?.toViewer, toAda?.toName], [true, false, 'Ada']);
});

test('chapters: class start, presentations, call-ons, class end, gaps; the chapter containing t', () => {
  const model = ReplayModel.fromAnswer(answer({
    roster: [IRIS, ADA, BOB],
    classState: 'not_started',
    lines: [
      [800, { kind: 'class_started', by: 'p_iris' }],
      [10_000, { kind: 'called_on', participant_id: 'p_bob', by: 'p_iris' }],
      [20_000, { kind: 'stage_granted', participant_id: 'p_ada', by: 'p_iris' }],
      [30_000, { kind: 'stage_revoked', participant_id: 'p_ada', by: 'p_iris' }],
      [31_000, { kind: 'stage_revoked', participant_id: 'p_ada', by: 'p_iris' }], // again: no second chapter
      [40_000, { kind: 'stage_granted', participant_id: 'p_bob', by: 'p_iris' }],
      [50_000, { kind: 'class_ended', by: 'p_iris' }],
      { t: 50_100, type: 'stop', reason: 'class_ended' },
    ],
    // Two gaps that nearly touch are one chapter; a later one is another.
    gaps: [
      { n: 1, at_ms: 25_000, duration_ms: 500, reason: 'queue_full' },
      { n: 2, at_ms: 25_900, duration_ms: 300, reason: 'queue_full' },
      { n: 3, at_ms: 45_000, duration_ms: 1_000, reason: 'network_loss' },
    ],
  }));
  assert.deepEqual(model.chapters.map((c) => [c.t, c.title]), [
    [0, 'Class started'], // the class started 0.8 s in: one chapter at the start, not two
    [10_000, 'Bob called on'],
    [20_000, 'Presentation: Ada'],
    [25_000, 'Recording gap'],
    [30_000, 'Presentation ended'],
    [40_000, 'Presentation: Bob'],
    [45_000, 'Recording gap'],
    [50_000, 'Class ended'],
  ]);
  assert.equal(model.chapters[3].end, 26_200);
  const titleAt = (t) => model.chapterAt(t)?.title;
  assert.equal(titleAt(0), 'Class started');
  assert.equal(titleAt(9_999), 'Class started');
  assert.equal(titleAt(10_000), 'Bob called on');
  assert.equal(titleAt(25_100), 'Recording gap');
  assert.equal(titleAt(26_199), 'Recording gap');
  assert.equal(titleAt(26_200), 'Presentation: Ada', 'after a gap, the chapter before it goes on');
  assert.equal(titleAt(46_500), 'Presentation: Bob');
  assert.equal(titleAt(60_000), 'Class ended');
  // Class ended clears the stage, as the live client does.
  assert.equal(model.presenterAt(49_999), 'p_bob');
  assert.equal(model.presenterAt(50_000), null);
  assert.equal(model.durationMs, 50_100);
});

test('a recording started before the class; a presenter already on stage at the start', () => {
  const late = ReplayModel.fromAnswer(answer({
    roster: [IRIS], classState: 'not_started',
    lines: [[60_000, { kind: 'class_started', by: 'p_iris' }]],
  }));
  assert.deepEqual(late.chapters.map((c) => [c.t, c.title]), [[0, 'Recording started'], [60_000, 'Class started']]);
  const onStage = ReplayModel.fromAnswer(answer({ roster: [IRIS, ADA], presenter: 'p_ada' }));
  assert.deepEqual(onStage.chapters.map((c) => [c.t, c.title]), [[0, 'Class started'], [0, 'Presentation: Ada']]);
  assert.equal(onStage.chapterAt(0)?.title, 'Presentation: Ada');
  assert.equal(onStage.chapterIndexAt(-1), -1);
});

test('an answer without a recording is refused; broken segments and lines are left out', () => {
  assert.throws(() => parseAnswer(null), ReplayFormatError);
  assert.throws(() => parseAnswer({ recording: {} }), ReplayFormatError);
  assert.throws(() => parseAnswer({ recording: { id: 'r' }, segments: 'x', events: [] }), ReplayFormatError);
  const good = segment('p_iris', 'video', 0, 1_000);
  const a = answer({ roster: [IRIS], segments: [good, { n: 9, kind: 'video' }, { ...good, n: 10, url: 5 }] });
  a.events.push({ type: 'event' }, 'garbage');
  const parsed = parseAnswer(a);
  assert.deepEqual(parsed.segments, [good]);
  assert.equal(parsed.events.length, 1);
  const model = new ReplayModel(parsed);
  assert.equal(model.stageAt(500).main, good);
});

test('helpers: the clock format and the binary search', () => {
  assert.equal(formatClock(0), '0:00');
  assert.equal(formatClock(65_999), '1:05');
  assert.equal(formatClock(3_600_000 + 61_000), '1:01:01');
  assert.equal(formatClock(-5), '0:00');
  const items = [1, 3, 3, 7].map((t) => ({ t }));
  assert.deepEqual([0, 1, 2, 3, 6, 7, 9].map((t) => lastAtOrBefore(items, t, (i) => i.t)), [-1, 0, 0, 2, 2, 3, 3]);
});
