/* Booking's day strip (templates/booking/_day.html): the strip scrolls sideways, and the
   chosen day (the first with free places, or the one tapped) may lie beyond its right edge;
   bring it into the strip's view when the strip appears, without scrolling the page. */
(function () {
  "use strict";

  function reveal(root) {
    var strips = [];
    if (root.matches && root.matches(".day-strip")) { strips.push(root); }
    if (root.querySelectorAll) { root.querySelectorAll(".day-strip").forEach(function (s) { strips.push(s); }); }
    strips.forEach(function (strip) {
      var chosen = strip.querySelector(".is-chosen");
      if (!chosen) { return; }
      // Measured on screen (not offsetLeft, which depends on the offset parent and ignores the
      // strip's padding): the visible part of the strip is also clipped by the window.
      var box = strip.getBoundingClientRect();
      var day = chosen.getBoundingClientRect();
      var from = Math.max(box.left, 0);
      var to = Math.min(box.right, document.documentElement.clientWidth);
      if (day.left < from || day.right > to) {
        // The chosen day a little in from the left edge, with the days before it hinted.
        strip.scrollLeft += day.left - from - Math.max(0, (to - from - day.width) / 3);
      }
    });
  }
  // htmx:afterSwap runs in the same task as the swap, before the first paint of the new strip;
  // htmx:load comes only after the settle delay (20 ms, longer on a busy kiosk), long enough
  // for a tap, or a screenshot, to find the chosen day still off screen. htmx:load stays for
  // content htmx brings in other ways (history restore); a second reveal does nothing.
  document.addEventListener("htmx:afterSwap", function (event) { reveal(event.detail.elt); });
  document.addEventListener("htmx:load", function (event) { reveal(event.detail.elt); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { reveal(document); });
  } else {
    reveal(document);
  }
})();
