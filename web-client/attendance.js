// @ts-check
/**
 * The attendance panel for staff (issue 16): a button in the teaching controls opens a
 * non-modal panel with a table (name, role, present or left, joined at, left at, late) filled
 * from the server's `attendance` (the answer to `attendance_get`), asked again whenever someone
 * joins, leaves or reconnects while it is open. Escape or "Close" closes it, and focus goes back
 * to the button that opened it.
 */
import { $, make } from './dom.js';
import { TEACHING_STRINGS as T, STRINGS } from './strings.js';

/** @typedef {import('./protocol.js').AttendanceMessage} AttendanceMessage */
/** @typedef {import('./protocol.js').RoomEvent} RoomEvent */
/** @typedef {import('./moderation.js').ClassPage} ClassPage */

/** Room events after which the table is asked for again. */
const REFRESH_ON = new Set(['participant_joined', 'participant_left', 'participant_connection', 'admitted', 'class_started']);

/** `14:05` in the reader's locale. @param {number} at Unix ms */
function clockTime(at) {
  return new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export class AttendancePanel {
  #open = false;
  /** A request is out; `#again` asks once more when it is answered. */
  #loading = false;
  #again = false;

  /** @param {ClassPage} page */
  constructor(page) {
    this.page = page;
    /** @type {import('./moderation.js').Actions} */
    this.actions = {
      attendance_toggle: () => (this.#open ? this.close() : this.open()),
      attendance_close: () => this.close(),
    };
  }

  get isOpen() {
    return this.#open;
  }

  setUp() {
    $('attendance-open').textContent = T.attendance;
    $('attendance-heading').textContent = T.attendanceHeading;
    $('attendance-close').textContent = T.attendanceClose;
    const head = make('tr');
    for (const column of T.attendanceColumns) {
      const th = make('th', '', column);
      th.setAttribute('scope', 'col');
      head.append(th);
    }
    $('attendance-head').replaceChildren(head);
    $('attendance').addEventListener('keydown', (e) => {
      if (e.key !== 'Escape') return;
      e.stopPropagation();
      this.close();
    });
  }

  open() {
    this.#open = true;
    $('attendance').hidden = false;
    $('attendance-open').setAttribute('aria-expanded', 'true');
    $('attendance-status').textContent = T.attendanceLoading;
    $('attendance-heading').focus();
    void this.refresh();
  }

  close() {
    if (!this.#open) return;
    this.#open = false;
    const panel = $('attendance');
    const hadFocus = panel.contains(document.activeElement);
    panel.hidden = true;
    const opener = $('attendance-open');
    opener.setAttribute('aria-expanded', 'false');
    if (hadFocus && opener.getClientRects().length > 0) opener.focus();
  }

  /** Closed when this user is not staff (or the classroom is not shown). @param {boolean} staff */
  render(staff) {
    if (!staff) this.close();
  }

  /** @param {RoomEvent} event */
  onEvent(event) {
    if (this.#open && REFRESH_ON.has(event.kind)) void this.refresh();
  }

  /** Asks the server; while a request is out, one more follows it instead of a second at once. */
  async refresh() {
    const connection = this.page.connection();
    if (!this.#open || !connection) return;
    if (this.#loading) {
      this.#again = true;
      return;
    }
    this.#loading = true;
    try {
      const answer = await connection.attendance();
      if (this.#open) this.#draw(answer);
    } catch (e) {
      const { code = '' } = /** @type {{code?: string}} */ (e);
      $('attendance-status').textContent = STRINGS.errors[code] ?? T.attendanceFailed;
    } finally {
      this.#loading = false;
      if (this.#again) {
        this.#again = false;
        void this.refresh();
      }
    }
  }

  /** @param {AttendanceMessage} answer */
  #draw(answer) {
    const entries = Array.isArray(answer.entries) ? answer.entries : [];
    const rows = entries.map((e) => {
      const tr = make('tr', e.present ? 'present' : 'left');
      tr.dataset.participant = e.participant_id;
      const name = make('th', 'name', e.name);
      name.setAttribute('scope', 'row');
      tr.append(
        name,
        make('td', '', STRINGS.roles[e.role] ?? e.role),
        make('td', 'attendance-state', e.present ? T.present : T.left),
        make('td', '', clockTime(e.first_joined_at)),
        make('td', '', e.last_left_at === null ? T.notLeft : clockTime(e.last_left_at)),
        make('td', e.late ? 'late' : '', e.late ? T.late : T.onTime),
      );
      return tr;
    });
    $('attendance-rows').replaceChildren(...rows);
    const present = entries.filter((e) => e.present).length;
    const late = entries.filter((e) => e.late).length;
    $('attendance-status').textContent = entries.length ? T.attendanceSummary(present, entries.length, late) : T.attendanceEmpty;
  }
}
