// @ts-check
/**
 * Live polls in class (issue 13), in one non-modal panel:
 * - staff: "Poll" in the teaching controls opens a form (question, 2 to 10 options added and
 *   removed, multiple choice, anonymous); while the poll runs, the results as bars with counts
 *   and percentages (and, unless anonymous, who chose what), "End poll" and "Share results";
 * - a student: the question with radio buttons (single choice) or check boxes (multiple), one
 *   "Submit answer", then "Answer sent" with their choice;
 * - everyone: the counts once staff share them.
 * New polls, their end and shared results are said in the page's live region. The server's
 * `poll_*` events, `poll_results` (staff) and the snapshot's `poll` are the only state.
 */
import { $, make } from './dom.js';
import { isStaffRole } from './protocol.js';
import { POLL_STRINGS as P, STRINGS } from './strings.js';

/** @typedef {import('./protocol.js').Poll} Poll */
/** @typedef {import('./protocol.js').PollResults} PollResults */
/** @typedef {import('./protocol.js').PollVote} PollVote */
/** @typedef {import('./protocol.js').RoomEvent} RoomEvent */
/** @typedef {import('./protocol.js').Snapshot} Snapshot */
/** @typedef {import('./moderation.js').ClassPage} ClassPage */

const MIN_OPTIONS = 2;
const MAX_OPTIONS = 10;
const MAX_QUESTION = 300;
const MAX_OPTION = 120;

/** @param {number} count @param {number} answered */
function percent(count, answered) {
  return answered > 0 ? Math.round((100 * count) / answered) : 0;
}

export class Polls {
  /** The current poll (open, or ended and kept on screen), or null. @type {Poll | null} */
  #poll = null;
  #open = false;
  #shared = false;
  /** This participant's own answer. @type {number[] | null} */
  #mine = null;
  /** Counts and how many answered: staff's live results, or the shared counts. @type {{counts: number[], answered: number} | null} */
  #counts = null;
  /** Staff: who chose what, by participant. @type {Map<string, PollVote>} */
  #votes = new Map();
  /** The panel is shown: staff opened it, or a poll came. */
  #shown = false;
  /** Staff are writing a new poll. */
  #composing = false;
  /** An answer or a start is on its way. */
  #busy = false;
  /** The poll the answer form was drawn for (so a redraw keeps what the student ticked). */
  #drawnFor = -1;

  /** @param {ClassPage} page */
  constructor(page) {
    this.page = page;
    /** @type {import('./moderation.js').Actions} */
    this.actions = {
      poll_toggle: () => this.#toggle(),
      poll_close: () => this.#hide(),
      poll_add_option: () => this.#addOption(''),
      poll_remove_option: (b) => this.#removeOption(b),
      poll_end: () => void this.#staffAct('poll_end'),
      poll_share: () => void this.#staffAct('poll_share'),
      poll_new: () => this.#compose(),
    };
  }

