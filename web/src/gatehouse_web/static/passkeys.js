// Passkeys (WebAuthn): the one part of the site that needs JavaScript. Loaded by the pages that
// offer a passkey. A form marked data-passkey="create" or "get" is hidden in the HTML; when this
// browser can use passkeys it is shown (and the "passkeys need JavaScript" note hidden). On submit:
//   1. POST the form's fields (its CSRF token) to data-options: the server's options, as JSON;
//   2. navigator.credentials.create() or .get() with them (base64url strings → ArrayBuffers);
//   3. the browser's answer as JSON (ArrayBuffers → base64url) in the hidden "credential" field,
//      and the form is sent as any other: the server verifies it and answers with a page.
(function () {
  "use strict";

  function toBuffer(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }

  function toText(buffer) {
    if (!buffer) { return null; }
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (item) {
      return Object.assign({}, item, { id: toBuffer(item.id) });
    });
  }

  function creationOptions(json) {
    return Object.assign({}, json, {
      challenge: toBuffer(json.challenge),
      user: Object.assign({}, json.user, { id: toBuffer(json.user.id) }),
      excludeCredentials: withIds(json.excludeCredentials)
    });
  }

  function requestOptions(json) {
    return Object.assign({}, json, {
      challenge: toBuffer(json.challenge),
      allowCredentials: withIds(json.allowCredentials)
    });
  }

  function asJson(credential) {
    var response = credential.response;
    var body = { clientDataJSON: toText(response.clientDataJSON) };
    if (response.attestationObject) {
      body.attestationObject = toText(response.attestationObject);
      body.transports = response.getTransports ? response.getTransports() : [];
    } else {
      body.authenticatorData = toText(response.authenticatorData);
      body.signature = toText(response.signature);
      body.userHandle = toText(response.userHandle);
    }
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: body,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || null
    };
  }

  function say(form, message) {
    var place = form.querySelector("[data-passkey-message]");
    place.textContent = message;
    place.hidden = false;
    delete form.dataset.sent; // app.js marks a sent form; this one may be sent again
    var button = form.querySelector("button[aria-busy]");
    if (button) { button.removeAttribute("aria-busy"); }
  }

  function ceremony(form) {
    var create = form.dataset.passkey === "create";
    var fields = new URLSearchParams(new FormData(form));
    fields.delete("credential");
    return fetch(form.dataset.options, {
      method: "POST",
      body: fields,
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    }).then(function (answer) {
      return answer.json().then(function (json) {
        if (!answer.ok) { throw { shown: json.message || form.dataset.error }; }
        return create
          ? navigator.credentials.create({ publicKey: creationOptions(json) })
          : navigator.credentials.get({ publicKey: requestOptions(json) });
      });
    }).then(function (credential) {
      if (!credential) { throw { shown: form.dataset.failed }; }
      form.elements.credential.value = JSON.stringify(asJson(credential));
      form.submit();
    });
  }

  function start(event) {
    var form = event.target;
    if (form.dataset.sent) { return; } // a ceremony is under way (app.js stops this submit)
    var name = form.elements.passkey_name;
    if (name && !name.value.trim()) { return; } // the server says what is missing
    event.preventDefault();
    form.querySelector("[data-passkey-message]").hidden = true;
    ceremony(form).catch(function (error) {
      if (error && error.shown) { say(form, error.shown); return; }
      if (error && error.name === "InvalidStateError" && form.dataset.exists) { say(form, form.dataset.exists); return; }
      say(form, error && error.name === "NotAllowedError" ? form.dataset.failed : form.dataset.error);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var usable = !!(window.PublicKeyCredential && navigator.credentials && window.fetch);
    document.querySelectorAll("[data-passkey-needs-js]").forEach(function (note) {
      if (usable) { note.hidden = true; } else { note.textContent = note.dataset.unsupported; }
    });
    if (!usable) { return; }
    document.querySelectorAll("form[data-passkey]").forEach(function (form) {
      form.hidden = false;
      form.addEventListener("submit", start);
    });
  });
})();
