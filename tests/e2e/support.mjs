// Shared set-up of the browser tests: where things are, starting the
// facegate server on a free loopback port, making fake-camera clips with
// ffmpeg, and launching the system's Chromium with such a clip as webcam.

import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, "..", "..");
export const BIN = path.resolve(REPO, process.env.FACEGATE_E2E_BIN || "target/release/facegate");
export const FACES = path.resolve(REPO, process.env.FACEGATE_E2E_FACES || "../shared/testdata/faces");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const FFMPEG = process.env.FFMPEG || "ffmpeg";
// Where screenshots and server logs go (one directory per test file):
// FACEGATE_E2E_ARTIFACTS, default target/ (CI sets a directory it keeps).
export const ARTIFACTS_ROOT = path.resolve(REPO, process.env.FACEGATE_E2E_ARTIFACTS || "target");

// The environment of a facegate command: the caller's own FACEGATE_*
// variables are dropped so that they cannot change a test.
export function cleanEnv(settings = {}) {
  return {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("FACEGATE_"))),
    ...settings,
  };
}

// Starts `facegate serve` on `addr` (default: a free loopback port) with a
// fresh data directory and the given FACEGATE_* settings. Its output goes
// to `logFile`.
export function startServer(dataDir, logFile, settings, addr = "127.0.0.1:0") {
  const log = fs.createWriteStream(logFile);
  // Where util-linux's setpriv exists, the kernel ends the server when this
  // process dies, however it dies (setpriv execs, so the pid stays the same).
  let cmd = BIN;
  let args = ["serve", "--addr", addr, "--data-dir", dataDir];
  if (fs.existsSync("/usr/bin/setpriv")) {
    args = ["--pdeathsig", "SIGKILL", "--", cmd, ...args];
    cmd = "/usr/bin/setpriv";
  }
  const child = spawn(cmd, args, {
    cwd: REPO,
    env: cleanEnv({
      FACEGATE_FACE_LOGIN: "identify",
      FACEGATE_RATE_LIMIT_PER_ADDRESS: "0",
      FACEGATE_RATE_LIMIT_PER_ACCOUNT: "0",
      RUST_LOG: process.env.RUST_LOG || "info",
      NO_COLOR: "1",
      ...settings,
    }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const listening = new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`server did not say "listening" within 120 s:\n${out}`)), 120_000);
    const onData = (chunk) => {
      log.write(chunk);
      out += chunk.toString();
      const m = out.match(/listening on (http:\/\/[^\s]+)/);
      if (m) { clearTimeout(timer); resolve(m[1].replace(/\/$/, "")); }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", (e) => { clearTimeout(timer); reject(e); });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (code ${code}, signal ${signal}) before listening:\n${out}`));
    });
  });
  return { child, exited, listening };
}

// Writes a one-second 640x480 y4m clip of a still photo, letterboxed, to
// `out` (Chromium's fake camera loops it).
export function makeClip(photo, out) {
  execFileSync(FFMPEG, [
    "-hide_banner", "-loglevel", "error", "-y",
    "-loop", "1", "-i", photo, "-t", "1", "-r", "10",
    "-vf", "scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2",
    "-pix_fmt", "yuv420p", out,
  ], { stdio: ["ignore", "ignore", "pipe"] });
  return out;
}

// A fresh headless Chromium whose webcam shows `clip`, and a page of a new
// context on `baseUrl` with the camera permission granted.
export async function launchWithClip(clip, baseUrl, viewport = { width: 1280, height: 900 }) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
      `--use-file-for-fake-video-capture=${clip}`,
    ],
  });
  const context = await browser.newContext({ baseURL: baseUrl, viewport });
  await context.grantPermissions(["camera"], { origin: baseUrl });
  const page = await context.newPage();
  return { browser, context, page };
}

