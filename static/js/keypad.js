/* On-screen keypad for mobile numbers (templates/_macros/keypad.html). The number lives in
   a hidden field; the display shows the digits as typed, grouped 138 1234 5678, so an elderly
   visitor can check them (only result screens mask a number). */
(function () {
  "use strict";
  function groups(pad) {
    return (pad.dataset.keypadGroups || "3,4,4").split(",").map(function (n) { return parseInt(n, 10); });
  }

  function group(pad, digits) {
    var parts = [];
    var at = 0;
    groups(pad).forEach(function (size) {
      if (digits.slice(at, at + size)) { parts.push(digits.slice(at, at + size)); }
      at += size;
    });
    return parts.join(" ");
  }

  function render(pad) {
    var value = pad.querySelector("[data-keypad-value]").value;
    var display = pad.querySelector("[data-keypad-display]");
    display.textContent = value ? group(pad, value) : display.dataset.placeholder;
    display.classList.toggle("is-empty", !value);
  }

  document.addEventListener("click", function (event) {
    var key = event.target.closest("[data-key], [data-key-clear], [data-key-back]");
    if (!key) { return; }
    var pad = key.closest("[data-keypad]");
    if (!pad) { return; }
    var input = pad.querySelector("[data-keypad-value]");
    if (key.hasAttribute("data-key-clear")) {
      input.value = "";
    } else if (key.hasAttribute("data-key-back")) {
      input.value = input.value.slice(0, -1);
    } else if (input.value.length < groups(pad).reduce(function (a, b) { return a + b; }, 0)) {
      input.value += key.dataset.key;
    }
    render(pad);
  });

  document.addEventListener("reset", function (event) {
    if (event.target.matches("[data-keypad]")) {
      setTimeout(function () { render(event.target); }, 0);
    }
  }, true);
})();
