// Real-browser end-to-end test of the liveness challenge on the face-login
// page (docs/LIVENESS.md).
//
// Starts `target/release/facegate serve` with FACEGATE_LIVENESS=both on a
// free loopback port with a fresh data directory; enrols Barack Obama over
// the JSON API; then opens /face-login in the system's Chromium
// (playwright-core) whose fake webcam plays a y4m clip made with ffmpeg from
// a still photo of him. The page runs the challenge, and the server refuses
// the unchanging picture: the page says so in plain words and no session is
// opened. Screenshots and the server log go to target/e2e-artifacts-liveness/
// (a directory of its own: face_login.test.mjs clears target/e2e-artifacts/).
//
// Settings (environment), as in face_login.test.mjs: FACEGATE_E2E_BIN,
// FACEGATE_E2E_FACES, CHROMIUM, FFMPEG.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { FACES, makeClip, launchWithClip, enrolOverApi, startSuiteServer, challengeAnswers } from "./support.mjs";

let suite;
let browser;

before(async () => {
  suite = await startSuiteServer("e2e-artifacts-liveness", { FACEGATE_LIVENESS: "both" });
});

after(async () => {
  if (browser) { await browser.close().catch(() => {}); }
  if (suite && suite.server.exitCode === null) { suite.server.kill("SIGTERM"); }
});

test("a still photo on the camera is refused by the challenge, in plain words", { timeout: 180_000 }, async () => {
  await enrolOverApi(suite.baseUrl, "barack", "obama_1.jpg");
  // A one-second clip of a still photo, looped by Chromium's fake camera.
  const clip = makeClip(path.join(FACES, "obama_2.jpg"), path.join(suite.tmp, "still.y4m"));
  let page;
  ({ browser, page } = await launchWithClip(clip, suite.baseUrl));
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  const answers = challengeAnswers(page);

  await page.goto("/face-login");
  const card = page.locator(".card").first();
  // The card's height once the camera shows its picture, before the ring.
  await page.waitForFunction(() => document.getElementById("camera").videoHeight > 0
    && document.getElementById("challenge-box").classList.contains("invisible"), null, { timeout: 30_000 });
  const heightBefore = (await card.boundingBox()).height;
  // Each step: its instruction once (the status line), "Step N of M" and
  // an arrow for its direction, while the card keeps its size.
  await page.locator("#challenge-count").filter({ hasText: /^Step 1 of \d$/ }).waitFor({ timeout: 30_000 });
  const step = await page.evaluate(() => ({
    status: document.getElementById("face-status").textContent,
    count: document.getElementById("challenge-count").textContent,
    arrow: document.getElementById("challenge-arrow").className,
    copies: [...document.querySelectorAll("body *")].filter((e) => e.children.length === 0
      && e.textContent.trim() === document.getElementById("face-status").textContent.trim()).length,
  }));
  assert.match(step.status, /Turn your head|Tilt your head|Look straight/, JSON.stringify(step));
  assert.match(step.arrow, /fa-(arrow-left|arrow-right|arrow-up|dot-circle)/);
  assert.equal(step.copies, 1, "the instruction is shown once");
  const heightDuring = (await card.boundingBox()).height;
  assert.ok(Math.abs(heightDuring - heightBefore) < 2, `card height ${heightBefore} -> ${heightDuring}`);
  await page.screenshot({ path: path.join(suite.artifacts, "01-challenge-instruction.png"), fullPage: true });
  // Every step looks different from the one before: its count changes.
  await page.locator("#challenge-count").filter({ hasText: /^Step 2 of \d$/ }).waitFor({ timeout: 10_000 });

  const refusal = page.locator("#challenge-refusal");
  await refusal.waitFor({ state: "visible", timeout: 60_000 });
  const text = await refusal.innerText();
  await page.screenshot({ path: path.join(suite.artifacts, "02-challenge-refused.png"), fullPage: true });

  assert.deepEqual(answers, [[401, "spoof"]]);
  // One calm sentence and what to do, styled as a refusal, no jargon.
  assert.match(text, /did not look like a live person/i, text);
  assert.match(text, /Follow the arrows and move your head slowly/, text);
  assert.doesNotMatch(text, /Not let in|:.*:/, text);
  assert.match(await refusal.getAttribute("class"), /alert-warning/);
  assert.equal((await page.locator("#face-status").innerText()).trim(), "", "said once, in the refusal");
  // The buttons come under the explanation.
  const retry = page.locator("#challenge-retry");
  assert.ok(await retry.isVisible(), "a Try again button is offered");
  assert.ok(await page.locator("#challenge-password").isVisible(), "the password way is offered");
  const below = (await retry.boundingBox()).y > (await refusal.boundingBox()).y + (await refusal.boundingBox()).height - 1;
  assert.ok(below, "Try again is under the refusal");
  const me = await page.request.get("/api/me");
  assert.equal(me.status(), 401, "no session was opened");
  assert.equal(new URL(page.url()).pathname, "/face-login");
  assert.deepEqual(problems, []);
});
