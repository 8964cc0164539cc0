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
      var left = chosen.offsetLeft - strip.offsetLeft;
      // The chosen day a little in from the left edge, with the days before it hinted.
      var wanted = Math.max(0, left - Math.max(0, (strip.clientWidth - chosen.offsetWidth) / 3));
      if (left < strip.scrollLeft || left + chosen.offsetWidth > strip.scrollLeft + strip.clientWidth) {
        strip.scrollLeft = wanted;
      }
    });
  }
  document.addEventListener("htmx:load", function (event) { reveal(event.detail.elt); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { reveal(document); });
  } else {
    reveal(document);
  }
})();
