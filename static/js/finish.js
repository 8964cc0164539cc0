/* A finished task ends the visit (templates/_macros/finish.html): count down the seconds
   shown, then (or on 完成) end the visit on the server and go to data-finish-url. 「多看一会」
   adds data-finish-more seconds, data-finish-more-times times at most, then goes away. A box
   that leaves the page (the visitor tapped 返回首页) stops its countdown. */
(function () {
  "use strict";

  function start(box) {
    if (box.dataset.finishStarted) { return; }
    box.dataset.finishStarted = "1";
    var left = parseInt(box.dataset.finishSeconds || "15", 10);
    var more = parseInt(box.dataset.finishMore || "0", 10);
    var moreTimes = parseInt(box.dataset.finishMoreTimes || "0", 10);
    var shown = box.querySelector("[data-finish-countdown]");
    var longer = box.querySelector("[data-finish-longer]");
    var timer = setInterval(function () {
      if (!box.isConnected) { clearInterval(timer); return; }
      left -= 1;
      shown.textContent = String(Math.max(left, 0));
      if (left <= 0) { finish(); }
    }, 1000);
    function finish() {
      clearInterval(timer);
      window.kioskEndVisit(box.dataset.finishUrl);
    }
    box.querySelector("[data-finish]").addEventListener("click", finish);
    if (longer) {
      longer.addEventListener("click", function () {
        if (moreTimes <= 0 || left <= 0) { return; }
        moreTimes -= 1;
        left += more;
        shown.textContent = String(left);
        if (moreTimes <= 0) { longer.hidden = true; }
      });
    }
  }

  function scan(root) {
    if (root.matches && root.matches("[data-finish-seconds]")) { start(root); }
    if (root.querySelectorAll) { root.querySelectorAll("[data-finish-seconds]").forEach(start); }
  }
  document.addEventListener("htmx:load", function (event) { scan(event.detail.elt); });
  scan(document);
})();
