// @ts-check
/**
 * Every piece of text the class page shows, in one place (for wording changes and, later,
 * translation). Messages with parameters are functions. index.html names its static text by
 * key (`data-text="leave"`); app.js fills those in at start.
 *
 * Text here is only ever set as `textContent`, never as HTML, and so is whatever the
 * functions are given (names, chat).
 */

/** @typedef {import('./media.js').Source} Source */
/** @typedef {import('./devices.js').Device} Device */

export const STRINGS = {
  appName: 'Lectern',
  recordingBadge: '● Recording',
  startRecording: 'Start recording',
  stopRecording: 'Stop recording',
  announceRecordingStarted: 'This class is now being recorded.',
  announceRecordingStopped: 'Recording stopped.',
  announceRecordingDiskFull: 'Recording stopped: the server is out of disk space. What was recorded is kept.',
  leave: 'Leave class',
  rejoin: 'Join again',
  leaveDialogHeading: 'Leave class?',
  leaveDialogBody: 'You can join again with the same link while the class is on.',
  leaveConfirm: 'Leave',
  leaveStay: 'Stay',
  /** @param {string} elapsed e.g. `12:34` @param {string | null} left time to the scheduled end, if any */
  classTimer: (elapsed, left) => (left === null ? `Live for ${elapsed}` : `Live for ${elapsed} · ${left} left`),
  // The stage's own buttons: pin keeps the stage on the video shown now (camera or screen)
  // instead of following the presenter's newest video; full screen shows only the stage.
  /** @type {[string, string]} [pin, unpin] */
  stagePin: ['Pin stage', 'Unpin stage'],
  stagePinTitle: 'Keep the stage on this video instead of switching automatically',
  /** @type {[string, string]} [enter, exit] */
  stageFullscreen: ['Full screen', 'Exit full screen (Esc)'],
  stageToolsLabel: 'Stage view',
  reactionsShownLabel: 'Reactions',
  lobbyHeading: 'Waiting for the class to start',
  lobbyBody: 'You are in the lobby. The class opens by itself when your instructor starts it.',
  /** @param {string} left e.g. `4:59` */
  lobbyCountdown: (left) => `Class starts in ${left}`,
  lobbyEndedHeading: 'The class has ended',
  lobbyEndedBody: 'Thank you for attending. If your instructor starts the class again, it opens here by itself.',
  lobbyPastStart: 'The class should start now. Waiting for the instructor.',
  /** @param {string} left */
  endingSoon: (left) => `The class ends in ${left}.`,
  endingNow: 'The scheduled end has passed. The room closes shortly.',
  /** @param {string} time local clock time the room closes */
  announceEndingSoon: (time) => `The class ends soon. The room closes at ${time}.`,
  controlsHeading: 'Your controls',
  staffHeading: 'Teaching controls',
  handsHeading: 'Raised hands',
  handsEmpty: 'No hands are raised.',
  rosterHeading: 'Participants',
  chatHeading: 'Chat',
  chatTo: 'To',
  chatToEveryone: 'Everyone',
  chatToStaff: 'Teaching staff (private)',
  chatInput: 'Message',
  chatPlaceholder: 'Write a message (Alt+C)',
  chatSend: 'Send',
  chatLockedNote: 'Chat is locked by the teaching staff.',
  chatMore: 'Show earlier messages',
  /** @param {number} n */
  chatUnread: (n) => `${n} new`,
  chatMoreFailed: 'Earlier messages could not be loaded. Try again.',
  reactionsLabel: 'Send a reaction',
  shortcutsHeading: 'Keyboard shortcuts',
  startClass: 'Start class',
  endClass: 'End class',
  callNext: 'Call on next (Alt+N)',
  lowerAll: 'Lower all hands',
  lockChat: 'Lock chat',
  unlockChat: 'Unlock chat',
  raiseHand: 'Raise hand (Alt+H)',
  lowerHand: 'Lower hand (Alt+H)',
  speakNote: 'You may speak now.',
  stageHeading: 'Stage',
  stageEmpty: 'No video yet.',
  presentingNote: 'You are presenting',
  stageEmptyPresenting: 'Turn on your camera or share your screen: everyone sees it here.',
  soundUnlock: 'Turn on sound',
  /** @type {Record<Source, [string, string]>} [switch on, switch off] */
  mediaButtons: {
    camera: ['Turn camera on', 'Turn camera off'],
    mic: ['Turn microphone on', 'Turn microphone off'],
    screen: ['Share screen', 'Stop sharing'],
  },
  /** @type {Record<Source, string>} */
  mediaFailed: {
    camera: 'Could not turn the camera on. Check that the browser may use it.',
    mic: 'Could not turn the microphone on. Check that the browser may use it.',
    screen: 'Screen sharing did not start.',
  },
  devicesHeading: 'Camera and microphone',
  devicesOpen: 'Camera and microphone',
  cameraLabel: 'Camera',
  micLabel: 'Microphone',
  enterClass: 'Enter class',
  devicesDone: 'Done',
  /** @type {Record<Device, string>} */
  noDevice: { camera: 'No camera found', mic: 'No microphone found' },
  /** @type {Record<Device, (n: number) => string>} unnamed devices (no permission yet) */
  deviceN: { camera: (n) => `Camera ${n}`, mic: (n) => `Microphone ${n}` },
  devicesDenied: 'The browser did not allow the camera or microphone, so there is no preview. You can still enter the class.',
  mediaNegotiationFailed: 'The audio and video connection failed. Reload the page to try again.',
  you: '(you)',
  // Buttons on one person or message.
  callOn: 'Call on', lower: 'Lower', admit: 'Admit', mute: 'Mute', remove: 'Remove',
  allowSpeak: 'Allow to speak', revokeSpeak: 'Revoke speaking',
  grantStage: 'Give stage', revokeStage: 'Take back stage',
  reply: 'Reply privately', delete: 'Delete',
  toStaffTag: 'to staff',
  confirmEnd: 'End the class for everyone? Students will be disconnected.',
  /** @param {string} name */
  confirmRemove: (name) => `Remove ${name} from the class?`,
  /** @param {string} name */
  chatToParticipant: (name) => `${name} (private)`,
  /** @param {string} name */
  toParticipantTag: (name) => `privately to ${name}`,
  /** @param {string} name @param {string} text */
  announceChat: (name, text) => `${name}: ${text}`,
  /** @param {string} name @param {string} text */
  announcePrivate: (name, text) => `Private message from ${name}: ${text}`,
  announceCalledOn: 'You have been called on. You may speak now.',
  announceClassStarted: 'The class has started.',
  announceStageGranted: 'You are presenting: turn on your camera or share your screen.',
  announceStageRevoked: 'You are no longer presenting. The stage was taken back.',
  announceMuted: 'The teaching staff muted you. Raise your hand to speak again.',
  announceMaySpeak: 'You may speak now.',
  announceMayNotSpeak: 'You may no longer speak.',
  announceClassEnded: 'The class has ended.',
  announceLeft: 'You left the class.',
  cannotSpeak: 'You may not speak now: raise your hand (Alt+H).',
  /** @param {string} name @param {string} role */
  whoami: (name, role) => `${name}, ${role}`,
  classState: { not_started: 'Not started', live: 'Live', ended: 'Ended' },
  status: {
    connecting: 'Connecting…',
    open: 'Connected',
    reconnecting: 'Connection lost. Reconnecting…',
    closed: 'Disconnected',
  },
  roles: { instructor: 'Instructor', ta: 'Teaching assistant', student: 'Student', observer: 'Observer' },
  badges: {
    hand: 'Hand raised', lobby: 'In lobby', muted: 'Muted by staff', speak: 'May speak',
    presenter: 'Presenting', away: 'Reconnecting', mic: 'Mic on', camera: 'Camera on',
    screen: 'Sharing screen', speaking: 'Speaking',
  },
  reactions: {
    thumbs_up: ['👍', 'Thumbs up'], clap: ['👏', 'Clap'], heart: ['❤️', 'Heart'],
    laugh: ['😂', 'Laugh'], surprised: ['😮', 'Surprised'], confused: ['😕', 'Confused'],
  },
  shortcuts: [
    ['Alt+H', 'Raise or lower your hand'],
    ['Alt+C', 'Go to the chat box'],
    ['Alt+M', 'Turn your microphone on or off (when you may speak)'],
    ['Alt+N', 'Staff: call on the next raised hand'],
  ],
  linkMissing: 'This page needs a join link. Open the link your instructor or school sent you.',
  courseHome: 'Course home (new tab)',
  linkInvalid: 'This join link is not valid. Check that you copied all of it, or ask for a new one.',
  linkExpired: 'This join link has expired. Ask your instructor for a new one.',
  /** @type {Record<string, string>} */
  errors: {
    invalid_token: 'This join link is not valid. Ask your instructor for a new one.',
    token_expired: 'This join link has expired. Ask your instructor for a new one.',
    token_not_yet_valid: 'This join link is not valid yet. Try again closer to the class time.',
    wrong_room: 'This join link is for another class.',
    room_full: 'This class is full. Try again later or contact your instructor.',
    unsupported_version: 'This page is out of date. Reload it to join.',
    not_permitted: 'You are not allowed to do that.',
    in_lobby: 'Please wait until the class starts.',
    not_found: 'That person or message is no longer here.',
    queue_empty: 'No hands are raised.',
    chat_locked: 'Chat is locked by the teaching staff.',
    chat_empty: 'Write a message first.',
    chat_too_long: 'That message is too long.',
    rate_limited: 'You are sending too fast. Wait a moment.',
    store_unavailable: 'Your message could not be saved, so it was not sent. Try again.',
    not_connected: 'Not connected right now. Wait for the connection to come back.',
    disconnected: 'The connection dropped before the server answered. Try again.',
  },
  /** @type {Record<string, string>} */
  closing: {
    removed: 'You were removed from the class by the teaching staff.',
    class_ended: 'The class has ended. Thank you for attending.',
    replaced: 'You joined this class from another tab or device, so this page was disconnected.',
    left: 'You left the class.',
    abuse: 'You were disconnected for sending too many requests.',
    handshake_failed: 'Could not join the class. Reload the page to try again.',
    server_shutdown: 'The server is restarting. Reconnecting…',
    slow_consumer: 'Your connection could not keep up. Reconnecting…',
    redirected: 'Connecting to the class…',
    room_moved: 'The class is moving to another server. Reconnecting…',
  },
};

