// The course board page in a real browser: the `lectern` binary with the demo course, Debian's
// Chromium through playwright-core. Two students and the instructor open `/course.html` with
// their own demo join links; a student posts a topic through the form and the other student's
// open page shows it live with an unread count; a reply posted through the page reaches an open
// thread live; a private question never shows on the other student's page; a title with markup
// stays text; the instructor pins and locks; axe-core finds no serious violation on the list or
// on an open topic. See README.md.
//
// Exit code 0 when every check passed; the last line printed is `N passed, N failed`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, axeCheck, checklist, startServer, stopServer, waitFor } from './harness.mjs';

const { results, check } = checklist();

/** The page's own view: state, live stream, the listed topics with their unread counts, the open topic and its replies. */
function boardState() {
  const root = document.documentElement;
  const topics = [...document.querySelectorAll('#topics > li')].map((li) => ({
    id: Number(/** @type {HTMLElement} */ (li).dataset.topicId),
    unread: Number(/** @type {HTMLElement} */ (li).dataset.unread),
    title: li.querySelector('.topic-title')?.textContent ?? '',
  }));
  const panel = document.getElementById('topic-panel');
  const open = panel && !panel.hidden
    ? {
        title: document.getElementById('topic-title')?.textContent ?? '',
        replies: [...document.querySelectorAll('#replies > li .post-body')].map((b) => b.textContent),
        replyForm: !document.getElementById('reply-form')?.hidden,
        lockedNote: !document.getElementById('locked-note')?.hidden,
      }
    : null;
  return {
    state: root.dataset.state,
    live: root.dataset.live,
    error: document.getElementById('error')?.hidden ? '' : document.getElementById('error')?.textContent,
    unreadTotal: document.getElementById('unread-total')?.textContent ?? '',
    topics,
    open,
  };
}

