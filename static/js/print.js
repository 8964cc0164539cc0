/* [data-print] buttons print the page (the CSP forbids inline onclick). */
document.addEventListener("click", function (event) {
  if (event.target.closest("[data-print]")) { window.print(); }
});
