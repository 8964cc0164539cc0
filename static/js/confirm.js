/* Confirmation before a consequential staff action (cancel an activity, deactivate an account).
 *
 * A form or button with hx-confirm="question" asks in a <dialog> instead of the browser's native
 * confirm(), which kiosk Chromium may suppress and which cannot be styled or translated. The
 * dialog's markup (with translated button labels) is the <template id="confirm-dialog"> the
 * staff layout renders. Works for plain forms (the submit is held, then re-sent with its
 * submitter) and for htmx requests (the htmx:confirm event).
 */
(function () {
  "use strict";

  function ask(question) {
    var template = document.getElementById("confirm-dialog");
    if (!template) { return Promise.resolve(true); }  // no dialog markup: do not block the action
    var dialog = template.content.firstElementChild.cloneNode(true);
    dialog.querySelector("[data-confirm-question]").textContent = question;
    document.body.appendChild(dialog);
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function () {
        var ok = dialog.returnValue === "ok";
        dialog.remove();
        resolve(ok);
      });
      dialog.showModal();
      var cancel = dialog.querySelector("button[value=cancel]");
      if (cancel) { cancel.focus(); }  // the safe choice has the focus
    });
  }

  function questionFor(form, submitter) {
    return (submitter && submitter.getAttribute("hx-confirm")) || form.getAttribute("hx-confirm");
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter || null;
    var question = questionFor(form, submitter);
    if (!question || event.defaultPrevented) { return; }  // htmx already handles its own forms
    if (form.dataset.confirmed === "1") { delete form.dataset.confirmed; return; }
    event.preventDefault();
    ask(question).then(function (ok) {
      if (!ok) { return; }
      form.dataset.confirmed = "1";
      if (submitter) { form.requestSubmit(submitter); } else { form.requestSubmit(); }
    });
  });

  document.addEventListener("htmx:confirm", function (event) {
    if (!event.detail.question) { return; }
    event.preventDefault();
    ask(event.detail.question).then(function (ok) {
      if (ok) { event.detail.issueRequest(true); }
    });
  });
})();
