// @ts-check
/**
 * The course home (`/course.html#token=<join token>`, optionally `?course=<id>`): the next class
 * (with a "Join class" link once its lobby is open), past classes (the student's own attendance,
 * or the counts and the attendance list for staff; recordings to watch), and the course board:
 * the course's topics with unread counts, one topic with its replies, new topics and replies,
 * search, and live updates over Server-Sent Events (`EventSource` on the list's `events_url`).
 * It talks to the member API, `/course/v1/courses/<course>/...` (docs/API.md, "Member API"),
 * with the member's own join token. User text goes in through textContent only.
 *
 * For tests: the page root carries `data-state` (loading, ready, error), `data-home` (ready once
 * the classes are drawn) and `data-live` (open once the event stream said `ready`); the next
 * class panel its `data-state` (none, upcoming, lobby_open, live); each past class its
 * `data-session`; each listed topic its `data-topic-id` and `data-unread`; each reply its
 * `data-reply-id`; each listed quiz its `data-quiz-id`.
 */
import { $, make } from './dom.js';
import { memberApi as request } from './member-api.js';
import { COURSE_STRINGS as S, QUIZ_STRINGS as Q, STRINGS } from './strings.js';

/**
 * @typedef {{member_id: string, name: string, role: string}} Author
 * @typedef {{room: string, session_key: string | null, seq: number, author_name: string, sent_at: string}} Source
 * @typedef {{id: number, course_id: string, author: Author, title: string, body: string,
 *   private: boolean, private_to: string | null, pinned: boolean, locked: boolean, deleted: boolean,
 *   created_at: string, edited_at: string | null, deleted_at: string | null,
 *   last_activity_at: string, reply_count: number, source: Source | null}} Topic
 * @typedef {{id: number, topic_id: number, author: Author, body: string, deleted: boolean,
 *   created_at: string, edited_at: string | null, deleted_at: string | null}} Reply
 * @typedef {{member_id: string, name: string, role: string, staff: boolean}} Viewer
 * @typedef {{topics: {topic: Topic, unread: number}[], unread_total: number, has_more: boolean,
 *   viewer: Viewer, events_url: string}} TopicList
 * @typedef {{topic: Topic, replies: Reply[], unread: number}} Thread
 * @typedef {{topic_id: number, reply_id: number | null, title: string, excerpt: string}} Hit
 * @typedef {import('./member-api.js').Answer} Answer
 * @typedef {{session_key: string, start: string, end: string, lobby_opens_at: string,
 *   closes_at: string, state: 'upcoming' | 'lobby_open' | 'live', join_url: string | null}} NextSession
 * @typedef {{id: string, title: string, started_at: string, duration_ms: number, replay_url: string}} HomeRecording
 * @typedef {{present: number, late: number, absent: number}} Counts
 * @typedef {{session_key: string, start: string, end: string, your_attendance: string | null,
 *   attendance_counts: Counts | null, recordings: HomeRecording[]}} PastSession
 * @typedef {{course: {id: string, title: string, timezone: string}, viewer: Viewer,
 *   next_session: NextSession | null, past_sessions: PastSession[], past_has_more: boolean}} Home
 * @typedef {{member_id: string, name: string, status: string, minutes_present: number}} Attendee
 */

/** This page's own key: the class page's token stays the class page's. */
const TOKEN_KEY = 'lectern.course-token';
const PAGE = 50;
const MAX_TOPICS = 100;
/** Live changes arriving together reload the list once. */
const RELOAD_DELAY_MS = 150;
/** How often the next class is checked (its lobby opening, its end). */
const HOME_REFRESH_MS = 30_000;
const PAST_PAGE = 10;

const root = document.documentElement;
const state = {
  token: '',
  course: '',
  /** @type {Viewer | null} */
  viewer: null,
  /** Topics shown: the first `limit` of the list. */
  limit: PAGE,
  /** @type {number | null} */
  openTopic: null,
  /** @type {EventSource | null} */
  events: null,
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  reloadTimer: undefined,
  /** The course's timezone, for dates. */
  timezone: 'UTC',
  /** The next class's key and state as last drawn. */
  nextShown: '',
  /** Past classes shown. */
  pastShown: 0,
};