/**
 * Issue 16's teaching tools (moderation.js, gallery.js, attendance.js, quality.js): class-wide
 * speaking, the seminar gallery, cameras asked for, network quality, attendance. Set as
 * `textContent` only, like everything above.
 */
export const TEACHING_STRINGS = {
  muteAll: 'Mute all',
  speakAll: 'Allow everyone to speak',
  seminarMode: 'Seminar mode',
  attendance: 'Attendance',
  // A student's roster row (staff).
  askCamera: 'Ask to turn camera on',
  allowCamera: 'Allow camera',
  stopCamera: 'Stop camera',
  cameraAllowedBadge: 'Camera allowed',
  // The student's prompt.
  cameraPrompt: 'The instructor asks you to turn your camera on',
  cameraPromptOn: 'Turn on',
  cameraPromptLater: 'Not now',
  announceAllMuted: 'The teaching staff muted everyone. Raise your hand to speak.',
  announceSpeakAll: 'Everyone may speak now: turn your microphone on to speak.',
  announceSpeakAllOff: 'Speaking is by permission again.',
  announceSeminar: 'Seminar mode: everyone may turn their camera on; cameras are shown in a gallery.',
  announceLecture: 'Lecture mode: only the stage is shown.',
  announceCameraAllowed: 'You may turn your camera on.',
  announceCameraStopped: 'The teaching staff turned your camera off.',
  // The gallery.
  galleryHeading: 'Cameras',
  galleryPrevious: 'Previous',
  galleryNext: 'Next',
  /** @param {number} n @param {number} of */
  galleryPage: (n, of) => `Page ${n} of ${of}`,
  pin: 'Pin',
  /** @param {string} name */
  pinLabel: (name) => `Pin ${name} to the stage`,
  speaking: 'Speaking',
  // The attendance panel.
  attendanceHeading: 'Attendance',
  attendanceClose: 'Close',
  /** @type {[string, string, string, string, string, string]} */
  attendanceColumns: ['Name', 'Role', 'Status', 'Joined at', 'Left at', 'Late'],
  present: 'Present',
  left: 'Left',
  late: 'Late',
  onTime: 'No',
  notLeft: '—',
  attendanceLoading: 'Loading…',
  attendanceEmpty: 'Nobody has joined yet.',
  attendanceFailed: 'Attendance could not be loaded. Try again.',
  /** @param {number} present @param {number} total @param {number} late */
  attendanceSummary: (present, total, late) => `${present} of ${total} present, ${late} late`,
  // Network quality.
  /** @param {string} quality */
  network: (quality) => `Network: ${quality}`,
  /** @param {string} quality */
  myNetwork: (quality) => `Your network: ${quality}`,
  quality: { good: 'good', fair: 'fair', poor: 'poor', unknown: 'unknown' },
};