// Registers `username` on the server at `baseUrl` and enrols `photo` (a
// file of FACES) through the JSON API.
export async function enrolOverApi(baseUrl, username, photo) {
  let cookie = "";
  const call = async (url, init = {}) => {
    const res = await fetch(baseUrl + url, { ...init, headers: { ...(init.headers || {}), cookie } });
    const set = res.headers.getSetCookie ? res.headers.getSetCookie() : [];
    for (const c of set) { cookie = c.split(";")[0]; }
    return res;
  };
  const csrf = (await (await call("/api/csrf")).json()).csrf_token;
  const reg = await call("/api/register", {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": csrf },
    body: JSON.stringify({ username, email: `${username}@example.com`, password: "correct horse battery staple" }),
  });
  if (reg.status !== 201) { throw new Error(`register ${username}: ${reg.status} ${await reg.text()}`); }
  const form = new FormData();
  form.append("image", new Blob([fs.readFileSync(path.join(FACES, photo))], { type: "image/jpeg" }), photo);
  const csrf2 = (await (await call("/api/csrf")).json()).csrf_token;
  const up = await call("/api/me/faces", { method: "POST", headers: { "x-csrf-token": csrf2 }, body: form });
  if (up.status !== 201) { throw new Error(`enrol ${photo}: ${up.status} ${await up.text()}`); }
}

// A headless Chromium whose webcam is a person following the challenge's
// arrows: `poses` maps each direction (center, left, right, up) to a photo
// of FACES in that head pose. The page's camera is a canvas stream that,
// ten times a second, shows the photo for the arrow on screen (center
// otherwise), framed around the face as a webcam would (face about 40 %
// of the width), shifted and scaled a little, in front of one room that
// stays put (the photos' own backgrounds beside the head would be a pose
// album's: docs/LIVENESS.md, "Surroundings"), with brightness drift and
// sensor noise, like the API tests' genuine answers. `box` of each photo
// comes from `facegate detect --json`.
export async function launchWithPoses(baseUrl, poses, viewport = { width: 1280, height: 900 }) {
  const found = faceBoxes(Object.values(poses));
  const shown = {};
  Object.entries(poses).forEach(([dir, photo], i) => {
    const data = fs.readFileSync(path.join(FACES, photo)).toString("base64");
    shown[dir] = { src: `data:image/jpeg;base64,${data}`, box: found[i] };
  });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ baseURL: baseUrl, viewport });
  await context.addInitScript(followArrows, shown);
  const page = await context.newPage();
  return { browser, context, page };
}

// The face boxes [x1, y1, x2, y2] of photos of FACES, from one run of
// `facegate detect` for those not seen yet in this test file (it loads the
// models).
const boxes = new Map();
function faceBoxes(photos) {
  const missing = photos.filter((p) => !boxes.has(p));
  if (missing.length) {
    const out = execFileSync(BIN, ["detect", "--json", ...missing.map((p) => path.join(FACES, p))],
      { cwd: REPO, encoding: "utf8" });
    JSON.parse(out).forEach(({ faces }, i) => {
      const b = faces[0].bbox;
      boxes.set(missing[i], [b.x1, b.y1, b.x2, b.y2]);
    });
  }
  return photos.map((p) => boxes.get(p));
}

