/* The call display (templates/booking/display.html): chime when the latest call changes.
   The calls block replaces itself every second (htmx); its data-signature names the latest
   call (ticket, desk, how often called), so a recall chimes again. Chromium plays sound only
   after one tap on the page (or with --autoplay-policy=no-user-gesture-required). */
(function () {
  "use strict";
  var last = null;

  function signature() {
    var calls = document.getElementById("calls");
    return calls ? calls.dataset.signature || "" : "";
  }

  function chime() {
    var audio = document.querySelector("[data-chime]");
    if (!audio) { return; }
    audio.currentTime = 0;
    var played = audio.play();
    if (played && played.catch) { played.catch(function () {}); }
  }

  document.addEventListener("DOMContentLoaded", function () { last = signature(); });

  document.addEventListener("htmx:afterSettle", function () {
    var now = signature();
    if (last !== null && now && now !== last) {
      chime();
      document.body.dataset.lastChime = now;
    }
    last = now;
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-enable-sound]");
    if (!button) { return; }
    var audio = document.querySelector("[data-chime]");
    if (audio) { audio.muted = false; audio.play().then(function () { audio.pause(); }).catch(function () {}); }
    button.remove();
  });
})();