/**
 * The replay page's text (replay.html, replay.js, replay-model.js's chapter titles), set as
 * `textContent` only, like everything above. replay.html names its static text by key
 * (`data-text`).
 */
export const REPLAY_STRINGS = {
  pageTitle: 'Class recording',
  loading: 'Loading the recording…',
  untitled: 'Class recording',
  /** @param {string} date @param {string} length */
  when: (date, length) => `Recorded ${date} · ${length}`,
  stillRecording: 'This class is still being recorded. Reload the page later to watch the rest.',
  failed: 'This recording did not finish cleanly: parts of it may be missing.',
  download: 'Download recording',
  stageHeading: 'Stage',
  stageEmpty: 'No video at this point of the class.',
  buffering: 'Loading…',
  playerControls: 'Playback',
  play: 'Play',
  pause: 'Pause',
  position: 'Position',
  /** @param {string} at @param {string} total */
  positionText: (at, total) => `${at} of ${total}`,
  speed: 'Speed',
  /** @param {number} rate */
  speedOption: (rate) => `${rate}×`,
  soundUnlock: 'Turn on sound',
  shortcutsHeading: 'Keyboard shortcuts',
  shortcuts: [
    ['Space', 'Play or pause'],
    ['← / →', 'Back or forward 5 seconds'],
    ['Home / End', 'Go to the start or the end'],
  ],
  chaptersHeading: 'Chapters',
  chatHeading: 'Chat',
  chatEmpty: 'No messages yet at this point of the class.',
  rosterHeading: 'Participants',
  you: 'you',
  someone: 'Someone',
  toStaffTag: 'privately to staff',
  /** @param {string} name */
  toParticipantTag: (name) => `privately to ${name}`,
  // Chapters (replay-model.js).
  chapterClassStarted: 'Class started',
  chapterRecordingStarted: 'Recording started',
  /** @param {string} name */
  chapterPresentation: (name) => `Presentation: ${name}`,
  /** @param {string} name */
  chapterCalledOn: (name) => `${name} called on`,
  chapterPresentationEnded: 'Presentation ended',
  chapterClassEnded: 'Class ended',
  chapterGap: 'Recording gap',
  /** @param {string} at @param {string} title */
  announceSeek: (at, title) => (title ? `${at}, ${title}` : at),
  announceEnd: 'End of the recording.',
  recordingMissing: 'This page needs a recording link. Open the link to the recording from your course.',
  linkMissing: 'This page needs your join link. Open the link to the recording from your course again.',
  unauthorized: 'Your link to this recording is not valid or has expired. Open the recording again from your course.',
  forbidden: 'Your link is for another course: it cannot open this recording.',
  notFound: 'This recording does not exist or has been deleted.',
  networkError: 'The server could not be reached. Check your connection and reload the page.',
  /** @param {number} status */
  serverError: (status) => `The recording could not be loaded (error ${status}). Try again later.`,
  badAnswer: 'The server sent a recording this page cannot read. Reload the page; if it stays, tell your instructor.',
};

