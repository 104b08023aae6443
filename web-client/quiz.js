// @ts-check
/**
 * The quiz page (`/quiz.html?course=<id>&quiz=<id>`, with the course home's join token from
 * this tab's storage or `#token=...`): a quiz's facts and the member's attempts; taking it
 * (start or continue an attempt, one fieldset per question with radio buttons, checkboxes or a
 * labelled text field, a visible timer when it is time-limited, counted from the server's
 * clock); after submitting, the score and per question the outcome, the feedback, the
 * explanation and the correct answer. It talks to the member API
 * (`/course/v1/courses/<course>/quizzes/...`, docs/QUIZZES.md). Keys only arrive with the
 * graded attempt, after submission. User text goes in through textContent only.
 *
 * For tests: the page root carries `data-state` (loading, intro, taking, review, error); each
 * question fieldset its `data-question`.
 */
import { $, make } from './dom.js';
import { memberApi as request } from './member-api.js';
import { QUIZ_STRINGS as Q, STRINGS, duration } from './strings.js';

/**
 * @typedef {{index: number, text: string}} StudentChoice
 * @typedef {{id: string, text: string, points: number,
 *   type: 'single_choice' | 'multiple_choice' | 'numeric' | 'short_text', choices?: StudentChoice[]}} StudentQuestion
 * @typedef {{title: string, description: string, max_score: number, questions: StudentQuestion[]}} StudentQuiz
 * @typedef {{value?: number, tolerance?: number, min?: number, max?: number}} NumericRange
 * @typedef {{type: string, correct?: number[], accepted?: (NumericRange | string)[]}} Solution
 * @typedef {{question: string, score: number, max: number, outcome: string,
 *   explanation: string | null, feedback: string[], solution: Solution}} GradedQuestion
 * @typedef {{score: number, max_score: number, questions: GradedQuestion[]}} Graded
 * @typedef {{question: string, type: string, choice?: number, choices?: number[], value?: number, text?: string}} QuestionAnswer
 * @typedef {{id: number, number: number, started_at: number, submitted_at: number | null,
 *   deadline_at: number | null, server_now: number, score: number | null, max_score: number,
 *   quiz: StudentQuiz, answers: QuestionAnswer[] | null, result: Graded | null}} Attempt
 * @typedef {{id: number, title: string, description: string, published: boolean,
 *   max_attempts: number | null, due_at: number | null, time_limit_secs: number | null,
 *   question_count: number, max_score: number}} QuizSummary
 * @typedef {{attempts_used: number, attempts_left: number | null, best_score: number | null,
 *   open_attempt: number | null, can_attempt: boolean, blocked: string | null}} QuizState
 * @typedef {{id: number, number: number, submitted_at: number | null, score: number | null,
 *   max_score: number}} AttemptBrief
 * @typedef {import('./member-api.js').Answer} Answer
 */

const TOKEN_KEY = 'lectern.course-token';
const root = document.documentElement;
const state = {
  token: '',
  course: '',
  quiz: 0,
  /** @type {Attempt | null} */
  attempt: null,
  /** The device clock minus the server's, in ms (from the attempt's `server_now`). */
  skew: 0,
  /** @type {ReturnType<typeof setInterval> | undefined} */
  ticker: undefined,
  warned: false,
  submitting: false,
};

// ---- Talking to the server ------------------------------------------------------------------

function readToken() {
  const fromLink = new URLSearchParams(location.hash.slice(1)).get('token');
  if (!fromLink) return sessionStorage.getItem(TOKEN_KEY);
  history.replaceState(null, '', location.pathname + location.search);
  return fromLink;
}

