// Issue 13's live polls end to end in a real browser: the instructor writes a poll (question,
// options added in the form), two students answer it (one with the mouse at desktop width, one
// with the keyboard at phone width), the instructor sees both answers live with the right counts
// and who chose what, shares the results, and the students see the shared counts without names.
// axe-core runs on the student's poll and on the instructor's results. The server binary with the
// demo class, Debian's Chromium driven by playwright-core. See README.md.
//
// Exit code 0 when every check passed; the last line printed is `N passed, N failed`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import {
  BLUE, CHROMIUM, axeCheck, checklist, chromiumArgs, startClientProxy, startServer, stopServer, waitFor, writeY4m,
  finish,
} from './harness.mjs';

const CLIENT_FROM_DISK = process.env.LECTERN_E2E_CLIENT_FROM_DISK === '1';
const QUESTION = 'Which method converges fastest?';
const OPTIONS = ['Bisection', 'Newton', 'Secant'];

const pages = /** @type {{name: string, page: import('playwright-core').Page, log: string[]}[]} */ ([]);

/** Opens a join link at this size; waits for `ready`. */
async function openPage(browser, name, link, ready, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const log = [];
  page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
  page.on('dialog', (d) => void d.accept());
  pages.push({ name, page, log });
  await page.goto(link);
  await waitFor(`${name}: ${ready}`, () => page.locator(ready).isVisible());
  return page;
}

/** The result rows as `label: count (percent%)`. */
async function resultRows(page) {
  return page.locator('#poll-results li').evaluateAll((items) => items.map((li) =>
    `${li.querySelector('.poll-result-label')?.textContent}: ${li.querySelector('.poll-result-count')?.textContent}`));
}

/** What the live region has said last. */
const announced = (page) => page.locator('#announcer').textContent();