// ---- Talking to the server ------------------------------------------------------------------

/** The token from `#token=...` (then hidden from the address bar) or from this tab's storage. */
function readToken() {
  const fromLink = new URLSearchParams(location.hash.slice(1)).get('token');
  if (!fromLink) return sessionStorage.getItem(TOKEN_KEY);
  history.replaceState(null, '', location.pathname + location.search);
  return fromLink;
}

/**
 * The course a join token is for: the part of its room before the first dot (an ad-hoc room is
 * its own course). Only to build URLs: the server checks the token.
 * @param {string} token
 */
function courseOfToken(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const room = JSON.parse(atob(payload)).room;
    return typeof room === 'string' ? room.split('.')[0] : '';
  } catch {
    return '';
  }
}

/** @param {string} rest the path after `/board` */
function boardUrl(rest) {
  return `/course/v1/courses/${encodeURIComponent(state.course)}/board${rest}`;
}

/**
 * One request to the board's part of the member API.
 * @param {string} method @param {string} rest @param {unknown} [body]
 * @returns {Promise<Answer>}
 */
function api(method, rest, body) {
  return memberApi(method, boardUrl(rest), body);
}

/** @param {string} rest the path after the course */
function courseUrl(rest) {
  return `/course/v1/courses/${encodeURIComponent(state.course)}${rest}`;
}

/**
 * One request to the member API with this page's token. Never throws: a network failure is
 * status 0.
 * @param {string} method @param {string} url @param {unknown} [body]
 * @returns {Promise<Answer>}
 */
function memberApi(method, url, body) {
  return request(state.token, method, url, body);
}

/** What to tell the member about a refused request. @param {Answer} answer */
function refusal(answer) {
  if (answer.status === 0) return S.networkError;
  const message = answer.body?.error?.message;
  if (answer.status === 401) return S.unauthorized;
  if (answer.status === 403 && typeof message !== 'string') return S.forbidden;
  if (typeof message === 'string' && message) return message;
  if (answer.status === 404) return S.notFound;
  return S.serverError(answer.status);
}

/** Show an error (or clear it with ''). @param {string} text */
function showError(text) {
  const box = $('error');
  box.textContent = text;
  box.hidden = !text;
}

/** The page cannot work: say why, and stay so. @param {string} text */
function fail(text) {
  $('page-loading').hidden = true;
  $('home').hidden = true;
  showError(text);
  root.dataset.state = 'error';
}

/** @param {string} text */
function announce(text) {
  $('announcer').textContent = text;
}

/** A date for people. @param {string} iso */
function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

// ---- Quizzes ---------------------------------------------------------------------------------

/**
 * @typedef {{id: number, title: string, published: boolean, due_at: number | null,
 *   max_score: number, question_count: number}} QuizSummary
 * @typedef {{attempts_used: number, attempts_left: number | null, best_score: number | null,
 *   open_attempt: number | null, can_attempt: boolean, blocked: string | null}} QuizState
 */

/** The course's quizzes with the member's standing, each with a link to take it. */
async function loadQuizzes() {
  $('quizzes-heading').textContent = Q.quizzesHeading;
  const answer = await memberApi('GET', courseUrl('/quizzes'));
  if (!answer.ok) return;
  const items = /** @type {{quiz: QuizSummary, mine: QuizState}[]} */ (answer.body.quizzes);
  $('quiz-list').replaceChildren(...items.map(({ quiz, mine }) => quizItem(quiz, mine)));
  const empty = $('quizzes-empty');
  empty.textContent = Q.quizzesEmpty;
  empty.hidden = items.length > 0;
}

