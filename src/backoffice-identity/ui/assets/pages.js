/*
 * backoffice-identity sign-in screens: the behaviour of the server-rendered pages (<prefix>/assets/pages.js).
 * Needs session.js (loaded before it). Every form posts JSON to the API with the XSRF header; errors are
 * announced through the page's aria-live regions.
 */
(function () {
  'use strict';
  var S = window.BackOfficeSession;
  var configNode = document.getElementById('bo-config');
  if (!S || !configNode) return;
  var page = JSON.parse(configNode.textContent || '{}');
  var t = S.t;
  var el = S.el;
  var alertBox = document.getElementById('bo-alert');
  var statusBox = document.getElementById('bo-status');
  /** The page's emailed link was refused by the API (reset / invite / email-change pages; see refuseLink). */
  var linkIsRefused = false;

  function $(id) {
    return document.getElementById(id);
  }

  /**
   * Adds the alert to (or removes it from) the field's aria-describedby, beside its hint: a field in error says
   * what is wrong with it when it gets the focus again (WCAG 3.3.1).
   */
  function describedByAlert(input, on) {
    var ids = (input.getAttribute('aria-describedby') || '').split(/\s+/).filter(function (id) {
      return id && id !== 'bo-alert';
    });
    if (on) ids.push('bo-alert');
    if (ids.length) input.setAttribute('aria-describedby', ids.join(' '));
    else input.removeAttribute('aria-describedby');
  }

  /** No field is in error any more (a new error names its own; a success names none). */
  function clearInvalid() {
    document.querySelectorAll('[aria-invalid="true"]').forEach(function (input) {
      input.removeAttribute('aria-invalid');
      describedByAlert(input, false);
    });
  }

  /** Announces an error (and optional details) in the alert region; marks `fields` invalid. */
  function showError(message, details, fields) {
    statusBox.textContent = '';
    alertBox.textContent = '';
    alertBox.appendChild(el('span', { text: message }));
    if (details && details.length) {
      alertBox.appendChild(el('ul', null, details.map(function (d) {
        return el('li', { text: d });
      })));
    }
    clearInvalid();
    (fields || []).forEach(function (input) {
      input.setAttribute('aria-invalid', 'true');
      describedByAlert(input, true);
    });
    if (fields && fields[0]) fields[0].focus();
  }

  function showStatus(message) {
    alertBox.textContent = '';
    clearInvalid();
    statusBox.textContent = message;
  }

  function clearMessages() {
    alertBox.textContent = '';
  }

  /** The keyboard focus was dropped to <body> (its control was disabled, hidden or removed). */
  function focusLost() {
    var active = document.activeElement;
    return !active || active === document.body || !document.contains(active);
  }

  /** Gives the focus back to `control` (a button that was disabled while it worked) when it was lost. */
  function refocus(control) {
    if (focusLost() && control && control.offsetParent !== null) control.focus();
  }

  /**
   * A disabled (or hidden) control drops the keyboard focus to <body>, so the next Tab starts at the top of the
   * page (WCAG 2.4.3). When that happened during a submit, the focus goes back to the form's submit button, or,
   * when the form was hidden, to the alert that says why (a refused link), else to the heading of the form's
   * section (tabindex=-1; e.g. two-factor turned on on the account page).
   */
  function keepFocus(form) {
    if (!focusLost()) return;
    var button = form.querySelector('button[type="submit"]');
    if (button && !form.hidden && button.offsetParent !== null) {
      button.focus();
      return;
    }
    if (alertBox.textContent) {
      alertBox.setAttribute('tabindex', '-1');
      alertBox.focus();
      return;
    }
    var section = form.closest('section');
    var heading = section && section.querySelector('h2, h3');
    if (heading && heading.offsetParent !== null) {
      if (!heading.hasAttribute('tabindex')) heading.setAttribute('tabindex', '-1');
      heading.focus();
    }
  }

  /**
   * Goes to `url` and resolves LEAVING: a form whose submit resolves it stays busy (buttons disabled) while the
   * next page loads, so a second click or Enter sends nothing more (a second sign-in, a used code).
   */
  var LEAVING = {};
  /**
   * The page has started a sign-in or a navigation of its own (the password form, a passkey, a provider's button,
   * leave()): the sign-in page's load-time check goes nowhere (see signIn). startedOwnMove() notes it.
   */
  var ownMove = false;
  function startedOwnMove() {
    ownMove = true;
  }
  function leave(url) {
    startedOwnMove();
    window.location.assign(url);
    return LEAVING;
  }

  // Back to a page kept in the back/forward cache: its forms are no longer busy.
  window.addEventListener('pageshow', function (event) {
    if (!event.persisted) return;
    document.querySelectorAll('form[aria-busy="true"]').forEach(function (form) {
      form.removeAttribute('aria-busy');
      form.querySelectorAll('button').forEach(function (b) {
        b.disabled = false;
      });
    });
  });

  /**
   * Wires a form: checks required fields, runs `submit(values)` (a promise) with the buttons disabled until it
   * settles, or for good when it resolves LEAVING (see leave()).
   */
  function handleForm(form, submit) {
    if (!form) return;
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var values = {};
      var missing = null;
      Array.prototype.forEach.call(form.elements, function (input) {
        if (!input.name || input.type === 'submit' || input.type === 'button') return;
        if (input.type === 'radio') {
          if (input.checked) values[input.name] = input.value;
          return;
        }
        if (input.type === 'checkbox') return;
        values[input.name] = input.value;
        if (!missing && input.required && !input.value.trim()) missing = input;
      });
      if (missing) {
        showError(t('fieldRequired', { field: missing.labels[0].textContent }), null, [missing]);
        return;
      }
      var buttons = form.querySelectorAll('button');
      buttons.forEach(function (b) {
        b.disabled = true;
      });
      form.setAttribute('aria-busy', 'true');
      clearMessages();
      Promise.resolve(submit(values, form)).then(function (result) {
        if (result === LEAVING) return;
        buttons.forEach(function (b) {
          b.disabled = false;
        });
        form.removeAttribute('aria-busy');
        keepFocus(form);
      });
    });
  }

  /** `/...`, but not `//host` or `/\host`. */
  function isRootedPath(url) {
    return url.charAt(0) === '/' && url.charAt(1) !== '/' && url.charAt(1) !== '\\';
  }

  /**
   * `url` as the same-origin path this browser lands on (as its URL parser writes it), or null: the server's rule
   * (common/same-origin-path.ts, toSameOriginPath), decided on the parsed string. No backslash, whitespace or
   * control characters (the parser drops tabs and newlines: "/\t/host" is "//host"), at most `page.maxPathLength`
   * characters (the server's MAX_SAME_ORIGIN_PATH_LENGTH) as given and as written (percent-encoded), and no "//" once
   * dot segments are resolved ("/.//host").
   */
  function sameOriginPath(url) {
    if (typeof url !== 'string' || url.length > page.maxPathLength || !isRootedPath(url) || /[\\\u0000-\u0020\u007f-\u009f\u2028\u2029]/.test(url)) return null;
    var parsed;
    try {
      parsed = new URL(url, window.location.href);
    } catch (e) {
      return null;
    }
    if (parsed.origin !== window.location.origin) return null;
    var path = parsed.pathname + parsed.search + parsed.hash;
    return isRootedPath(path) && path.length <= page.maxPathLength ? path : null;
  }

  /** A same-origin path to go to after sign-in. */
  function returnUrl() {
    return sameOriginPath(page.returnUrl) || page.defaultReturnUrl;
  }

  /** "Show password" checkboxes: data-toggles names the input. */
  document.querySelectorAll('input[data-toggles]').forEach(function (box) {
    box.addEventListener('change', function () {
      var target = $(box.getAttribute('data-toggles'));
      if (target) target.type = box.checked ? 'text' : 'password';
    });
  });

  /** Fields that the API rejected: the password ones for invalid_password, else the given fallback. */
  function failedFields(res, passwordInput, fallback) {
    var code = res.body && res.body.code;
    if ((code === 'invalid_password' || code === 'validation_failed') && passwordInput) return [passwordInput];
    return fallback;
  }

  // ---- sign-in ----------------------------------------------------------------------------------------

  function providerUrl(provider) {
    return S.base + '/auth/external/' + encodeURIComponent(provider.name) + '/challenge?returnUrl=' + encodeURIComponent(returnUrl());
  }

  /**
   * Lists the configured providers in `box` (shown once there is one), each item made by `item(provider, name)`;
   * resolves to the providers.
   */
  function listProviders(box, item) {
    return S.request('GET', '/auth/external/providers', undefined, { retry: false }).then(function (res) {
      var providers = res.status === 200 && Array.isArray(res.body) ? res.body : [];
      var list = box.querySelector('ul');
      providers.forEach(function (provider) {
        list.appendChild(el('li', null, [item(provider, provider.displayName || provider.name)]));
      });
      if (providers.length > 0 && !linkIsRefused) box.hidden = false;
      return providers;
    });
  }

  /**
   * Lists the provider buttons. A provider with `autoRedirect` is gone to at once only when `signedOut` (a promise)
   * resolves true: the browser holds no live session. A signed-in browser sent here (a cross-site link to the
   * sign-in page) must not reach the provider's challenge, which would record its session as the one to replace and
   * let a silent provider sign-in swap it for another (login CSRF, OWASP ASVS 5.0 3.5); it goes to returnUrl instead.
   */
  function loadProviders(signedOut) {
    var box = $('bo-providers');
    if (!box) return;
    var listed = listProviders(box, function (provider, name) {
      var button = el('a', { className: 'bo-button bo-secondary', href: providerUrl(provider), text: t('providerButton', { provider: name }) });
      button.addEventListener('click', startedOwnMove); // the person's choice: no autoRedirect goes elsewhere instead
      return button;
    });
    Promise.all([listed, signedOut]).then(function (answers) {
      var auto = answers[0].filter(function (p) {
        return p.autoRedirect;
      })[0];
      if (auto && !page.error && answers[1] === true && !ownMove) {
        showStatus(t('redirectingToProvider', { provider: auto.displayName || auto.name }));
        window.location.assign(providerUrl(auto) + '&auto=1'); // marked: a live session goes back here with ?error=already_signed_in
      }
    });
  }

  /**
   * Follows a sign-in answer (password or passkey): to the second-factor page or to returnUrl. False when the
   * answer was not a sign-in. With passkeys on, the second-factor URL names the providers the account can answer
   * with (as an external sign-in's redirect does), so that page offers "Use a passkey" only to accounts with one.
   */
  function afterSignIn(res) {
    if (res.status !== 200 || !res.body) return false;
    if (res.body.status === 'requiresTwoFactor') {
      var query = new URLSearchParams();
      if (page.returnUrl) query.set('returnUrl', page.returnUrl);
      if (page.passkeys && Array.isArray(res.body.providers)) query.set('providers', res.body.providers.join(','));
      var search = query.toString();
      return leave(S.base + '/two-factor' + (search ? '?' + search : ''));
    }
    // A setup-only session (a group requires two-factor): the setup is on the account page.
    if (res.body.status === 'requiresTwoFactorSetup') return leave(S.base + '/account?status=requiresTwoFactorSetup');
    return leave(returnUrl());
  }

  function signIn() {
    // Already signed in: straight on. Only asked when the browser holds a session's XSRF cookie (set and cleared
    // with the session cookie): a first visit makes no request that answers 401 (an error in the console).
    // Signed out: no such cookie, or GET /auth/me answered 401. Any other answer (200, or one that cannot tell:
    // no network, 5xx, 429) keeps an autoRedirect provider's redirect from starting (see loadProviders).
    // A 401 to a call that left with a session cookie a step-up (in another tab) renewed meanwhile says nothing of
    // the session, which goes on under the new cookie: when the XSRF cookie changed, the page asks again (once).
    // Once the person has started a sign-in on this page (or the page went elsewhere of its own) while the check was
    // out, its answer is not acted on: the cookies may be that sign-in's, whose own next step (the two-factor code,
    // its setup) must stand; a failed sign-in leaves the person on this page, with the provider buttons.
    // The cookie as the browser holds it: one badly percent-encoded (tossed) is there all the same.
    var xsrfCookie = function () {
      return S.rawCookie('XSRF-TOKEN');
    };
    var peek = function (again) {
      var sent = xsrfCookie();
      return S.request('GET', '/auth/me', undefined, { peek: true, retry: false }).then(function (res) {
        if (ownMove) return false;
        var now = xsrfCookie();
        if (res.status === 401 && again && now && now !== sent) return peek(false);
        if (res.status === 200) window.location.replace(returnUrl());
        return res.status === 401;
      });
    };
    var signedOut = xsrfCookie() ? peek(true) : Promise.resolve(true);
    loadProviders(signedOut);
    var username = $('bo-username');
    var password = $('bo-password');
    handleForm($('bo-sign-in-form'), function (values) {
      startedOwnMove();
      showStatus(t('signingIn'));
      return S.request('POST', '/auth/login', { username: values.username, password: values.password }, { retry: false }).then(function (res) {
        if (afterSignIn(res)) return LEAVING;
        statusBox.textContent = '';
        password.value = '';
        showError(S.errorText(res), null, res.body && res.body.code === 'invalid_credentials' ? [username, password] : [password]);
      });
    });
  }

  // ---- second factor ----------------------------------------------------------------------------------

  function twoFactor() {
    var code = $('bo-code');
    var hint = $('bo-code-hint');
    document.querySelectorAll('input[name="provider"]').forEach(function (radio) {
      radio.addEventListener('change', function () {
        var recovery = radio.value === 'recovery' && radio.checked;
        hint.textContent = t(recovery ? 'twoFactorRecoveryIntro' : 'twoFactorIntro');
        code.setAttribute('inputmode', recovery ? 'text' : 'numeric');
        code.setAttribute('autocomplete', recovery ? 'off' : 'one-time-code');
      });
    });
    handleForm($('bo-two-factor-form'), function (values) {
      var body = { provider: values.provider || 'totp', code: values.code.replace(/\s+/g, '') };
      return S.request('POST', '/auth/2fa', body, { retry: false }).then(function (res) {
        if (res.status === 200) return leave(returnUrl());
        code.value = '';
        var expired = res.body && (res.body.code === 'two_factor_expired' || res.body.code === 'locked_out');
        showError(S.errorText(res), null, [code]);
        if (expired) $('bo-back-link').focus();
      });
    });
  }

  // ---- forgot / reset / invite ------------------------------------------------------------------------

  function forgot() {
    handleForm($('bo-forgot-form'), function (values) {
      return S.request('POST', '/auth/forgot-password', { email: values.email.trim() }, { retry: false }).then(function (res) {
        if (res.status === 202 || res.status === 200) showStatus(t('resetLinkSent', { email: values.email.trim() }));
        else showError(S.errorText(res), null, [$('bo-email')]);
      });
    });
  }

  /**
   * Reads userId and token from the URL fragment (never sent to the server or in Referer), then drops
   * them from the address bar and history.
   */
  function readLinkFragment() {
    var params = new URLSearchParams(window.location.hash.replace(/^#/, ''));
    var link = { userId: params.get('userId'), token: params.get('token') };
    if (window.location.hash) history.replaceState(null, '', window.location.pathname + window.location.search);
    return link.userId && link.token ? link : null;
  }

  /**
   * The API refused the link itself: its token is wrong, used or expired (`invalid_token`), or the link's user id or
   * token is not even well-formed (`validation_failed` naming `userId` or `token`: a link mangled on its way, e.g.
   * the next line of the email glued to it). Either way the link is invalid; the person's input is not at fault.
   */
  function linkRefused(res) {
    var body = res.body || {};
    if (body.code === 'invalid_token') return true;
    return body.code === 'validation_failed' && Array.isArray(body.errors) && body.errors.some(function (e) {
      return e && (e.field === 'userId' || e.field === 'token');
    });
  }

  /**
   * The API refused the link (see {@link linkRefused}): the form is hidden (a new password would be refused too), the
   * alert says the link is dead, and the focus goes to what the person can do next: "Ask for a new link" where the
   * page has one (reset), else the alert itself (invite: only an administrator can send a new one). One path for the
   * answer on load (the verify call), the answer to a submit and the invite's "Continue with <provider>"; the
   * invite's provider buttons go too (and stay hidden when their list comes in later: {@link listProviders}).
   */
  function refuseLink(form, invalidKey) {
    linkIsRefused = true;
    if (form) form.hidden = true;
    var providers = $('bo-providers');
    if (providers) providers.hidden = true;
    showError(t(invalidKey));
    var again = $('bo-request-new-link');
    var next = again && again.querySelector('a');
    if (next) {
      again.hidden = false;
      next.focus();
      return;
    }
    alertBox.setAttribute('tabindex', '-1');
    alertBox.focus();
  }

  /**
   * Checks the link as the page loads (`verifyEndpoint` answers `{ username }` for a live token only). A live link:
   * its account goes in the form, as text for the person, and in the hidden `autocomplete="username"` field so a
   * password manager saves the new password for that account; the text joins the new password's description
   * (aria-describedby, before its hint), so a screen reader says which account with the field, when the person
   * gets there, rather than announcing a live region over the page as it loads or taking the focus. A refused link
   * ({@link linkRefused}: used, expired, tampered, mangled): {@link refuseLink} at once, before any password is
   * typed. Any other answer (network, 5xx, 429, an older server's 403 `local_login_disabled`) leaves the form as it
   * is: its submit says what is wrong. With `denyLocalLogin` the invite page has no form (`form` null): the same
   * check, the provider buttons hidden on a refusal, and on a live link the account line (above the buttons: the
   * account the provider login will join, which may differ from the provider's address), with no username field.
   * An answer that comes once a submit has started (`submitStarted()`: the person, or a password manager, was
   * quicker) is ignored: that submit may have used the token, so a late "refused" would flash the error and move the
   * focus while the page leaves; the submit's own answer says what happened.
   */
  function verifyLink(form, verifyEndpoint, link, invalidKey, submitStarted) {
    S.request('POST', verifyEndpoint, { userId: link.userId, token: link.token }, { retry: false }).then(function (res) {
      if (linkIsRefused || submitStarted()) return;
      if (linkRefused(res)) {
        refuseLink(form, invalidKey);
        return;
      }
      var username = res.status === 200 && res.body && typeof res.body.username === 'string' ? res.body.username : '';
      var field = $('bo-link-username');
      var text = $('bo-link-account');
      if (!username || !text) return;
      if (field) {
        // The default value too, so a form's reset() keeps it.
        field.setAttribute('value', username);
        field.value = username;
      }
      text.textContent = t('linkAccount', { username: username });
      text.hidden = false;
      var password = $('bo-new-password');
      if (password) {
        var ids = (password.getAttribute('aria-describedby') || '').split(/\s+/).filter(function (id) {
          return id && id !== text.id;
        });
        password.setAttribute('aria-describedby', [text.id].concat(ids).join(' '));
      }
    });
  }

  function tokenPage(formId, endpoint, verifyEndpoint, passwordField, onSuccess, invalidKey) {
    var form = $(formId);
    var password = $('bo-new-password');
    var link = readLinkFragment();
    if (!link) {
      if (form) form.hidden = true;
      showError(t('linkIncomplete'));
      return null;
    }
    // With denyLocalLogin the invite page has no form, only its provider buttons: the link is checked all the same.
    var submitted = false;
    verifyLink(form, verifyEndpoint, link, invalidKey, function () {
      return submitted;
    });
    handleForm(form, function (values) {
      submitted = true;
      var body = { userId: link.userId, token: link.token };
      body[passwordField] = values.newPassword;
      return S.request('POST', endpoint, body, { retry: false }).then(function (res) {
        if (res.status === 200) return onSuccess(res);
        if (linkRefused(res)) {
          refuseLink(form, invalidKey);
          return;
        }
        showError(S.errorText(res), S.errorList(res), failedFields(res, password, [password]));
      });
    });
    return link;
  }

  function reset() {
    tokenPage('bo-reset-form', '/auth/reset-password', '/auth/reset-password/verify', 'newPassword', function () {
      return leave(S.base + '?notice=password-reset');
    }, 'linkInvalid');
  }

  function invite() {
    var link = tokenPage('bo-invite-form', '/auth/invite/accept', '/auth/invite/verify', 'password', function (res) {
      // A group that requires two-factor: a setup-only session, as after a password sign-in.
      if (res.body && res.body.status === 'requiresTwoFactorSetup') return leave(S.base + '/account?status=requiresTwoFactorSetup');
      return leave(page.defaultReturnUrl);
    }, 'inviteLinkInvalid');
    if (link) inviteProviders(link);
  }

  /**
   * The email-change link: posts the fragment's user id and token, then the sign-in page (every session ended). A
   * refused link goes through {@link refuseLink} as on the reset page: the form hidden, the error shown and given the
   * focus (this page has no "Ask for a new link").
   */
  function confirmEmail() {
    var form = $('bo-confirm-email-form');
    var link = readLinkFragment();
    if (!link) {
      if (form) form.hidden = true;
      showError(t('linkIncomplete'));
      return;
    }
    handleForm(form, function () {
      return S.request('POST', '/auth/me/email/confirm', { userId: link.userId, token: link.token }, { retry: false }).then(function (res) {
        if (res.status === 200) return leave(S.base + '?notice=email-changed');
        if (linkRefused(res)) {
          refuseLink(form, 'linkInvalid');
          return;
        }
        showError(S.errorText(res));
      });
    });
  }

  /**
   * "Continue with <provider>" on the accept-invite page: posts the link's user id and token as JSON (never in a
   * URL) to the provider's challenge, then goes to the provider; the callback links the login to the invitee.
   */
  function inviteProviders(link) {
    var box = $('bo-providers');
    if (!box) return;
    listProviders(box, function (provider, name) {
      var button = el('button', { type: 'button', className: 'bo-secondary', text: t('inviteProviderButton', { provider: name }) });
      button.addEventListener('click', function () {
        button.disabled = true;
        showStatus(t('redirectingToProvider', { provider: name }));
        var body = { userId: link.userId, token: link.token, returnUrl: page.defaultReturnUrl };
        S.request('POST', '/auth/external/' + encodeURIComponent(provider.name) + '/challenge', body, { retry: false }).then(function (r) {
          if (r.status === 200 && r.body && typeof r.body.redirectUrl === 'string') {
            window.location.assign(r.body.redirectUrl);
            return;
          }
          button.disabled = false;
          if (linkRefused(r)) {
            refuseLink($('bo-invite-form'), 'inviteLinkInvalid');
            return;
          }
          showError(S.errorText(r));
        });
      });
      return button;
    });
  }

  // ---- account ----------------------------------------------------------------------------------------

  function when(iso) {
    var date = new Date(iso);
    return isNaN(date.getTime()) ? iso : date.toLocaleString(document.documentElement.lang || undefined);
  }

  /** A short device name from a User-Agent string. */
  function device(userAgent) {
    if (!userAgent) return t('unknownDevice');
    var browser = /Edg\//.test(userAgent) ? 'Edge' : /Firefox\//.test(userAgent) ? 'Firefox' : /Chrom(e|ium)\//.test(userAgent) ? 'Chrome' : /Safari\//.test(userAgent) ? 'Safari' : null;
    var os = /Windows/.test(userAgent) ? 'Windows' : /Mac OS X/.test(userAgent) ? 'macOS' : /Android/.test(userAgent) ? 'Android' : /iPhone|iPad/.test(userAgent) ? 'iOS' : /Linux/.test(userAgent) ? 'Linux' : null;
    return browser && os ? browser + ' on ' + os : userAgent.slice(0, 60);
  }

  /**
   * A list item's remove button: DELETE `path` (404: gone already), announce `message`, render the list again
   * with `rerender()` and move focus to its heading; an error is announced and the button comes back.
   */
  function deleteOnClick(button, path, message, rerender, headingId) {
    button.addEventListener('click', function () {
      button.disabled = true;
      S.request('DELETE', path).then(function (r) {
        if (r.status === 204 || r.status === 404) {
          showStatus(message);
          rerender().then(function () {
            $(headingId).focus();
          });
        } else {
          button.disabled = false;
          showError(S.errorText(r));
          refocus(button);
        }
      });
    });
  }

  /** The most sessions the account page lists (the largest page `GET /auth/sessions` answers). */
  var SESSIONS_LISTED = 200;

  /**
   * The user's most recently active sessions (one page of `GET /auth/sessions`); when more follow (a `rel="next"` Link),
   * a note under the list says so: "Sign out all other sessions" ends those too.
   */
  function renderSessions() {
    var list = $('bo-sessions');
    return S.request('GET', '/auth/sessions?take=' + SESSIONS_LISTED).then(function (res) {
      if (res.status !== 200 || !Array.isArray(res.body)) return;
      var more = /;\s*rel="?next"?/i.test(res.link || '');
      var others = 0;
      list.textContent = '';
      res.body.forEach(function (session) {
        if (!session.current) others++;
        var details = el('span', {
          id: 'bo-session-' + session.id,
          text: t('sessionDetails', { device: device(session.userAgent), ip: session.ip || t('unknownIp'), lastSeen: when(session.lastSeenAt), created: when(session.createdAt) }),
        });
        var item = el('li', { className: 'bo-session' }, [details]);
        if (session.current) {
          item.insertBefore(el('strong', { className: 'bo-badge', text: t('thisSession') }), details);
        } else {
          var button = el('button', { type: 'button', className: 'bo-secondary', text: t('signOutSessionButton'), 'aria-describedby': details.id });
          deleteOnClick(button, '/auth/sessions/' + encodeURIComponent(session.id), t('sessionSignedOut'), renderSessions, 'bo-sessions-heading');
          item.appendChild(button);
        }
        list.appendChild(item);
      });
      var note = $('bo-sessions-more');
      note.textContent = more ? t('sessionsNotAllListed', { count: res.body.length }) : '';
      note.hidden = !more;
      $('bo-no-other-sessions').hidden = others > 0 || more;
      $('bo-sign-out-others').hidden = others === 0 && !more;
    });
  }

  function renderLogins(me) {
    var section = $('bo-logins-section');
    if (!Array.isArray(me.logins)) return;
    S.request('GET', '/auth/external/providers', undefined, { retry: false }).then(function (res) {
      var providers = res.status === 200 && Array.isArray(res.body) ? res.body : [];
      if (me.logins.length === 0 && providers.length === 0) {
        section.hidden = true; // no provider configured: nothing to show
        return;
      }
      var list = $('bo-logins');
      list.textContent = '';
      $('bo-no-logins').hidden = me.logins.length > 0;
      me.logins.forEach(function (login) {
        var name = login.displayName || login.provider;
        var button = el('button', { type: 'button', className: 'bo-secondary', text: t('unlinkButton', { provider: name }) });
        button.addEventListener('click', function () {
          button.disabled = true;
          S.request('DELETE', '/auth/external/logins/' + encodeURIComponent(login.provider)).then(function (r) {
            if (r.status === 204 || r.status === 200) {
              showStatus(t('loginUnlinked', { provider: name }));
              refreshMe().then(function () {
                if (!section.hidden) $('bo-logins-heading').focus();
              });
            } else {
              button.disabled = false;
              showError(S.errorText(r));
              refocus(button);
            }
          });
        });
        list.appendChild(el('li', null, [el('span', { text: name }), button]));
      });
      var linked = me.logins.map(function (l) {
        return l.provider;
      });
      providers
        .filter(function (p) {
          return linked.indexOf(p.name) < 0;
        })
        .forEach(function (provider) {
          var name = provider.displayName || provider.name;
          var button = el('button', { type: 'button', className: 'bo-secondary', text: t('linkButton', { provider: name }) });
          button.addEventListener('click', function () {
            button.disabled = true;
            S.request('POST', '/auth/external/' + encodeURIComponent(provider.name) + '/link', {}).then(function (r) {
              if (r.status === 200 && r.body && typeof r.body.redirectUrl === 'string') window.location.assign(r.body.redirectUrl);
              else {
                button.disabled = false;
                showError(S.errorText(r));
                refocus(button);
              }
            });
          });
          list.appendChild(el('li', null, [button]));
        });
      section.hidden = false;
    });
  }

  function renderTwoFactor(me) {
    var on = !!me.twoFactorEnabled;
    $('bo-2fa-state').textContent = t(page.twoFactorAvailable ? (on ? 'twoFactorOn' : 'twoFactorOff') : 'twoFactorUnavailable');
    // With 2FA on through a passkey only (GET /auth/me's twoFactorProviders lacks totp), TOTP can still be added.
    var totpMissing = on && Array.isArray(me.twoFactorProviders) && me.twoFactorProviders.indexOf('totp') < 0;
    $('bo-2fa-start').hidden = (on && !totpMissing) || !page.twoFactorAvailable;
    $('bo-2fa-disable-form').hidden = !on;
    // How many recovery codes are left (GET /auth/me: null while 2FA is off or without a recovery-code store).
    var left = on && typeof me.recoveryCodesLeft === 'number' ? me.recoveryCodesLeft : null;
    $('bo-recovery-state').hidden = left === null;
    if (left === null) return;
    $('bo-recovery-left').textContent = left === 1 ? t('recoveryCodesLeftOne') : t('recoveryCodesLeft', { count: left });
    $('bo-recovery-low').hidden = left > 3;
  }

  var current = null;
  /**
   * Reads the signed-in user and fills the page; resolves true when it did. Signed out (401): the sign-in page.
   * Any other failure (a 5xx, no network) is announced: the person is still signed in, the sign-in page would
   * say otherwise.
   */
  function refreshMe() {
    return S.request('GET', '/auth/me', undefined, { peek: true }).then(function (res) {
      if (res.status === 401) {
        window.location.replace(S.base + '?returnUrl=' + encodeURIComponent(window.location.pathname));
        return false;
      }
      if (res.status !== 200 || !res.body) {
        showError(S.errorText(res));
        return false;
      }
      current = res.body;
      $('bo-signed-in-as').textContent = t('signedInAs', { name: current.name, email: current.email });
      // The default value, so a form's reset() after a change keeps it.
      document.querySelectorAll('input.bo-account-username').forEach(function (input) {
        input.setAttribute('value', current.username || current.email);
      });
      renderTwoFactor(current);
      renderLogins(current);
      S.setReauthenticationProviders(current.logins);
      return true;
    });
  }

  function showRecoveryCodes(codes) {
    var box = $('bo-recovery');
    var list = $('bo-recovery-codes');
    list.textContent = '';
    codes.forEach(function (code) {
      list.appendChild(el('li', null, [el('code', { text: code })]));
    });
    var text = codes.join('\n') + '\n';
    $('bo-copy-codes').onclick = function () {
      var done = function () {
        showStatus(t('codesCopied'));
      };
      if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).then(done, function () {
        showError(t('copyFailed'));
      });
      else showError(t('copyFailed'));
    };
    $('bo-download-codes').onclick = function () {
      var url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
      var a = el('a', { href: url, download: 'recovery-codes.txt' });
      document.body.appendChild(a);
      a.click();
      document.body.removeChild(a);
      setTimeout(function () {
        URL.revokeObjectURL(url);
      }, 1000);
    };
    $('bo-saved-codes').onclick = function () {
      list.textContent = '';
      box.hidden = true;
      $('bo-2fa-heading').focus();
    };
    box.hidden = false;
    $('bo-recovery-heading').focus();
  }

  function account() {
    refreshMe().then(function (ok) {
      if (!ok) return;
      $('bo-account-content').hidden = false;
      return renderSessions();
    });
    S.onChange(function (me) {
      if (me) current = me;
    });

    var currentPassword = $('bo-current-password');
    var newPassword = $('bo-new-password');
    handleForm($('bo-change-password-form'), function (values, form) {
      return S.request('POST', '/auth/change-password', { currentPassword: values.currentPassword, newPassword: values.newPassword }).then(function (res) {
        if (res.status === 200) {
          form.reset();
          showStatus(t('passwordChanged'));
          return renderSessions();
        }
        var wrongCurrent = res.body && res.body.code === 'invalid_credentials';
        showError(wrongCurrent ? t('wrongPassword') : S.errorText(res), S.errorList(res), wrongCurrent ? [currentPassword] : failedFields(res, newPassword, []));
      });
    });

    $('bo-sign-out-others').addEventListener('click', function () {
      var button = $('bo-sign-out-others');
      button.disabled = true;
      S.request('DELETE', '/auth/sessions').then(function (res) {
        button.disabled = false;
        if (res.status === 200 || res.status === 204) {
          showStatus(t('othersSignedOut'));
          renderSessions().then(function () {
            $('bo-sessions-heading').focus();
          });
        } else {
          showError(S.errorText(res));
          refocus(button);
        }
      });
    });

    $('bo-2fa-start').addEventListener('click', function () {
      var button = $('bo-2fa-start');
      button.disabled = true;
      S.request('POST', '/auth/2fa/setup', { provider: 'totp' }).then(function (res) {
        button.disabled = false;
        if (res.status !== 200) {
          showError(S.errorText(res));
          refocus(button);
          return;
        }
        $('bo-qr').src = res.body.qrCodeDataUrl;
        $('bo-secret').textContent = res.body.secret;
        button.hidden = true;
        $('bo-2fa-setup').hidden = false;
        $('bo-totp-code').focus();
      });
    });

    var totpCode = $('bo-totp-code');
    handleForm($('bo-2fa-enable-form'), function (values, form) {
      return S.request('POST', '/auth/2fa/enable', { provider: 'totp', code: values.code.replace(/\s+/g, '') }).then(function (res) {
        if (res.status === 200) {
          form.reset();
          $('bo-2fa-setup').hidden = true;
          $('bo-secret').textContent = '';
          $('bo-qr').removeAttribute('src');
          showStatus(t('twoFactorEnabled'));
          if (res.body.recoveryCodes && res.body.recoveryCodes.length) showRecoveryCodes(res.body.recoveryCodes); // none without a recovery-code store
          // Added beside a passkey, the user's recovery codes are kept (none answered): the count stays as it was.
          var fresh = res.body.recoveryCodes && res.body.recoveryCodes.length ? res.body.recoveryCodes.length : null;
          if (!current.twoFactorEnabled || fresh !== null) current.recoveryCodesLeft = fresh;
          current.twoFactorEnabled = true;
          current.twoFactorProviders = ['totp'].concat(current.twoFactorProviders || []);
          renderTwoFactor(current);
          return renderSessions();
        }
        totpCode.value = '';
        showError(S.errorText(res), null, [totpCode]);
      });
    });

    // New recovery codes: a step-up first (session.js asks for it on reauthentication_required), then shown as after enabling.
    $('bo-recovery-regenerate').addEventListener('click', function () {
      var button = $('bo-recovery-regenerate');
      button.disabled = true;
      S.request('POST', '/auth/2fa/recovery-codes', {}).then(function (res) {
        button.disabled = false;
        if (res.status !== 200 || !res.body || !Array.isArray(res.body.recoveryCodes)) {
          showError(S.errorText(res));
          refocus(button);
          return;
        }
        showStatus(t('recoveryCodesRegenerated'));
        current.recoveryCodesLeft = res.body.recoveryCodes.length;
        renderTwoFactor(current);
        showRecoveryCodes(res.body.recoveryCodes);
      });
    });

    var disablePassword = $('bo-2fa-password');
    handleForm($('bo-2fa-disable-form'), function (values, form) {
      // With denyLocalLogin the form has no password field: the recent (provider) sign-in is the proof.
      return S.request('POST', '/auth/2fa/disable', values.password === undefined ? {} : { password: values.password }).then(function (res) {
        if (res.status === 200) {
          form.reset();
          showStatus(t('twoFactorDisabled'));
          current.twoFactorEnabled = false;
          current.twoFactorProviders = null;
          current.recoveryCodesLeft = null;
          renderTwoFactor(current);
          refocus($('bo-2fa-start')); // the button that replaces the hidden form (keepFocus: else the heading)
          return renderSessions();
        }
        if (disablePassword) disablePassword.value = '';
        showError(res.body && res.body.code === 'invalid_credentials' ? t('wrongPassword') : S.errorText(res), null, disablePassword ? [disablePassword] : []);
      });
    });
  }

  /** For passkeys.js (loaded after this file on the same pages). */
  window.BackOfficePages = { page: page, returnUrl: returnUrl, afterSignIn: afterSignIn, startedOwnMove: startedOwnMove, showError: showError, showStatus: showStatus, when: when, deleteOnClick: deleteOnClick, keepFocus: keepFocus, refocus: refocus };

  var pages = { 'sign-in': signIn, 'two-factor': twoFactor, 'forgot-password': forgot, 'reset-password': reset, 'accept-invite': invite, 'confirm-email': confirmEmail, account: account };
  if (pages[page.page]) pages[page.page]();

  /**
   * A message that is in a live region when the page loads (a server-rendered `?error=` or `?notice=`, a refused
   * link) is not announced by most screen readers (WCAG 4.1.3, 3.3.1). Once the page has loaded, into a region
   * the screen reader already watches, the message is put in again (new nodes, same text, in one step: what is
   * seen does not change). An error also takes the focus (tabindex=-1), so it is read where the live region is
   * not, unless the person has already moved the focus.
   */
  function announceOnLoad(box, focus) {
    var text = box ? box.textContent : '';
    if (!text.trim()) return;
    function again() {
      setTimeout(function () {
        if (box.textContent !== text) return; // a newer message was announced
        var fresh = Array.prototype.map.call(box.childNodes, function (node) {
          return node.cloneNode(true);
        });
        box.textContent = '';
        fresh.forEach(function (node) {
          box.appendChild(node);
        });
        var active = document.activeElement;
        if (focus && (!active || active === document.body)) {
          box.setAttribute('tabindex', '-1');
          box.focus();
        }
      }, 250);
    }
    if (document.readyState === 'complete') again();
    else window.addEventListener('load', again);
  }
  announceOnLoad(alertBox, true);
  announceOnLoad(statusBox, false);
})();
