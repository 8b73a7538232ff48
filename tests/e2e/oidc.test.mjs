// Real-browser end-to-end test of "Sign in with facegate": the demo
// relying party (examples/demo-rp, the `openidconnect` crate) sends the
// browser to facegate's OpenID Connect provider, the person logs in with
// their face on Chromium's fake camera, and lands back in the demo signed
// in, with `amr` saying how (docs/OIDC.md).
//
// Each scenario starts its own facegate (fresh data directory, its issuer
// on a free loopback port), registers the demo as a client with
// `facegate oidc-client add --json` while the server runs (the CLI shares
// the SQLite file; its start lock only serialises start-ups), starts the
// demo, then in Chromium registers a person, enrols a photo, logs out and
// signs in to the demo:
//
//   1. face_login = identify, liveness off, a client that is not
//      first-party: face login, the consent page, amr = [face];
//   2. face_login = second_factor, a first-party client: password, then
//      face, no consent page, amr = [pwd, face, mfa].
//
// Screenshots and both programs' logs go to
// <FACEGATE_E2E_ARTIFACTS or target>/e2e-oidc/. Settings (environment), as
// in face_login.test.mjs, and FACEGATE_E2E_DEMO_RP_BIN (the demo's binary,
// default target/release/facegate-demo-rp).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { ARTIFACTS_ROOT, BIN, FACES, CHROMIUM, REPO, cleanEnv, startServer, makeClip, launchWithClip } from "./support.mjs";

const ARTIFACTS = path.join(ARTIFACTS_ROOT, "e2e-oidc");
const DEMO_RP = path.resolve(REPO, process.env.FACEGATE_E2E_DEMO_RP_BIN || "target/release/facegate-demo-rp");
const PASSWORD = "correct horse battery staple";

const children = new Set();
const browsers = new Set();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "facegate-e2e-oidc-"));
fs.rmSync(ARTIFACTS, { recursive: true, force: true });
fs.mkdirSync(ARTIFACTS, { recursive: true });

process.on("exit", () => {
  for (const c of children) { if (c.exitCode === null) { c.kill("SIGKILL"); } }
  fs.rmSync(tmp, { recursive: true, force: true });
});

after(async () => {
  for (const b of browsers) { await b.close().catch(() => {}); }
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      const gone = new Promise((r) => c.once("exit", r));
      c.kill("SIGTERM");
      await gone;
    }
  }
});

// A loopback port free at the moment (the issuer and the redirect URI must
// be known before the programs start).
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Starts the demo relying party; resolves to its URL once it listens.
function startDemoRp(settings, logFile) {
  const log = fs.createWriteStream(logFile);
  const child = spawn(DEMO_RP, [], {
    cwd: REPO,
    env: { ...process.env, RUST_LOG: "info", NO_COLOR: "1", ...settings },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the demo did not start:\n${out}`)), 30_000);
    const onData = (chunk) => {
      log.write(chunk);
      out += chunk.toString();
      const m = out.match(/demo-rp listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`the demo exited (${code}):\n${out}`)); });
  });
}

// facegate, a client registered for the demo with the CLI, and the demo.
async function startStack(name, settings, clientFlags) {
  const dir = path.join(tmp, name);
  const dataDir = path.join(dir, "data");
  fs.mkdirSync(dir, { recursive: true });
  const fgPort = await freePort();
  const issuer = `http://127.0.0.1:${fgPort}`;
  const s = startServer(dataDir, path.join(ARTIFACTS, `${name}-facegate.log`),
    { FACEGATE_PUBLIC_URL: issuer, FACEGATE_LIVENESS: "off", ...settings }, `127.0.0.1:${fgPort}`);
  children.add(s.child);
  const baseUrl = await s.listening;
  assert.equal(baseUrl, issuer);

  const rpPort = await freePort();
  const redirect = `http://127.0.0.1:${rpPort}/callback`;
  const out = execFileSync(BIN, ["oidc-client", "add", "--json", "--name", "Demo app",
    "--redirect-uri", redirect, "--data-dir", dataDir, ...clientFlags],
  { cwd: REPO, env: cleanEnv({ NO_COLOR: "1" }), encoding: "utf8" });
  const client = JSON.parse(out);
  assert.ok(client.client_id && client.client_secret, out);

  const rpUrl = await startDemoRp({
    DEMO_RP_ISSUER: issuer,
    DEMO_RP_CLIENT_ID: client.client_id,
    DEMO_RP_CLIENT_SECRET: client.client_secret,
    DEMO_RP_LISTEN: `127.0.0.1:${rpPort}`,
    DEMO_RP_REDIRECT_URI: redirect,
  }, path.join(ARTIFACTS, `${name}-demo-rp.log`));
  return { baseUrl, rpUrl };
}

// Registers `username` on facegate's page, enrols `photo` on the profile
// page and logs out, in the browser.
async function registerWithFace(page, username, photo) {
  await page.goto("/register");
  const form = page.locator("#register-form");
  await form.locator('[name="username"]').fill(username);
  await form.locator('[name="email"]').fill(`${username}@example.com`);
  await form.locator('[name="password"]').fill(PASSWORD);
  await form.locator('[name="password2"]').fill(PASSWORD);
  await Promise.all([page.waitForURL((u) => u.pathname === "/"), page.click("#register-submit")]);
  await page.goto("/profile");
  await page.setInputFiles("#face-file", path.join(FACES, photo));
  await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === "/profile/faces" && r.request().method() === "POST"),
    page.click("#face-upload-submit"),
  ]);
  await page.locator("#face-list .face-item").first().waitFor();
  await Promise.all([page.waitForURL((u) => u.pathname === "/login"), page.click("#logout-button")]);
}

