// Real-browser end-to-end test of the facegate web pages.
//
// Starts `target/release/facegate serve` on a free loopback port with a fresh
// data directory, then drives the system's Chromium (playwright-core, no
// downloaded browser) whose webcam is a fake device fed from a y4m clip made
// with ffmpeg from one of the test photos:
//
//   1. register → dashboard → upload a face photo on /profile → log out →
//      /login → "Log in with your face" → the face of the same person logs in;
//   2. another person's face is refused and gets no session;
//   3. two people in view get the several-faces message;
//   4. password login, a photo taken with the webcam on /profile, "delete all
//      my face data", after which the same face no longer logs in;
//   5. a face-login page whose session is gone stops and asks for a reload.
//
// Each scenario launches its own Chromium (a fresh temporary profile, since
// the fake camera's clip is a launch option). Tests 2 and 4 rely on the
// account made by test 1; node:test runs them in file order.
//
// Screenshots of every page visited go to target/e2e-artifacts/NN-name.png,
// next to server.log (the server's output).
//
// Settings (environment): FACEGATE_E2E_BIN (server binary, default
// target/release/facegate), FACEGATE_E2E_FACES (test photos, default
// ../shared/testdata/faces from the repository root), CHROMIUM (default
// /usr/bin/chromium), FFMPEG (default ffmpeg).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ARTIFACTS_ROOT, BIN, FACES, CHROMIUM, startServer, makeClip, launchWithClip } from "./support.mjs";

const ARTIFACTS = path.join(ARTIFACTS_ROOT, "e2e-artifacts");

const INTERVAL_MS = 500;
const USERNAME = "barack";
const PASSWORD = "correct horse battery staple";

let tmp;          // temp dir: data dir and clips
let server;       // the facegate child process
let serverExit;   // resolves when it exits
let baseUrl;      // http://127.0.0.1:PORT
let shotNo = 0;
const browsers = new Set();
let enrolled = false;

// ---------------------------------------------------------------- helpers

function photo(name) {
  const p = path.join(FACES, name);
  assert.ok(fs.existsSync(p), `test photo missing: ${p} (set FACEGATE_E2E_FACES)`);
  return p;
}

// A short 640x480 y4m clip of a still photo, letterboxed; Chromium loops it.
function clipOf(name) {
  const out = path.join(tmp, name.replace(/\.[^.]+$/, "") + ".y4m");
  if (!fs.existsSync(out)) {
    makeClip(photo(name), out);
  }
  return out;
}

// A fresh Chromium (own profile) whose webcam shows `clip`.
async function launchWithCamera(clip) {
  const { browser, context, page } = await launchWithClip(clip, baseUrl);
  browsers.add(browser);
  page.setDefaultTimeout(30_000);
  // Script errors and broken same-origin resources fail the test; the
  // expected 401/422/429 answers of the API do not count.
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(`script error: ${e.message}`));
  page.on("response", (res) => {
    const u = new URL(res.url());
    if (u.origin !== baseUrl) { return; }
    if (res.status() === 404 || res.status() >= 500) {
      page.problems.push(`${res.request().method()} ${u.pathname} -> ${res.status()}`);
    }
  });
  return { browser, context, page };
}

async function closeBrowser(browser) {
  browsers.delete(browser);
  await browser.close().catch(() => {});
}

async function shot(page, name) {
  shotNo += 1;
  const file = path.join(ARTIFACTS, `${String(shotNo).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

function pathOf(page) {
  return new URL(page.url()).pathname;
}

// Collects the answers to POST /api/face-login seen by `page`.
function recordFaceLoginAnswers(page) {
  const answers = [];
  page.on("response", async (res) => {
    if (res.request().method() !== "POST" || !res.url().endsWith("/api/face-login")) { return; }
    let body = {};
    try { body = await res.json(); } catch { /* not JSON */ }
    answers.push({ status: res.status(), error: body.error, username: body.username });
  });
  return answers;
}

async function waitFor(cond, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) { return; }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out after ${ms} ms waiting for ${what}`);
}

// Safety net: never leave the server running, even if the runner dies.
process.on("exit", () => {
  if (server && server.exitCode === null) { server.kill("SIGKILL"); }
  if (tmp) { fs.rmSync(tmp, { recursive: true, force: true }); }
});
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.once(sig, () => {
    if (server && server.exitCode === null) { server.kill("SIGKILL"); }
    process.exit(130);
  });
}