const pages = /** @type {{name: string, log: string[]}[]} */ ([]);

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'lectern-course-e2e-'));
  let server = null;
  let browser = null;
  try {
    server = await startServer(dataDir);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    const tokenOf = (who) => new URLSearchParams(new URL(server.links[who]).hash.slice(1)).get('token');

    /** A page on the course board as `who`, ready and with its event stream open. */
    const open = async (who, { width = 1280 } = {}) => {
      const context = await browser.newContext({ viewport: { width, height: 800 } });
      const page = await context.newPage();
      const log = [];
      page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
      page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
      page.on('response', (r) => r.status() >= 400 && log.push(`[http ${r.status()}] ${r.url()}`));
      pages.push({ name: who, log });
      page.on('dialog', (d) => d.accept());
      await page.goto(`${server.url}/course.html#token=${tokenOf(who)}`);
      await waitFor(`${who}: the board ready and live`, async () => {
        const s = await page.evaluate(boardState);
        if (s.state === 'error') throw Object.assign(new Error(`the page says: ${s.error}`), { fatal: true });
        return s.state === 'ready' && s.live === 'open' && s;
      });
      return page;
    };
    const state = (page) => page.evaluate(boardState);
    /** Back to the topic list if a topic is open. */
    const showList = async (page) => {
      if (await page.isVisible('#back')) await page.click('#back');
      await waitFor('the topic list shown', () => page.isVisible('#topics-panel'));
    };

    let ada;
    let alan;
    let grace;
    let topicId = 0;
    await check('three members open the board with their join links; the token leaves the address bar', async () => {
      ada = await open('student 1');
      alan = await open('student 2', { width: 390 });
      grace = await open('instructor');
      const hash = await ada.evaluate(() => location.hash);
      if (hash) throw new Error(`the token is still in the address bar: ${hash}`);
      const s = await state(ada);
      return `topics: ${s.topics.length}, ${s.unreadTotal}`;
    });

    await check('axe-core: the topic list (desktop, and 390 px wide)', async () => {
      const wide = await axeCheck(ada, 'the course board');
      await axeCheck(alan, 'the course board at phone width');
      return wide;
    });

    await check("a student's new topic shows live on the other student's open page, unread", async () => {
      await ada.fill('#new-title', 'Ring axioms');
      await ada.fill('#new-body', 'Is every ring commutative?\nI think not.');
      await ada.click('#new-topic button[type="submit"]');
      const mine = await waitFor('Ada: her topic opens', async () => {
        const s = await state(ada);
        return s.open?.title === 'Ring axioms' && s;
      });
      const seen = await waitFor('Alan: the topic appears with 1 unread', async () => {
        const s = await state(alan);
        const t = s.topics.find((x) => x.title === 'Ring axioms');
        return t?.unread === 1 && s.unreadTotal === '1 unread post' && t;
      });
      topicId = seen.id;
      return `topic ${topicId}; Ada's view: ${JSON.stringify(mine.open)}`;
    });

    await check('a reply through the page reaches the author\'s open thread live; reading clears unread', async () => {
      await alan.click(`#topics button[data-topic="${topicId}"]`);
      await waitFor('Alan: the thread opens and his unread clears', async () => {
        const s = await state(alan);
        return s.open?.title === 'Ring axioms' && s;
      });
      const focused = await alan.evaluate(() => document.activeElement?.id);
      if (focused !== 'topic-title') throw new Error(`focus is on #${focused}, not the topic's title`);
      await alan.fill('#reply-body', 'No: matrices do not commute.');
      await alan.click('#reply-form button[type="submit"]');
      await waitFor("Ada: Alan's reply appears in her open thread", async () => {
        const s = await state(ada);
        return s.open?.replies.includes('No: matrices do not commute.') && s;
      });
      await showList(alan);
      const after = await waitFor("Alan: nothing unread once he's read it", async () => {
        const s = await state(alan);
        return s.topics.find((t) => t.id === topicId)?.unread === 0 && s;
      });
      return after.unreadTotal;
    });

    await check("markup in a title stays text; a private question never reaches the other student's page", async () => {
      const markup = '<img src=x onerror="window.__pwned=1"> <b>bold</b>';
      await showList(alan);
      await grace.fill('#new-title', markup);
      await grace.fill('#new-body', 'A title with markup');
      await grace.click('#new-topic button[type="submit"]');
      await waitFor('Grace: her topic opens', async () => (await state(grace)).open?.title === markup);
      await showList(grace);
      const shown = await waitFor('Alan: the markup topic listed as text', async () => {
        const s = await state(alan);
        return s.topics.some((t) => t.title === markup) && s;
      });
      const injected = await alan.evaluate(() => document.querySelectorAll('#topics img, #topics b').length + (window.__pwned ? 100 : 0));
      if (injected) throw new Error(`markup in a title became elements (${injected})`);
      await showList(ada);
      await ada.fill('#new-title', 'My grade');
      await ada.fill('#new-body', 'Why did I lose points?');
      await ada.check('#new-private');
      await ada.click('#new-topic button[type="submit"]');
      await waitFor('Ada: her question opens', async () => (await state(ada)).open?.title === 'My grade');
      await waitFor('Grace: the private question listed', async () => (await state(grace)).topics.some((t) => t.title === 'My grade'));
      // A public topic after it: Alan's page has every earlier event once it shows this one.
      await showList(grace);
      await grace.fill('#new-title', 'Marker');
      await grace.fill('#new-body', 'after the private question');
      await grace.click('#new-topic button[type="submit"]');
      await waitFor('Grace: the marker opens', async () => (await state(grace)).open?.title === 'Marker');
      const s = await waitFor('Alan: the marker topic listed', async () => {
        const s = await state(alan);
        return s.topics.some((t) => t.title === 'Marker') && s;
      });
      if (s.topics.some((t) => t.title === 'My grade')) throw new Error("Alan's page lists Ada's private question");
      return `Alan's topics: ${shown.topics.length} then ${s.topics.length}`;
    });

    await check('the instructor locks a topic: the student page says so and offers no reply box', async () => {
      await showList(grace);
      await grace.click(`#topics button[data-topic="${topicId}"]`);
      await waitFor('Grace: the thread opens', async () => (await state(grace)).open?.title === 'Ring axioms');
      await grace.click('#topic-tools button[data-action="lock"]');
      await alan.click(`#topics button[data-topic="${topicId}"]`);
      const s = await waitFor('Alan: the topic shows locked', async () => {
        const s = await state(alan);
        return s.open?.lockedNote && !s.open.replyForm && s;
      });
      return JSON.stringify(s.open);
    });

    await check('axe-core: an open topic (student and instructor)', async () => {
      const r = await axeCheck(alan, 'an open locked topic as a student');
      await axeCheck(grace, 'an open topic as the instructor');
      return r;
    });

    await check('search finds the topic, and opens it', async () => {
      await showList(alan);
      await alan.fill('#search-input', 'matric');
      await alan.click('#search-form button[type="submit"]');
      const hits = await waitFor('Alan: a search hit', async () => {
        const n = await alan.evaluate(() => document.querySelectorAll('#search-results button').length);
        return n > 0 && n;
      });
      await alan.click('#search-results button');
      await waitFor('Alan: the hit opens its topic', async () => (await state(alan)).open?.title === 'Ring axioms');
      return `${hits} hit(s)`;
    });

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

try {
  await main();
} catch (error) {
  results.push({ name: 'harness', ok: false, detail: String(error) });
  console.log(`FAIL harness: ${error?.stack ?? error}`);
}
const passed = results.filter((r) => r.ok).length;
console.log(`${passed} passed, ${results.length - passed} failed`);
process.exitCode = passed === results.length ? 0 : 1;
