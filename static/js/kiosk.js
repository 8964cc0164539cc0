/* Centre Kiosk: glue shared by every page (no inline script: the CSP forbids it).
   - every htmx request carries the CSRF token from <meta name="csrf-token">;
   - the clock ticks;
   - [data-dismiss] buttons close the message they sit in. */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  window.kioskCsrfToken = csrfToken;

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRFToken"] = csrfToken();
  });

  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function tick() {
    var now = new Date();
    var text = pad(now.getHours()) + ":" + pad(now.getMinutes());
    document.querySelectorAll("[data-clock]").forEach(function (el) {
      if (el.textContent !== text) { el.textContent = text; }
    });
  }
  setInterval(tick, 1000);

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-dismiss]");
    if (!button) { return; }
    var box = button.closest(".message");
    if (box) { box.remove(); }
  });
})();
