// The course home in a real browser: the `lectern` binary with the demo course (plus a class two
// days ago, added with `lectern schedule add`), Debian's Chromium through playwright-core. Two
// students and the instructor open `/course.html` with their own demo join links. The home shows
// the next class with a "Join class" link (its lobby is open), the past class with the student's
// own attendance, or the counts and the attendance list for the instructor; the classroom links
// to the course home. On the board: a student posts a topic through the form and the other student's
// open page shows it live with an unread count; a reply posted through the page reaches an open
// thread live; a private question never shows on the other student's page; a title with markup
// stays text; the instructor pins and locks; axe-core finds no serious violation on the home
// (1280 and 375 px wide) or on an open topic. See README.md.
//
// Exit code 0 when every check passed; the last line printed is `N passed, N failed`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, axeCheck, pageArgs, checklist, runCli, startServer, stopServer, waitFor, finish } from './harness.mjs';

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

/** The home's own view: the next class and the past classes as shown. */
function homeState() {
  const next = document.getElementById('next-panel');
  const join = /** @type {HTMLAnchorElement | null} */ (document.getElementById('join-link'));
  return {
    home: document.documentElement.dataset.home,
    next: next?.dataset.state,
    when: document.getElementById('next-when')?.textContent ?? '',
    join: join && !join.hidden ? join.href : '',
    past: [...document.querySelectorAll('#past-list > li')].map((li) => ({
      session: /** @type {HTMLElement} */ (li).dataset.session,
      text: li.textContent,
      counts: li.querySelector('.past-counts')?.textContent ?? null,
      attendance: [...li.querySelectorAll('.attendance-list > li')].map((x) => x.textContent),
    })),
    headings: [...document.querySelectorAll('h1, h2')]
      .filter((h) => /** @type {HTMLElement} */ (h).offsetParent !== null)
      .map((h) => `${h.tagName.toLowerCase()} ${h.textContent}`),
  };
}

/** A date `days` from today (UTC) and its weekday as the CLI names it. @param {number} days */
function dayFromToday(days) {
  const date = new Date(Date.now() + days * 86_400_000);
  return { date: date.toISOString().slice(0, 10), weekday: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'][date.getUTCDay()] };
}

const pages = /** @type {{name: string, log: string[]}[]} */ ([]);

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'lectern-course-e2e-'));
  let server = null;
  let browser = null;
  try {
    server = await startServer(dataDir);
    // A class two days ago (whatever the demo course's timezone): a past class on the home.
    const past = dayFromToday(-2);
    await runCli(dataDir, ['schedule', 'add', '--course', 'demo', '--days', past.weekday, '--start', '09:00', '--minutes', '60', '--from', past.date, '--to', past.date]);
    const pastKey = `${past.date}T09:00`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: pageArgs(),
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
      alan = await open('student 2', { width: 375 });
      grace = await open('instructor');
      const hash = await ada.evaluate(() => location.hash);
      if (hash) throw new Error(`the token is still in the address bar: ${hash}`);
      const s = await state(ada);
      return `topics: ${s.topics.length}, ${s.unreadTotal}`;
    });

    await check('the home: the next class with a Join class link, the past class with her own attendance only', async () => {
      const s = await waitFor('Ada: the home drawn', async () => {
        const s = await ada.evaluate(homeState);
        return s.home === 'ready' && s;
      });
      if (!['lobby_open', 'live'].includes(s.next ?? '')) throw new Error(`the next class is ${s.next}, not open`);
      if (!s.join.includes('/#token=')) throw new Error(`no Join class link: ${JSON.stringify(s)}`);
      const row = s.past.find((p) => p.session === pastKey);
      if (!row) throw new Error(`the past class ${pastKey} is not listed: ${JSON.stringify(s.past)}`);
      if (!row.text.includes('You were absent') || row.counts !== null) throw new Error(`Ada's past class: ${JSON.stringify(row)}`);
      const expected = ['h1 Demo class', 'h2 Next class', 'h2 Past classes', 'h2 Quizzes', 'h2 Topics', 'h2 New topic'];
      if (JSON.stringify(s.headings) !== JSON.stringify(expected)) throw new Error(`headings: ${JSON.stringify(s.headings)}`);
      // Keyboard: the Join class link is among the first stops.
      await ada.evaluate(() => /** @type {HTMLElement} */ (document.activeElement)?.blur());
      let reached = false;
      for (let i = 0; i < 6 && !reached; i++) {
        await ada.keyboard.press('Tab');
        reached = await ada.evaluate(() => document.activeElement?.id === 'join-link');
      }
      if (!reached) throw new Error('Tab never reached the Join class link');
      return `${s.when}; ${row.text}`;
    });

    await check('the home for staff: attendance counts, and the attendance list from its button', async () => {
      await waitFor('Grace: the home drawn', async () => (await grace.evaluate(homeState)).home === 'ready');
      const button = `#past-list li[data-session="${pastKey}"] button[data-attendance]`;
      await grace.focus(button);
      await grace.keyboard.press('Enter');
      const s = await waitFor('Grace: the attendance list shown', async () => {
        const s = await grace.evaluate(homeState);
        const row = s.past.find((p) => p.session === pastKey);
        return row?.attendance.length === 2 && row;
      });
      if (s.counts !== '0 present, 0 late, 2 absent') throw new Error(`counts: ${s.counts}`);
      if (!s.attendance.includes('Student Ada: absent, 0 min')) throw new Error(`list: ${JSON.stringify(s.attendance)}`);
      const expanded = await grace.getAttribute(button, 'aria-expanded');
      if (expanded !== 'true') throw new Error(`aria-expanded is ${expanded}`);
      return `${s.counts}; ${s.attendance.join('; ')}`;
    });

    await check('axe-core: the home with the board (1280 px, 375 px, staff with an attendance list)', async () => {
      const wide = await axeCheck(ada, 'the course home');
      await axeCheck(alan, 'the course home at phone width');
      await axeCheck(grace, 'the course home as the instructor');
      const overflow = await alan.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (overflow > 0) throw new Error(`the page is ${overflow} px wider than a 375 px phone`);
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

    await check('the classroom links to the course home with the same token', async () => {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      await page.goto(server.links['student 2']);
      const href = await waitFor('the Course home link', async () => {
        const link = page.locator('#course-home');
        return (await link.isVisible()) && (await link.getAttribute('href'));
      });
      await context.close();
      if (href !== `/course.html#token=${tokenOf('student 2')}`) throw new Error(`href: ${href}`);
      return href.slice(0, 24);
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

await finish(results, main);
