// What join-speed.mjs and join-trace.mjs share: the instructor's page publishing its camera
// before the joins, and the init script that timestamps a student page's steps.
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, RED, chromiumArgs, delay, startServer, waitFor, writeY4m } from './harness.mjs';

/**
 * The server (demo class, nobody waits in the lobby) in `tmp`, two browsers (the instructor's,
 * then the students', with `studentArgs` more switches) and the lecture started. Fills `env`
 * as it goes, so the caller's cleanup stops what was started even if a later step throws.
 * @param {string} tmp
 * @param {{ server: any, browsers: import('playwright-core').Browser[] }} env
 * @param {string[]} [studentArgs]
 */
export async function setUpJoins(tmp, env, studentArgs = []) {
  const clip = join(tmp, 'red.y4m');
  writeY4m(clip, RED);
  env.server = await startServer(join(tmp, 'data'), { LECTERN_ROOM_AUTO_START: 'true' });
  env.browsers.push(await chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs(clip) }));
  env.browsers.push(await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...chromiumArgs(clip), ...studentArgs] }));
  await startLecture(env.browsers[0], env.server.links.instructor);
  return { server: env.server, studentBrowser: env.browsers[1] };
}

/**
 * The instructor enters the class from `link` in a page of `browser` and turns the camera on;
 * resolves once it is sent (and a second more, so the publisher settles before the first join).
 * @param {import('playwright-core').Browser} browser
 * @param {string} link
 */
export async function startLecture(browser, link) {
  const teacher = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  await teacher.goto(link);
  // Staff first pick their camera and microphone; then they enter the class.
  await waitFor('#enter-class', () => teacher.locator('#enter-class').isVisible());
  await teacher.locator('#enter-class').click();
  await waitFor('#camera-toggle', () => teacher.locator('#camera-toggle').isVisible());
  await teacher.locator('#camera-toggle').click();
  await waitFor("the instructor's camera to be sent", () => teacher.evaluate(async () => {
    const video = /** @type {HTMLVideoElement} */ (document.getElementById('stage-video'));
    return video.videoWidth > 0 && document.querySelector('#roster .badge-media') !== null;
  }));
  await delay(1000);
  return teacher;
}

/**
 * Init script of a student page (runs in the page: self-contained): `window.__joinMarks` gets
 * the first time (page clock, ms since navigation start) of every step — each message type
 * sent and received, the peer connection created, its descriptions set, ICE and connection
 * states — each also a `join:<step>` performance mark (for a trace), and the first frame of a
 * remote video on #stage-video (`requestVideoFrameCallback`).
 */
export function instrument() {
  const marks = { wsOpen: null, pcConnected: null, firstFrame: null, firstFrameCallback: null, frameWidth: 0, steps: {} };
  Object.defineProperty(window, '__joinMarks', { value: marks });
  /** @param {string} step */
  const mark = (step) => {
    if (marks.steps[step] === undefined) {
      marks.steps[step] = performance.now();
      performance.mark(`join:${step}`);
    }
  };
  const typeOf = (data) => {
    try {
      return JSON.parse(data).type ?? '?';
    } catch {
      return '?';
    }
  };
  const OriginalSocket = window.WebSocket;
  window.WebSocket = class extends OriginalSocket {
    constructor(...args) {
      mark('WebSocket created');
      super(...args);
      this.addEventListener('open', () => {
        marks.wsOpen ??= performance.now();
        mark('WebSocket open');
      });
      this.addEventListener('message', (e) => mark(`received ${typeOf(e.data)}`));
    }
    send(data) {
      mark(`sent ${typeOf(data)}`);
      super.send(data);
    }
  };
  const OriginalPc = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends OriginalPc {
    constructor(...args) {
      mark('RTCPeerConnection created');
      super(...args);
      this.addEventListener('iceconnectionstatechange', () => mark(`ICE ${this.iceConnectionState}`));
      this.addEventListener('connectionstatechange', () => {
        mark(`peer ${this.connectionState}`);
        if (this.connectionState === 'connected') marks.pcConnected ??= performance.now();
      });
    }
    setRemoteDescription(...a) { mark('setRemoteDescription called'); return super.setRemoteDescription(...a).then((r) => { mark('setRemoteDescription done'); return r; }); }
    createAnswer(...a) { mark('createAnswer called'); return super.createAnswer(...a).then((r) => { mark('createAnswer done'); return r; }); }
    setLocalDescription(...a) { mark('setLocalDescription called'); return super.setLocalDescription(...a).then((r) => { mark('setLocalDescription done'); return r; }); }
  };
  const watch = () => {
    const video = document.getElementById('stage-video');
    const onFrame = (now, metadata) => {
      // Only a remote track counts (a student never publishes here, but be exact).
      const stream = video.srcObject;
      const track = stream && stream.getVideoTracks()[0];
      if (track && track.kind === 'video' && video.dataset.participant && metadata.width > 0) {
        marks.firstFrame = metadata.presentationTime;
        marks.firstFrameCallback = now;
        marks.frameWidth = metadata.width;
        mark('first frame callback');
        return;
      }
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', watch);
  else watch();
}
