// Quizzes in a real browser: the `lectern` binary with the demo course and a quiz imported with
// `lectern quiz import --publish`, Debian's Chromium through playwright-core. A student who
// missed class opens the course home from their demo join link, sees the quiz (due date,
// attempts left, no score yet, a Start button), takes it on the quiz page (a visible timer,
// since it is time-limited), submits and sees the score with per-question feedback and
// explanations; back on the home, the best score and attempts left are updated. The other
// student takes it with the keyboard only (Tab, Space, Enter and typing the text answers), at
// phone width (375 px), with nothing wider than the screen. axe-core finds no serious or
// critical violation on the quiz page while taking it and after submitting, at 1280 and 375 px,
// nor on the home with its quiz list. Live in class: the instructor launches a second quiz from
// the classroom ("Live quiz"), a student in class gets the prompt (announced), takes it in the
// new tab and sees the feedback, the instructor sees the submitted count and ends the quiz;
// axe-core on the classroom with the prompt shown. See README.md.
//
// Exit code 0 when every check passed; the last line printed is `N passed, N failed`.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import {
  BLUE, CHROMIUM, axeCheck, checklist, chromiumArgs, pageArgs, runCli, startServer, stopServer, waitFor, writeY4m, finish,
} from './harness.mjs';

const { results, check } = checklist();

/** A quiz with every kind of question; the first choice of each choice question is right. */
const QUIZ = {
  title: 'Week 1 catch-up',
  description: 'Four questions on the class you may have missed.',
  settings: { max_attempts: 2, time_limit_secs: 900, due_at: Math.floor(Date.now() / 1000) + 7 * 86_400 },
  questions: [
    {
      id: 'capital', text: 'Which city is the capital of Norway?', explanation: 'Oslo has been the capital since 1814.',
      type: 'single_choice',
      choices: [{ text: 'Oslo', correct: true, feedback: 'Yes, Oslo.' }, { text: 'Bergen', feedback: 'Bergen is on the west coast.' }],
    },
    {
      id: 'even', text: 'Which numbers are even?', points: 2, type: 'multiple_choice',
      choices: [{ text: '2', weight: 0.5 }, { text: '4', weight: 0.5 }, { text: '5', weight: -1, feedback: '5 is odd.' }],
    },
    { id: 'pi', text: 'Give pi to two decimal places.', type: 'numeric', answers: [{ value: 3.14, tolerance: 0.005, feedback: 'Good.' }] },
    { id: 'author', text: 'Who wrote <b>Hamlet</b>?', type: 'short_text', answers: [{ text: 'Shakespeare' }] },
  ],
};

/** The quiz launched live in class: one question, no limits. */
const LIVE_QUIZ = {
  title: 'Live check',
  questions: [
    {
      id: 'sum', text: 'What is 2 + 2?', explanation: 'Two and two make four.', type: 'single_choice',
      choices: [{ text: '4', correct: true, feedback: 'Right.' }, { text: '5', feedback: 'One too many.' }],
    },
  ],
};

/** The quiz page's own view. */
function quizState() {
  const root = document.documentElement;
  const visible = (id) => !document.getElementById(id)?.hidden;
  return {
    state: root.dataset.state,
    error: visible('error') ? document.getElementById('error')?.textContent : '',
    title: document.getElementById('quiz-title')?.textContent ?? '',
    timer: visible('timer') ? document.getElementById('timer')?.textContent : '',
    fieldsets: [...document.querySelectorAll('#questions fieldset')].map((f) => ({
      question: /** @type {HTMLElement} */ (f).dataset.question,
      legend: f.querySelector('legend')?.textContent ?? '',
      inputs: [...f.querySelectorAll('input')].map((i) => ({ type: i.type, labelled: !!(i.labels && i.labels.length) })),
    })),
    score: visible('review') ? document.getElementById('score-heading')?.textContent : '',
    graded: [...document.querySelectorAll('#graded > li')].map((li) => ({
      question: /** @type {HTMLElement} */ (li).dataset.question,
      outcome: /** @type {HTMLElement} */ (li).dataset.outcome,
      text: li.textContent,
      markup: li.querySelector('b') !== null,
    })),
    focused: document.activeElement?.id ?? '',
    overflow: document.documentElement.scrollWidth - window.innerWidth,
  };
}

/** The home's quiz list. */
function homeQuizzes() {
  return [...document.querySelectorAll('#quiz-list > li')].map((li) => {
    const link = /** @type {HTMLAnchorElement | null} */ (li.querySelector('a'));
    return { id: /** @type {HTMLElement} */ (li).dataset.quizId, text: li.textContent, link: link?.textContent ?? '', href: link?.getAttribute('href') ?? '' };
  });
}

