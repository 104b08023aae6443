// A small HTTP server standing in for Lectern's replay API, for the replay page's browser test
// (replay-page.mjs): it serves web-client/'s files (with the server's Content-Security-Policy)
// and, for each recording it is given, `GET /replay/v1/recordings/<id>` (checking the bearer
// token as the server does: 401, 403, 404) and the segment files with HTTP Range support.
//
// Run alone to look at a recording by hand:
//   node test/replay-fixture.mjs DIR   (DIR holds answer.json and the seg-<n>.webm files it names)
import { createServer } from 'node:http';
import { readFileSync, readdirSync, statSync, createReadStream } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLIENT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The server's own policy (crates/lectern-server/src/web.rs), so the page is tested under it. */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self' ws: wss:; " +
  "img-src 'self' data: blob:; media-src 'self' blob:; object-src 'none'; base-uri 'none'; " +
  "frame-ancestors 'none'; form-action 'self'";
const TYPES = { '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

/**
 * @typedef {object} FixtureRecording
 * @property {object} answer the API answer; its segments' `url`s are filled in here
 * @property {Map<number, string>} files segment number -> path of its WebM file
 * @property {string} token the bearer token that may see it
 * @property {string} otherCourseToken a valid token of another course (403)
 * @property {number} [segmentDelayMs] each segment response waits this long (a slow link)
 */

/**
 * Starts the server on 127.0.0.1 (a free port).
 * @param {Map<string, FixtureRecording>} recordings by id; the id `rec_drop` drops the connection
 * @returns {Promise<{url: string, close: () => Promise<void>, log: {path: string, range: string | null, status: number}[]}>}
 */
export async function startFixtureServer(recordings) {
  const clientFiles = new Set(readdirSync(CLIENT_DIR).filter((f) => extname(f) in TYPES));
  const log = [];
  for (const [id, rec] of recordings) {
    for (const seg of rec.answer.segments) seg.url = `/replay/v1/recordings/${id}/segments/${seg.n}?grant=g-${id}-${seg.n}`;
  }
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const entry = { path: url.pathname, range: req.headers.range ?? null, status: 0 };
    log.push(entry);
    const send = (status, type, body, headers = {}) => {
      entry.status = status;
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-cache', ...headers });
      res.end(body);
    };
    const error = (status, code) => send(status, 'application/json', JSON.stringify({ error: { code, message: code } }));

    if (url.pathname === '/fixture/blank.html') return send(200, 'text/html', '<!doctype html><title>fixture</title><button id="b">b</button>');
    const api = url.pathname.match(/^\/replay\/v1\/recordings\/([^/]+)(?:\/segments\/(\d+))?$/);
    if (api) {
      const [, id, n] = api;
      if (id === 'rec_drop') return req.socket.destroy();
      const rec = recordings.get(id);
      if (n !== undefined) {
        // Segment files: the grant in the URL is the permission (as for <video src>).
        const file = rec?.files.get(Number(n));
        if (!rec || !file || url.searchParams.get('grant') !== `g-${id}-${n}`) return error(404, 'not_found');
        const type = rec.answer.segments.find((s) => s.n === Number(n))?.kind === 'audio' ? 'audio/webm' : 'video/webm';
        if (rec.segmentDelayMs) return void setTimeout(() => sendFile(req, res, entry, file, type), rec.segmentDelayMs);
        return sendFile(req, res, entry, file, type);
      }
      const auth = req.headers.authorization ?? '';
      const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
      const known = [...recordings.values()].some((r) => r.token === token || r.otherCourseToken === token);
      if (!known) return error(401, 'unauthorized');
      if (!rec) return error(404, 'not_found');
      if (token !== rec.token) return error(403, 'forbidden');
      return send(200, 'application/json', JSON.stringify(rec.answer));
    }
    const name = url.pathname === '/' ? 'index.html' : url.pathname.slice(1);
    if (!clientFiles.has(name)) return send(404, 'text/plain', 'not found\n');
    return send(200, TYPES[extname(name)], readFileSync(join(CLIENT_DIR, name)), {
      'Content-Security-Policy': CSP,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    close: () => new Promise((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    }),
  };
}

/** A whole file or the byte range asked for (`Range: bytes=a-b`, `a-`, `-n`). */
function sendFile(req, res, entry, path, type) {
  const size = statSync(path).size;
  const headers = { 'Content-Type': type, 'Accept-Ranges': 'bytes', 'Cache-Control': 'no-cache' };
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
  if (!range) {
    entry.status = 200;
    res.writeHead(200, { ...headers, 'Content-Length': size });
    return createReadStream(path).pipe(res);
  }
  let start = range[1] === '' ? size - Number(range[2]) : Number(range[1]);
  let end = range[1] === '' || range[2] === '' ? size - 1 : Math.min(Number(range[2]), size - 1);
  start = Math.max(0, start);
  if (start >= size || start > end) {
    entry.status = 416;
    res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}` });
    return res.end();
  }
  entry.status = 206;
  res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${end}/${size}`, 'Content-Length': end - start + 1 });
  return createReadStream(path, { start, end }).pipe(res);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = resolve(process.argv[2] ?? '.');
  const answer = JSON.parse(readFileSync(join(dir, 'answer.json'), 'utf8'));
  const files = new Map(answer.segments.map((s) => [s.n, join(dir, s.file)]));
  const id = answer.recording.id;
  const fixture = await startFixtureServer(new Map([[id, { answer, files, token: 'token', otherCourseToken: 'other' }]]));
  console.log(`${fixture.url}/replay.html?recording=${id}#token=token`);
}
