// facegate: behaviour shared by every page (no inline scripts: CSP).
"use strict";
(function () {
  // Forms with data-confirm ask before submitting.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (!window.confirm(form.getAttribute("data-confirm"))) {
        ev.preventDefault();
      }
    });
  });
})();

// Draws the current video frame into `canvas`, downscaled so that the
// longer side is at most `maxSide`, and resolves to a JPEG Blob.
window.facegateCapture = function (video, canvas, maxSide) {
  var w = video.videoWidth, h = video.videoHeight;
  if (!w || !h) { return Promise.resolve(null); }
  var scale = Math.min(1, maxSide / Math.max(w, h));
  canvas.width = Math.round(w * scale);
  canvas.height = Math.round(h * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return new Promise(function (resolve) { canvas.toBlob(resolve, "image/jpeg", 0.9); });
};

window.facegateStartCamera = function (video) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return Promise.reject(new Error("this browser cannot use a camera here (HTTPS is needed)"));
  }
  return navigator.mediaDevices.getUserMedia({ video: { facingMode: "user", width: { ideal: 640 } }, audio: false })
    .then(function (stream) {
      video.srcObject = stream;
      return video.play().catch(function () {}).then(function () { return stream; });
    });
};