// ---------------------------------------------------------------- setup

before(async () => {
  assert.ok(fs.existsSync(BIN), `server binary missing: ${BIN} (cargo build --release -p facegate)`);
  assert.ok(fs.existsSync(CHROMIUM), `Chromium missing: ${CHROMIUM}`);
  assert.ok(fs.existsSync(FACES), `test photos missing: ${FACES}`);
  fs.rmSync(ARTIFACTS, { recursive: true, force: true });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "facegate-e2e-"));
  const s = startServer(path.join(tmp, "data"), path.join(ARTIFACTS, "server.log"), {
    FACEGATE_CAPTURE_INTERVAL_MS: String(INTERVAL_MS),
    FACEGATE_LIVENESS: "off",
  });
  server = s.child;
  serverExit = s.exited;
  baseUrl = (await s.listening).replace(/\/$/, "");
});

after(async () => {
  for (const b of [...browsers]) { await closeBrowser(b); }
  if (server && server.exitCode === null && server.signalCode === null) {
    server.kill("SIGTERM");
    const killer = setTimeout(() => server.kill("SIGKILL"), 10_000);
    await serverExit;
    clearTimeout(killer);
  }
  if (tmp) { fs.rmSync(tmp, { recursive: true, force: true }); }
});

// ---------------------------------------------------------------- tests

test("register, enrol a photo, log out, log in with the face", { timeout: 180_000 }, async () => {
  const { browser, page } = await launchWithCamera(clipOf("obama_2.jpg"));
  try {
    // Register.
    await page.goto("/register");
    await shot(page, "register");
    const form = page.locator("#register-form");
    await form.locator('[name="username"]').fill(USERNAME);
    await form.locator('[name="email"]').fill(`${USERNAME}@example.com`);
    await form.locator('[name="password"]').fill(PASSWORD);
    await form.locator('[name="password2"]').fill(PASSWORD);
    await Promise.all([page.waitForURL((u) => u.pathname === "/"), page.click("#register-submit")]);
    await page.locator("#welcome").waitFor();
    assert.match(await page.locator("#welcome").innerText(), new RegExp(`\\b${USERNAME}\\b`));
    assert.match(await page.locator("#user-menu").innerText(), new RegExp(USERNAME));
    await shot(page, "dashboard-registered");

    // Enrol one photo on the profile page.
    await page.goto("/profile");
    assert.equal(await page.locator("#face-list .face-item").count(), 0);
    await shot(page, "profile-empty");
    await page.setInputFiles("#face-file", photo("obama_1.jpg"));
    await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === "/profile/faces" && r.request().method() === "POST"),
      page.click("#face-upload-submit"),
    ]);
    await page.waitForLoadState("load");
    assert.equal(pathOf(page), "/profile");
    await page.locator("#face-list .face-item").first().waitFor();
    assert.equal(await page.locator("#face-list .face-item").count(), 1,
      `expected one enrolled photo; page says: ${await page.locator(".alert").allInnerTexts()}`);
    // The thumbnail is served to its owner.
    const thumbOk = await page.locator("#face-list .face-item img").evaluate((img) => img.complete && img.naturalWidth > 0);
    assert.ok(thumbOk, "the face thumbnail did not load");
    enrolled = true;
    await shot(page, "profile-one-face");

    // Log out.
    await Promise.all([page.waitForURL((u) => u.pathname === "/login"), page.click("#logout-button")]);
    await page.locator("#login-form").waitFor();
    await shot(page, "login");
    assert.equal((await page.request.get("/api/me")).status(), 401, "logged out, /api/me must be 401");

    // Face login with the same person's other photo. The page goes to the
    // dashboard 0.8 s after "Welcome"; hold that request until the welcome
    // screenshot is taken (the old page stays shown while it is pending).
    const answers = recordFaceLoginAnswers(page);
    let release;
    const held = new Promise((r) => { release = r; });
    await page.route((u) => u.pathname === "/", async (route) => { await held; await route.continue(); });
    await Promise.all([page.waitForURL((u) => u.pathname === "/face-login"), page.click("#face-login-link")]);
    await page.locator("#camera").waitFor();
    await page.waitForFunction(() => document.getElementById("camera").videoWidth > 0, null, { timeout: 15_000 });
    await shot(page, "face-login");
    await page.waitForFunction(
      () => /Welcome/.test(document.getElementById("face-status").textContent), null, { timeout: 30_000 });
    assert.equal(await page.locator("#face-status").innerText(), `Welcome, ${USERNAME}`);
    await shot(page, "face-login-welcome");
    release();
    await page.waitForURL((u) => u.pathname === "/", { timeout: 10_000 });
    await page.locator("#welcome").waitFor();
    assert.match(await page.locator("#welcome").innerText(), new RegExp(`\\b${USERNAME}\\b`));
    await shot(page, "dashboard-face-login");
    const ok = answers.filter((a) => a.status === 200);
    assert.equal(ok.length, 1, `exactly one accepted frame: ${JSON.stringify(answers)}`);
    assert.equal(ok[0].username, USERNAME);
    const me = await page.request.get("/api/me");
    assert.equal(me.status(), 200);
    assert.equal((await me.json()).username, USERNAME);
  } catch (e) {
    await shot(page, "FAILED-face-login-flow").catch(() => {});
    throw e;
    assert.deepEqual(page.problems, [], "page problems");
  } finally {
    await closeBrowser(browser);
  }
});