/** @param {QuizSummary} quiz @param {QuizState} mine */
function quizItem(quiz, mine) {
  const li = make('li');
  li.dataset.quizId = String(quiz.id);
  const pause = () => make('span', 'visually-hidden', '. ');
  li.append(make('span', 'quiz-title', quiz.title));
  if (!quiz.published) li.append(pause(), make('span', 'tag', Q.draft));
  const due = quiz.due_at === null ? Q.noDue : Q.due(when(new Date(quiz.due_at * 1000).toISOString()));
  li.append(pause(), make('span', 'muted-text', due));
  li.append(pause(), make('span', 'muted-text', Q.attemptsLeft(mine.attempts_left)));
  const best = mine.best_score === null ? Q.notAttempted : Q.best(mine.best_score, quiz.max_score);
  li.append(pause(), make('span', 'muted-text', best));
  const href = `/quiz.html?course=${encodeURIComponent(state.course)}&quiz=${quiz.id}`;
  /** @type {[string, string] | null} */
  let label = null;
  if (mine.open_attempt !== null) label = [Q.continue, Q.continueOf(quiz.title)];
  else if (mine.can_attempt) label = [Q.start, Q.startOf(quiz.title)];
  else if (mine.attempts_used > 0) label = [Q.review, Q.reviewOf(quiz.title)];
  if (label) {
    const link = /** @type {HTMLAnchorElement} */ (make('a', 'button', label[0]));
    link.href = href;
    link.setAttribute('aria-label', label[1]);
    li.append(link);
  } else if (mine.blocked) {
    li.append(pause(), make('span', 'muted-text', Q.blocked[mine.blocked] ?? mine.blocked));
  }
  return li;
}

// ---- The classes: next and past -------------------------------------------------------------

/**
 * A date and time in the viewer's locale and the course's timezone.
 * @param {string} iso @param {Intl.DateTimeFormatOptions} [style]
 */
function courseTime(iso, style = { dateStyle: 'full', timeStyle: 'short' }) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  try {
    return date.toLocaleString([], { ...style, timeZone: state.timezone });
  } catch {
    // A timezone this browser does not know: the viewer's own.
    return date.toLocaleString([], style);
  }
}

/** Load the home: the course, the next class and the first past classes. */
async function loadHome() {
  const answer = await memberApi('GET', courseUrl(`/home?past_limit=${PAST_PAGE}`));
  if (!answer.ok) {
    if (!state.viewer) return fail(refusal(answer));
    return showError(refusal(answer));
  }
  const home = /** @type {Home} */ (answer.body);
  state.timezone = home.course.timezone;
  $('course-title').textContent = home.course.title;
  document.title = `${home.course.title} · ${STRINGS.appName}`;
  if (!state.viewer) {
    state.viewer = home.viewer;
    $('course-who').textContent = S.who(home.viewer.name, home.viewer.role);
  }
  drawNext(home.next_session);
  $('past-list').replaceChildren(...home.past_sessions.map(pastItem));
  state.pastShown = home.past_sessions.length;
  $('past-empty').hidden = home.past_sessions.length > 0;
  $('more-past').hidden = !home.past_has_more;
  $('page-loading').hidden = true;
  $('home').hidden = false;
  root.dataset.home = 'ready';
  setTimeout(refreshNext, HOME_REFRESH_MS);
}

/** Check the next class again (its lobby opens, it ends); past classes stay as drawn. */
async function refreshNext() {
  const answer = await memberApi('GET', courseUrl('/home?past_limit=1'));
  if (answer.ok) drawNext(/** @type {Home} */ (answer.body).next_session);
  setTimeout(refreshNext, HOME_REFRESH_MS);
}

/** @param {NextSession | null} next */
function drawNext(next) {
  const panel = $('next-panel');
  const join = /** @type {HTMLAnchorElement} */ ($('join-link'));
  const shown = next ? `${next.session_key} ${next.state}` : 'none';
  // Tell a screen reader when the lobby of the class on the page opens (not on first load).
  if (state.nextShown && next?.join_url && state.nextShown === `${next.session_key} upcoming`) announce(S.announceLobby);
  state.nextShown = shown;
  panel.dataset.state = next ? next.state : 'none';
  if (!next) {
    $('next-when').textContent = S.nextNone;
    $('next-status').textContent = '';
    join.hidden = true;
    return;
  }
  $('next-when').textContent = S.inZone(courseTime(next.start), state.timezone);
  if (next.join_url) {
    $('next-status').textContent = next.state === 'live' ? S.live : S.lobbyOpen;
    join.href = next.join_url;
    join.hidden = false;
  } else {
    $('next-status').textContent = S.lobbyOpens(courseTime(next.lobby_opens_at, { timeStyle: 'short' }));
    join.removeAttribute('href');
    join.hidden = true;
  }
}

