// Progressive enhancement only: every page works without this file.
// 1. A form shows it is busy and cannot be sent twice while its request is in flight.
// 2. When a form comes back with errors, focus moves to the summary so screen readers hear it.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.sent) { event.preventDefault(); return; }
    form.dataset.sent = "1";
    var button = form.querySelector("button[type=submit]");
    if (button) { button.setAttribute("aria-busy", "true"); }
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-sent]").forEach(function (form) {
      delete form.dataset.sent;
      var button = form.querySelector("button[aria-busy]");
      if (button) { button.removeAttribute("aria-busy"); }
    });
  });
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.getElementById("error-summary");
    if (summary) { summary.focus(); }
  });
})();
