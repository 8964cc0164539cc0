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

  // After 搜索 (the form's submit, not a key typed), results that landed below the bottom edge
  // (the keyboard above them: portrait, or elder mode on a narrow landscape screen) are
  // brought up; while typing the keyboard stays put under the visitor's finger.
  document.addEventListener("htmx:afterSwap", function (event) {
    var results = event.detail.target;
    var source = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!results || results.id !== "catalogue-results" || !source || !source.matches("form[data-catalogue-search]")) { return; }
    var first = results.querySelector(".results-count") || results.firstElementChild;
    if (first && first.getBoundingClientRect().top > window.innerHeight - 120) {
      results.scrollIntoView({ block: "start" });
    }
  });
})();
