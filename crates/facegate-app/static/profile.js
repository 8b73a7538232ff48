// facegate profile: take a face photo with the webcam and enrol it through
// POST /api/me/faces; the page then reloads to show the new photo.
"use strict";
(function () {
  var panel = document.getElementById("face-panel");
  var button = document.getElementById("face-capture");
  if (!panel || !button) { return; }
  var csrf = panel.getAttribute("data-csrf");
  var box = document.getElementById("capture-box");
  var video = document.getElementById("capture-video");
  var canvas = document.getElementById("capture-canvas");
  var status = document.getElementById("face-capture-status");
  var live = false;

  function say(text, ok) {
    status.textContent = text;
    status.className = "mt-2 " + (ok ? "text-success" : "text-danger");
  }

  button.addEventListener("click", function () {
    if (!live) {
      window.facegateStartCamera(video).then(function () {
        live = true;
        box.classList.remove("d-none");
        button.textContent = "Take the photo";
        say("Look at the camera, then press “Take the photo”.", true);
      }).catch(function (err) { say("Camera not available: " + err.message, false); });
      return;
    }
    window.facegateCapture(video, canvas, 1280).then(function (blob) {
      if (!blob) { say("The camera is not ready yet.", false); return; }
      var form = new FormData();
      form.append("image", blob, "webcam.jpg");
      button.disabled = true;
      return fetch("/api/me/faces", {
        method: "POST", body: form, credentials: "same-origin", headers: { "X-CSRF-Token": csrf }
      }).then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (body) {
          button.disabled = false;
          if (res.ok) {
            say("Photo added.", true);
            window.setTimeout(function () { window.location.reload(); }, 600);
          } else {
            say(body.message || "The photo was not accepted.", false);
          }
        });
      });
    }).catch(function () { button.disabled = false; say("Connection problem; try again.", false); });
  });
})();
