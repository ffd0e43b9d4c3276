/*
 * backoffice-identity sign-in screens: passkeys (<prefix>/assets/passkeys.js). Needs session.js,
 * pages.js and webauthn.js (@simplewebauthn/browser's UMD bundle, global SimpleWebAuthnBrowser), loaded before it.
 * Sign-in page: "Sign in with a passkey" and, where the browser supports it, passkeys in the username field's
 * autofill (conditional UI). Second-factor page: "Use a passkey". Account page: list, add (with a name),
 * rename and remove passkeys.
 */
(function () {
  'use strict';
  var S = window.BackOfficeSession;
  var P = window.BackOfficePages;
  var W = window.SimpleWebAuthnBrowser;
  if (!S || !P) return;
  var page = P.page;
  if (!page.passkeys) return;
  var t = S.t;
  var el = S.el;
  var showStatus = P.showStatus;
  var when = P.when;

  function $(id) {
    return document.getElementById(id);
  }

  function showError(message, field) {
    P.showError(message, null, field ? [field] : []);
  }

  function supported() {
    return !!(W && W.browserSupportsWebAuthn && W.browserSupportsWebAuthn());
  }

  /**
   * session.js's passkey assertion (options, browser ceremony, verify). Resolves the API answer, or null when no
   * assertion was posted (the message went to `how.report`, by default the page's alert; nothing is said for an
   * autofill request). how: { autofill, report, status, asserted (called once the browser gave an assertion, with status) }.
   */
  function authenticate(optionsPath, verifyPath, how) {
    return S.passkeyAuthentication(optionsPath, verifyPath, {
      autofill: how.autofill,
      report: how.report || showError,
      asserted: how.status
        ? function () {
            if (how.asserted) how.asserted();
            showStatus(how.status);
          }
        : null,
    });
  }

  function runButton(button, work) {
    button.addEventListener('click', function () {
      if (!supported()) {
        showError(t('passkeyUnsupported'));
        return;
      }
      button.disabled = true;
      button.setAttribute('aria-busy', 'true');
      showStatus(t('passkeyWaiting'));
      Promise.resolve(work()).then(function () {
        button.disabled = false;
        button.removeAttribute('aria-busy');
        P.refocus(button); // the focus was lost while the button was disabled (WCAG 2.4.3)
      });
    });
  }

  // ---- sign-in ----------------------------------------------------------------------------------------

  function signIn() {
    var button = $('bo-passkey-sign-in');
    if (!button) return;
    var finish = function (res) {
      if (!res || P.afterSignIn(res)) return;
      showError(S.errorText(res));
    };
    // A passkey sign-in is the person's own, as the password form's is (pages.js startedOwnMove): from the button's
    // click, or once an autofill passkey was picked (the autofill request itself waits from the page's load on).
    runButton(button, function () {
      P.startedOwnMove();
      return authenticate('/auth/passkey/options', '/auth/passkey/verify', { status: t('signingIn') }).then(finish);
    });
    // Conditional UI: passkeys offered in the username field's autofill, where the browser supports it.
    if (W && W.browserSupportsWebAuthnAutofill) {
      W.browserSupportsWebAuthnAutofill().then(function (yes) {
        if (yes) authenticate('/auth/passkey/options', '/auth/passkey/verify', { autofill: true, status: t('signingIn'), asserted: P.startedOwnMove }).then(finish);
      });
    }
  }

  // ---- second factor ----------------------------------------------------------------------------------

  function twoFactor() {
    var button = $('bo-passkey-2fa');
    if (!button) return;
    // The sign-in answer named the providers this account can answer with: offer the passkey only when it has
    // one (and not when a passkey was the first factor). Without that list (an older link), offer it.
    var providers = new URLSearchParams(window.location.search).get('providers');
    if (providers !== null && providers.split(',').indexOf('passkey') < 0) return;
    $('bo-passkey-2fa-box').hidden = false;
    runButton(button, function () {
      return authenticate('/auth/2fa/passkey/options', '/auth/2fa/passkey', { status: t('signingIn') }).then(function (res) {
        if (!res || P.afterSignIn(res)) return;
        showError(S.errorText(res));
        if (res.body && (res.body.code === 'two_factor_expired' || res.body.code === 'locked_out')) $('bo-back-link').focus();
      });
    });
  }

  // ---- account ----------------------------------------------------------------------------------------

  /** "Use a passkey" in the step-up dialog (POST /auth/reauthenticate/passkey), offered while the account has one. */
  var reauthAlternative = {
    label: t('usePasskeyButton'),
    text: t('reauthTextPasskey'),
    run: function () {
      var message = null;
      var report = function (text) {
        message = text;
      };
      return authenticate('/auth/reauthenticate/passkey/options', '/auth/reauthenticate/passkey', { report: report }).then(function (res) {
        if (!res) return message;
        return res.status === 200 ? true : S.errorText(res);
      });
    },
  };

  function renameForm(passkey, item, nameNode) {
    var inputId = 'bo-passkey-rename-' + passkey.id;
    var input = el('input', { id: inputId, type: 'text', name: 'name', autocomplete: 'off', required: 'required', maxlength: '64' });
    input.value = passkey.name;
    var save = el('button', { type: 'submit', text: t('saveButton') });
    var cancel = el('button', { type: 'button', className: 'bo-secondary', text: t('cancelButton') });
    var form = el('form', { className: 'bo-inline-form', novalidate: 'novalidate' }, [
      el('label', { for: inputId, text: t('newPasskeyNameLabel', { name: passkey.name }) }),
      input,
      save,
      cancel,
    ]);
    cancel.addEventListener('click', function () {
      item.removeChild(form);
      nameNode.parentNode.hidden = false;
    });
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      save.disabled = true;
      S.request('PATCH', '/auth/passkeys/' + encodeURIComponent(passkey.id), { name: input.value }).then(function (res) {
        save.disabled = false;
        if (res.status === 200) {
          showStatus(t('passkeyRenamed', { name: res.body.name }));
          renderPasskeys().then(function () {
            $('bo-passkeys-heading').focus();
          });
          return;
        }
        showError(S.errorText(res), input);
      });
    });
    return { form: form, input: input };
  }

  function renderPasskeys() {
    var list = $('bo-passkeys');
    return S.request('GET', '/auth/passkeys').then(function (res) {
      if (res.status !== 200 || !Array.isArray(res.body)) return;
      list.textContent = '';
      res.body.forEach(function (passkey) {
        var nameNode = el('strong', { text: passkey.name });
        var details = el('span', {
          id: 'bo-passkey-' + passkey.id,
          text: t('passkeyDetails', {
            created: when(passkey.createdAt),
            lastUsed: passkey.lastUsedAt ? t('passkeyLastUsed', { time: when(passkey.lastUsedAt) }) : t('passkeyNeverUsed'),
          }),
        });
        var rename = el('button', { type: 'button', className: 'bo-secondary', text: t('renamePasskeyButton'), 'aria-describedby': 'bo-passkey-name-' + passkey.id });
        var remove = el('button', { type: 'button', className: 'bo-danger', text: t('removePasskeyButton'), 'aria-describedby': 'bo-passkey-name-' + passkey.id });
        nameNode.id = 'bo-passkey-name-' + passkey.id;
        var row = el('div', { className: 'bo-passkey-row' }, [el('span', null, [nameNode, el('br'), details]), el('span', { className: 'bo-actions' }, [rename, remove])]);
        var item = el('li', { className: 'bo-passkey-item' }, [row]);
        rename.addEventListener('click', function () {
          var editor = renameForm(passkey, item, nameNode);
          row.hidden = true;
          item.appendChild(editor.form);
          editor.input.focus();
          editor.input.select();
        });
        P.deleteOnClick(remove, '/auth/passkeys/' + encodeURIComponent(passkey.id), t('passkeyRemoved', { name: passkey.name }), renderPasskeys, 'bo-passkeys-heading');
        list.appendChild(item);
      });
      $('bo-no-passkeys').hidden = res.body.length > 0;
      S.setReauthenticationAlternative(res.body.length > 0 && supported() ? reauthAlternative : null);
    });
  }

  function account() {
    var form = $('bo-passkey-add-form');
    if (!form) return;
    var nameInput = $('bo-passkey-name');
    renderPasskeys();
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      nameInput.removeAttribute('aria-invalid');
      var name = nameInput.value.trim();
      if (!name) {
        showError(t('fieldRequired', { field: t('passkeyNameLabel') }), nameInput);
        return;
      }
      if (!supported()) {
        showError(t('passkeyUnsupported'));
        return;
      }
      var button = form.querySelector('button');
      button.disabled = true;
      form.setAttribute('aria-busy', 'true');
      var done = function () {
        button.disabled = false;
        form.removeAttribute('aria-busy');
        P.keepFocus(form); // the focus was lost while the button was disabled (WCAG 2.4.3)
      };
      showStatus(t('passkeyWaiting'));
      S.request('POST', '/auth/passkeys/options', {})
        .then(function (options) {
          if (options.status !== 200) {
            showError(S.errorText(options));
            return;
          }
          return W.startRegistration({ optionsJSON: options.body }).then(
            function (credential) {
              return S.request('POST', '/auth/passkeys', { name: name, credential: credential }).then(function (res) {
                if (res.status === 201) {
                  form.reset();
                  showStatus(t('passkeyAdded', { name: res.body.name }));
                  return renderPasskeys();
                }
                showError(S.errorText(res), res.body && res.body.code === 'invalid_passkey_name' ? nameInput : null);
              });
            },
            function (error) {
              var message = error && error.name === 'InvalidStateError' ? t('passkeyAlreadyRegistered') : S.passkeyCeremonyError(error);
              if (message) showError(message);
            },
          );
        })
        .then(done, done);
    });
  }

  var pages = { 'sign-in': signIn, 'two-factor': twoFactor, account: account };
  if (pages[page.page]) pages[page.page]();
})();
