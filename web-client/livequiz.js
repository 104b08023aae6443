// @ts-check
/**
 * A course quiz taken live in class (issue 13), in one non-modal panel:
 * - staff: "Live quiz" in the teaching controls opens a form (one of the course's published
 *   quizzes, read from the member API, and the minutes to answer); while it runs, its end
 *   time, how many submitted (`quiz_progress`) and "End quiz";
 * - everyone else: when staff launch one, the panel opens with the quiz's title, when it ends
 *   and a "Take the quiz" link to the quiz page (a new tab, with this page's course token).
 * The launch and the end are said in the page's live region. The server's `quiz_live` and
 * `quiz_ended` events and the snapshot's `live_quiz` are the only state.
 */
import { $, make } from './dom.js';
import { isStaffRole } from './protocol.js';
import { LIVE_QUIZ_STRINGS as L } from './strings.js';

/** @typedef {import('./protocol.js').LiveQuiz} LiveQuiz */
/** @typedef {import('./protocol.js').RoomEvent} RoomEvent */
/** @typedef {import('./protocol.js').Snapshot} Snapshot */
/** @typedef {import('./moderation.js').ClassPage} ClassPage */

export class LiveQuizPanel {
  /** The live quiz, or null. @type {LiveQuiz | null} */
  #quiz = null;
  /** Staff: how many submitted the live quiz. */
  #submitted = 0;
  /** The panel is shown: staff opened it, or a quiz was launched. */
  #shown = false;
  /** The course and its token, in a course session's room. @type {{course: string, token: string} | null} */
  #course = null;
  /** Staff: the course's published quizzes, once read. @type {{id: number, title: string}[] | null} */
  #choices = null;
  #note = '';

  /** @param {ClassPage} page */
  constructor(page) {
    this.page = page;
    /** @type {import('./moderation.js').Actions} */
    this.actions = {
      livequiz_toggle: () => this.#toggle(),
      livequiz_close: () => this.#hide(),
      livequiz_end: () => {
        if (this.#quiz) void this.page.act('quiz_end', { quiz_id: this.#quiz.quiz_id });
      },
    };
  }

  /** The room belongs to `course`; `token` opens its member API and quiz page. @param {string} course @param {string} token */
  setCourse(course, token) {
    this.#course = { course, token };
  }

  setUp() {
    $('livequiz-open').textContent = L.open;
    $('livequiz-heading').textContent = L.heading;
    $('livequiz-close').textContent = L.close;
    $('livequiz-quiz-label').textContent = L.quizLabel;
    $('livequiz-minutes-label').textContent = L.minutesLabel;
    $('livequiz-launch').textContent = L.launch;
    $('livequiz-end').textContent = L.end;
    $('livequiz-take').textContent = L.take;
    $('livequiz-form').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.#launch();
    });
    $('livequiz').addEventListener('keydown', (e) => {
      if (e.key !== 'Escape') return;
      e.stopPropagation();
      this.#hide();
    });
  }

  /** @param {Snapshot} snapshot */
  onSnapshot(snapshot) {
    const quiz = snapshot.live_quiz ?? null;
    if (quiz && quiz.quiz_id !== this.#quiz?.quiz_id) this.#shown = true;
    this.#quiz = quiz;
  }

  /** @param {RoomEvent} event */
  onEvent(event) {
    if (event.kind === 'quiz_live') {
      this.#quiz = event.quiz;
      this.#submitted = 0;
      this.#shown = true;
    } else if (event.kind === 'quiz_ended' && event.quiz_id === this.#quiz?.quiz_id) {
      this.#quiz = null;
      this.#note = L.ended;
    }
  }

  /** Staff: how many submitted. @param {number} quizId @param {number} submitted */
  onProgress(quizId, submitted) {
    if (quizId !== this.#quiz?.quiz_id) return;
    this.#submitted = submitted;
    this.page.scheduleRender();
  }

  /** What to say in the live region for this event, if anything. @param {RoomEvent} event */
  announcement(event) {
    if (event.kind === 'quiz_live') return L.announceLive(event.quiz.title);
    if (event.kind === 'quiz_ended') return L.announceEnded;
    return '';
  }

  /** @param {boolean} staff */
  render(staff) {
    $('livequiz-open').hidden = !staff || !this.#course;
    $('livequiz-open').setAttribute('aria-expanded', String(this.#shown));
    const panel = $('livequiz');
    panel.hidden = !this.#shown;
    if (panel.hidden) return;
    const quiz = this.#quiz;
    $('livequiz-form').hidden = !staff || quiz !== null || !this.#choices?.length;
    $('livequiz-note').textContent = quiz ? '' : this.#note;
    $('livequiz-view').hidden = quiz === null;
    if (!quiz) return;
    $('livequiz-title').textContent = quiz.title;
    const time = new Date(quiz.ends_at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    $('livequiz-ends').textContent = L.endsAt(time);
    const take = /** @type {HTMLAnchorElement} */ ($('livequiz-take'));
    take.hidden = staff || this.page.me.role !== 'student' || !this.#course;
    if (this.#course) {
      const { course, token } = this.#course;
      take.href = `/quiz.html?course=${encodeURIComponent(course)}&quiz=${quiz.quiz_id}#token=${encodeURIComponent(token)}`;
    }
    $('livequiz-progress').hidden = !staff;
    $('livequiz-progress').textContent = L.submitted(this.#submitted);
    $('livequiz-end').hidden = !staff;
  }

  #toggle() {
    if (this.#shown) return this.#hide();
    this.#shown = true;
    if (isStaffRole(this.page.me.role) && this.#choices === null) void this.#loadChoices();
    this.page.scheduleRender();
    queueMicrotask(() => $('livequiz-heading').focus());
  }

  #hide() {
    this.#shown = false;
    this.page.scheduleRender();
    $('livequiz-open').focus();
  }

  /** Staff: the course's published quizzes, for the form. */
  async #loadChoices() {
    if (!this.#course) {
      this.#note = L.noCourse;
      return this.page.scheduleRender();
    }
    const { course, token } = this.#course;
    try {
      const r = await fetch(`/course/v1/courses/${encodeURIComponent(course)}/quizzes`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      if (!r.ok) throw new Error(String(r.status));
      /** @type {{quizzes: {quiz: {id: number, title: string, published: boolean}}[]}} */
      const body = await r.json();
      this.#choices = body.quizzes.filter((q) => q.quiz.published).map((q) => ({ id: q.quiz.id, title: q.quiz.title }));
      const select = /** @type {HTMLSelectElement} */ ($('livequiz-quiz'));
      select.replaceChildren(
        ...this.#choices.map((q) => {
          const option = /** @type {HTMLOptionElement} */ (make('option', '', q.title));
          option.value = String(q.id);
          return option;
        }),
      );
      this.#note = this.#choices.length ? '' : L.none;
    } catch {
      this.#note = L.loadFailed;
    }
    this.page.scheduleRender();
  }

  async #launch() {
    const select = /** @type {HTMLSelectElement} */ ($('livequiz-quiz'));
    const minutes = Number(/** @type {HTMLInputElement} */ ($('livequiz-minutes')).value);
    if (!select.value || !(minutes >= 1)) return;
    await this.page.act('quiz_launch', { quiz_id: Number(select.value), duration_secs: Math.round(minutes * 60) });
  }
}
