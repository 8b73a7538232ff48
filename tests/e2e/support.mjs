// Shared set-up of the browser tests: where things are, starting the
// facegate server on a free loopback port, making fake-camera clips with
// ffmpeg, and launching the system's Chromium with such a clip as webcam.

import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
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