/** @param {string} rest the path after the quiz */
function quizUrl(rest) {
  return `/course/v1/courses/${encodeURIComponent(state.course)}/quizzes/${state.quiz}${rest}`;
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

/** @param {Answer} answer */
function refusal(answer) {
  const message = answer.body?.error?.message;
  if (answer.status === 0) return Q.networkError;
  if (typeof message === 'string' && message) return message;
  return Q.requestFailed(answer.status);
}

/** @param {string} text */
function showError(text) {
  const box = $('error');
  box.textContent = text;
  box.hidden = !text;
}

/** @param {string} text */
function fail(text) {
  $('page-loading').hidden = true;
  $('quiz').hidden = true;
  showError(text);
  root.dataset.state = 'error';
}

/** @param {string} text */
function announce(text) {
  $('announcer').textContent = text;
}

/** @param {number} ms */
function when(ms) {
  return new Date(ms).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

/** Show one of the three parts. @param {'intro' | 'take' | 'review'} part */
function show(part) {
  $('intro').hidden = part !== 'intro';
  $('take').hidden = part !== 'take';
  $('review').hidden = part !== 'review';
  root.dataset.state = part === 'take' ? 'taking' : part;
}

// ---- The intro: facts and attempts ----------------------------------------------------------

async function loadIntro() {
  const answer = await memberApi('GET', quizUrl(''));
  if (!answer.ok) return fail(refusal(answer));
  const quiz = /** @type {QuizSummary} */ (answer.body.quiz);
  const mine = /** @type {QuizState} */ (answer.body.mine);
  $('quiz-title').textContent = quiz.title;
  document.title = `${quiz.title} · ${STRINGS.appName}`;
  $('quiz-description').textContent = quiz.description;
  $('quiz-description').hidden = !quiz.description;
  const facts = [Q.questionCount(quiz.question_count), quiz.due_at === null ? Q.noDue : Q.due(when(quiz.due_at * 1000))];
  if (quiz.time_limit_secs !== null) facts.push(Q.timeLimit(quiz.time_limit_secs));
  facts.push(Q.attemptsLeft(mine.attempts_left));
  if (mine.best_score !== null) facts.push(Q.best(mine.best_score, quiz.max_score));
  $('quiz-facts').replaceChildren(...facts.map((f) => make('li', '', f)));
  const start = /** @type {HTMLButtonElement} */ ($('start'));
  start.hidden = !mine.can_attempt;
  start.textContent = mine.open_attempt !== null ? Q.continue : Q.start;
  const blocked = $('quiz-blocked');
  blocked.hidden = mine.can_attempt || !mine.blocked;
  blocked.textContent = mine.blocked ? Q.blocked[mine.blocked] ?? mine.blocked : '';

  const list = await memberApi('GET', quizUrl('/attempts'));
  const attempts = list.ok ? /** @type {AttemptBrief[]} */ (list.body) : [];
  $('attempts-heading').hidden = attempts.length === 0;
  $('attempts').replaceChildren(
    ...attempts.map((a) => {
      const li = make('li');
      li.append(make('span', '', Q.attemptLine(a.number, a.score, a.max_score)));
      if (a.submitted_at !== null) {
        const button = /** @type {HTMLButtonElement} */ (make('button', 'small', Q.review));
        button.type = 'button';
        button.dataset.attempt = String(a.id);
        button.setAttribute('aria-label', Q.reviewAttempt(a.number));
        li.append(button);
      }
      return li;
    }),
  );
  $('page-loading').hidden = true;
  $('quiz').hidden = false;
  show('intro');
}

// ---- Taking the quiz ------------------------------------------------------------------------

async function startAttempt() {
  const answer = await memberApi('POST', quizUrl('/attempts'));
  if (!answer.ok) return showError(refusal(answer));
  showError('');
  const attempt = /** @type {Attempt} */ (answer.body);
  if (attempt.submitted_at !== null) return drawReview(attempt);
  drawQuestions(attempt);
}

/** @param {Attempt} attempt */
function drawQuestions(attempt) {
  state.attempt = attempt;
  state.skew = Date.now() - attempt.server_now;
  const questions = attempt.quiz.questions;
  $('questions').replaceChildren(...questions.map((q, i) => questionFieldset(q, i, questions.length)));
  show('take');
  startTimer();
  const first = $('questions').querySelector('input');
  if (first instanceof HTMLElement) first.focus();
}

/** @param {StudentQuestion} q @param {number} i @param {number} total */
function questionFieldset(q, i, total) {
  const fieldset = /** @type {HTMLFieldSetElement} */ (make('fieldset'));
  fieldset.dataset.question = q.id;
  const legend = make('legend', '', Q.questionLegend(i + 1, total, q.points));
  const textId = `text-${i}`;
  const text = make('p', 'question-text', q.text);
  text.id = textId;
  fieldset.append(legend, text);
  fieldset.setAttribute('aria-describedby', textId);
  if (q.type === 'single_choice' || q.type === 'multiple_choice') {
    const single = q.type === 'single_choice';
    const hint = make('p', 'muted-text', single ? Q.pickOne : Q.pickAny);
    hint.id = `hint-${i}`;
    fieldset.setAttribute('aria-describedby', `${textId} ${hint.id}`);
    fieldset.append(hint);
    for (const choice of q.choices ?? []) {
      const input = /** @type {HTMLInputElement} */ (make('input'));
      input.type = single ? 'radio' : 'checkbox';
      input.name = `q-${i}`;
      input.value = String(choice.index);
      input.id = `q-${i}-${choice.index}`;
      const label = /** @type {HTMLLabelElement} */ (make('label', 'choice'));
      label.htmlFor = input.id;
      label.append(input, make('span', '', choice.text));
      fieldset.append(label);
    }
  } else {
    const input = /** @type {HTMLInputElement} */ (make('input'));
    input.type = 'text';
    input.id = `q-${i}`;
    input.name = `q-${i}`;
    input.autocomplete = 'off';
    if (q.type === 'numeric') input.inputMode = 'decimal';
    else input.maxLength = 500;
    const label = /** @type {HTMLLabelElement} */ (make('label', '', q.type === 'numeric' ? Q.numberLabel : Q.textLabel));
    label.htmlFor = input.id;
    fieldset.append(label, make('br'), input);
  }
  return fieldset;
}

/** The answers as the form holds them; `null` (after saying why) when one is not valid. */
function collectAnswers() {
  const attempt = state.attempt;
  if (!attempt) return null;
  /** @type {QuestionAnswer[]} */
  const answers = [];
  const form = /** @type {HTMLFormElement} */ ($('take'));
  for (const [i, q] of attempt.quiz.questions.entries()) {
    const name = `q-${i}`;
    if (q.type === 'single_choice') {
      const picked = form.querySelector(`input[name="${name}"]:checked`);
      if (picked instanceof HTMLInputElement) answers.push({ question: q.id, type: q.type, choice: Number(picked.value) });
    } else if (q.type === 'multiple_choice') {
      const picked = [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((el) => Number(/** @type {HTMLInputElement} */ (el).value));
      if (picked.length) answers.push({ question: q.id, type: q.type, choices: picked });
    } else {
      const input = /** @type {HTMLInputElement} */ ($(name));
      const raw = input.value.trim();
      if (!raw) continue;
      if (q.type === 'numeric') {
        const value = Number(raw.replace(',', '.'));
        if (!Number.isFinite(value)) {
          showError(Q.notANumber(String(i + 1)));
          input.focus();
          return null;
        }
        answers.push({ question: q.id, type: q.type, value });
      } else {
        answers.push({ question: q.id, type: q.type, text: raw });
      }
    }
  }
  return answers;
}

/** @param {{confirm: boolean}} options */
async function submit({ confirm: ask }) {
  const attempt = state.attempt;
  if (!attempt || state.submitting) return;
  const answers = collectAnswers();
  if (!answers) return;
  if (ask && !confirm(Q.confirmSubmit)) return;
  state.submitting = true;
  const answer = await memberApi('POST', quizUrl(`/attempts/${attempt.id}/submit`), { answers });
  state.submitting = false;
  if (!answer.ok) {
    if (answer.body?.error?.code === 'already_submitted') return showAttempt(attempt.id);
    return showError(refusal(answer));
  }
  showError('');
  drawReview(/** @type {Attempt} */ (answer.body));
}

function startTimer() {
  clearInterval(state.ticker);
  const timer = $('timer');
  const deadline = state.attempt?.deadline_at ?? null;
  timer.hidden = deadline === null || state.attempt?.quiz === undefined;
  state.warned = false;
  if (deadline === null) return;
  const tick = () => {
    const left = (deadline - (Date.now() - state.skew)) / 1000;
    timer.textContent = Q.timeLeft(duration(Math.ceil(left)));
    timer.classList.toggle('low', left <= 60);
    if (left <= 60 && !state.warned) {
      state.warned = true;
      announce(Q.oneMinuteLeft);
    }
    if (left <= 0) {
      clearInterval(state.ticker);
      announce(Q.timeUpSubmitting);
      submit({ confirm: false });
    }
  };
  tick();
  state.ticker = setInterval(tick, 1000);
}

function stopTimer() {
  clearInterval(state.ticker);
  $('timer').hidden = true;
}

// ---- The review -----------------------------------------------------------------------------

/** @param {number} id */
async function showAttempt(id) {
  const answer = await memberApi('GET', quizUrl(`/attempts/${id}`));
  if (!answer.ok) return showError(refusal(answer));
  showError('');
  drawReview(/** @type {Attempt} */ (answer.body));
}

/** @param {Attempt} attempt */
function drawReview(attempt) {
  stopTimer();
  state.attempt = null;
  const result = attempt.result;
  if (!result) return;
  $('score-heading').textContent = Q.scoreHeading(result.score, result.max_score);
  const byId = new Map(attempt.quiz.questions.map((q) => [q.id, q]));
  const answers = new Map((attempt.answers ?? []).map((a) => [a.question, a]));
  $('graded').replaceChildren(
    ...result.questions.map((g) => {
      const q = byId.get(g.question);
      const li = make('li');
      li.dataset.question = g.question;
      li.dataset.outcome = g.outcome;
      if (q) li.append(make('p', 'question-text', q.text));
      li.append(make('p', `outcome-${g.outcome}`, Q.outcomeLine(Q.outcome[g.outcome] ?? g.outcome, g.score, g.max)));
      const given = answers.get(g.question);
      li.append(make('p', '', given ? Q.yourAnswer + answerText(q, given) : Q.noAnswer));
      for (const f of g.feedback) li.append(make('p', '', Q.feedback + f));
      if (g.outcome !== 'correct') li.append(make('p', '', Q.solution + solutionText(q, g.solution)));
      if (g.explanation) li.append(make('p', 'post-body', Q.explanation + g.explanation));
      return li;
    }),
  );
  show('review');
  $('again').hidden = true;
  $('score-heading').focus();
  // The intro's facts (attempts left, best score) changed: reload them for "again".
  memberApi('GET', quizUrl('')).then((answer) => {
    if (answer.ok && answer.body.mine.can_attempt) $('again').hidden = false;
  });
}

/** @param {StudentQuestion | undefined} q @param {number} index */
function choiceText(q, index) {
  return q?.choices?.find((c) => c.index === index)?.text ?? String(index);
}

/** @param {StudentQuestion | undefined} q @param {QuestionAnswer} a */
function answerText(q, a) {
  if (a.choice !== undefined) return choiceText(q, a.choice);
  if (a.choices) return a.choices.map((c) => choiceText(q, c)).join(', ');
  if (a.value !== undefined) return String(a.value);
  return a.text ?? '';
}

/** @param {StudentQuestion | undefined} q @param {Solution} s */
function solutionText(q, s) {
  if (s.correct) return s.correct.map((c) => choiceText(q, c)).join(s.type === 'single_choice' ? Q.or : ', ');
  return (s.accepted ?? [])
    .map((a) => {
      if (typeof a === 'string') return a;
      if (a.value !== undefined) return Q.plusMinus(a.value, a.tolerance ?? 0);
      return Q.range(a.min ?? 0, a.max ?? 0);
    })
    .join(Q.or);
}

// ---- Start ----------------------------------------------------------------------------------

function start() {
  for (const element of document.querySelectorAll('[data-text]')) {
    const key = /** @type {HTMLElement} */ (element).dataset.text ?? '';
    element.textContent = /** @type {Record<string, any>} */ (Q)[key];
  }
  root.dataset.state = 'loading';
  const params = new URLSearchParams(location.search);
  const token = readToken();
  state.course = params.get('course') ?? '';
  state.quiz = Number(params.get('quiz'));
  if (!token || !state.course || !(state.quiz > 0)) return fail(Q.linkMissing);
  sessionStorage.setItem(TOKEN_KEY, token);
  state.token = token;
  /** @type {HTMLAnchorElement} */ ($('home-link')).href = `/course.html?course=${encodeURIComponent(state.course)}`;
  $('start').addEventListener('click', startAttempt);
  $('again').addEventListener('click', () => loadIntro().then(() => $('start').focus()));
  $('take').addEventListener('submit', (event) => {
    event.preventDefault();
    submit({ confirm: true });
  });
  $('attempts').addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('button[data-attempt]') : null;
    if (button instanceof HTMLButtonElement) showAttempt(Number(button.dataset.attempt));
  });
  loadIntro();
}

start();
