/* USB scanner capture: a scanner is a keyboard that types a whole code within a few
   milliseconds per key and ends with Enter. Keys that arrive that fast are collected wherever
   focus is and the code is posted to /scan; slow typing (a person) is left alone.
   Only on visitor pages (body.visitor). */
(function () {
  "use strict";
  var body = document.body;
  if (!body.classList.contains("visitor")) { return; }

  var MAX_GAP_MS = 80;      // scanners type a key every 5–30 ms; people take 100 ms or more
  var MIN_LENGTH = 4;
  var buffer = "";
  var last = 0;

  function send(code) {
    htmx.ajax("POST", body.dataset.scanUrl, {
      target: "#scan-result",
      swap: "innerHTML",
      values: { code: code },
    });
  }

  document.addEventListener("keydown", function (event) {
    var now = performance.now();
    if (event.key === "Enter") {
      var code = buffer;
      var scanned = code.length >= MIN_LENGTH && now - last <= MAX_GAP_MS;
      buffer = "";
      if (scanned) {
        event.preventDefault();
        event.stopPropagation();
        send(code);
      }
      return;
    }
    if (event.key.length !== 1 || event.ctrlKey || event.altKey || event.metaKey) { return; }
    // A slow key starts over: what came before was a person typing, not a scanner.
    if (buffer && now - last > MAX_GAP_MS) { buffer = ""; }
    buffer += event.key;
    last = now;
    // While a code is coming in, keep its characters out of whatever has focus.
    if (buffer.length > 1) { event.preventDefault(); }
  }, { capture: true });

  // A scan result is a message box; it clears itself after a while.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id !== "scan-result") { return; }
    var box = event.detail.target.firstElementChild;
    setTimeout(function () { if (box && box.isConnected) { box.remove(); } }, 8000);
  });
})();