// The browser, its camera showing Barack Obama, on facegate.
async function browserOn(baseUrl) {
  const clip = path.join(tmp, "obama_2.y4m");
  if (!fs.existsSync(clip)) { makeClip(path.join(FACES, "obama_2.jpg"), clip); }
  const { browser, page } = await launchWithClip(clip, baseUrl);
  browsers.add(browser);
  page.setDefaultTimeout(30_000);
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(`script error: ${e.message}`));
  return { browser, page };
}

// What the demo shows once signed in.
async function demoSays(page) {
  await page.locator("#signed-in").waitFor();
  return {
    name: await page.locator("#user-name").innerText(),
    acr: await page.locator("#acr").innerText(),
    amr: await page.locator("#amr li").allInnerTexts(),
  };
}

test("sign in to the demo with the face; the consent page; amr face", { timeout: 180_000 }, async () => {
  assert.ok(fs.existsSync(BIN), `server binary missing: ${BIN}`);
  assert.ok(fs.existsSync(DEMO_RP), `demo missing: ${DEMO_RP} (cargo build --release -p facegate-demo-rp)`);
  assert.ok(fs.existsSync(CHROMIUM), `Chromium missing: ${CHROMIUM}`);
  const { baseUrl, rpUrl } = await startStack("identify", { FACEGATE_FACE_LOGIN: "identify" }, []);
  const { page } = await browserOn(baseUrl);
  try {
    await registerWithFace(page, "barack", "obama_1.jpg");

    await page.goto(rpUrl);
    assert.equal(await page.locator("#sign-in").innerText(), "Sign in with facegate");
    await page.screenshot({ path: path.join(ARTIFACTS, "identify-01-demo.png") });
    await Promise.all([page.waitForURL((u) => u.origin === baseUrl && u.pathname === "/login"),
      page.click("#sign-in")]);
    assert.match(await page.locator(".alert").first().innerText(), /Log in to continue to Demo app/);
    await page.screenshot({ path: path.join(ARTIFACTS, "identify-02-login.png") });
    await Promise.all([page.waitForURL((u) => u.pathname === "/face-login"), page.click("#face-login-link")]);

    // The face logs in; the request resumes and asks for consent.
    await page.locator("#consent-form").waitFor({ timeout: 60_000 });
    assert.match(await page.locator("#consent-text").innerText(), /Demo app wants to know who you are/);
    await page.screenshot({ path: path.join(ARTIFACTS, "identify-03-consent.png") });
    await Promise.all([page.waitForURL((u) => u.origin === rpUrl), page.click("#consent-allow")]);

    const seen = await demoSays(page);
    await page.screenshot({ path: path.join(ARTIFACTS, "identify-04-signed-in.png") });
    assert.equal(new URL(page.url()).pathname, "/");
    assert.equal(seen.name, "barack");
    assert.deepEqual(seen.amr, ["face"]);
    assert.equal(seen.acr, "urn:facegate:acr:face");

    // Signing out of the demo leaves the button again.
    await page.click("#sign-out");
    await page.locator("#sign-in").waitFor();
    assert.deepEqual(page.problems, [], "page problems");
  } catch (e) {
    await page.screenshot({ path: path.join(ARTIFACTS, "identify-FAILED.png"), fullPage: true }).catch(() => {});
    throw e;
  }
});

test("second factor: password then face; amr pwd, face, mfa", { timeout: 180_000 }, async () => {
  const { baseUrl, rpUrl } = await startStack("second-factor",
    { FACEGATE_FACE_LOGIN: "second_factor" }, ["--first-party"]);
  const { page } = await browserOn(baseUrl);
  try {
    await registerWithFace(page, "barack", "obama_1.jpg");

    await page.goto(rpUrl);
    await Promise.all([page.waitForURL((u) => u.origin === baseUrl && u.pathname === "/login"),
      page.click("#sign-in")]);
    await page.fill("#login-form [name=username]", "barack");
    await page.fill("#login-form [name=password]", PASSWORD);
    await Promise.all([page.waitForURL((u) => u.pathname === "/face-login"), page.click("#login-submit")]);
    await page.screenshot({ path: path.join(ARTIFACTS, "second-factor-01-face.png") });

    // The face confirms; a first-party client asks no consent.
    await page.waitForURL((u) => u.origin === rpUrl, { timeout: 60_000 });
    const seen = await demoSays(page);
    await page.screenshot({ path: path.join(ARTIFACTS, "second-factor-02-signed-in.png") });
    assert.equal(seen.name, "barack");
    assert.deepEqual([...seen.amr].sort(), ["face", "mfa", "pwd"]);
    assert.equal(seen.acr, "urn:facegate:acr:face-live");
    assert.deepEqual(page.problems, [], "page problems");
  } catch (e) {
    await page.screenshot({ path: path.join(ARTIFACTS, "second-factor-FAILED.png"), fullPage: true }).catch(() => {});
    throw e;
  }
});
