/* Centre Kiosk: glue shared by every page (no inline script: the CSP forbids it).
   - every htmx request carries the CSRF token from <meta name="csrf-token">;
   - the clock ticks;
   - [data-dismiss] buttons close the message they sit in;
   - kioskEndVisit(url): forget the visitor (client and server) and go to url;
   - a live count's poll does not touch its aria-live element when the figure is unchanged. */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  window.kioskCsrfToken = csrfToken;

  // The end of a visit (idle timeout, a finished task): forms and storage cleared here, the
  // session cleared on the server (POST /session/end), then the next screen.
  window.kioskEndVisit = function (url) {
    document.querySelectorAll("form").forEach(function (form) { form.reset(); });
    document.querySelectorAll("[data-keypad-value]").forEach(function (input) { input.value = ""; });
    try { sessionStorage.clear(); localStorage.clear(); } catch (e) { /* storage may be disabled */ }
    var go = function () { window.location.replace(url); };
    fetch(document.body.dataset.endVisitUrl, {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
    }).then(go, go);
  };

  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (target && target.hasAttribute("data-live-value")) {
      var probe = document.createElement("div");
      probe.innerHTML = event.detail.serverResponse;
      if (probe.textContent.trim() === target.textContent.trim()) { event.detail.shouldSwap = false; }
    }
  });

  // A new screen swapped into #main starts at its top, as a page load would: a book tapped far
  // down the results opened at the list's depth, its title and availability off the screen.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "main") { window.scrollTo(0, 0); }
  });

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
