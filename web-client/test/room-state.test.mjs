// Unit tests of protocol.js's RoomState for issue 16's events (node --test): the client rules
// of the spec for mute all, "allow everyone to speak", the class mode and cameras.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoomState } from '../protocol.js';

/** A participant as the protocol's roster has it. */
function person(id, role, extra = {}) {
  return {
    id, name: id, role, connected: true, in_lobby: false, hard_muted: false, can_speak: role !== 'student',
    speak_granted: false, presenter: false, media: { mic: false, camera: false, screen: false }, ...extra,
  };
}

function room(extra = {}) {
  const state = new RoomState();
  state.applySnapshot({
    room_id: 'r', title: 'Seminar', class_state: 'live', chat_locked: false, chat: [], hand_queue: [], seq: 10,
    roster: [
      person('teacher', 'instructor'),
      person('ada', 'student', { speak_granted: true, can_speak: true }),
      person('alan', 'student'),
      person('lin', 'student', { presenter: true, can_speak: true }),
      person('waiting', 'student', { in_lobby: true }),
      person('watcher', 'observer'),
    ],
    ...extra,
  });
  return state;
}

const p = (state, id) => state.participants.get(id);

test('a snapshot without the new fields is a lecture without speak_all', () => {
  const state = room();
  assert.equal(state.mode, 'lecture');
  assert.equal(state.speakAll, false);
  const seminar = room({ mode: 'seminar', speak_all: true });
  assert.equal(seminar.mode, 'seminar');
  assert.equal(seminar.speakAll, true);
});

test('all_muted hard-mutes every student, clears grants and speak_all; staff keep speaking', () => {
  const state = room({ speak_all: true });
  state.applyEvent(11, { kind: 'all_muted', by: 'teacher' });
  assert.equal(state.speakAll, false);
  for (const id of ['ada', 'alan', 'lin']) {
    assert.equal(p(state, id).hard_muted, true, id);
    assert.equal(p(state, id).speak_granted, false, id);
    assert.equal(p(state, id).can_speak, false, id);
  }
  assert.equal(p(state, 'teacher').hard_muted, false);
  assert.equal(p(state, 'teacher').can_speak, true);
});

test('speak_all_changed: true lifts every mute and lets every student in the class speak; false clears grants', () => {
  const state = room();
  state.applyEvent(11, { kind: 'all_muted', by: 'teacher' });
  state.applyEvent(12, { kind: 'speak_all_changed', allowed: true, by: 'teacher' });
  assert.equal(state.speakAll, true);
  for (const id of ['ada', 'alan', 'lin']) {
    assert.equal(p(state, id).hard_muted, false, id);
    assert.equal(p(state, id).can_speak, true, id);
  }
  assert.equal(p(state, 'waiting').can_speak, false, 'the lobby never speaks');
  assert.equal(p(state, 'watcher').can_speak, false, 'an observer does not speak');
  state.applyEvent(13, { kind: 'speak_allowed', participant_id: 'ada', by: 'teacher' });
  state.applyEvent(14, { kind: 'speak_all_changed', allowed: false, by: 'teacher' });
  assert.equal(state.speakAll, false);
  assert.equal(p(state, 'ada').speak_granted, false);
  assert.equal(p(state, 'ada').can_speak, false);
  assert.equal(p(state, 'alan').can_speak, false);
  assert.equal(p(state, 'lin').can_speak, true, 'the presenter keeps the stage audio');
});

test('a mute under speak_all still silences that student', () => {
  const state = room({ speak_all: true });
  state.applyEvent(11, { kind: 'muted', participant_id: 'alan', by: 'teacher' });
  assert.equal(p(state, 'alan').can_speak, false);
  assert.equal(p(state, 'ada').can_speak, true);
});

test('mode_changed sets every student camera_allowed (seminar) or clears it (lecture)', () => {
  const state = room();
  state.applyEvent(11, { kind: 'mode_changed', mode: 'seminar', by: 'teacher' });
  assert.equal(state.mode, 'seminar');
  for (const id of ['ada', 'alan', 'lin', 'waiting']) assert.equal(p(state, id).camera_allowed, true, id);
  assert.notEqual(p(state, 'teacher').camera_allowed, true);
  state.applyEvent(12, { kind: 'mode_changed', mode: 'lecture', by: 'teacher' });
  assert.equal(state.mode, 'lecture');
  for (const id of ['ada', 'alan', 'lin']) assert.equal(p(state, id).camera_allowed, false, id);
});

test('camera_requested and camera_allowed allow one camera; camera_stopped takes it back', () => {
  const state = room();
  state.applyEvent(11, { kind: 'camera_requested', participant_id: 'ada', by: 'teacher' });
  assert.equal(p(state, 'ada').camera_allowed, true);
  assert.notEqual(p(state, 'alan').camera_allowed, true);
  state.applyEvent(12, { kind: 'camera_allowed', participant_id: 'alan', by: 'teacher' });
  assert.equal(p(state, 'alan').camera_allowed, true);
  state.applyEvent(13, { kind: 'camera_stopped', participant_id: 'ada', by: 'teacher' });
  assert.equal(p(state, 'ada').camera_allowed, false);
  state.applyEvent(14, { kind: 'camera_stopped', participant_id: 'gone', by: 'teacher' }); // unknown: ignored
});

test('admission under speak_all lets the student speak', () => {
  const state = room({ speak_all: true });
  state.applyEvent(11, { kind: 'admitted', participant_id: 'waiting', by: 'teacher' });
  assert.equal(p(state, 'waiting').can_speak, true);
});