  get #staff() {
    return isStaffRole(this.page.me.role);
  }

  /** The static text, the form's first two options, and the form handlers. */
  setUp() {
    $('poll-open').textContent = P.poll;
    $('poll-heading').textContent = P.heading;
    $('poll-close').textContent = P.close;
    $('poll-compose-heading').textContent = P.composeHeading;
    $('poll-question-label').textContent = P.question;
    $('poll-add-option').textContent = P.addOption;
    $('poll-multiple-label').textContent = P.multiple;
    $('poll-anonymous-label').textContent = P.anonymous;
    $('poll-start').textContent = P.start;
    $('poll-submit').textContent = P.submit;
    $('poll-end').textContent = P.end;
    $('poll-share').textContent = P.share;
    $('poll-new').textContent = P.newPoll;
    $('poll-results-heading').textContent = P.resultsHeading;
    $('poll-votes-summary').textContent = P.whoChose;
    /** @type {HTMLTextAreaElement} */ ($('poll-question-input')).maxLength = MAX_QUESTION;
    this.#resetForm();
    $('poll-compose').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.#start();
    });
    $('poll-answer').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.#answer();
    });
    $('polls').addEventListener('keydown', (e) => {
      if (e.key !== 'Escape') return;
      e.stopPropagation();
      this.#hide();
    });
  }

  /** The whole room again (welcome, admission): its `poll`, if any. @param {Snapshot} snapshot */
  onSnapshot(snapshot) {
    const state = snapshot.poll;
    if (!state) {
      if (this.#open || this.#poll === null) this.#clear();
      return;
    }
    const isNew = state.poll.poll_id !== this.#poll?.poll_id;
    this.#poll = state.poll;
    this.#open = state.open;
    this.#shared = state.shared;
    this.#mine = state.my_choices ?? null;
    this.#counts = state.results ? { counts: state.results.counts, answered: state.results.answered } : null;
    this.#votes.clear();
    for (const v of state.results?.votes ?? []) this.#votes.set(v.participant_id, v);
    if (isNew) this.#shown = true;
  }

  /** @param {RoomEvent} event */
  onEvent(event) {
    switch (event.kind) {
      case 'poll_started':
        this.#poll = event.poll;
        this.#open = true;
        this.#shared = false;
        this.#mine = null;
        this.#votes.clear();
        this.#counts = this.#staff ? { counts: event.poll.options.map(() => 0), answered: 0 } : null;
        this.#composing = false;
        this.#shown = true;
        this.#status('');
        break;
      case 'poll_ended':
        if (event.poll_id === this.#poll?.poll_id) this.#open = false;
        break;
      case 'poll_shared':
        if (event.poll_id !== this.#poll?.poll_id) break;
        this.#open = false;
        this.#shared = true;
        this.#counts = { counts: event.counts, answered: event.answered };
        this.#shown = true;
        break;
      default:
    }
  }

  /** Staff: results so far (`votes` add to those known: each participant answers once). @param {PollResults} results */
  onResults(results) {
    if (results.poll_id !== this.#poll?.poll_id) return;
    this.#counts = { counts: results.counts, answered: results.answered };
    for (const v of results.votes ?? []) this.#votes.set(v.participant_id, v);
    this.page.scheduleRender();
  }

  /** What the live region says about a poll event, or ''. @param {RoomEvent} event */
  announcement(event) {
    if (event.kind === 'poll_started') return P.announceStarted(event.poll.question);
    if (event.kind === 'poll_ended' && event.poll_id === this.#poll?.poll_id) return P.announceEnded;
    if (event.kind === 'poll_shared' && this.#poll?.poll_id === event.poll_id) {
      const options = this.#poll.options;
      const summary = event.counts.map((n, i) => `${options[i]} ${P.count(n, percent(n, event.answered))}`).join(', ');
      return P.announceShared(summary);
    }
    return '';
  }

  /** @param {boolean} staff */
  render(staff) {
    $('poll-open').hidden = !staff;
    $('poll-open').setAttribute('aria-expanded', String(this.#shown));
    const panel = $('polls');
    panel.hidden = !this.#shown || (!this.#poll && !(staff && this.#composing));
    if (panel.hidden) return;
    const composing = staff && (this.#composing || !this.#poll);
    $('poll-compose').hidden = !composing;
    $('poll-view').hidden = composing;
    if (composing || !this.#poll) return;
    const poll = this.#poll;
    $('poll-question').textContent = poll.question;
    const notes = [poll.multiple ? P.several : P.single];
    if (poll.anonymous) notes.push(P.anonymousNote);
    if (!this.#open) notes.push(P.ended);
    $('poll-meta').textContent = notes.join(' ');
    this.#renderAnswer(staff, poll);
    this.#renderResults(staff, poll);
    $('poll-staff-actions').hidden = !staff;
    $('poll-end').hidden = !this.#open;
    $('poll-share').hidden = this.#shared;
    $('poll-new').hidden = this.#open;
    $('poll-shared-note').textContent = this.#shared ? P.sharedNote : '';
  }

  /** The student's form while they may answer; their answer once given. @param {boolean} staff @param {Poll} poll */
  #renderAnswer(staff, poll) {
    const form = /** @type {HTMLFormElement} */ ($('poll-answer'));
    const canAnswer = !staff && this.page.me.role === 'student' && this.#open && this.#mine === null;
    form.hidden = !canAnswer;
    if (canAnswer && this.#drawnFor !== poll.poll_id) {
      this.#drawnFor = poll.poll_id;
      $('poll-answer-legend').textContent = poll.question;
      const items = poll.options.map((text, i) => {
        const label = make('label', 'poll-choice');
        const input = /** @type {HTMLInputElement} */ (make('input'));
        input.type = poll.multiple ? 'checkbox' : 'radio';
        input.name = 'poll-choice';
        input.value = String(i);
        label.append(input, make('span', '', text));
        return label;
      });
      $('poll-choices').replaceChildren(...items);
    }
    const mine = $('poll-mine');
    mine.hidden = this.#mine === null;
    if (this.#mine !== null) {
      mine.textContent = `${P.answerSent}. ${P.youChose}: ${this.#mine.map((i) => poll.options[i] ?? '').join(', ')}`;
    } else if (!staff && !this.#open && this.page.me.role === 'student') {
      mine.hidden = false;
      mine.textContent = P.endedNoAnswer;
    }
  }

  /** Bars with counts and percentages (staff always, everyone once shared). @param {boolean} staff @param {Poll} poll */
  #renderResults(staff, poll) {
    const counts = this.#counts;
    const show = counts !== null && (staff || this.#shared);
    $('poll-results-box').hidden = !show;
    if (!show || !counts) return;
    $('poll-answered').textContent = P.answered(counts.answered);
    const rows = poll.options.map((text, i) => {
      const n = counts.counts[i] ?? 0;
      const p = percent(n, counts.answered);
      const li = make('li', 'poll-result');
      const label = make('span', 'poll-result-label', text);
      const figure = make('span', 'poll-result-count', P.count(n, p));
      const bar = make('span', 'poll-bar');
      bar.setAttribute('aria-hidden', 'true');
      const fill = make('span', 'poll-bar-fill');
      fill.style.width = `${p}%`;
      bar.append(fill);
      li.append(label, figure, bar);
      return li;
    });
    $('poll-results').replaceChildren(...rows);
    const votes = staff && !poll.anonymous ? [...this.#votes.values()] : [];
    $('poll-votes-box').hidden = votes.length === 0;
    $('poll-votes').replaceChildren(
      ...votes.map((v) => make('li', '', `${v.name}: ${v.choices.map((i) => poll.options[i] ?? '').join(', ')}`)),
    );
  }

  /** Staff's "Poll": the current poll's results, or the form when there is none. */
  #toggle() {
    if (this.#shown && !$('polls').hidden) return this.#hide();
    this.#shown = true;
    this.#composing = !this.#poll;
    this.page.scheduleRender();
    requestAnimationFrame(() => $('poll-heading').focus());
  }

  #hide() {
    if (!this.#shown) return;
    const panel = $('polls');
    const hadFocus = panel.contains(document.activeElement);
    this.#shown = false;
    this.#composing = false;
    panel.hidden = true;
    this.page.scheduleRender();
    const opener = $('poll-open');
    if (hadFocus && opener.getClientRects().length > 0) opener.focus();
  }

  #compose() {
    this.#composing = true;
    this.#resetForm();
    this.page.scheduleRender();
    requestAnimationFrame(() => $('poll-question-input').focus());
  }

  #clear() {
    this.#poll = null;
    this.#open = false;
    this.#shared = false;
    this.#mine = null;
    this.#counts = null;
    this.#votes.clear();
  }

  /** @param {string} text */
  #status(text) {
    $('poll-status').textContent = text;
  }

  /** An empty form with two options. */
  #resetForm() {
    /** @type {HTMLTextAreaElement} */ ($('poll-question-input')).value = '';
    $('poll-options').replaceChildren();
    this.#addOption('', false);
    this.#addOption('', false);
    /** @type {HTMLInputElement} */ ($('poll-multiple')).checked = false;
    /** @type {HTMLInputElement} */ ($('poll-anonymous')).checked = false;
    $('poll-compose-status').textContent = '';
  }

  /** @param {string} value @param {boolean} [focus] */
  #addOption(value, focus = true) {
    const list = $('poll-options');
    if (list.children.length >= MAX_OPTIONS) return;
    const li = make('li', 'poll-option');
    const input = /** @type {HTMLInputElement} */ (make('input'));
    input.type = 'text';
    input.maxLength = MAX_OPTION;
    input.value = value;
    input.className = 'poll-option-input';
    const remove = /** @type {HTMLButtonElement} */ (make('button', 'small'));
    remove.type = 'button';
    remove.dataset.action = 'poll_remove_option';
    li.append(input, remove);
    list.append(li);
    this.#numberOptions();
    if (focus) input.focus();
  }

  /** @param {HTMLElement} button */
  #removeOption(button) {
    const list = $('poll-options');
    const li = button.closest('li');
    if (!li || list.children.length <= MIN_OPTIONS) return;
    const next = li.nextElementSibling ?? li.previousElementSibling;
    li.remove();
    this.#numberOptions();
    next?.querySelector('input')?.focus();
  }

  /** Labels follow the order; "Remove" only while more than two are left; "Add" up to ten. */
  #numberOptions() {
    const items = [...$('poll-options').children];
    items.forEach((li, i) => {
      const input = li.querySelector('input');
      const remove = li.querySelector('button');
      input?.setAttribute('aria-label', P.option(i + 1));
      if (input) input.placeholder = P.option(i + 1);
      if (remove) {
        remove.textContent = '×';
        remove.setAttribute('aria-label', P.removeOption(i + 1));
        remove.hidden = items.length <= MIN_OPTIONS;
      }
    });
    $('poll-add-option').hidden = items.length >= MAX_OPTIONS;
  }

  async #start() {
    const connection = this.page.connection();
    if (!connection || this.#busy) return;
    const question = /** @type {HTMLTextAreaElement} */ ($('poll-question-input')).value.trim();
    const options = [...$('poll-options').querySelectorAll('input')].map((i) => i.value.trim()).filter((o) => o);
    const status = $('poll-compose-status');
    if (!question) return void (status.textContent = P.needQuestion);
    if (options.length < MIN_OPTIONS || new Set(options).size !== options.length) {
      return void (status.textContent = P.needOptions);
    }
    this.#busy = true;
    try {
      await connection.request('poll_start', {
        question,
        options,
        multiple: /** @type {HTMLInputElement} */ ($('poll-multiple')).checked,
        anonymous: /** @type {HTMLInputElement} */ ($('poll-anonymous')).checked,
      });
      this.#resetForm();
      requestAnimationFrame(() => $('poll-heading').focus());
    } catch (e) {
      status.textContent = this.#errorText(e);
    } finally {
      this.#busy = false;
      this.page.scheduleRender();
    }
  }

  async #answer() {
    const connection = this.page.connection();
    const poll = this.#poll;
    if (!connection || !poll || this.#busy) return;
    const choices = [...$('poll-choices').querySelectorAll('input:checked')].map((i) => Number(/** @type {HTMLInputElement} */ (i).value));
    if (choices.length === 0) return void this.#status(P.chooseFirst);
    this.#busy = true;
    try {
      await connection.request('poll_answer', { poll_id: poll.poll_id, choices });
      this.#mine = choices.sort((a, b) => a - b);
      this.#status('');
      this.page.announce(P.announceSent);
      requestAnimationFrame(() => $('poll-mine').focus());
    } catch (e) {
      this.#status(this.#errorText(e));
    } finally {
      this.#busy = false;
      this.page.scheduleRender();
    }
  }

  /** @param {'poll_end' | 'poll_share'} type */
  async #staffAct(type) {
    if (!this.#poll) return;
    await this.page.act(type, { poll_id: this.#poll.poll_id });
  }

  /** @param {unknown} e */
  #errorText(e) {
    const { code = '', message = '' } = /** @type {{code?: string, message?: string}} */ (e);
    return P.errors[code] ?? STRINGS.errors[code] ?? message;
  }
}
