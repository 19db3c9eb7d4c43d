// Passkeys (W3C WebAuthn Level 2) on the account, login and second-factor pages. No build step.
//
// A form marked data-passkey="create" or "get" asks the browser for a credential when submitted, puts
// its JSON in the hidden field "credential" and submits itself; the server checks everything. Options
// come from data-passkey-options (a URL answering a POST with the form's csrf_token) or inline from
// data-passkey-request (JSON). Where WebAuthn is unavailable the form says so in its status line.
(function () {
  "use strict";

  function toBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(b64 + "===".slice((b64.length + 3) % 4));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (c) { return { type: c.type, id: toBytes(c.id), transports: c.transports }; });
  }

  function publicKey(mode, options) {
    options.challenge = toBytes(options.challenge);
    if (mode === "create") {
      options.user.id = toBytes(options.user.id);
      options.excludeCredentials = descriptors(options.excludeCredentials);
    } else {
      options.allowCredentials = descriptors(options.allowCredentials);
    }
    return options;
  }

  function asJSON(credential) {
    var r = credential.response, response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) response.userHandle = toText(r.userHandle);
    }
    return JSON.stringify({ id: credential.id, rawId: toText(credential.rawId), type: credential.type,
      response: response, authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults() });
  }

  function say(form, text) {
    var status = form.querySelector("[data-passkey-status]");
    if (status) status.textContent = text;
  }

  function fetchOptions(form) {
    var body = new URLSearchParams({ csrf_token: form.elements.csrf_token.value });
    return fetch(form.dataset.passkeyOptions, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (answer) {
        return answer.json().then(function (data) {
          if (data.location) { window.location.assign(data.location); throw new Error("redirected"); }
          if (!answer.ok) throw new Error(data.error_description || "The server refused the request.");
          return data;
        });
      });
  }

  function start(form) {
    var mode = form.dataset.passkey;
    var button = form.querySelector("button[type=submit]");
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say(form, "This browser cannot use passkeys. Use another browser or device, or another way to sign in.");
      if (button) button.disabled = true;
      return;
    }
    form.addEventListener("submit", function (event) {
      if (form.elements.credential.value) return;
      event.preventDefault();
      say(form, mode === "create" ? "Follow your browser's steps to create the passkey…" : "Follow your browser's steps to use your passkey…");
      var options = form.dataset.passkeyRequest
        ? Promise.resolve(JSON.parse(form.dataset.passkeyRequest)) : fetchOptions(form);
      options.then(function (data) {
        var request = { publicKey: publicKey(mode, data) };
        return mode === "create" ? navigator.credentials.create(request) : navigator.credentials.get(request);
      }).then(function (credential) {
        form.elements.credential.value = asJSON(credential);
        form.submit();
      }).catch(function (error) {
        if (error && error.message === "redirected") return;
        say(form, error && error.name === "NotAllowedError"
          ? "The passkey request was cancelled or timed out. You can try again."
          : error && error.name === "InvalidStateError"
            ? "This authenticator already holds a passkey for your account."
            : (error && error.message) || "The passkey could not be used.");
      });
    });
  }

  document.querySelectorAll("form[data-passkey]").forEach(start);
})();
