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
  var arrow = document.getElementById("challenge-arrow");
  var count = document.getElementById("challenge-count");
  var ring = document.getElementById("challenge-ring-fill");
  var refusal = document.getElementById("challenge-refusal");
  var refusalText = document.getElementById("challenge-refusal-text");
  var refusalHint = document.getElementById("challenge-refusal-hint");
  var actions = document.getElementById("challenge-actions");
  var retry = document.getElementById("challenge-retry");
  var usernameInput = document.getElementById("face-username");
  var CAPTURE_MS = 180;   // ≥ 5 frames per second
  var READY_MS = 1000;    // looking at the camera before the first step
  var STEP_MS = 1600;     // time given to each step
  var RING = 276.5;       // circumference of the ring (r = 44)

  // Each direction: its words and its icon (the picture is mirrored, so
  // the person's left is on the left of the screen).
  var STEPS = {
    left: { text: "Turn your head to your left", icon: "fa-arrow-left" },
    right: { text: "Turn your head to your right", icon: "fa-arrow-right" },
    up: { text: "Tilt your head up", icon: "fa-arrow-up" },
    center: { text: "Look straight at the camera", icon: "fa-dot-circle" }
  };
  // Refusals: one calm sentence, then what to do. `retry`: whether trying
  // again can help now.
  var REFUSALS = {
    spoof: ["That did not look like a live person in front of the camera.",
      "Follow the arrows and move your head slowly, then try again.", true],
    unknown: ["Your face was not recognised.",
      "Try again in good light, facing the camera, or use your password instead.", true],
    no_face: ["Your face was not in view the whole time.",
      "Stay in front of the camera and follow the arrows.", true],
    multiple_faces: ["More than one face was in view.",
      "Make sure only you are in front of the camera, then try again.", true],
    expired: ["The check took too long.", "Please try again.", true],
    step_up: ["Almost there: we need one more, slightly longer check to be sure it is you.",
      "Press Try again, keep your face in view and the camera still, and turn your head a " +
      "little as the arrows ask, or use your password instead.", true],
    locked: ["Face login is paused for this account after too many tries.",
      "Use your password instead, or try again later.", false],
    rate_limited: ["There were too many tries in a short time.",
      "Wait a minute, then try again.", true],
    not_authenticated: ["Your password is needed first.",
      "Log in with your password, then look at the camera.", false],
    connection: ["The server could not be reached.",
      "Check your connection, then try again.", true],
    other: ["Something went wrong.", "Try again, or use your password instead.", true]
  };

  function say(text) { status.textContent = text; }
  function sleep(ms) { return new Promise(function (r) { window.setTimeout(r, ms); }); }
  function progress(fraction) { ring.style.strokeDashoffset = String(RING * (1 - fraction)); }

  // Shows one phase: its words once (the status line), its arrow, and
  // "Step N of M" (none for the get-ready phase).
  function showPhase(p) {
    say(p.text);
    arrow.className = "challenge-arrow fas fa-fw " + p.icon;
    count.textContent = p.n ? ("Step " + p.n + " of " + p.of) : "Get ready";
    box.classList.remove("invisible");
    // Restart the little pulse so that two equal steps still look different.
    arrow.classList.remove("challenge-pulse");
    void arrow.offsetWidth;
    arrow.classList.add("challenge-pulse");
  }

  function refuse(code, serverMessage) {
    var r = REFUSALS[code] || (serverMessage ? [serverMessage, REFUSALS.other[1], true] : REFUSALS.other);
    // The refusal takes the ring's place (no gap above it).
    box.classList.add("invisible", "d-none");
    say("");
    refusalText.textContent = r[0];
    refusalHint.textContent = r[1];
    refusal.classList.remove("d-none");
    retry.classList.toggle("d-none", !r[2]);
    actions.classList.remove("d-none");
  }

  function clearRefusal() {
    box.classList.remove("d-none");
    refusal.classList.add("d-none");
    actions.classList.add("d-none");
  }

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
    clearRefusal();
    var username = usernameInput ? usernameInput.value.trim() : "";
    if (mode === "verify" && !username) {
      say("Enter your username, then press Try again.");
      retry.classList.remove("d-none");
      actions.classList.remove("d-none");
      return;
    }
    say("Preparing a short check that you are a live person…");
    post("/api/face-login/challenge", null).then(function (res) {
      if (!res.ok) { return res; }
      var ch = res.body;
      var frames = [];
      var of = ch.steps.length;
      var ready = ch.second_chance ? "One more check, a little longer: " : "Get ready: ";
      var phases = [{ text: ready + STEPS.center.text.toLowerCase(), icon: STEPS.center.icon, ms: READY_MS }]
        .concat(ch.steps.map(function (s, i) {
          var step = STEPS[s] || { text: s, icon: "fa-circle" };
          return { text: step.text, icon: step.icon, ms: STEP_MS, n: i + 1, of: of };
        }));
      var chain = Promise.resolve();
      phases.forEach(function (p) {
        chain = chain.then(function () {
          showPhase(p);
          var from = performance.now();
          return capturePhase(frames, from, from + p.ms);
        });
      });
      return chain.then(function () {
        box.classList.add("invisible");
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
      refuse(res.body.error, res.body.message);
    }).catch(function () {
      refuse("connection");
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