test("another person's face is not let in", { timeout: 120_000 }, async (t) => {
  assert.ok(enrolled, "needs the user enrolled by the first test");
  const { browser, page } = await launchWithCamera(clipOf("biden_2.jpg"));
  try {
    const answers = recordFaceLoginAnswers(page);
    await page.goto("/face-login");
    await page.waitForFunction(() => document.getElementById("camera").videoWidth > 0, null, { timeout: 15_000 });
    await shot(page, "face-login-stranger");
    // Several capture intervals' worth of frames, all refused.
    await waitFor(() => answers.length >= 4 || answers.some((a) => a.status === 200), 30_000,
      "four face-login answers");
    t.diagnostic(`answers: ${JSON.stringify(answers)}`);
    assert.deepEqual(answers.filter((a) => a.status === 200), [], "no frame may be accepted");
    await page.waitForFunction(
      () => /Not recognised/.test(document.getElementById("face-status").textContent), null, { timeout: 10_000 });
    await page.waitForTimeout(3 * INTERVAL_MS);
    await shot(page, "face-login-stranger-refused");
    assert.ok(answers.every((a) => a.status >= 400), JSON.stringify(answers));
    assert.ok(answers.some((a) => a.error === "unknown"), `expected "unknown": ${JSON.stringify(answers)}`);
    assert.equal(pathOf(page), "/face-login", "the page must stay on /face-login");
    assert.equal(await page.locator("#face-status").innerText(), "Not recognised");
    assert.equal((await page.request.get("/api/me")).status(), 401, "no session for a stranger");
    // And the dashboard still sends them to the password login.
    await page.goto("/");
    assert.equal(pathOf(page), "/login");
  } catch (e) {
    await shot(page, "FAILED-stranger").catch(() => {});
    throw e;
    assert.deepEqual(page.problems, [], "page problems");
  } finally {
    await closeBrowser(browser);
  }
});

test("two people in view get the several-faces message", { timeout: 120_000 }, async (t) => {
  const { browser, page } = await launchWithCamera(clipOf("multi_two_people.jpg"));
  try {
    const answers = recordFaceLoginAnswers(page);
    await page.goto("/face-login");
    await page.waitForFunction(() => document.getElementById("camera").videoWidth > 0, null, { timeout: 15_000 });
    await page.waitForFunction(
      () => /Several faces/.test(document.getElementById("face-status").textContent), null, { timeout: 30_000 });
    await shot(page, "face-login-two-people");
    t.diagnostic(`answers: ${JSON.stringify(answers)}`);
    assert.match(await page.locator("#face-status").innerText(), /^Several faces in view/);
    assert.ok(answers.some((a) => a.error === "multiple_faces"), JSON.stringify(answers));
    assert.deepEqual(answers.filter((a) => a.status === 200), []);
    assert.equal(pathOf(page), "/face-login");
    assert.equal((await page.request.get("/api/me")).status(), 401);
  } catch (e) {
    await shot(page, "FAILED-two-people").catch(() => {});
    throw e;
    assert.deepEqual(page.problems, [], "page problems");
  } finally {
    await closeBrowser(browser);
  }
});