/** @param {PastSession} session */
function pastItem(session) {
  const li = make('li');
  li.dataset.session = session.session_key;
  const date = courseTime(session.start, { dateStyle: 'medium', timeStyle: 'short' });
  li.append(make('span', 'past-date', date));
  // A pause for screen readers between the parts the layout spaces apart.
  const pause = () => make('span', 'visually-hidden', '. ');
  if (session.your_attendance) li.append(pause(), make('span', 'muted-text', S.yourAttendance[session.your_attendance] ?? session.your_attendance));
  const counts = session.attendance_counts;
  if (counts) li.append(pause(), make('span', 'muted-text past-counts', S.counts(counts.present, counts.late, counts.absent)));
  session.recordings.forEach((recording, i) => {
    const link = /** @type {HTMLAnchorElement} */ (make('a', 'recording-link', S.watchRecording(i + 1, session.recordings.length)));
    link.href = recording.replay_url;
    if (session.recordings.length === 1) link.setAttribute('aria-label', S.watchRecordingOf(date));
    li.append(link);
  });
  if (counts) {
    const button = /** @type {HTMLButtonElement} */ (make('button', 'small', S.attendanceList));
    button.type = 'button';
    button.dataset.attendance = session.session_key;
    button.setAttribute('aria-expanded', 'false');
    button.setAttribute('aria-label', S.attendanceListOf(date));
    li.append(button);
  }
  return li;
}

/** More past classes, older ones after those shown. */
async function morePast() {
  const answer = await memberApi('GET', courseUrl(`/home?past_limit=${PAST_PAGE}&past_offset=${state.pastShown}`));
  if (!answer.ok) return showError(refusal(answer));
  const home = /** @type {Home} */ (answer.body);
  const items = home.past_sessions.map(pastItem);
  $('past-list').append(...items);
  state.pastShown += items.length;
  $('more-past').hidden = !home.past_has_more;
  // Keep the keyboard where the new rows are.
  const first = items[0]?.querySelector('a, button');
  if (first instanceof HTMLElement) first.focus();
}

/** Show or hide one past class's attendance list (staff). @param {MouseEvent} event */
async function onPastClick(event) {
  const button = event.target instanceof Element ? event.target.closest('button[data-attendance]') : null;
  if (!(button instanceof HTMLButtonElement)) return;
  const li = /** @type {HTMLElement} */ (button.closest('li'));
  const open = li.querySelector('.attendance-list');
  if (open) {
    open.remove();
    button.setAttribute('aria-expanded', 'false');
    return;
  }
  const key = button.dataset.attendance ?? '';
  const answer = await memberApi('GET', courseUrl(`/sessions/${encodeURIComponent(key)}/attendance`));
  if (!answer.ok) return showError(refusal(answer));
  showError('');
  const attendees = /** @type {Attendee[]} */ (answer.body.attendees);
  const list = make('ul', 'attendance-list');
  list.id = `attendance-${key.replace(/[^A-Za-z0-9-]/g, '-')}`;
  list.append(...attendees.map((a) => make('li', '', S.attendee(a.name, S.status[a.status] ?? a.status, a.minutes_present))));
  if (!attendees.length) list.append(make('li', 'muted-text', S.attendanceEmpty));
  li.append(list);
  button.setAttribute('aria-controls', list.id);
  button.setAttribute('aria-expanded', 'true');
}

// ---- The topic list --------------------------------------------------------------------------