/** The live poll (polls.js, issue 13). */
export const POLL_STRINGS = {
  poll: 'Poll',
  heading: 'Poll',
  close: 'Close',
  // Staff's form.
  composeHeading: 'New poll',
  question: 'Question',
  option: (/** @type {number} */ n) => `Option ${n}`,
  removeOption: (/** @type {number} */ n) => `Remove option ${n}`,
  addOption: 'Add option',
  multiple: 'Allow more than one answer',
  anonymous: 'Anonymous (nobody sees who chose what)',
  start: 'Start poll',
  needQuestion: 'Write a question.',
  needOptions: 'Give at least two different options.',
  // The poll.
  single: 'Choose one answer.',
  several: 'Choose one or more answers.',
  anonymousNote: 'Anonymous: nobody sees who chose what.',
  submit: 'Submit answer',
  chooseFirst: 'Choose an answer first.',
  answerSent: 'Answer sent',
  ended: 'The poll has ended.',
  endedNoAnswer: 'The poll has ended. You did not answer.',
  end: 'End poll',
  share: 'Share results with the class',
  newPoll: 'New poll',
  sharedNote: 'Results shown to the class.',
  resultsHeading: 'Results',
  /** @param {number} n */
  answered: (n) => (n === 1 ? '1 answer' : `${n} answers`),
  /** @param {number} count @param {number} percent */
  count: (count, percent) => `${count} (${percent}%)`,
  whoChose: 'Who chose what',
  youChose: 'Your answer',
  /** @param {string} question */
  announceStarted: (question) => `New poll: ${question}`,
  announceEnded: 'The poll has ended.',
  /** @param {string} summary */
  announceShared: (summary) => `Poll results: ${summary}`,
  announceSent: 'Answer sent.',
  /** @type {Record<string, string>} */
  errors: {
    poll_invalid: 'The question or an option is empty, too long or repeated.',
    poll_open: 'Another poll is still open. End it first.',
    poll_closed: 'The poll has ended.',
    already_answered: 'You already answered this poll.',
    invalid_choice: 'That answer does not fit the poll.',
  },
};

