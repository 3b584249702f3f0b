// Progressive enhancement for /billing/success (the page works without it: "Check again" is a link).
// While billing waits for the payment provider's confirmation the page carries data-billing-pending:
// ask for the page again every two seconds, up to a minute, and show the answer in place.
(function () {
  "use strict";
  if (!document.querySelector("[data-billing-pending]") || !window.fetch || !window.DOMParser) { return; }
  var tries = 0;
  function later(delay) { if (tries < 30) { window.setTimeout(check, delay); } }
  function check() {
    tries += 1;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok || new URL(response.url).pathname !== window.location.pathname) { throw response.status; }
        return response.text();
      })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html");
        var fresh = next.getElementById("main");
        if (!fresh || fresh.querySelector("[data-billing-pending]")) { later(2000); return; }
        var main = document.getElementById("main");
        main.innerHTML = fresh.innerHTML;
        document.title = next.title;
        var heading = main.querySelector("h1");
        if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
      })
      .catch(function () { later(4000); });
  }
  window.setTimeout(check, 1500);
})();