async function loadTopics() {
  const answer = await api('GET', `/topics?limit=${state.limit}`);
  if (!answer.ok) {
    if (!state.viewer) return fail(refusal(answer));
    return showError(refusal(answer));
  }
  const list = /** @type {TopicList} */ (answer.body);
  if (!state.viewer) {
    state.viewer = list.viewer;
    $('course-who').textContent = S.who(list.viewer.name, list.viewer.role);
  }
  $('unread-total').textContent = S.unreadTotal(list.unread_total);
  $('topics').replaceChildren(...list.topics.map(({ topic, unread }) => topicItem(topic, unread)));
  $('topics-empty').hidden = list.topics.length > 0;
  $('more-topics').hidden = !list.has_more || state.limit >= MAX_TOPICS;
  if (!state.events) listen(list.events_url);
  $('page-loading').hidden = true;
  $('home').hidden = false;
  root.dataset.state = 'ready';
}

/** Reload the list soon, once for a burst of live changes. */
function reloadSoon() {
  clearTimeout(state.reloadTimer);
  state.reloadTimer = setTimeout(loadTopics, RELOAD_DELAY_MS);
}

/** @param {Topic} topic @param {number} unread */
function topicItem(topic, unread) {
  const li = make('li');
  li.dataset.topicId = String(topic.id);
  li.dataset.unread = String(unread);
  const button = /** @type {HTMLButtonElement} */ (make('button', 'topic-link'));
  button.type = 'button';
  button.dataset.topic = String(topic.id);
  button.append(make('span', 'topic-title', topic.title));
  for (const [on, label] of /** @type {[boolean, string][]} */ ([[topic.pinned, S.pinned], [topic.locked, S.locked], [topic.private, S.private]])) {
    if (on) button.append(make('span', 'tag', label));
  }
  if (unread > 0) button.append(make('span', 'unread', S.unread(unread)));
  button.append(make('span', 'topic-meta', S.topicMeta(topic.author.name, when(topic.last_activity_at), topic.reply_count)));
  li.append(button);
  return li;
}

// ---- One topic -------------------------------------------------------------------------------

/**
 * Open a topic (which marks it read), or redraw the open one.
 * @param {number} id @param {{focus?: boolean}} [options]
 */
async function openTopic(id, { focus = true } = {}) {
  const answer = await api('GET', `/topics/${id}`);
  if (!answer.ok) return showError(refusal(answer));
  showError('');
  const thread = /** @type {Thread} */ (answer.body);
  state.openTopic = id;
  drawTopic(thread);
  $('topics-panel').hidden = true;
  $('new-topic-panel').hidden = true;
  $('topic-panel').hidden = false;
  if (focus) $('topic-title').focus();
  reloadSoon();
}

/** @param {Thread} thread */
function drawTopic({ topic, replies }) {
  const viewer = /** @type {Viewer} */ (state.viewer);
  $('topic-title').textContent = topic.deleted ? S.deletedTopic : topic.title;
  const edited = topic.edited_at ? S.edited : '';
  $('topic-meta').textContent = S.postMeta(topic.author.name, when(topic.created_at)) + edited;
  const flags = $('topic-flags');
  flags.replaceChildren();
  for (const [on, label] of /** @type {[boolean, string][]} */ ([[topic.pinned, S.pinned], [topic.locked, S.locked], [topic.private, S.private]])) {
    if (on) flags.append(make('span', 'tag', label), ' ');
  }
  if (topic.source) flags.append(make('span', 'muted-text', S.fromClass(topic.source.author_name, topic.source.session_key ?? '')));
  $('topic-body').textContent = topic.body;

  const tools = $('topic-tools');
  tools.replaceChildren();
  if (!topic.deleted) {
    if (viewer.staff) {
      tools.append(toolButton(topic.pinned ? S.unpin : S.pin, 'pin'), toolButton(topic.locked ? S.unlock : S.lock, 'lock'));
    }
    if (viewer.staff || topic.author.member_id === viewer.member_id) tools.append(toolButton(S.deleteTopic, 'delete-topic'));
  }
  tools.dataset.pinned = String(topic.pinned);
  tools.dataset.locked = String(topic.locked);

  $('replies').replaceChildren(...replies.map((reply) => replyItem(reply, viewer)));
  const mayReply = !topic.deleted && viewer.role !== 'observer' && (!topic.locked || viewer.staff);
  $('reply-form').hidden = !mayReply;
  $('locked-note').hidden = !(topic.locked && !viewer.staff);
}