/** The course home page (course.js): the next class, past classes and the board. */
export const COURSE_STRINGS = {
  pageTitle: 'Course home',
  loading: 'Loading the course home…',
  /** @param {string} course */
  title: (course) => `Course home: ${course}`,
  nextHeading: 'Next class',
  joinClass: 'Join class',
  nextNone: 'No class is scheduled.',
  /** @param {string} time */
  lobbyOpens: (time) => `The lobby opens at ${time}.`,
  lobbyOpen: 'The lobby is open: the class starts soon.',
  live: 'The class is on now.',
  announceLobby: 'The lobby of the next class is open: you can join now.',
  /** @param {string} when @param {string} zone */
  inZone: (when, zone) => `${when} (${zone} time)`,
  pastHeading: 'Past classes',
  pastEmpty: 'No past classes yet.',
  morePast: 'More past classes',
  /** @type {Record<string, string>} */
  yourAttendance: { present: 'You attended', late: 'You came late', absent: 'You were absent' },
  /** @param {number} present @param {number} late @param {number} absent */
  counts: (present, late, absent) => `${present} present, ${late} late, ${absent} absent`,
  attendanceList: 'Attendance list',
  /** @param {string} date */
  attendanceListOf: (date) => `Attendance list of ${date}`,
  attendanceEmpty: 'No students on the roster.',
  /** @type {Record<string, string>} */
  status: { present: 'present', late: 'late', absent: 'absent' },
  /** @param {string} name @param {string} status @param {number} minutes */
  attendee: (name, status, minutes) => `${name}: ${status}, ${minutes} min`,
  /** @param {number} n @param {number} total */
  watchRecording: (n, total) => (total > 1 ? `Watch recording (part ${n})` : 'Watch recording'),
  /** @param {string} date */
  watchRecordingOf: (date) => `Watch recording of ${date}`,
  /** @param {string} name @param {string} role */
  who: (name, role) => `Signed in as ${name} (${role})`,
  /** @param {number} n */
  unreadTotal: (n) => (n === 0 ? 'Nothing unread' : n === 1 ? '1 unread post' : `${n} unread posts`),
  topicsHeading: 'Topics',
  topicsEmpty: 'No topics yet. Start one with the form.',
  moreTopics: 'More topics',
  searchLabel: 'Search the board',
  searchButton: 'Search',
  searchHeading: 'Search results',
  searchEmpty: 'Nothing found.',
  newTopicHeading: 'New topic',
  titleLabel: 'Title',
  bodyLabel: 'Message',
  privateLabel: 'Ask the staff privately (only staff will see it)',
  postTopic: 'Post topic',
  back: '← All topics',
  repliesHeading: 'Replies',
  replyLabel: 'Your reply',
  postReply: 'Post reply',
  lockedNote: 'This topic is locked: only staff may reply.',
  pinned: 'Pinned',
  locked: 'Locked',
  private: 'Private',
  deletedTopic: 'This topic was deleted.',
  deletedReply: 'This reply was deleted.',
  /** @param {number} n */
  unread: (n) => `${n} new`,
  /** @param {string} name @param {string} when @param {number} replies */
  topicMeta: (name, when, replies) => `${name} · ${when} · ${replies === 1 ? '1 reply' : `${replies} replies`}`,
  /** @param {string} name @param {string} when */
  postMeta: (name, when) => `${name} · ${when}`,
  edited: ' (edited)',
  /** @param {string} name @param {string} session */
  fromClass: (name, session) => (session ? `Asked by ${name} in class ${session}` : `Asked by ${name} in class`),
  pin: 'Pin',
  unpin: 'Unpin',
  lock: 'Lock',
  unlock: 'Unlock',
  deleteTopic: 'Delete topic',
  deleteReply: 'Delete reply',
  confirmDelete: 'Delete this post? Its text will be gone for everyone.',
  /** @param {string} name */
  announceReply: (name) => `New reply from ${name}`,
  /** @param {string} title */
  announceTopic: (title) => `New topic: ${title}`,
  linkMissing: 'This page needs your course link. Open the link from your course again.',
  unauthorized: 'Your course link is not valid or has expired. Open the link from your course again.',
  forbidden: 'Your link is for another course.',
  notFound: 'This course or post does not exist.',
  networkError: 'The server could not be reached. Check your connection and try again.',
  /** @param {number} status */
  serverError: (status) => `The request failed (error ${status}). Try again later.`,
};

