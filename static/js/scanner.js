/* USB scanner capture (DESIGN.md §8). A scanner is a keyboard that types a whole code a few
   milliseconds per key and ends with Enter; a person types 100 ms or more per key. Keys are
   timed by event.timeStamp and collected wherever focus is (except a focused text field, where
   a person is typing); on Enter a fast enough run is posted to /scan. One slow key inside a
   scan (a USB hiccup of 80–150 ms) does not split it as long as the rest is scanner-fast.
   A paste of a code outside a text field counts as a scan too.
   Loaded without defer in <head>, so keys typed while the page is still loading are caught;
   it acts only on visitor pages (body.visitor) and waits for htmx if a scan beats it. */
(function () {
  "use strict";
  var FAST_MS = 90;         // scanners: 2–60 ms a key (plus jitter); people: 100 ms or more
  var PAUSE_MS = 400;       // a pause this long starts over: what came before was a person
  var MIN_LENGTH = 4;
  var keys = [];            // {key, at}

  function active() {
    return document.body && document.body.classList.contains("visitor");
  }

  function inTextField(target) {
    if (!target || !target.closest) { return false; }
    var field = target.closest("input, textarea, select, [contenteditable=''], [contenteditable=true]");
    return Boolean(field) && !(field.tagName === "INPUT" && /^(button|submit|reset|checkbox|radio|hidden)$/.test(field.type));
  }

  function looksScanned(run, enterAt) {
    if (run.length < MIN_LENGTH) { return false; }
    var slow = 0;
    for (var i = 1; i < run.length; i++) {
      if (run[i].at - run[i - 1].at > FAST_MS) { slow += 1; }
    }
    if (enterAt - run[run.length - 1].at > FAST_MS * 2) { return false; }
    // One hiccup per ten keys is a scanner's; more is a person.
    return slow <= Math.max(1, Math.floor(run.length / 10));
  }

  function send(code) {
    var post = function () {
      htmx.ajax("POST", document.body.dataset.scanUrl, { target: "#scan-result", swap: "innerHTML", values: { code: code } });
    };
    if (window.htmx) { post(); } else { window.addEventListener("load", post, { once: true }); }
  }

  document.addEventListener("keydown", function (event) {
    if (!active() || inTextField(event.target)) { keys = []; return; }
    var at = event.timeStamp;
    if (keys.length && at - keys[keys.length - 1].at > PAUSE_MS) { keys = []; }
    if (event.key === "Enter") {
      var run = keys;
      keys = [];
      if (looksScanned(run, at)) {
        event.preventDefault();
        event.stopPropagation();
        send(run.map(function (k) { return k.key; }).join(""));
      }
      return;
    }
    if (event.key.length !== 1 || event.ctrlKey || event.altKey || event.metaKey) { return; }
    keys.push({ key: event.key, at: at });
    // While a code may be coming in, keep its characters from activating whatever has focus.
    if (keys.length > 1) { event.preventDefault(); }
  }, { capture: true });

  document.addEventListener("paste", function (event) {
    if (!active() || inTextField(event.target)) { return; }
    var text = (event.clipboardData && event.clipboardData.getData("text") || "").trim();
    if (text.length >= MIN_LENGTH) {
      event.preventDefault();
      send(text);
    }
  });

  // A scan result is a message box; it clears itself after a while.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id !== "scan-result") { return; }
    var box = event.detail.target.firstElementChild;
    setTimeout(function () { if (box && box.isConnected) { box.remove(); } }, 8000);
  });
})();
