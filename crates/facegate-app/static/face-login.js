// facegate face login: every N ms send a downscaled webcam frame to
// POST /api/face-login and say in plain words what happened.
"use strict";
(function () {
  var root = document.getElementById("face-login-root");
  if (!root) { return; }
  var interval = parseInt(root.getAttribute("data-interval"), 10) || 2000;
  var csrf = root.getAttribute("data-csrf");
  var mode = root.getAttribute("data-mode");
  // With active liveness, static/liveness.js runs the challenge instead.
  if (/^(active|both)$/.test(root.getAttribute("data-liveness") || "")) { return; }
  var video = document.getElementById("camera");
  var canvas = document.getElementById("face-canvas");
  var status = document.getElementById("face-status");
  var usernameInput = document.getElementById("face-username");
  var stopped = false;
  var stream = null;

  var MESSAGES = {
    no_face: "No face in view",
    multiple_faces: "Several faces in view — only you, please",
    unknown: "Not recognised",
    locked: "Too many attempts, try again later",
    rate_limited: "Too many attempts, try again later",
    not_authenticated: "Log in with your password first",
    invalid_image: "The camera picture could not be read",
    too_large: "The camera picture is too large",
    csrf: "This page has expired — reload it to try again"
  };

  function say(text) { status.textContent = text; }

  // Turns the camera off, and says so where its picture was (a stopped
  // stream would leave a black box).
  function stop() {
    stopped = true;
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); }
    video.srcObject = null;
    video.parentElement.classList.add("camera-off");
  }

  function schedule(ms) { if (!stopped) { window.setTimeout(tick, ms); } }

  function tick() {
    if (stopped) { return; }
    var username = usernameInput ? usernameInput.value.trim() : "";
    if (mode === "verify" && !username) {
      say("Enter your username");
      schedule(interval);
      return;
    }
    window.facegateCapture(video, canvas, 640).then(function (blob) {
      if (!blob) { schedule(interval); return null; }
      var form = new FormData();
      form.append("image", blob, "frame.jpg");
      if (username) { form.append("username", username); }
      return fetch("/api/face-login", {
        method: "POST",
        body: form,
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf }
      }).then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (body) {
          if (res.ok) {
            stop();
            say("Welcome, " + body.username);
            window.setTimeout(function () { window.location.assign("/"); }, 800);
            return;
          }
          say(MESSAGES[body.error] || body.message || "Something went wrong");
          // A stale CSRF token (session expired or cookies cleared) never
          // becomes valid again: stop instead of posting every interval.
          if (body.error === "locked" || body.error === "not_authenticated" || body.error === "csrf") { stop(); return; }
          schedule(body.error === "rate_limited" ? Math.max(interval, 10000) : interval);
        });
      });
    }).catch(function () {
      say("Connection problem, retrying…");
      schedule(interval);
    });
  }

  say("Looking for your face…");
  window.facegateStartCamera(video).then(function (s) {
    stream = s;
    schedule(Math.min(interval, 1000));
  }).catch(function (err) {
    say("Camera not available: " + err.message);
  });
  window.addEventListener("pagehide", stop);
})();