test("password login, webcam enrolment, delete all face data", { timeout: 180_000 }, async (t) => {
  assert.ok(enrolled, "needs the user enrolled by the first test");
  const { browser, context, page } = await launchWithCamera(clipOf("obama_2.jpg"));
  try {
    // Password login.
    await page.goto("/login");
    await page.fill("#login-form [name=username]", USERNAME);
    await page.fill("#login-form [name=password]", PASSWORD);
    await Promise.all([page.waitForURL((u) => u.pathname === "/"), page.click("#login-submit")]);
    assert.match(await page.locator("#welcome").innerText(), new RegExp(`\\b${USERNAME}\\b`));
    await shot(page, "dashboard-password-login");

    // A second photo taken with the webcam on the profile page.
    await page.goto("/profile");
    assert.equal(await page.locator("#face-list .face-item").count(), 1);
    await page.click("#face-capture");
    await page.locator("#capture-box:not(.d-none)").waitFor();
    await page.waitForFunction(() => document.getElementById("capture-video").videoWidth > 0, null, { timeout: 15_000 });
    await shot(page, "profile-webcam");
    await Promise.all([
      page.waitForResponse((r) => r.url().endsWith("/api/me/faces") && r.request().method() === "POST"),
      page.click("#face-capture"),
    ]);
    // "Photo added." then the page reloads.
    await page.waitForFunction(() => document.querySelectorAll("#face-list .face-item").length === 2
      && document.getElementById("face-capture-status").textContent === "", null, { timeout: 15_000 });
    await shot(page, "profile-two-faces");

    // Delete all face data (the page asks to confirm).
    const dialogs = [];
    page.on("dialog", (d) => { dialogs.push(d.message()); d.accept(); });
    await page.click("#delete-all-faces");
    await page.waitForFunction(() => document.querySelectorAll("#face-list .face-item").length === 0
      && /deleted/.test(document.querySelector(".alert") ? document.querySelector(".alert").textContent : ""),
    null, { timeout: 15_000 });
    assert.equal(dialogs.length, 1, "one confirmation asked");
    await shot(page, "profile-faces-deleted");

    // Logged out, the same face no longer logs in.
    await Promise.all([page.waitForURL((u) => u.pathname === "/login"), page.click("#logout-button")]);
    const answers = recordFaceLoginAnswers(page);
    await page.goto("/face-login");
    await waitFor(() => answers.length >= 2 || answers.some((a) => a.status === 200), 30_000, "two face-login answers");
    t.diagnostic(`answers: ${JSON.stringify(answers)}`);
    assert.deepEqual(answers.filter((a) => a.status === 200), [], "deleted face data must not log in");
    await page.waitForFunction(
      () => /Not recognised/.test(document.getElementById("face-status").textContent), null, { timeout: 10_000 });
    await shot(page, "face-login-after-delete");
    assert.equal(pathOf(page), "/face-login");
    assert.equal((await context.request.get("/api/me")).status(), 401);
    assert.deepEqual(page.problems, [], "page problems");
  } catch (e) {
    await shot(page, "FAILED-webcam-enrolment").catch(() => {});
    throw e;
  } finally {
    await closeBrowser(browser);
  }
});

test("an expired face-login page stops and asks for a reload", { timeout: 120_000 }, async (t) => {
  const { browser, context, page } = await launchWithCamera(clipOf("biden_2.jpg"));
  try {
    const answers = recordFaceLoginAnswers(page);
    await page.goto("/face-login");
    await waitFor(() => answers.length >= 1, 30_000, "a first face-login answer");
    // Losing the session cookie makes the page's CSRF token stale for good.
    await context.clearCookies();
    await waitFor(() => answers.some((a) => a.error === "csrf"), 15_000, "a csrf answer");
    const seen = answers.length;
    await page.waitForTimeout(4 * INTERVAL_MS);
    await shot(page, "face-login-expired");
    t.diagnostic(`answers: ${JSON.stringify(answers)}`);
    assert.equal(answers.length, seen, "the page must stop posting once its token is stale");
    assert.match(await page.locator("#face-status").innerText(), /expired.*reload/i);
    // The camera is off, and the box where its picture was says so.
    const camera = await page.evaluate(() => {
      const box = document.querySelector(".camera-box");
      return {
        stream: document.getElementById("camera").srcObject !== null,
        caption: getComputedStyle(box, "::after").content,
      };
    });
    assert.deepEqual(camera, { stream: false, caption: '"Camera off"' });
    assert.deepEqual(page.problems, [], "page problems");
  } catch (e) {
    await shot(page, "FAILED-expired").catch(() => {});
    throw e;
  } finally {
    await closeBrowser(browser);
  }
});
