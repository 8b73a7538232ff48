// Real-browser tour of every page, on a desktop (1280×900) and a phone
// (390×844) viewport, keeping a screenshot of each: the login (start)
// page, registration, face login, an unknown URL, the dashboard, the
// profile, and the staff pages (registering an OpenID Connect client). On each page: no script error, no broken
// same-origin resource, the Nunito font loaded from the server itself, and
// on the phone nothing wider than the screen. Also: the audit filter's date
// fields stay on one line at 1280 px, and "Deactivate" asks first and is
// not offered on one's own row.
//
// Screenshots go to <FACEGATE_E2E_ARTIFACTS or target>/e2e-pages/
// VIEWPORT-NN-name.png, next to server.log.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ARTIFACTS_ROOT, BIN, FACES, CHROMIUM, REPO, startServer, makeClip, launchWithClip } from "./support.mjs";

const ARTIFACTS = path.join(ARTIFACTS_ROOT, "e2e-pages");
const PASSWORD = "correct horse battery staple";
const VIEWPORTS = [
  { name: "desktop", width: 1280, height: 900 },
  { name: "phone", width: 390, height: 844 },
];

let tmp;
let server;
let baseUrl;
const browsers = new Set();

// Registers `username` and enrols `photo` through the JSON API.
async function userWithFace(username, photo) {
  let cookie = "";
  const call = async (url, init = {}) => {
    const res = await fetch(baseUrl + url, { ...init, headers: { ...(init.headers || {}), cookie } });
    for (const c of res.headers.getSetCookie()) { cookie = c.split(";")[0]; }
    return res;
  };
  const csrf = async () => (await (await call("/api/csrf")).json()).csrf_token;
  const reg = await call("/api/register", {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": await csrf() },
    body: JSON.stringify({ username, email: `${username}@example.com`, password: PASSWORD }),
  });
  assert.equal(reg.status, 201, await reg.text());
  const form = new FormData();
  form.append("image", new Blob([fs.readFileSync(path.join(FACES, photo))], { type: "image/jpeg" }), photo);
  const up = await call("/api/me/faces", { method: "POST", headers: { "x-csrf-token": await csrf() }, body: form });
  assert.equal(up.status, 201, await up.text());
}

process.on("exit", () => {
  if (server && server.exitCode === null) { server.kill("SIGKILL"); }
  if (tmp) { fs.rmSync(tmp, { recursive: true, force: true }); }
});

before(async () => {
  assert.ok(fs.existsSync(BIN), `server binary missing: ${BIN}`);
  assert.ok(fs.existsSync(CHROMIUM), `Chromium missing: ${CHROMIUM}`);
  fs.rmSync(ARTIFACTS, { recursive: true, force: true });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "facegate-e2e-pages-"));
  const data = path.join(tmp, "data");
  // A staff account, made with the command line before the server starts.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("FACEGATE_")));
  execFileSync(BIN, ["createsuperuser", "--no-input", "--data-dir", data], {
    cwd: REPO,
    env: { ...env, FACEGATE_SUPERUSER_USERNAME: "root", FACEGATE_SUPERUSER_EMAIL: "root@example.com",
      FACEGATE_SUPERUSER_PASSWORD: PASSWORD },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const s = startServer(data, path.join(ARTIFACTS, "server.log"), { FACEGATE_LIVENESS: "off" });
  server = s.child;
  baseUrl = await s.listening;
  await userWithFace("carol", "obama_1.jpg");
});

after(async () => {
  for (const b of browsers) { await b.close().catch(() => {}); }
  if (server && server.exitCode === null) { server.kill("SIGTERM"); }
});