/** The quizzes: their list on the course home and the quiz page (quiz.html). */
export const QUIZ_STRINGS = {
  pageTitle: 'Quiz',
  networkError: 'The server could not be reached. Check your connection and try again.',
  /** @param {number} status */
  requestFailed: (status) => `The request failed (error ${status}).`,
  loading: 'Loading the quiz…',
  quizzesHeading: 'Quizzes',
  quizzesEmpty: 'No quizzes yet.',
  backHome: '← Course home',
  start: 'Start quiz',
  continue: 'Continue quiz',
  review: 'Review',
  /** @param {string} title */
  startOf: (title) => `Start quiz: ${title}`,
  /** @param {string} title */
  continueOf: (title) => `Continue quiz: ${title}`,
  /** @param {string} title */
  reviewOf: (title) => `Review quiz: ${title}`,
  draft: 'Not published',
  /** @param {string} when */
  due: (when) => `Due ${when}`,
  noDue: 'No due date',
  /** @param {number | null} left */
  attemptsLeft: (left) => (left === null ? 'Unlimited attempts' : left === 1 ? '1 attempt left' : `${left} attempts left`),
  /** @param {number} score @param {number} max */
  best: (score, max) => `Best score ${fmt(score)} of ${fmt(max)}`,
  notAttempted: 'Not attempted yet',
  /** @param {number} n */
  questionCount: (n) => (n === 1 ? '1 question' : `${n} questions`),
  /** @param {number} secs */
  timeLimit: (secs) => `Time limit: ${duration(secs)}`,
  /** @type {Record<string, string>} */
  blocked: { no_attempts_left: 'No attempts left.', past_due: 'The due date has passed.', observer: 'Observers do not take quizzes.' },
  attemptsHeading: 'Your attempts',
  /** @param {number} n @param {number | null} score @param {number} max */
  attemptLine: (n, score, max) => (score === null ? `Attempt ${n}: not submitted` : `Attempt ${n}: ${fmt(score)} of ${fmt(max)}`),
  /** @param {number} n */
  reviewAttempt: (n) => `Review attempt ${n}`,
  /** @param {number} n @param {number} total @param {number} points */
  questionLegend: (n, total, points) => `Question ${n} of ${total} (${points === 1 ? '1 point' : `${fmt(points)} points`})`,
  numberLabel: 'Your answer (a number)',
  textLabel: 'Your answer',
  pickOne: 'Pick one answer.',
  pickAny: 'Pick every answer that applies.',
  submit: 'Submit answers',
  confirmSubmit: 'Submit your answers? You cannot change them afterwards.',
  /** @param {string} left */
  timeLeft: (left) => `Time left: ${left}`,
  oneMinuteLeft: 'One minute left.',
  timeUpSubmitting: 'Time is up: your answers are being submitted.',
  /** @param {string} id */
  notANumber: (id) => `The answer to ${id} is not a number.`,
  /** @param {number} score @param {number} max */
  scoreHeading: (score, max) => `Your score: ${fmt(score)} of ${fmt(max)}`,
  /** @type {Record<string, string>} */
  outcome: { correct: 'Correct', partial: 'Partly correct', wrong: 'Wrong', unanswered: 'Not answered' },
  /** @param {string} outcome @param {number} score @param {number} max */
  outcomeLine: (outcome, score, max) => `${outcome}: ${fmt(score)} of ${fmt(max)}`,
  yourAnswer: 'Your answer: ',
  noAnswer: 'Your answer: none',
  solution: 'Correct answer: ',
  explanation: 'Explanation: ',
  feedback: 'Feedback: ',
  /** @param {number} value @param {number} tolerance */
  plusMinus: (value, tolerance) => (tolerance ? `${fmt(value)} ± ${fmt(tolerance)}` : fmt(value)),
  /** @param {number} min @param {number} max */
  range: (min, max) => `${fmt(min)} to ${fmt(max)}`,
  or: ' or ',
  again: 'Take the quiz again',
  linkMissing: 'This page needs your course link. Open the course home from your course link first.',
};