// Runs in the page (addInitScript): the fake camera of launchWithPoses.
function followArrows(shown) {
  const W = 640, H = 480;
  const canvas = document.createElement("canvas");
  canvas.width = W;
  canvas.height = H;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const images = {};
  for (const [dir, p] of Object.entries(shown)) {
    const img = new Image();
    img.src = p.src;
    images[dir] = { img, box: p.box };
  }
  const ICONS = { "fa-arrow-left": "left", "fa-arrow-right": "right", "fa-arrow-up": "up" };
  const asked = () => {
    const arrow = document.getElementById("challenge-arrow");
    const box = document.getElementById("challenge-box");
    if (!arrow || !box || box.classList.contains("invisible")) { return "center"; }
    const icon = Object.keys(ICONS).find((c) => arrow.classList.contains(c));
    return icon ? ICONS[icon] : "center";
  };
  // The room: a wall, a poster on the left, a lamp on the right (as
  // facegate-vision's eval::attacks::in_room draws it for the API tests).
  const room = document.createElement("canvas");
  room.width = W;
  room.height = H;
  const r = room.getContext("2d");
  const wall = r.createLinearGradient(0, 0, 0, H);
  wall.addColorStop(0, "rgb(183,175,163)");
  wall.addColorStop(1, "rgb(143,135,123)");
  r.fillStyle = wall;
  r.fillRect(0, 0, W, H);
  r.fillStyle = "rgba(0,0,0,0.14)";
  r.fillRect(0.88 * W, 0, 0.12 * W, H);
  ["rgb(70,120,190)", "rgb(200,90,80)", "rgb(230,210,120)"].forEach((c, i) => {
    r.fillStyle = c;
    for (let x = i; x < 9; x += 3) { r.fillRect((0.02 + x * 0.0133) * W, 0.1 * H, 0.0134 * W, 0.45 * H); }
  });
  r.fillStyle = "rgb(250,235,200)";
  r.beginPath();
  r.ellipse(0.92 * W, 0.8 * H, 0.07 * W, 0.12 * H, 0, 0, 2 * Math.PI);
  r.fill();
  const side = W / 2 - 0.3 * W;
  const rnd = () => Math.random() * 2 - 1;
  const draw = () => {
    const { img, box } = images[asked()] || images.center;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "rgb(90,90,90)";
    ctx.fillRect(0, 0, W, H);
    if (!img.complete || !img.naturalWidth) { return; }
    const [x1, y1, x2, y2] = box;
    const scale = (W * 0.4) / Math.max(x2 - x1, y2 - y1) * (1 + 0.03 * rnd());
    const cx = (x1 + x2) / 2, cy = (y1 + y2) / 2;
    const dx = 6 * rnd(), dy = 6 * rnd();
    ctx.setTransform(scale, 0, 0, scale, W / 2 - dx - cx * scale, H / 2 - dy - cy * scale);
    ctx.drawImage(img, 0, 0);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    // The head and shoulders stand in front of the room.
    ctx.drawImage(room, 0, 0, side, H, 0, 0, side, H);
    ctx.drawImage(room, W - side, 0, side, H, W - side, 0, side, H);
    const frame = ctx.getImageData(0, 0, W, H);
    const gain = 1 + 0.04 * rnd();
    const px = frame.data;
    for (let i = 0; i < px.length; i += 4) {
      const n = 3 * rnd();
      px[i] = px[i] * gain + n;
      px[i + 1] = px[i + 1] * gain + n;
      px[i + 2] = px[i + 2] * gain + n;
    }
    ctx.putImageData(frame, 0, 0);
  };
  draw();
  window.setInterval(draw, 100);
  const stream = canvas.captureStream(10);
  navigator.mediaDevices.getUserMedia = async () => stream;
}

// One test file's server: checks the binaries, empties its artifacts
// directory ARTIFACTS_ROOT/`name`, starts `facegate serve` with `settings`
// on a fresh data directory (its log in the artifacts), and removes it all
// when the process exits. Resolves once the server listens.
export async function startSuiteServer(name, settings) {
  if (!fs.existsSync(BIN)) { throw new Error(`server binary missing: ${BIN} (cargo build --release -p facegate)`); }
  if (!fs.existsSync(CHROMIUM)) { throw new Error(`Chromium missing: ${CHROMIUM}`); }
  const artifacts = path.join(ARTIFACTS_ROOT, name);
  fs.rmSync(artifacts, { recursive: true, force: true });
  fs.mkdirSync(artifacts, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `facegate-${name}-`));
  const s = startServer(path.join(tmp, "data"), path.join(artifacts, "server.log"), settings);
  process.on("exit", () => {
    if (s.child.exitCode === null) { s.child.kill("SIGKILL"); }
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  return { artifacts, tmp, server: s.child, baseUrl: await s.listening };
}

// The [status, error code] of each challenge answer `page` posts, in order.
export function challengeAnswers(page) {
  const answers = [];
  page.on("response", async (res) => {
    if (res.request().method() === "POST" && /\/frames$/.test(new URL(res.url()).pathname)) {
      let body = {};
      try { body = await res.json(); } catch { /* not JSON */ }
      answers.push([res.status(), body.error]);
    }
  });
  return answers;
}