/** @param {string} label @param {string} action */
function toolButton(label, action) {
  const button = /** @type {HTMLButtonElement} */ (make('button', 'small', label));
  button.type = 'button';
  button.dataset.action = action;
  return button;
}

/** @param {Reply} reply @param {Viewer} viewer */
function replyItem(reply, viewer) {
  const li = make('li', reply.deleted ? 'deleted' : '');
  li.dataset.replyId = String(reply.id);
  li.append(
    make('p', 'muted-text', S.postMeta(reply.author.name, when(reply.created_at)) + (reply.edited_at ? S.edited : '')),
    make('div', 'post-body', reply.deleted ? S.deletedReply : reply.body),
  );
  if (!reply.deleted && (viewer.staff || reply.author.member_id === viewer.member_id)) {
    const button = toolButton(S.deleteReply, 'delete-reply');
    button.dataset.reply = String(reply.id);
    li.append(button);
  }
  return li;
}

function closeTopic() {
  const id = state.openTopic;
  state.openTopic = null;
  $('topic-panel').hidden = true;
  $('topics-panel').hidden = false;
  $('new-topic-panel').hidden = false;
  reloadSoon();
  const button = document.querySelector(`#topics button[data-topic="${id}"]`);
  if (button instanceof HTMLElement) {
    button.focus();
  } else {
    $('topics-heading').setAttribute('tabindex', '-1');
    $('topics-heading').focus();
  }
}

// ---- Live updates ----------------------------------------------------------------------------

/** Follow the board's event stream. @param {string} url */
function listen(url) {
  const events = new EventSource(url);
  state.events = events;
  events.addEventListener('ready', () => (root.dataset.live = 'open'));
  events.addEventListener('error', () => {
    root.dataset.live = 'reconnecting';
    // A closed stream (an expired ticket, say) is not retried by the browser: start again with
    // a fresh `events_url`.
    if (events.readyState === EventSource.CLOSED) {
      state.events = null;
      reloadSoon();
    }
  });
  for (const kind of ['topic_created', 'topic_updated', 'topic_deleted']) {
    events.addEventListener(kind, (event) => {
      const data = parse(/** @type {MessageEvent} */ (event).data);
      if (!data?.topic) return;
      if (kind === 'topic_created' && data.topic.author.member_id !== state.viewer?.member_id) announce(S.announceTopic(data.topic.title));
      if (state.openTopic === data.topic.id) openTopic(data.topic.id, { focus: false });
      else reloadSoon();
    });
  }
  for (const kind of ['reply_created', 'reply_updated', 'reply_deleted']) {
    events.addEventListener(kind, (event) => {
      const data = parse(/** @type {MessageEvent} */ (event).data);
      if (!data?.reply) return;
      if (kind === 'reply_created' && data.reply.author.member_id !== state.viewer?.member_id) announce(S.announceReply(data.reply.author.name));
      // Redrawing the open topic also marks the new reply read.
      if (state.openTopic === data.topic_id) openTopic(data.topic_id, { focus: false });
      else reloadSoon();
    });
  }
  events.addEventListener('resync', () => {
    if (state.openTopic !== null) openTopic(state.openTopic, { focus: false });
    else reloadSoon();
  });
}

/** @param {string} text */
function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

// ---- What the member does --------------------------------------------------------------------

/** @param {SubmitEvent} event */
async function postTopic(event) {
  event.preventDefault();
  const title = /** @type {HTMLInputElement} */ ($('new-title'));
  const body = /** @type {HTMLTextAreaElement} */ ($('new-body'));
  const priv = /** @type {HTMLInputElement} */ ($('new-private'));
  const answer = await api('POST', '/topics', { title: title.value, body: body.value, private: priv.checked });
  if (!answer.ok) return showError(refusal(answer));
  showError('');
  title.value = '';
  body.value = '';
  priv.checked = false;
  await loadTopics();
  openTopic(answer.body.id);
}

/** @param {SubmitEvent} event */
async function postReply(event) {
  event.preventDefault();
  if (state.openTopic === null) return;
  const body = /** @type {HTMLTextAreaElement} */ ($('reply-body'));
  const answer = await api('POST', `/topics/${state.openTopic}/replies`, { body: body.value });
  if (!answer.ok) return showError(refusal(answer));
  showError('');
  body.value = '';
  openTopic(state.openTopic, { focus: false });
}

