/*
 * backoffice-identity session keeper: served at <prefix>/assets/session.js.
 *
 * Load it on any page of the host's back office (same origin):
 *   <script src="/backoffice/assets/session.js" defer></script>
 * It warns before the session's idle deadline ("Stay signed in"), tells when the absolute deadline is near,
 * and when the session has ended (or an API call answers 401) it signs the person in again in a dialog, so
 * the page (and unsaved work on it) is never reloaded. API calls made through BackOfficeSession.request()
 * send the XSRF header and are retried after a re-authentication ("reauthentication_required").
 * With passkeys on, that dialog offers "Sign in with a passkey" too (webauthn.js is loaded from the module's
 * assets when it is used).
 * Elements with a data-backoffice-sign-out attribute sign out when clicked.
 * data-monitor="off" on the script tag turns the idle monitor off (the sign-in pages do this).
 */
(function () {
  'use strict';
  if (window.BackOfficeSession) return;
  var CONFIG = /*__BACKOFFICE_SESSION_CONFIG__*/ { base: '/backoffice', idleWarningSeconds: 120, messages: {} };
  var BASE = CONFIG.base;
  var M = CONFIG.messages;
  var script = document.currentScript;
  var doc = document;

  function t(key, vars) {
    var text = Object.prototype.hasOwnProperty.call(M, key) ? M[key] : key;
    if (!vars) return text;
    return text.replace(/\{(\w+)\}/g, function (match, name) {
      return Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : match;
    });
  }

  /** "4 min", "35 s", "2 h" (rounded up, so "0 s" is never shown while time is left). */
  function duration(seconds) {
    var s = Math.max(1, Math.ceil(seconds));
    if (s < 120) return t('seconds', { n: s });
    if (s < 2 * 3600) return t('minutes', { n: Math.ceil(s / 60) });
    return t('hours', { n: Math.ceil(s / 3600) });
  }

  /**
   * The cookie's value as the browser holds it (not decoded), or null when there is none: what tells whether a
   * cookie is there or has changed, even one badly percent-encoded (a cookie tossed from a sibling subdomain).
   */
  function rawCookie(name) {
    var parts = doc.cookie ? doc.cookie.split('; ') : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf('=');
      if (eq >= 0 && parts[i].slice(0, eq) === name) return parts[i].slice(eq + 1);
    }
    return null;
  }

  /** The cookie's value, percent-decoded; null when there is none or it is badly encoded. */
  function readCookie(name) {
    var raw = rawCookie(name);
    if (raw === null) return null;
    try {
      return decodeURIComponent(raw);
    } catch (e) {
      return null;
    }
  }

  function el(tag, attrs, children) {
    var node = doc.createElement(tag);
    if (attrs) {
      for (var key in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, key) || attrs[key] === null || attrs[key] === undefined) continue;
        if (key === 'text') node.textContent = attrs[key];
        else if (key === 'className') node.className = attrs[key];
        else node.setAttribute(key, attrs[key]);
      }
    }
    (children || []).forEach(function (child) {
      if (child) node.appendChild(typeof child === 'string' ? doc.createTextNode(child) : child);
    });
    return node;
  }

  /** The text to show for an API error answer. */
  function errorText(res) {
    var body = res.body || {};
    var code = body.code;
    var retry = typeof body.retryAfterSeconds === 'number' ? body.retryAfterSeconds : Number(res.retryAfter || 0);
    if (res.status === 0) return t('networkError');
    if (code === 'locked_out') return retry > 0 ? t('lockedOut', { time: duration(retry) }) : t('lockedOutUntilUnlocked');
    if (res.status === 429) return t('tooManyRequests', { time: duration(retry || 60) });
    var key = (CONFIG.errorMessages || {})[code];
    if (key) return t(key);
    if (code === 'invalid_password' || code === 'validation_failed') return t('passwordRejected');
    if (typeof body.message === 'string' && res.status < 500) return body.message;
    return t('unexpectedError');
  }

  /** Descriptions of the password rules a refused password broke. */
  function errorList(res) {
    var errors = (res.body && res.body.errors) || [];
    return errors
      .map(function (e) {
        return e && typeof e.description === 'string' ? e.description : null;
      })
      .filter(Boolean);
  }

  var pendingSignIn = null;
  var pendingReauth = null;
  var knownUser = null;

  /**
   * Calls the JSON API below the route prefix: `request('POST', '/auth/change-password', body)`.
   * Resolves { status, body, retryAfter, link } (`retryAfter` and `link`: the Retry-After and Link headers, or null;
   * status 0 when the network failed); never rejects. A 401 first asks the
   * person to re-authenticate (password, or a full sign-in when the session has ended) and retries once.
   * A step-up (here or in another tab) gives the session new cookies: a call that left with the old ones is
   * answered 401 `unauthenticated` (old session cookie) or 403 `xsrf_failed` (old XSRF token) though the session
   * goes on. Such a call is sent again once with the cookies the browser holds now: at once for `xsrf_failed` when
   * the XSRF cookie changed meanwhile, and for a 401 when a peek says the session is live (signInAgain).
   */
  function request(method, path, body, options) {
    options = options || {};
    var headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    var xsrf = readCookie('XSRF-TOKEN');
    if (xsrf && method !== 'GET') headers['X-XSRF-TOKEN'] = xsrf;
    if (options.peek) headers['X-Backoffice-Session-Peek'] = '1';
    var url = path.charAt(0) === '/' && path.indexOf(BASE + '/') !== 0 ? BASE + path : path;
    return fetch(url, {
      method: method,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    })
      .then(function (response) {
        return response.text().then(function (text) {
          var parsed = null;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch (e) {
            parsed = null;
          }
          return { status: response.status, body: parsed, retryAfter: response.headers.get('Retry-After'), link: response.headers.get('Link') };
        });
      })
      .catch(function () {
        return { status: 0, body: null };
      })
      .then(function (res) {
        var code = res.body && res.body.code;
        // Refused before anything was done: the XSRF token it carried was renewed meanwhile (a step-up).
        if (res.status === 403 && code === 'xsrf_failed' && !options.resent && readCookie('XSRF-TOKEN') !== xsrf) {
          return request(method, path, body, { peek: options.peek, retry: options.retry, resent: true });
        }
        if (res.status !== 401 || options.retry === false) return res;
        var again = function (ok) {
          return ok ? request(method, path, body, { peek: options.peek, retry: false, resent: true }) : res;
        };
        if (code === 'reauthentication_required') return reauthenticate().then(again);
        if (code === 'unauthenticated' && knownUser) return signInAgain().then(again);
        return res;
      });
  }

  // ---- dialogs ----------------------------------------------------------------------------------------

  var stylesheetAdded = false;
  function ensureStylesheet() {
    if (stylesheetAdded) return;
    stylesheetAdded = true;
    var href = BASE + '/assets/session.css';
    if (doc.querySelector('link[href^="' + href + '"]')) return;
    doc.head.appendChild(el('link', { rel: 'stylesheet', href: href }));
  }

  var dialogCount = 0;
  /**
   * A modal dialog: heading, text, a form of fields and buttons, and a live error region.
   * fields: [{ name, label, type, autocomplete, value }]; onSubmit(values, dialogApi) runs on submit;
   * extras: [{ label, onClick(dialogApi) }] add other ways to answer (buttons beside submit); the dialog is busy
   * until the promise onClick returns settles. Without submitLabel there is no submit button (only the extras).
   */
  function openDialog(spec) {
    ensureStylesheet();
    var id = 'bo-dialog-' + ++dialogCount;
    var error = el('p', { className: 'bo-dialog-error', role: 'alert', 'aria-live': 'assertive', id: id + '-error' });
    var inputs = {};
    var fields = (spec.fields || []).map(function (field) {
      var input = el('input', {
        id: id + '-' + field.name,
        name: field.name,
        type: field.type || 'text',
        autocomplete: field.autocomplete || 'off',
        required: 'required',
        inputmode: field.inputmode,
        'aria-describedby': id + '-error',
      });
      if (field.value) input.value = field.value;
      inputs[field.name] = input;
      return el('p', { className: 'bo-dialog-field' }, [el('label', { for: input.id, text: field.label }), input]);
    });
    var submit = spec.submitLabel ? el('button', { type: 'submit', className: 'bo-dialog-primary', text: spec.submitLabel }) : null;
    var cancel = spec.cancelLabel ? el('button', { type: 'button', className: 'bo-dialog-secondary', text: spec.cancelLabel }) : null;
    var extras = (spec.extras || []).map(function (extra) {
      return { spec: extra, button: el('button', { type: 'button', className: submit ? 'bo-dialog-secondary' : 'bo-dialog-primary', text: extra.label }) };
    });
    var buttons = extras.map(function (extra) {
      return extra.button;
    });
    var text = el('p', { id: id + '-text', text: spec.text });
    var form = el('form', { novalidate: 'novalidate' }, fields.concat([el('p', { className: 'bo-dialog-actions' }, [submit].concat(buttons, [cancel]))]));
    var dialog = el('dialog', { className: 'bo-dialog', role: spec.alert ? 'alertdialog' : 'dialog', 'aria-labelledby': id + '-title', 'aria-describedby': id + '-text' }, [
      el('h2', { id: id + '-title', text: spec.title }),
      text,
      error,
      form,
    ]);
    var api = {
      dialog: dialog,
      text: text,
      inputs: inputs,
      error: function (message) {
        error.textContent = message || '';
      },
      busy: function (on) {
        if (submit) submit.disabled = !!on;
        buttons.forEach(function (button) {
          button.disabled = !!on;
        });
        dialog.setAttribute('aria-busy', on ? 'true' : 'false');
      },
      close: function () {
        if (dialog.open) dialog.close();
        if (dialog.parentNode) dialog.parentNode.removeChild(dialog);
      },
    };
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var values = {};
      for (var name in inputs) {
        if (!inputs[name].value) {
          api.error(t('fieldRequired', { field: inputs[name].labels[0].textContent }));
          inputs[name].focus();
          return;
        }
        values[name] = inputs[name].value;
      }
      api.error('');
      spec.onSubmit(values, api);
    });
    var onCancel = function () {
      api.close();
      if (spec.onCancel) spec.onCancel();
    };
    if (cancel) cancel.addEventListener('click', onCancel);
    extras.forEach(function (extra) {
      extra.button.addEventListener('click', function () {
        api.error('');
        api.busy(true);
        Promise.resolve(extra.spec.onClick(api)).then(function () {
          api.busy(false);
          // The disabled button lost the focus: give it back while the dialog stays (an error was shown).
          if (dialog.open && !dialog.contains(doc.activeElement)) extra.button.focus();
        });
      });
    });
    dialog.addEventListener('cancel', function (event) {
      event.preventDefault();
      if (cancel) onCancel();
    });
    doc.body.appendChild(dialog);
    if (typeof dialog.showModal === 'function') dialog.showModal();
    else dialog.setAttribute('open', '');
    var first = fields.length ? inputs[spec.fields[0].value ? spec.fields[fields.length - 1].name : spec.fields[0].name] : submit || buttons[0] || cancel;
    first.focus();
    return api;
  }

  /**
   * Another way to confirm it's you in the step-up dialog, beside the password: { label, text, run() } where run()
   * resolves true when it worked, else the message to show (or null to say nothing). passkeys.js sets
   * "Use a passkey" on the account page.
   */
  var reauthAlternative = null;
  function setReauthenticationAlternative(alternative) {
    reauthAlternative = alternative || null;
  }

  /**
   * The external providers the signed-in user has linked ([{ provider, displayName }], as GET /auth/me's logins):
   * the step-up dialog offers "Continue with <provider>" for each (POST /auth/external/:name/reauthenticate, a
   * round trip through the provider that comes back to this page). By default the logins of the last
   * GET /auth/me; the account page sets them after a link or unlink.
   */
  var reauthProviders = null;
  function setReauthenticationProviders(logins) {
    reauthProviders = Array.isArray(logins) ? logins : null;
  }

  /** "Continue with <provider>": asks for the provider's step-up URL and goes there (back to this page after). */
  function providerStepUp(login) {
    var name = login.displayName || login.provider;
    return {
      label: t('reauthProviderButton', { provider: name }),
      onClick: function (dialog) {
        var path = window.location.pathname + window.location.search;
        return request('POST', '/auth/external/' + encodeURIComponent(login.provider) + '/reauthenticate', { returnUrl: path }, { retry: false }).then(function (res) {
          if (res.status === 200 && res.body && typeof res.body.redirectUrl === 'string') {
            dialog.text.textContent = t('redirectingToProvider', { provider: name });
            window.location.assign(res.body.redirectUrl);
            return new Promise(function () {}); // the page is leaving: stay busy
          }
          dialog.error(errorText(res));
        });
      },
    };
  }

  /**
   * Step-up: asks for the password (none with CONFIG.localLogin false, i.e. denyLocalLogin), or one of the
   * alternatives (a passkey, a linked provider); POSTs /auth/reauthenticate. Resolves true when it worked; a
   * provider step-up leaves the page and comes back to it.
   */
  function reauthenticate() {
    if (pendingReauth) return pendingReauth;
    pendingReauth = new Promise(function (resolve) {
      var alternative = CONFIG.localLogin === false ? null : reauthAlternative;
      var password = CONFIG.localLogin !== false;
      var extras = (reauthProviders || (knownUser && Array.isArray(knownUser.logins) && knownUser.logins) || []).map(providerStepUp);
      if (alternative) {
        extras.unshift({
          label: alternative.label,
          onClick: function (dialog) {
            return Promise.resolve(alternative.run()).then(function (result) {
              if (result === true) {
                dialog.close();
                resolve(true);
              } else if (result) dialog.error(result);
            });
          },
        });
      }
      openDialog({
        title: t('reauthTitle'),
        text: !password ? t('reauthTextProvider') : (alternative && alternative.text) || t('reauthText'),
        fields: password ? [{ name: 'password', label: t('passwordLabel'), type: 'password', autocomplete: 'current-password' }] : [],
        submitLabel: password ? t('confirmButton') : null,
        cancelLabel: t('cancelButton'),
        onCancel: function () {
          resolve(false);
        },
        extras: extras,
        onSubmit: function (values, dialog) {
          dialog.busy(true);
          request('POST', '/auth/reauthenticate', { password: values.password }, { retry: false }).then(function (res) {
            dialog.busy(false);
            if (res.status >= 200 && res.status < 300) {
              dialog.close();
              resolve(true);
            } else {
              dialog.error(res.body && res.body.code === 'invalid_credentials' ? t('wrongPassword') : errorText(res));
              dialog.inputs.password.select();
            }
          });
        },
      });
    }).then(function (ok) {
      pendingReauth = null;
      return ok;
    });
    return pendingReauth;
  }

  // ---- passkeys -----------------------------------------------------------------------------------------

  var webAuthnLoading = null;
  /**
   * @simplewebauthn/browser (global SimpleWebAuthnBrowser). The passkey pages load it; elsewhere (host pages) it is
   * loaded from the module's assets (CONFIG.webAuthnScript, set only with passkeys on) on first use. Resolves null
   * when it is not available.
   */
  function webAuthnBrowser() {
    if (window.SimpleWebAuthnBrowser) return Promise.resolve(window.SimpleWebAuthnBrowser);
    if (!CONFIG.webAuthnScript) return Promise.resolve(null);
    if (!webAuthnLoading) {
      webAuthnLoading = new Promise(function (resolve) {
        var tag = el('script', { src: CONFIG.webAuthnScript });
        tag.addEventListener('load', function () {
          resolve(window.SimpleWebAuthnBrowser || null);
        });
        tag.addEventListener('error', function () {
          if (tag.parentNode) tag.parentNode.removeChild(tag);
          webAuthnLoading = null; // try again at the next click
          resolve(null);
        });
        doc.head.appendChild(tag);
      });
    }
    return webAuthnLoading;
  }

  /** The message for a failed browser ceremony; null when it was aborted on purpose (AbortError: nothing to say). */
  function passkeyCeremonyError(error) {
    if (error && error.name === 'AbortError') return null;
    return t(error && error.name === 'NotAllowedError' ? 'passkeyCancelled' : 'passkeyUnsupported');
  }

  /**
   * A passkey assertion: POSTs `optionsPath`, runs the browser's startAuthentication(), POSTs the credential to
   * `verifyPath`. Resolves the API answer, or null when no assertion was posted (the message, if any, went to
   * `how.report`; an autofill request reports nothing). how: { report(message), autofill, asserted() }.
   */
  function passkeyAuthentication(optionsPath, verifyPath, how) {
    var fail = function (message) {
      if (message && !how.autofill && how.report) how.report(message);
      return null;
    };
    return webAuthnBrowser().then(function (W) {
      if (!W) return fail(t('passkeyUnsupported'));
      return request('POST', optionsPath, {}, { retry: false }).then(function (options) {
        if (options.status !== 200) return fail(errorText(options));
        return W.startAuthentication({ optionsJSON: options.body, useBrowserAutofill: !!how.autofill }).then(
          function (credential) {
            if (how.asserted) how.asserted();
            return request('POST', verifyPath, { credential: credential }, { retry: false });
          },
          function (error) {
            return fail(passkeyCeremonyError(error));
          },
        );
      });
    });
  }

  /**
   * The signed-in user (GET /auth/me, a peek) with the cookies the browser holds now, or null. A call answered 401
   * may have left with a session cookie that a step-up (in this tab or another) has renewed since: the session
   * goes on under the new one.
   */
  function liveSession() {
    return request('GET', '/auth/me', undefined, { peek: true, retry: false }).then(function (res) {
      return res.status === 200 && res.body ? res.body : null;
    });
  }

  /**
   * A call was answered 401: unless the session turns out to be live with the current cookies (then it resolves
   * true at once: the caller retries), the session has ended: sign in again in a dialog (password or passkey, then
   * a code when two-factor asks for one).
   */
  function signInAgain() {
    if (pendingSignIn) return pendingSignIn;
    var previousUserId = knownUser && knownUser.id;
    pendingSignIn = liveSession()
      .then(function (me) {
        if (me && (!previousUserId || me.id === previousUserId)) {
          schedule(me);
          return true;
        }
        if (me) {
          // Someone else signed in meanwhile (another tab): this page shows the previous person's data.
          window.location.reload();
          return new Promise(function () {});
        }
        return sessionEndedDialog(previousUserId);
      })
      .then(function (ok) {
        pendingSignIn = null;
        return ok;
      });
    return pendingSignIn;
  }

  /** The "Your session has ended" dialog; resolves true once signed in again. */
  function sessionEndedDialog(previousUserId) {
    hideWarning();
    return new Promise(function (resolve) {
      var finish = function (dialog, user) {
        dialog.close();
        if (previousUserId && user && user.id !== previousUserId) {
          // Someone else signed in: this page shows the previous person's data.
          window.location.reload();
          return;
        }
        resolve(true);
        check();
      };
      var askCode = function (dialog) {
        dialog.close();
        openDialog({
          title: t('twoFactorTitle'),
          text: t('twoFactorIntro'),
          alert: true,
          fields: [{ name: 'code', label: t('codeLabel'), autocomplete: 'one-time-code', inputmode: 'numeric' }],
          submitLabel: t('verifyButton'),
          onSubmit: function (values, codeDialog) {
            codeDialog.busy(true);
            var code = values.code.replace(/\s+/g, '');
            var provider = /^\d{6,8}$/.test(code) ? 'totp' : 'recovery';
            request('POST', '/auth/2fa', { provider: provider, code: code }, { retry: false }).then(function (res) {
              codeDialog.busy(false);
              if (res.status === 200) return finish(codeDialog, res.body.user);
              codeDialog.error(errorText(res));
            });
          },
        });
      };
      /** The answer of POST /auth/login or /auth/passkey/verify (null: the passkey ceremony said why already). */
      var signedIn = function (dialog, res) {
        if (!res) return;
        if (res.status === 200 && res.body.status === 'requiresTwoFactor') return askCode(dialog);
        if (res.status === 200 && res.body.status === 'requiresTwoFactorSetup') {
          // A group now requires two-factor: the new session reaches only the setup, which is on the account page.
          window.location.assign(BASE + '/account?status=requiresTwoFactorSetup');
          return;
        }
        if (res.status === 200) return finish(dialog, res.body.user);
        dialog.error(errorText(res));
      };
      var passkeys = CONFIG.webAuthnScript && window.PublicKeyCredential;
      openDialog({
        title: t('sessionEndedTitle'),
        text: t('sessionEndedText'),
        alert: true,
        fields: [
          { name: 'username', label: t(CONFIG.usernameIsEmail === false ? 'usernameLabel' : 'emailLabel'), type: CONFIG.usernameIsEmail === false ? 'text' : 'email', autocomplete: 'username', value: knownUser ? knownUser.username : '' },
          { name: 'password', label: t('passwordLabel'), type: 'password', autocomplete: 'current-password' },
        ],
        submitLabel: t('signInButton'),
        onSubmit: function (values, dialog) {
          dialog.busy(true);
          request('POST', '/auth/login', { username: values.username, password: values.password }, { retry: false }).then(function (res) {
            dialog.busy(false);
            signedIn(dialog, res);
          });
        },
        extras: passkeys
          ? [
              {
                label: t('signInWithPasskeyButton'),
                onClick: function (dialog) {
                  return passkeyAuthentication('/auth/passkey/options', '/auth/passkey/verify', { report: dialog.error }).then(function (res) {
                    signedIn(dialog, res);
                  });
                },
              },
            ]
          : [],
      });
    });
  }

  // ---- idle and absolute deadlines --------------------------------------------------------------------

  var timer = null;
  var countdown = null;
  var warning = null;
  var absoluteNoticeShown = false;
  var listeners = [];

  function clearTimers() {
    if (timer) clearTimeout(timer);
    if (countdown) clearInterval(countdown);
    timer = countdown = null;
  }

  function hideWarning() {
    if (warning) warning.close();
    warning = null;
    if (countdown) clearInterval(countdown);
    countdown = null;
  }

  function showIdleWarning(endsAt) {
    if (!warning) {
      warning = openDialog({
        title: t('idleWarningTitle'),
        text: '',
        alert: true,
        submitLabel: t('staySignedInButton'),
        onSubmit: function (values, dialog) {
          dialog.busy(true);
          request('GET', '/auth/me', undefined, { retry: false }).then(function (res) {
            dialog.busy(false);
            if (res.status === 200) {
              hideWarning();
              schedule(res.body);
            } else if (res.status === 401) sessionEnded();
            else dialog.error(errorText(res));
          });
        },
      });
    }
    var update = function () {
      var left = (endsAt - Date.now()) / 1000;
      if (left <= 0) {
        hideWarning();
        check();
        return;
      }
      warning.text.textContent = t('idleWarningText', { time: duration(left) });
    };
    update();
    if (countdown) clearInterval(countdown);
    countdown = setInterval(update, 1000);
  }

  function showAbsoluteNotice(endsAt) {
    if (absoluteNoticeShown) return;
    absoluteNoticeShown = true;
    openDialog({
      title: t('idleWarningTitle'),
      text: t('absoluteWarningText', { time: duration((endsAt - Date.now()) / 1000) }),
      alert: true,
      submitLabel: t('dismissButton'),
      onSubmit: function (values, dialog) {
        dialog.close();
      },
    });
  }

  function sessionEnded() {
    clearTimers();
    hideWarning();
    if (knownUser) signInAgain();
    else notify(null);
  }

  /** Plans the next check from GET /auth/me's deadlines (server times, corrected for clock skew). */
  function schedule(me) {
    knownUser = me;
    notify(me);
    clearTimers();
    var session = me.session;
    if (!session) return;
    var serverNow = Date.parse(session.now);
    var now = Date.now();
    var idleEnd = now + (Date.parse(session.idleExpiresAt) - serverNow);
    var absoluteEnd = now + (Date.parse(session.absoluteExpiresAt) - serverNow);
    var lead = CONFIG.idleWarningSeconds * 1000;
    var capped = absoluteEnd - idleEnd < 1000;
    if (idleEnd - now <= lead) {
      if (capped) showAbsoluteNotice(absoluteEnd);
      else showIdleWarning(idleEnd);
      timer = setTimeout(check, Math.max(1000, idleEnd - now + 500));
    } else {
      hideWarning();
      timer = setTimeout(check, idleEnd - now - lead);
    }
  }

  /** Asks the server how long the session has left, without extending it. */
  function check() {
    return request('GET', '/auth/me', undefined, { peek: true, retry: false }).then(function (res) {
      if (res.status === 200) schedule(res.body);
      else if (res.status === 401) sessionEnded();
      else {
        clearTimers();
        timer = setTimeout(check, 30000);
      }
      return res;
    });
  }

  function notify(me) {
    listeners.forEach(function (listener) {
      try {
        listener(me);
      } catch (e) {
        /* a listener's error is its own */
      }
    });
  }

  /**
   * Calls the logout route, then goes to signOutRedirectUrl when a listener set one, else the sign-in page (also on
   * 401: the session had ended already). Any other answer (a 5xx, no network) ended nothing: the page stays, an
   * alert dialog says the person is still signed in (never the sign-in page, as if signed out: OWASP ASVS 4.0
   * 3.3.1) and the session checks go on.
   */
  function signOut() {
    var monitoring = timer !== null || countdown !== null;
    clearTimers();
    return request('POST', '/auth/logout', undefined, { retry: false }).then(function (res) {
      if (res.status === 200 || res.status === 401) {
        var target = res.status === 200 && res.body && res.body.signOutRedirectUrl;
        window.location.assign(target || BASE);
        return res;
      }
      openDialog({
        title: t('signOutFailedTitle'),
        text: t('signOutFailedText'),
        alert: true,
        submitLabel: t('dismissButton'),
        onSubmit: function (values, dialog) {
          dialog.close();
        },
      });
      if (monitoring) check();
      return res;
    });
  }

  doc.addEventListener('click', function (event) {
    var target = event.target && event.target.closest ? event.target.closest('[data-backoffice-sign-out]') : null;
    if (!target) return;
    event.preventDefault();
    target.setAttribute('aria-busy', 'true');
    signOut().then(function () {
      target.removeAttribute('aria-busy');
    });
  });

  window.BackOfficeSession = {
    request: request,
    signOut: signOut,
    check: check,
    reauthenticate: reauthenticate,
    setReauthenticationAlternative: setReauthenticationAlternative,
    setReauthenticationProviders: setReauthenticationProviders,
    passkeyAuthentication: passkeyAuthentication,
    passkeyCeremonyError: passkeyCeremonyError,
    errorText: errorText,
    errorList: errorList,
    duration: duration,
    t: t,
    el: el,
    rawCookie: rawCookie,
    base: BASE,
    config: CONFIG,
    /** Called with the user (and session deadlines) after every check, or null when signed out. */
    onChange: function (listener) {
      listeners.push(listener);
    },
  };

  if (!script || script.getAttribute('data-monitor') !== 'off') check();
})();
