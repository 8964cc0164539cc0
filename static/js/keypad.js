/* On-screen keypad for mobile numbers (templates/_macros/keypad.html). The number lives in
   a hidden field; the display shows the digits as typed, grouped 138 1234 5678, so an elderly
   visitor can check them (only result screens mask a number). */
(function () {
  "use strict";
  var MAX_DIGITS = 11;

  function group(digits) {
    return [digits.slice(0, 3), digits.slice(3, 7), digits.slice(7)].filter(Boolean).join(" ");
  }

  function render(pad) {
    var value = pad.querySelector("[data-keypad-value]").value;
    var display = pad.querySelector("[data-keypad-display]");
    display.textContent = value ? group(value) : display.dataset.placeholder;
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
    } else if (input.value.length < MAX_DIGITS) {
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
