/* Idle timer (DESIGN.md §8): after data-idle-seconds without a touch, ask "还在使用吗？" for
   data-idle-grace-seconds; if nobody answers, end the visit on the server (the session is
   cleared) and on the client (forms reset, storage cleared), then show the attract screen.
   data-idle-seconds="0" turns it off (attract screen, staff pages). kioskEndVisit is in kiosk.js. */
(function () {
  "use strict";
  var body = document.body;
  var idleSeconds = parseInt(body.dataset.idleSeconds || "0", 10);
  var graceSeconds = parseInt(body.dataset.idleGraceSeconds || "20", 10);
  if (!idleSeconds) { return; }

  var dialog = document.getElementById("idle-dialog");
  var countdown = dialog.querySelector("[data-idle-countdown]");
  var idleTimer = null;
  var graceTimer = null;
  var remaining = 0;

  function endVisit() {
    clearInterval(graceTimer);
    window.kioskEndVisit(body.dataset.attractUrl);
  }

  function askStillThere() {
    remaining = graceSeconds;
    countdown.textContent = String(remaining);
    if (!dialog.open) { dialog.showModal(); }
    graceTimer = setInterval(function () {
      remaining -= 1;
      countdown.textContent = String(Math.max(remaining, 0));
      if (remaining <= 0) { endVisit(); }
    }, 1000);
  }

  function restart() {
    clearTimeout(idleTimer);
    clearInterval(graceTimer);
    if (dialog.open) { dialog.close(); }
    idleTimer = setTimeout(askStillThere, idleSeconds * 1000);
  }

  // Any touch counts as "still here", also a tap beside the dialog while it asks (elderly
  // visitors tap anywhere); restart() keeps whatever was typed.
  ["pointerdown", "keydown", "touchstart", "wheel"].forEach(function (name) {
    document.addEventListener(name, restart, { capture: true, passive: true });
  });
  dialog.querySelector("[data-idle-continue]").addEventListener("click", restart);
  // Escape would close the modal without restarting the timer: treat it as "keep using".
  dialog.addEventListener("cancel", function (event) { event.preventDefault(); restart(); });
  restart();
})();
