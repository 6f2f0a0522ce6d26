// Portless portal: the browser side of passkey ceremonies.
//
// Served from the portal itself (the page's CSP allows scripts from 'self' only). Every call
// is a same-origin JSON POST that carries the page's CSRF token in the Portless-Csrf header.
// Binary WebAuthn fields travel as base64url, as webauthn-rs reads and writes them.
(function () {
  'use strict';

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var text = '';
    for (var i = 0; i < bytes.length; i++) {
      text += String.fromCharCode(bytes[i]);
    }
    return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function fromBase64url(value) {
    var text = value.replace(/-/g, '+').replace(/_/g, '/');
    while (text.length % 4) {
      text += '=';
    }
    var raw = atob(text);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function field(name) {
    var input = document.querySelector('input[name="' + name + '"]');
    return input ? input.value : '';
  }

  function status(text) {
    var element = document.getElementById('passkey-status');
    if (element) {
      element.textContent = text;
    }
  }

  function post(path, body) {
    return fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'Portless-Csrf': field('csrf') },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        if (!response.ok) {
          throw new Error(json.error || 'The portal refused the request (' + response.status + ').');
        }
        return json;
      });
    });
  }

  // Drops null members (webauthn-rs writes absent options as null; browsers refuse null
  // where WebIDL wants a list or a dictionary).
  function withoutNulls(value) {
    if (Array.isArray(value)) {
      return value.map(withoutNulls);
    }
    if (value && typeof value === 'object') {
      var out = {};
      Object.keys(value).forEach(function (name) {
        if (value[name] !== null) {
          out[name] = withoutNulls(value[name]);
        }
      });
      return out;
    }
    return value;
  }

  function creationOptions(options) {
    var key = withoutNulls(options.publicKey);
    key.challenge = fromBase64url(key.challenge);
    key.user.id = fromBase64url(key.user.id);
    (key.excludeCredentials || []).forEach(function (c) { c.id = fromBase64url(c.id); });
    return { publicKey: key };
  }

  function requestOptions(options) {
    var key = withoutNulls(options.publicKey);
    key.challenge = fromBase64url(key.challenge);
    (key.allowCredentials || []).forEach(function (c) { c.id = fromBase64url(c.id); });
    return { publicKey: key };
  }

  function registrationJson(credential) {
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        attestationObject: toBase64url(credential.response.attestationObject),
        clientDataJSON: toBase64url(credential.response.clientDataJSON)
      },
      extensions: {}
    };
  }

  function assertionJson(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        authenticatorData: toBase64url(response.authenticatorData),
        clientDataJSON: toBase64url(response.clientDataJSON),
        signature: toBase64url(response.signature),
        userHandle: response.userHandle ? toBase64url(response.userHandle) : null
      },
      extensions: {}
    };
  }

  function failed(error) {
    if (error && error.name === 'NotAllowedError') {
      status('The passkey request was cancelled or timed out. Try again.');
    } else {
      status((error && error.message) || 'The passkey could not be used.');
    }
  }

  function register(button) {
    var name = (document.getElementById('passkey-name') || {}).value || '';
    if (!name.trim()) {
      status('Give the passkey a name first.');
      return;
    }
    button.disabled = true;
    status('Follow your browser to create the passkey…');
    post('/passkey/register/start', { name: name })
      .then(function (options) { return navigator.credentials.create(creationOptions(options)); })
      .then(function (credential) {
        return post('/passkey/register/finish', { credential: registrationJson(credential) });
      })
      .then(function (result) { window.location.assign(result.redirect || '/settings'); })
      .catch(failed)
      .then(function () { button.disabled = false; });
  }

  function authenticate(button, startPath, finishPath) {
    button.disabled = true;
    status('Follow your browser to use your passkey…');
    post(startPath, {})
      .then(function (options) { return navigator.credentials.get(requestOptions(options)); })
      .then(function (credential) {
        return post(finishPath, { credential: assertionJson(credential), rd: field('rd') });
      })
      .then(function (result) { window.location.assign(result.redirect || '/'); })
      .catch(failed)
      .then(function () { button.disabled = false; });
  }

  function wire() {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      status('This browser cannot use passkeys.');
      return;
    }
    var section = document.getElementById('passkey-login');
    var signin = document.getElementById('passkey-signin');
    if (section && signin) {
      section.hidden = false;
      signin.addEventListener('click', function () {
        authenticate(signin, '/passkey/login/start', '/passkey/login/finish');
      });
    }
    var second = document.getElementById('passkey-2fa');
    if (second) {
      second.addEventListener('click', function () {
        authenticate(second, '/2fa/passkey/start', '/2fa/passkey/finish');
      });
    }
    var add = document.getElementById('passkey-add');
    if (add) {
      add.disabled = false;
      add.addEventListener('click', function () { register(add); });
    }
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', wire);
  } else {
    wire();
  }
}());