/** A quiz live in class (issue 13, livequiz.js). */
export const LIVE_QUIZ_STRINGS = {
  open: 'Live quiz',
  heading: 'Live quiz',
  close: 'Close',
  quizLabel: 'Quiz',
  minutesLabel: 'Minutes to answer',
  launch: 'Launch quiz',
  end: 'End quiz',
  none: 'This course has no published quiz yet.',
  noCourse: 'Live quizzes need a course session room.',
  loadFailed: 'The course quizzes could not be loaded.',
  take: 'Take the quiz (opens a new tab)',
  /** @param {string} time */
  endsAt: (time) => `Answer by ${time}.`,
  ended: 'This quiz has ended.',
  /** @param {number} n */
  submitted: (n) => `Submitted so far: ${n}`,
  /** @param {string} title */
  announceLive: (title) => `Quiz now: ${title}. Use Take the quiz to answer it.`,
  announceEnded: 'The live quiz has ended.',
};

/** A number as people write it (no trailing zeros). @param {number} n */
function fmt(n) {
  return Number.isInteger(n) ? String(n) : String(Math.round(n * 100) / 100);
}

/** Seconds as "m:ss" (or "h:mm:ss"). @param {number} secs */
export function duration(secs) {
  const s = Math.max(0, Math.floor(secs));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (/** @type {number} */ x) => String(x).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}
