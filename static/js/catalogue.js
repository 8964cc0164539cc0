/* Reading-hall search keyboard (templates/catalogue/index.html): pinyin letters, digits and
   common first characters typed into the search box; each key fires an "input" event so htmx
   searches as the visitor types (debounced in the template's hx-trigger). */
(function () {
  "use strict";
  var MAX_LENGTH = 60;

  document.addEventListener("click", function (event) {
    var key = event.target.closest("[data-kb], [data-kb-back], [data-kb-clear]");
    if (!key) { return; }
    var keyboard = key.closest("[data-search-keyboard]");
    var input = keyboard && keyboard.parentElement.querySelector("[data-search-input]");
    if (!input) { return; }
    if (key.hasAttribute("data-kb-clear")) {
      input.value = "";
    } else if (key.hasAttribute("data-kb-back")) {
      input.value = Array.from(input.value).slice(0, -1).join("");
    } else if (input.value.length < MAX_LENGTH) {
      input.value += key.dataset.kb;
    }
    input.dispatchEvent(new Event("input", { bubbles: true }));
  });
})();