// What every page must be: no script errors, no broken same-origin
// resources (besides `allowed` statuses of the page itself), Nunito loaded,
// and on the phone nothing wider than the screen.
async function checkPage(page, viewport, problems) {
  await page.evaluate(() => document.fonts.ready);
  const look = await page.evaluate(() => ({
    nunito: [...document.fonts].some((f) => f.family.replace(/["']/g, "") === "Nunito" && f.status === "loaded"),
    bodyFont: getComputedStyle(document.body).fontFamily,
    overflow: document.documentElement.scrollWidth - window.innerWidth,
  }));
  assert.ok(look.nunito, `Nunito not loaded on ${page.url()} (${look.bodyFont})`);
  if (viewport.name === "phone") {
    assert.ok(look.overflow <= 1, `${page.url()} is ${look.overflow} px wider than the phone`);
  }
  assert.deepEqual(problems.splice(0), [], `problems on ${page.url()}`);
}

for (const viewport of VIEWPORTS) {
  test(`every page on a ${viewport.name} (${viewport.width}×${viewport.height})`, { timeout: 240_000 }, async () => {
    const clip = makeClip(path.join(FACES, "kit_harington_1.jpg"), path.join(tmp, `camera-${viewport.name}.y4m`));
    const { browser, page } = await launchWithClip(clip, baseUrl, { width: viewport.width, height: viewport.height });
    browsers.add(browser);
    page.setDefaultTimeout(30_000);
    const problems = [];
    let expected404 = null;
    page.on("pageerror", (e) => problems.push(`script error: ${e.message}`));
    page.on("response", (res) => {
      const u = new URL(res.url());
      if (u.origin !== baseUrl || u.pathname === "/api/face-login" || u.pathname === expected404) { return; }
      if (res.status() === 404 || res.status() >= 500) { problems.push(`${u.pathname} -> ${res.status()}`); }
    });
    let n = 0;
    const shot = async (name) => {
      n += 1;
      await page.screenshot({ path: path.join(ARTIFACTS, `${viewport.name}-${String(n).padStart(2, "0")}-${name}.png`), fullPage: true });
    };
    const visit = async (url, name) => {
      await page.goto(url);
      await checkPage(page, viewport, problems);
      await shot(name);
    };
    try {
      // A stranger.
      await visit("/", "start-login");
      assert.equal(new URL(page.url()).pathname, "/login");
      assert.match(await page.locator("#landing-intro").innerText(), /looking at your camera/);
      await visit("/register", "register");
      await visit("/face-login", "face-login");
      expected404 = "/no/such/page";
      const r = await page.goto("/no/such/page");
      assert.equal(r.status(), 404);
      assert.match(await page.locator(".alert").innerText(), /no page at this address/);
      await checkPage(page, viewport, problems);
      await shot("not-found");

      // A user with a face photo.
      await page.goto("/login");
      await page.fill("#login-username", "carol");
      await page.fill("#login-password", PASSWORD);
      await Promise.all([page.waitForURL((u) => u.pathname === "/"), page.click("#login-submit")]);
      await checkPage(page, viewport, problems);
      await shot("dashboard");
      await visit("/profile", "profile");
      assert.match(await page.locator(".face-quality").first().innerText(), /good photo|consider another/);
      await Promise.all([page.waitForURL((u) => u.pathname === "/login"), page.click("#logout-button")]);
      assert.match(await page.locator(".alert").innerText(), /logged out/);
      await checkPage(page, viewport, problems);
      await shot("logged-out");

      // Staff.
      await page.fill("#login-username", "root");
      await page.fill("#login-password", PASSWORD);
      await Promise.all([page.waitForURL((u) => u.pathname === "/"), page.click("#login-submit")]);
      await visit("/admin/users", "admin-users");
      const own = await page.locator("#users-table tr", { hasText: "root@example.com" }).locator(".user-deactivate").count();
      assert.equal(own, 0, "no Deactivate on one's own row");
      // Deactivating asks first; saying no changes nothing.
      const dialogs = [];
      page.once("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); });
      await page.locator("#users-table tr", { hasText: "carol" }).locator(".user-deactivate").click();
      await page.waitForTimeout(300);
      assert.equal(dialogs.length, 1);
      assert.match(dialogs[0], /Deactivate carol\?/);
      assert.equal(new URL(page.url()).pathname, "/admin/users");
      await visit("/admin/attempts", "admin-attempts");
      assert.match(await page.locator("#attempts-table").innerText(), /carol \(#2\)/);
      // Registering an application: its secret is shown once, and even
      // that long word fits a phone's width.
      await visit("/admin/oidc-clients", "admin-oidc-clients");
      await page.fill("#client-name", `Wiki on a ${viewport.name}`);
      await page.fill("#client-redirect-uris", "https://wiki.example.org/login/generic_oauth");
      await Promise.all([page.waitForURL((u) => u.pathname === "/admin/oidc-clients"), page.click("#client-submit")]);
      await page.locator("#client-created").waitFor();
      assert.match(await page.locator("#created-client-secret").innerText(), /^[\w-]{40,}$/);
      assert.equal(await page.locator("#clients-table tr", { hasText: `Wiki on a ${viewport.name}` }).count(), 1);
      await checkPage(page, viewport, problems);
      await shot("admin-oidc-client-added");
      await visit("/admin/audit?user=carol", "admin-audit");
      if (viewport.name === "desktop") {
        // The filters stay on one line at 1280 px.
        const kind = await page.locator("#f-kind").boundingBox();
        const to = await page.locator("#f-to").boundingBox();
        assert.ok(Math.abs(kind.y - to.y) < 4, `"To" wrapped: ${kind.y} vs ${to.y}`);
      }
    } catch (e) {
      await shot("FAILED").catch(() => {});
      throw e;
    } finally {
      browsers.delete(browser);
      await browser.close().catch(() => {});
    }
  });
}
