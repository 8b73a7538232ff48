// Real-browser end-to-end test of the step-up paths of the liveness
// challenge (docs/LIVENESS.md, "Step-up"): when the anti-spoofing network
// doubts a face whose head movements passed, the page offers one more,
// longer check and the password, and either way leads in.
//
// Starts `target/release/facegate serve` with FACEGATE_LIVENESS=both and a
// network threshold below any score (every face is doubted), enrols Barack
// Obama over the JSON API, then opens /face-login in the system's Chromium
// (playwright-core). Its camera is a person following the arrows
// (support.mjs, launchWithPoses): photos of him looking straight, left,
// right and up, shown as the page asks. Screenshots and the server log go
// to target/e2e-step-up/.
//
// Settings (environment), as in face_login.test.mjs: FACEGATE_E2E_BIN,
// FACEGATE_E2E_FACES, CHROMIUM.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { enrolOverApi, launchWithPoses, startSuiteServer, challengeAnswers } from "./support.mjs";

// The head poses of the API tests' genuine answers (facegate-vision's
// eval::scenarios): level, turned to his left, to his right, tilted up.
const POSES = { center: "obama_1.jpg", left: "obama_4.jpg", right: "obama_2.jpg", up: "obama_3.jpg" };

let suite;
const browsers = [];

before(async () => {
  suite = await startSuiteServer("e2e-step-up", {
    FACEGATE_LIVENESS: "both",
    FACEGATE_LIVENESS_PASSIVE__MAX_NET_SCORE: "-1",
    // The network judges challenge answers too (by default single frames only).
    FACEGATE_LIVENESS_PASSIVE__FRAMES: "1",
  });
  await enrolOverApi(suite.baseUrl, "barack", "obama_1.jpg");
});

after(async () => {
  for (const b of browsers) { await b.close().catch(() => {}); }
  if (suite && suite.server.exitCode === null) { suite.server.kill("SIGTERM"); }
});

// The face-login page in a new browser, with the challenge answers'
// statuses and error codes collected in `answers`.
async function openFaceLogin() {
  const { browser, page } = await launchWithPoses(suite.baseUrl, POSES);
  browsers.push(browser);
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  const answers = challengeAnswers(page);
  await page.goto("/face-login");
  return { page, answers, problems };
}

// Waits for the first answer's step-up and checks what the person reads.
async function expectStepUp(page, answers, shot) {
  const refusal = page.locator("#challenge-refusal");
  await refusal.waitFor({ state: "visible", timeout: 60_000 });
  await page.screenshot({ path: path.join(suite.artifacts, shot), fullPage: true });
  assert.deepEqual(answers, [[401, "step_up"]], "the head movements passed; the network doubted");
  const text = await refusal.innerText();
  assert.match(text, /one more, slightly longer check/i, text);
  assert.match(text, /password/i, text);
  assert.doesNotMatch(text, /photo or a screen|did not look like a live person/i, text);
  assert.ok(await page.locator("#challenge-retry").isVisible(), "Try again is offered");
  assert.ok(await page.locator("#challenge-password").isVisible(), "the password is offered");
  const me = await page.request.get("/api/me");
  assert.equal(me.status(), 401, "not logged in yet");
}

test("a doubted face gets one more, longer check in the browser and is let in", { timeout: 180_000 }, async () => {
  const { page, answers, problems } = await openFaceLogin();
  await expectStepUp(page, answers, "01-step-up.png");

  await page.locator("#challenge-retry").click();
  // The second chance says so and has four steps.
  await page.locator("#challenge-count").filter({ hasText: /^Step 1 of 4$/ }).waitFor({ timeout: 30_000 });
  await page.screenshot({ path: path.join(suite.artifacts, "02-second-chance.png"), fullPage: true });
  await page.waitForURL((url) => url.pathname !== "/face-login", { timeout: 60_000 });
  await page.screenshot({ path: path.join(suite.artifacts, "03-logged-in.png"), fullPage: true });
  assert.deepEqual(answers, [[401, "step_up"], [200, undefined]]);
  const me = await page.request.get("/api/me");
  assert.equal(me.status(), 200, "logged in");
  assert.equal((await me.json()).username, "barack");
  assert.deepEqual(problems, []);
});

test("a doubted face can use the password instead", { timeout: 180_000 }, async () => {
  const { page, answers, problems } = await openFaceLogin();
  await expectStepUp(page, answers, "04-step-up.png");

  await page.locator("#challenge-password").click();
  await page.waitForURL((url) => url.pathname === "/login", { timeout: 10_000 });
  await page.locator("#login-username").fill("barack");
  await page.locator("#login-password").fill("correct horse battery staple");
  await page.locator("#login-submit").click();
  await page.waitForURL((url) => url.pathname !== "/login", { timeout: 30_000 });
  await page.screenshot({ path: path.join(suite.artifacts, "05-password.png"), fullPage: true });
  const me = await page.request.get("/api/me");
  assert.equal(me.status(), 200, "logged in");
  assert.equal((await me.json()).username, "barack");
  assert.deepEqual(problems, []);
});
