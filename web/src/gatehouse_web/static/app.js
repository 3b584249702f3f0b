// Progressive enhancement only: every page works without this file.
// 1. A form shows it is busy and cannot be sent twice while its request is in flight.
// 2. When a form comes back with errors, focus moves to the summary so screen readers hear it.
// 3. Back from Google/GitHub with a second step to do, the mfa_token is in the URL fragment (which
//    no server sees): it is taken out of the address bar and posted to the second-factor step.
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
    // 4. A "Copy" button (hidden without JavaScript) copies the field it names to the clipboard.
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      if (!navigator.clipboard) { return; }
      button.hidden = false;
      button.addEventListener("click", function () {
        var source = document.getElementById(button.dataset.copy);
        navigator.clipboard.writeText(source.value).then(function () {
          button.textContent = button.dataset.copied;
        });
      });
    });
    var summary = document.getElementById("error-summary");
    if (summary) { summary.focus(); }
    var pending = document.getElementById("mfa-from-fragment");
    if (pending && window.location.hash.length > 1) {
      var values = new URLSearchParams(window.location.hash.slice(1));
      history.replaceState(null, "", window.location.pathname + window.location.search);
      pending.elements.mfa_token.value = values.get("mfa_token") || "";
      pending.elements.methods.value = values.get("methods") || "";
      pending.requestSubmit();
    }
  });
})();
