// The CAPTCHA emulator's widget: stands in for Cloudflare's turnstile/v0/api.js and hCaptcha's
// 1/api.js. Implicit rendering as theirs: every `.cf-turnstile` (or `.h-captcha`) element with a
// `data-sitekey` gets a checkbox; ticking it asks the emulator for a single-use token, put in the
// hidden `cf-turnstile-response` (or `h-captcha-response`) field of the enclosing form. The test site
// key 2x00000000000000000000AB (hCaptcha: 20000000-ffff-ffff-ffff-000000000002) always blocks.
(function () {
  "use strict";
  var script = document.currentScript;
  var base = new URL(script.src).origin;
  var hcaptcha = /\/1\/api\.js/.test(script.src);
  var selector = hcaptcha ? ".h-captcha" : ".cf-turnstile";
  var field = hcaptcha ? "h-captcha-response" : "cf-turnstile-response";
  var counter = 0;

  function render(container) {
    if (container.dataset.emulatorRendered) return;
    container.dataset.emulatorRendered = "1";
    counter += 1;
    var id = "captcha-emulator-" + counter;
    var box = document.createElement("div");
    box.className = "captcha-emulator";
    var input = document.createElement("input");
    input.type = "checkbox";
    input.id = id;
    var label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = " Verify you are human";
    var status = document.createElement("span");
    status.setAttribute("role", "status");
    status.className = "captcha-emulator-status";
    var hidden = document.createElement("input");
    hidden.type = "hidden";
    hidden.name = field;
    box.appendChild(input);
    box.appendChild(label);
    box.appendChild(document.createTextNode(" "));
    box.appendChild(status);
    box.appendChild(hidden);
    container.appendChild(box);
    input.addEventListener("change", function () {
      if (!input.checked) return;
      input.disabled = true;
      var body = new URLSearchParams({
        sitekey: container.dataset.sitekey || "",
        hostname: window.location.hostname,
        action: container.dataset.action || "",
        cdata: container.dataset.cdata || ""
      });
      fetch(base + "/widget/token", { method: "POST", body: body })
        .then(function (response) { return response.json().then(function (data) { return [response.ok, data]; }); })
        .then(function (result) {
          if (!result[0]) throw new Error(result[1].error || "failed");
          hidden.value = result[1].token;
          status.textContent = "Success!";
          var callback = container.dataset.callback && window[container.dataset.callback];
          if (typeof callback === "function") callback(result[1].token);
        })
        .catch(function () {
          input.checked = false;
          status.textContent = "Verification failed";
        });
    });
  }

  function renderAll() {
    document.querySelectorAll(selector).forEach(render);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", renderAll);
  } else {
    renderAll();
  }
  var api = {
    render: function (element) {
      render(typeof element === "string" ? document.querySelector(element) : element);
    },
    getResponse: function () {
      var hidden = document.querySelector("input[name='" + field + "']");
      return hidden ? hidden.value : "";
    }
  };
  if (hcaptcha) { window.hcaptcha = api; } else { window.turnstile = api; }
})();
