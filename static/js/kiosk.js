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

  // The centre's time zone (config TIMEZONE), not the PC's: a kiosk PC set to UTC must
  // still show Beijing time. The date rolls over at midnight on a screen left open.
  var zone = document.body.dataset.timezone || undefined;
  var lang = document.documentElement.lang || "zh-CN";
  var timeFormat = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  var dateFormat = new Intl.DateTimeFormat(lang, { timeZone: zone, dateStyle: "full" });
  function tick() {
    var now = new Date();
    var time = timeFormat.format(now);
    var date = dateFormat.format(now);
    document.querySelectorAll("[data-clock]").forEach(function (el) {
      if (el.textContent !== time) { el.textContent = time; }
    });
    document.querySelectorAll("[data-date]").forEach(function (el) {
      if (el.textContent !== date) { el.textContent = date; }
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
