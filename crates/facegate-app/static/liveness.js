// facegate liveness challenge on the face-login page: ask the server for a
// challenge, show each instruction with a progress ring while capturing
// about 5.5 frames per second (downscaled to at most 480 px), send the batch
// to POST /api/face-login/challenge/{id}/frames and say what happened in
// plain words. The server decides; nothing here is trusted.
"use strict";
(function () {
  var root = document.getElementById("face-login-root");
  if (!root || !/^(active|both)$/.test(root.getAttribute("data-liveness") || "")) { return; }
  var csrf = root.getAttribute("data-csrf");
  var mode = root.getAttribute("data-mode");
  var video = document.getElementById("camera");
  var canvas = document.getElementById("face-canvas");
  var status = document.getElementById("face-status");
  var box = document.getElementById("challenge-box");
  var stepText = document.getElementById("challenge-step");
  var ring = document.getElementById("challenge-ring-fill");
  var retry = document.getElementById("challenge-retry");
  var usernameInput = document.getElementById("face-username");
  var CAPTURE_MS = 180;   // ≥ 5 frames per second
  var READY_MS = 1000;    // looking at the camera before the first step
  var STEP_MS = 1600;     // time given to each step
  var RING = 276.5;       // circumference of the ring (r = 44)

  var INSTRUCTIONS = {
    left: "Turn your head to your left",
    right: "Turn your head to your right",
    up: "Tilt your head up",
    center: "Look straight at the camera"
  };
  var MESSAGES = {
    unknown: "Not recognised.",
    no_face: "Your face was not in view all the time. Stay in front of the camera.",
    multiple_faces: "Several faces were in view; only you, please.",
    expired: "The challenge expired. Please try again.",
    locked: "Too many attempts, try again later.",
    rate_limited: "Too many attempts, please wait a minute.",
    not_authenticated: "Log in with your password first."
  };

  function say(text) { status.textContent = text; }
  function sleep(ms) { return new Promise(function (r) { window.setTimeout(r, ms); }); }
  function progress(fraction) { ring.style.strokeDashoffset = String(RING * (1 - fraction)); }

  function post(url, body) {
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf }
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (json) {
        return { ok: res.ok, body: json };
      });
    });
  }

  // Captures frames until `until` (performance.now() time) while the ring
  // fills over [from, until].
  function capturePhase(frames, from, until) {
    function loop() {
      var now = performance.now();
      if (now >= until) { progress(1); return Promise.resolve(); }
      progress((now - from) / (until - from));
      var t = performance.now();
      return window.facegateCapture(video, canvas, 480).then(function (blob) {
        if (blob) { frames.push({ blob: blob, t: t }); }
        return sleep(Math.max(0, CAPTURE_MS - (performance.now() - t)));
      }).then(loop);
    }
    return loop();
  }

  function run() {
    retry.classList.add("d-none");
    var username = usernameInput ? usernameInput.value.trim() : "";
    if (mode === "verify" && !username) { say("Enter your username, then press Try again."); retry.classList.remove("d-none"); return; }
    say("Preparing a short check that you are a live person…");
    post("/api/face-login/challenge", null).then(function (res) {
      if (!res.ok) { throw new Error(res.body.message || "could not start the check"); }
      var ch = res.body;
      var frames = [];
      box.classList.remove("d-none");
      var phases = [{ text: INSTRUCTIONS.center, ms: READY_MS }].concat(ch.steps.map(function (s) {
        return { text: INSTRUCTIONS[s] || s, ms: STEP_MS };
      }));
      var chain = Promise.resolve();
      phases.forEach(function (p) {
        chain = chain.then(function () {
          stepText.textContent = p.text;
          say(p.text);
          var from = performance.now();
          return capturePhase(frames, from, from + p.ms);
        });
      });
      return chain.then(function () {
        box.classList.add("d-none");
        say("Checking…");
        var form = new FormData();
        frames.forEach(function (f, i) { form.append("frame", f.blob, "frame" + i + ".jpg"); });
        form.append("timestamps", JSON.stringify(frames.map(function (f) { return Math.round(f.t); })));
        if (username) { form.append("username", username); }
        return post("/api/face-login/challenge/" + encodeURIComponent(ch.challenge_id) + "/frames", form);
      });
    }).then(function (res) {
      if (res.ok) {
        say("Welcome, " + res.body.username);
        window.setTimeout(function () { window.location.assign("/"); }, 800);
        return;
      }
      var err = res.body.error;
      var text = err === "spoof" ? ("Not let in: " + (res.body.message || "this does not look like a live person.")) :
        (MESSAGES[err] || res.body.message || "Something went wrong.");
      say(text);
      if (err !== "locked" && err !== "not_authenticated") { retry.classList.remove("d-none"); }
    }).catch(function (e) {
      box.classList.add("d-none");
      say("Connection problem: " + e.message);
      retry.classList.remove("d-none");
    });
  }

  retry.addEventListener("click", run);
  say("Starting the camera…");
  window.facegateStartCamera(video).then(function () {
    return sleep(500);
  }).then(run).catch(function (err) {
    say("Camera not available: " + err.message);
  });
})();
