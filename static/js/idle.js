/* Idle timer (DESIGN.md §8): after data-idle-seconds without a touch, ask "还在使用吗？" for
   data-idle-grace-seconds; if nobody answers, end the visit on the server (the session is
   cleared) and on the client (forms reset, storage cleared), then show the attract screen.
   data-idle-seconds="0" turns it off (attract screen, staff pages). */
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

  function clearVisitorInput() {
    document.querySelectorAll("form").forEach(function (form) { form.reset(); });
    document.querySelectorAll("[data-keypad-value]").forEach(function (input) { input.value = ""; });
    try { sessionStorage.clear(); localStorage.clear(); } catch (e) { /* storage may be disabled */ }
  }

  function endVisit() {
    clearInterval(graceTimer);
    clearVisitorInput();
    var done = function () { window.location.replace(body.dataset.attractUrl); };
    fetch(body.dataset.endVisitUrl, {
      method: "POST",
      headers: { "X-CSRFToken": window.kioskCsrfToken() },
      credentials: "same-origin",
    }).then(done, done);
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

  ["pointerdown", "keydown", "touchstart", "wheel"].forEach(function (name) {
    document.addEventListener(name, function () { if (!dialog.open) { restart(); } }, { capture: true, passive: true });
  });
  dialog.querySelector("[data-idle-continue]").addEventListener("click", restart);
  // Escape would close the modal without restarting the timer: treat it as "keep using".
  dialog.addEventListener("cancel", function (event) { event.preventDefault(); restart(); });
  restart();
})();