const { results, check } = checklist();

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'lectern-polls-'));
  const clip = join(tmp, 'blue.y4m');
  writeY4m(clip, BLUE);
  let server = null;
  let proxy = null;
  let browser = null;
  const s = {};
  try {
    await check('server starts and prints its URL and demo links', async () => {
      server = await startServer(join(tmp, 'data'), process.env.E2E_LOG ? { LECTERN_LOG_FILTER: process.env.E2E_LOG } : {});
      if (CLIENT_FROM_DISK) {
        proxy = await startClientProxy(server.url);
        for (const key of Object.keys(server.links)) server.links[key] = server.links[key].replace(server.url, proxy.url);
        server.url = proxy.url;
      }
      return `${server.url}${CLIENT_FROM_DISK ? ' (client from disk)' : ''}`;
    });
    await check('Chromium starts', async () => {
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs(clip) });
      return browser.version();
    });
    await check('the instructor starts the class; two students join (student 2 at phone width, 375x740)', async () => {
      s.instructor = await openPage(browser, 'instructor', server.links.instructor, '#devices');
      await s.instructor.locator('#enter-class').click();
      await waitFor('Start class', () => s.instructor.locator('#start-class').isVisible());
      await s.instructor.locator('#start-class').click();
      await waitFor('End class', () => s.instructor.locator('#end-class').isVisible());
      s.student1 = await openPage(browser, 'student 1', server.links['student 1'], '#classroom');
      s.student2 = await openPage(browser, 'student 2', server.links['student 2'], '#classroom', { width: 375, height: 740 });
      for (const who of ['student1', 'student2']) {
        if (await s[who].locator('#poll-open').isVisible()) throw new Error(`${who} has a Poll button`);
      }
    });

    await check('the instructor writes a poll: "Poll" opens the form, a third option is added, "Start poll" sends it', async () => {
      const page = s.instructor;
      await page.locator('#poll-open').click();
      await waitFor('the poll form', () => page.locator('#poll-compose').isVisible());
      await page.locator('#poll-question-input').fill(QUESTION);
      const inputs = page.locator('#poll-options input');
      if ((await inputs.count()) !== 2) throw new Error(`the form starts with ${await inputs.count()} options`);
      if (await page.locator('#poll-options button').first().isVisible()) throw new Error('two options can be removed');
      await page.locator('#poll-add-option').click();
      const focused = await page.evaluate(() => document.activeElement?.getAttribute('aria-label'));
      if (focused !== 'Option 3') throw new Error(`focus after "Add option" is on ${focused}`);
      for (const [i, text] of OPTIONS.entries()) await inputs.nth(i).fill(text);
      await page.locator('#poll-start').click();
      await waitFor('the instructor: the poll with 0 answers', async () =>
        (await page.locator('#poll-question').textContent()) === QUESTION
        && (await page.locator('#poll-answered').textContent()) === '0 answers');
      return (await resultRows(page)).join(', ');
    });

    await check('both students see the poll (radio buttons, announced) and no results', async () => {
      for (const who of ['student1', 'student2']) {
        const page = s[who];
        await waitFor(`${who}: the poll panel`, () => page.locator('#poll-answer').isVisible());
        const radios = await page.locator('#poll-choices input[type="radio"]').count();
        if (radios !== 3) throw new Error(`${who}: ${radios} radio buttons`);
        const labels = await page.locator('#poll-choices label').allTextContents();
        if (labels.join('|') !== OPTIONS.join('|')) throw new Error(`${who}: options ${labels}`);
        await waitFor(`${who}: announced`, async () => (await announced(page)) === `New poll: ${QUESTION}`);
        if (await page.locator('#poll-results-box').isVisible()) throw new Error(`${who}: results shown before they are shared`);
      }
      const box = await s.student2.locator('#polls').boundingBox();
      if (!box || box.x < 0 || box.x + box.width > 375) throw new Error(`student 2: the panel does not fit 375 px: ${JSON.stringify(box)}`);
      return `at phone width the panel is ${Math.round(box.width)} px wide`;
    });

    await check('axe-core on the student\'s poll', () => axeCheck(s.student1, 'student 1 with the poll open'));

    await check('student 1 answers with the mouse ("Newton"): "Answer sent", the form is gone', async () => {
      const page = s.student1;
      await page.locator('#poll-choices label', { hasText: 'Newton' }).click();
      await page.locator('#poll-submit').click();
      await waitFor('student 1: Answer sent', async () =>
        (await page.locator('#poll-mine').textContent()) === 'Answer sent. Your answer: Newton'
        && !(await page.locator('#poll-answer').isVisible()));
      await waitFor('student 1: announced', async () => (await announced(page)) === 'Answer sent.');
    });

    await check('the instructor sees 1 answer live (Newton 1, 100%) and who chose it', async () => {
      const page = s.instructor;
      await waitFor('1 answer', async () => (await page.locator('#poll-answered').textContent()) === '1 answer');
      const rows = await resultRows(page);
      if (rows.join(', ') !== 'Bisection: 0 (0%), Newton: 1 (100%), Secant: 0 (0%)') throw new Error(rows.join(', '));
      const votes = await page.locator('#poll-votes li').allTextContents();
      if (votes.join('|') !== 'Student Ada: Newton') throw new Error(`votes: ${votes}`);
    });

    await check('student 2 answers with the keyboard at phone width ("Secant": arrow keys, Tab, Enter)', async () => {
      const page = s.student2;
      await page.locator('#poll-choices input').first().focus();
      await page.keyboard.press('ArrowDown');
      await page.keyboard.press('ArrowDown');
      await page.keyboard.press('Tab');
      const on = await page.evaluate(() => document.activeElement?.id);
      if (on !== 'poll-submit') throw new Error(`Tab went to #${on}`);
      await page.keyboard.press('Enter');
      await waitFor('student 2: Answer sent', async () =>
        (await page.locator('#poll-mine').textContent()) === 'Answer sent. Your answer: Secant');
    });

    await check('the instructor sees 2 answers live with the right counts', async () => {
      const page = s.instructor;
      await waitFor('2 answers', async () => (await page.locator('#poll-answered').textContent()) === '2 answers');
      const rows = await resultRows(page);
      if (rows.join(', ') !== 'Bisection: 0 (0%), Newton: 1 (50%), Secant: 1 (50%)') throw new Error(rows.join(', '));
      const votes = await page.locator('#poll-votes li').allTextContents();
      if (votes.length !== 2) throw new Error(`votes: ${votes}`);
      return rows.join(', ');
    });

    await check('axe-core on the instructor\'s live results', async () => {
      await s.instructor.locator('#poll-votes-summary').click(); // who chose what, opened
      return axeCheck(s.instructor, 'the instructor with the poll results');
    });

    await check('"Share results": both students see the counts (no names), announced; the instructor\'s poll is ended', async () => {
      await s.instructor.locator('#poll-share').click();
      await waitFor('instructor: shared', async () =>
        (await s.instructor.locator('#poll-shared-note').textContent()) === 'Results shown to the class.'
        && !(await s.instructor.locator('#poll-end').isVisible()));
      for (const who of ['student1', 'student2']) {
        const page = s[who];
        await waitFor(`${who}: shared results`, () => page.locator('#poll-results-box').isVisible());
        const rows = await resultRows(page);
        if (rows.join(', ') !== 'Bisection: 0 (0%), Newton: 1 (50%), Secant: 1 (50%)') throw new Error(`${who}: ${rows.join(', ')}`);
        if ((await page.locator('#poll-answered').textContent()) !== '2 answers') throw new Error(`${who}: answered`);
        if (await page.locator('#poll-votes-box').isVisible()) throw new Error(`${who}: sees who chose what`);
        if ((await page.locator('#poll-votes li').count()) !== 0) throw new Error(`${who}: has names`);
        const said = await waitFor(`${who}: announced`, async () => {
          const text = await announced(page);
          return text?.startsWith('Poll results:') ? text : null;
        });
        if (!said.includes('Newton 1 (50%)')) throw new Error(`${who}: said ${said}`);
      }
      return 'Bisection 0, Newton 1, Secant 1';
    });

    await check('a student who reloads sees the shared results and their own answer', async () => {
      const page = s.student1;
      await page.reload();
      await waitFor('student 1: back in class', () => page.locator('#classroom').isVisible());
      await waitFor('student 1: the shared results again', async () =>
        (await page.locator('#poll-results-box').isVisible())
        && (await page.locator('#poll-mine').textContent()) === 'Answer sent. Your answer: Newton');
    });

    await check('Escape closes the poll panel; the instructor\'s "Poll" opens the form for a new one', async () => {
      const page = s.instructor;
      await page.locator('#poll-heading').focus();
      await page.keyboard.press('Escape');
      await waitFor('closed', async () => !(await page.locator('#polls').isVisible()));
      await page.locator('#poll-open').click();
      await waitFor('the results again', () => page.locator('#poll-new').isVisible());
      await page.locator('#poll-new').click();
      await waitFor('an empty form', async () => (await page.locator('#poll-compose').isVisible())
        && (await page.locator('#poll-question-input').inputValue()) === '');
    });
  } finally {
    if (results.some((r) => !r.ok)) {
      for (const { name, log } of pages) if (log.length) console.log(`--- ${name} console ---\n${log.slice(-40).join('\n')}`);
      if (server) console.log(`--- server output (last 4000 chars) ---\n${server.output.slice(-4000)}`);
    }
    await browser?.close().catch(() => undefined);
    proxy?.server.closeAllConnections();
    proxy?.server.close();
    await stopServer(server);
    rmSync(tmp, { recursive: true, force: true });
  }
}

await finish(results, main);