const pages = /** @type {{name: string, log: string[]}[]} */ ([]);

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'lectern-quiz-e2e-'));
  let server = null;
  let browser = null;
  try {
    server = await startServer(dataDir);
    const file = join(dataDir, 'week1.json');
    writeFileSync(file, JSON.stringify(QUIZ));
    const quizId = (await runCli(dataDir, ['quiz', 'import', '--course', 'demo', '--publish', file])).trim();
    const liveFile = join(dataDir, 'live.json');
    writeFileSync(liveFile, JSON.stringify(LIVE_QUIZ));
    const liveQuizId = (await runCli(dataDir, ['quiz', 'import', '--course', 'demo', '--publish', liveFile])).trim();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: pageArgs(),
    });
    const tokenOf = (who) => new URLSearchParams(new URL(server.links[who]).hash.slice(1)).get('token');

    /** A page on the course home as `who`, with its quiz list drawn. */
    const openHome = async (who, width) => {
      const context = await browser.newContext({ viewport: { width, height: 800 } });
      const page = await context.newPage();
      const log = [];
      page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
      page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
      page.on('response', (r) => r.status() >= 400 && log.push(`[http ${r.status()}] ${r.url()}`));
      page.on('dialog', (d) => d.accept());
      pages.push({ name: who, log });
      await page.goto(`${server.url}/course.html#token=${tokenOf(who)}`);
      await waitFor(`${who}: the quiz list`, async () => (await page.evaluate(homeQuizzes)).length > 0);
      return page;
    };

    let ada = null;
    await check('a student who missed class sees the quiz on the course home', async () => {
      ada = await openHome('student 1', 1280);
      const [quiz] = await ada.evaluate(homeQuizzes);
      if (quiz.id !== quizId) throw new Error(`quiz id ${quiz.id}, imported ${quizId}`);
      for (const part of ['Week 1 catch-up', 'Due ', '2 attempts left', 'Not attempted yet']) {
        if (!quiz.text.includes(part)) throw new Error(`"${part}" missing: ${quiz.text}`);
      }
      if (quiz.link !== 'Start quiz') throw new Error(`link: ${quiz.link}`);
      return quiz.text;
    });

    await check('axe-core: the course home with its quizzes (1280 px)', () => axeCheck(ada, 'the course home with a quiz'));

    await check('Start opens the quiz page; starting shows the questions and a timer', async () => {
      await ada.click('#quiz-list a');
      await waitFor('the quiz intro', async () => (await ada.evaluate(quizState)).state === 'intro');
      await ada.click('#start');
      const s = await waitFor('the questions', async () => {
        const q = await ada.evaluate(quizState);
        return q.state === 'taking' && q.fieldsets.length === 4 && q;
      });
      if (!/^Time left: 1[45]:\d\d$/.test(s.timer)) throw new Error(`timer: ${s.timer}`);
      const unlabelled = s.fieldsets.flatMap((f) => f.inputs.filter((i) => !i.labelled));
      if (unlabelled.length) throw new Error(`inputs without a label: ${JSON.stringify(s.fieldsets)}`);
      const types = s.fieldsets.map((f) => f.inputs.map((i) => i.type).join('+'));
      if (types.join(' ') !== 'radio+radio checkbox+checkbox+checkbox text text') throw new Error(`types: ${types}`);
      if (!s.fieldsets[0].legend.startsWith('Question 1 of 4')) throw new Error(`legend: ${s.fieldsets[0].legend}`);
      const html = await ada.content();
      for (const key of ['Shakespeare', 'since 1814', 'Yes, Oslo', '3.14']) {
        if (html.includes(key)) throw new Error(`the page holds "${key}" before submitting`);
      }
      return `${s.timer}; ${types.join(', ')}`;
    });

    await check('axe-core: taking the quiz (1280 px)', () => axeCheck(ada, 'the quiz form'));

    await check('submitting shows the score, feedback and explanations', async () => {
      await ada.check('#questions fieldset[data-question="capital"] input[value="1"]');
      await ada.check('#questions fieldset[data-question="even"] input[value="0"]');
      await ada.check('#questions fieldset[data-question="even"] input[value="1"]');
      await ada.fill('#questions fieldset[data-question="pi"] input', '3,14');
      await ada.fill('#questions fieldset[data-question="author"] input', 'shakespeare');
      await ada.click('#submit');
      const s = await waitFor('the review', async () => {
        const q = await ada.evaluate(quizState);
        return q.state === 'review' && q;
      });
      if (s.score !== 'Your score: 4 of 5') throw new Error(`score: ${s.score}`);
      if (s.focused !== 'score-heading') throw new Error(`focus on #${s.focused}`);
      const capital = s.graded.find((g) => g.question === 'capital');
      for (const part of ['Wrong', 'Bergen is on the west coast.', 'Correct answer: Oslo', 'Oslo has been the capital since 1814.']) {
        if (!capital?.text.includes(part)) throw new Error(`"${part}" missing: ${capital?.text}`);
      }
      const pi = s.graded.find((g) => g.question === 'pi');
      if (pi?.outcome !== 'correct' || !pi.text.includes('Good.')) throw new Error(`pi: ${JSON.stringify(pi)}`);
      const author = s.graded.find((g) => g.question === 'author');
      if (author?.markup || !author?.text.includes('<b>Hamlet</b>')) throw new Error(`the question text is not shown as text: ${author?.text}`);
      return s.graded.map((g) => `${g.question} ${g.outcome}`).join(', ');
    });

    await check('axe-core: the graded attempt (1280 px)', () => axeCheck(ada, 'the graded attempt'));

    await check('back on the home: best score and attempts left', async () => {
      await ada.click('#home-link');
      const quiz = await waitFor('the updated quiz list', async () => {
        const [q] = await ada.evaluate(homeQuizzes);
        return q?.text.includes('Best score 4 of 5') && q;
      });
      if (!quiz.text.includes('1 attempt left')) throw new Error(quiz.text);
      if (quiz.link !== 'Start quiz') throw new Error(`link: ${quiz.link}`);
      return quiz.text;
    });

    let alan = null;
    await check('keyboard only at 375 px: Tab, Space and Enter take the whole quiz', async () => {
      alan = await openHome('student 2', 375);
      // Tab to the quiz's Start link, Enter.
      const reached = await tabTo(alan, async () => alan.evaluate(() => document.activeElement?.closest('#quiz-list') !== null));
      if (!reached) throw new Error('Tab never reached the quiz link');
      await alan.keyboard.press('Enter');
      await waitFor('the quiz intro', async () => (await alan.evaluate(quizState)).state === 'intro');
      if (!(await tabTo(alan, async () => alan.evaluate(() => document.activeElement?.id === 'start')))) throw new Error('Tab never reached Start');
      await alan.keyboard.press('Enter');
      await waitFor('the questions, the first choice focused', async () => {
        const q = await alan.evaluate(quizState);
        return q.state === 'taking' && q.focused === 'q-0-0';
      });
      await alan.keyboard.press('Space'); // capital: Oslo
      await alan.keyboard.press('Tab'); // even: "2"
      await alan.keyboard.press('Space');
      await alan.keyboard.press('Tab'); // even: "4"
      await alan.keyboard.press('Space');
      await alan.keyboard.press('Tab'); // even: "5", left unticked
      await alan.keyboard.press('Tab'); // pi
      await alan.keyboard.type('3.14');
      await alan.keyboard.press('Tab'); // author
      await alan.keyboard.type('William Shakespeare');
      await alan.keyboard.press('Tab'); // submit
      const focused = await alan.evaluate(() => document.activeElement?.id);
      if (focused !== 'submit') throw new Error(`focus on #${focused}, not the submit button`);
      await alan.keyboard.press('Enter');
      const s = await waitFor('the review', async () => {
        const q = await alan.evaluate(quizState);
        return q.state === 'review' && q;
      });
      // "William Shakespeare" is not an accepted answer: 4 of 5.
      if (s.score !== 'Your score: 4 of 5') throw new Error(`score: ${s.score} ${JSON.stringify(s.graded)}`);
      if (s.overflow > 0) throw new Error(`the page is ${s.overflow} px wider than the screen`);
      return s.score;
    });

    await check('axe-core: the graded attempt (375 px)', () => axeCheck(alan, 'the graded attempt at 375 px'));

    await check('axe-core: taking the quiz (375 px), nothing wider than the screen', async () => {
      await alan.click('#again');
      await waitFor('the intro', async () => (await alan.evaluate(quizState)).state === 'intro');
      await alan.click('#start');
      const s = await waitFor('the questions', async () => {
        const q = await alan.evaluate(quizState);
        return q.state === 'taking' && q;
      });
      if (s.overflow > 0) throw new Error(`the page is ${s.overflow} px wider than the screen`);
      return axeCheck(alan, 'the quiz form at 375 px');
    });

    // ---- Live in class ---------------------------------------------------------------------
    const clip = join(dataDir, 'blue.y4m');
    writeY4m(clip, BLUE);
    const classBrowser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs(clip) });
    /** A classroom page as `who`, waiting for `ready`. */
    const openClass = async (who, ready) => {
      const context = await classBrowser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      const log = [];
      page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
      page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
      page.on('dialog', (d) => void d.accept());
      pages.push({ name: `${who} in class`, log });
      await page.goto(server.links[who]);
      await waitFor(`${who}: ${ready}`, () => page.locator(ready).isVisible());
      return page;
    };
    try {
      let teacher = null;
      let student = null;
      await check('live: the instructor starts the class; a student joins it', async () => {
        teacher = await openClass('instructor', '#devices');
        await teacher.locator('#enter-class').click();
        await waitFor('Start class', async () =>
          (await teacher.locator('#start-class').isVisible()) || teacher.locator('#end-class').isVisible());
        if (await teacher.locator('#start-class').isVisible()) await teacher.locator('#start-class').click();
        await waitFor('End class', () => teacher.locator('#end-class').isVisible());
        student = await openClass('student 1', '#classroom');
        if (await student.locator('#livequiz-open').isVisible()) throw new Error('a student has the Live quiz button');
      });

      await check('live: "Live quiz" lists the published quizzes; the instructor launches one for 5 minutes', async () => {
        await teacher.locator('#livequiz-open').click();
        await waitFor('the launch form', () => teacher.locator('#livequiz-form').isVisible());
        const options = await teacher.locator('#livequiz-quiz option').allTextContents();
        if (!options.includes('Live check') || !options.includes('Week 1 catch-up')) throw new Error(`options: ${options}`);
        await teacher.locator('#livequiz-quiz').selectOption(liveQuizId);
        await teacher.locator('#livequiz-minutes').fill('5');
        await teacher.locator('#livequiz-launch').click();
        await waitFor('the instructor: the live quiz with 0 submitted', async () =>
          (await teacher.locator('#livequiz-title').textContent()) === 'Live check'
          && (await teacher.locator('#livequiz-progress').textContent()) === 'Submitted so far: 0');
        if (await teacher.locator('#livequiz-take').isVisible()) throw new Error('staff get the Take link');
      });

      await check('live: the student in class gets the prompt, announced, with a Take link', async () => {
        await waitFor('the prompt', () => student.locator('#livequiz-take').isVisible());
        await waitFor('announced', async () =>
          (await student.locator('#announcer').textContent()) === 'Quiz now: Live check. Use Take the quiz to answer it.');
        const href = await student.locator('#livequiz-take').getAttribute('href');
        if (!href?.includes(`quiz=${liveQuizId}`)) throw new Error(`href ${href}`);
        return `${await student.locator('#livequiz-ends').textContent()}`;
      });

      await check('axe-core: the classroom with the live quiz prompt', () => axeCheck(student, 'the classroom with the live quiz prompt'));

      await check('live: the student takes it in the new tab and sees the feedback', async () => {
        const [tab] = await Promise.all([student.context().waitForEvent('page'), student.locator('#livequiz-take').click()]);
        const log = [];
        tab.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
        tab.on('dialog', (d) => void d.accept());
        pages.push({ name: 'student 1 live quiz tab', log });
        await waitFor('the quiz intro', async () => (await tab.evaluate(quizState)).state === 'intro');
        await tab.click('#start');
        await waitFor('the question', async () => (await tab.evaluate(quizState)).state === 'taking');
        await tab.check('#questions fieldset[data-question="sum"] input[value="0"]');
        await tab.click('#submit');
        const q = await waitFor('the review', async () => {
          const v = await tab.evaluate(quizState);
          return v.state === 'review' && v;
        });
        if (q.score !== 'Your score: 1 of 1') throw new Error(`score: ${q.score}`);
        if (!q.graded[0]?.text.includes('Two and two make four.')) throw new Error(`feedback: ${q.graded[0]?.text}`);
        return q.score;
      });

      await check('live: the instructor sees 1 submitted, ends the quiz; the student is told', async () => {
        await waitFor('1 submitted', async () => (await teacher.locator('#livequiz-progress').textContent()) === 'Submitted so far: 1');
        await teacher.locator('#livequiz-end').click();
        await waitFor('the student: ended', async () =>
          (await student.locator('#livequiz-note').textContent()) === 'This quiz has ended.'
          && !(await student.locator('#livequiz-take').isVisible()));
        await waitFor('announced', async () => (await student.locator('#announcer').textContent()) === 'The live quiz has ended.');
      });
    } finally {
      await classBrowser.close();
    }

    await check('no errors on the pages', async () => {
      const errors = pages.flatMap((p) => p.log.filter((line) => line.startsWith('[pageerror]') || line.startsWith('[error]') || line.startsWith('[http')).map((l) => `${p.name}: ${l}`));
      if (errors.length) throw new Error(errors.join('\n'));
      return '';
    });
  } finally {
    if (results.some((r) => !r.ok)) {
      for (const p of pages) console.log(`--- ${p.name} console ---\n${p.log.join('\n')}`);
      if (server) console.log(`--- server output ---\n${server.output.slice(-4000)}`);
    }
    await browser?.close();
    await stopServer(server);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * Presses Tab until `reached()` is true, at most 60 times; whether it got there.
 * @param {import('playwright-core').Page} page @param {() => Promise<boolean>} reached
 */
async function tabTo(page, reached) {
  for (let i = 0; i < 60; i += 1) {
    await page.keyboard.press('Tab');
    if (await reached()) return true;
  }
  return false;
}

await finish(results, main);