/** @param {SubmitEvent} event */
async function search(event) {
  event.preventDefault();
  const q = /** @type {HTMLInputElement} */ ($('search-input')).value.trim();
  const panel = $('search-panel');
  if (!q) {
    panel.hidden = true;
    return;
  }
  const answer = await api('GET', `/search?q=${encodeURIComponent(q)}`);
  if (!answer.ok) return showError(refusal(answer));
  showError('');
  const hits = /** @type {Hit[]} */ (answer.body.hits);
  $('search-results').replaceChildren(
    ...hits.map((hit) => {
      const button = /** @type {HTMLButtonElement} */ (make('button', 'topic-link'));
      button.type = 'button';
      button.dataset.topic = String(hit.topic_id);
      button.append(make('span', 'topic-title', hit.title), make('span', 'topic-meta', hit.excerpt));
      const li = make('li');
      li.append(button);
      return li;
    }),
  );
  $('search-empty').hidden = hits.length > 0;
  panel.hidden = false;
}

/** The topic's tools and the replies' delete buttons. @param {MouseEvent} event */
async function onTopicClick(event) {
  const button = event.target instanceof Element ? event.target.closest('button[data-action]') : null;
  if (!(button instanceof HTMLButtonElement) || state.openTopic === null) return;
  const id = state.openTopic;
  const tools = $('topic-tools');
  /** @type {Answer} */
  let answer;
  switch (button.dataset.action) {
    case 'pin':
      answer = await api('PATCH', `/topics/${id}`, { pinned: tools.dataset.pinned !== 'true' });
      break;
    case 'lock':
      answer = await api('PATCH', `/topics/${id}`, { locked: tools.dataset.locked !== 'true' });
      break;
    case 'delete-topic':
      if (!confirm(S.confirmDelete)) return;
      answer = await api('DELETE', `/topics/${id}`);
      break;
    case 'delete-reply':
      if (!confirm(S.confirmDelete)) return;
      answer = await api('DELETE', `/replies/${button.dataset.reply}`);
      break;
    default:
      return;
  }
  if (!answer.ok) return showError(refusal(answer));
  showError('');
  openTopic(id, { focus: false });
}

/** A topic button in the list or the search results. @param {MouseEvent} event */
function onListClick(event) {
  const button = event.target instanceof Element ? event.target.closest('button[data-topic]') : null;
  if (button instanceof HTMLButtonElement) openTopic(Number(button.dataset.topic));
}

function start() {
  for (const element of document.querySelectorAll('[data-text]')) {
    const key = /** @type {HTMLElement} */ (element).dataset.text ?? '';
    element.textContent = /** @type {Record<string, any>} */ (S)[key];
  }
  root.dataset.state = 'loading';
  const token = readToken();
  if (!token) return fail(S.linkMissing);
  sessionStorage.setItem(TOKEN_KEY, token);
  state.token = token;
  state.course = new URLSearchParams(location.search).get('course') || courseOfToken(token);
  if (!state.course) return fail(S.linkMissing);
  $('course-title').textContent = S.title(state.course);
  document.title = `${S.title(state.course)} · ${STRINGS.appName}`;
  $('past-list').addEventListener('click', onPastClick);
  $('more-past').addEventListener('click', morePast);

  $('new-topic').addEventListener('submit', postTopic);
  $('reply-form').addEventListener('submit', postReply);
  $('search-form').addEventListener('submit', search);
  $('topics').addEventListener('click', onListClick);
  $('search-results').addEventListener('click', onListClick);
  $('topic-panel').addEventListener('click', onTopicClick);
  $('back').addEventListener('click', closeTopic);
  $('more-topics').addEventListener('click', () => {
    // The API pages up to 100 topics at a time; this page shows at most that many.
    state.limit = Math.min(state.limit + PAGE, MAX_TOPICS);
    loadTopics();
  });
  loadHome();
  loadQuizzes();
  loadTopics();
}

start();
