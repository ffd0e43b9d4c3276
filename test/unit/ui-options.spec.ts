import { BACKOFFICE_UI_MESSAGES, BackOfficeIdentityOptionsError, resolveBackOfficeIdentityOptions } from '../../src/backoffice-identity/index.js';

const resolveUi = (ui: unknown, extra: Record<string, unknown> = {}) => resolveBackOfficeIdentityOptions({ ui, ...extra } as never).ui;
const failure = (ui: unknown) => {
  try {
    resolveUi(ui);
  } catch (error) {
    expect(error).toBeInstanceOf(BackOfficeIdentityOptionsError);
    return (error as Error).message;
  }
  throw new Error('expected the options to be refused');
};

describe('ui options (sign-in screens)', () => {
  it('is on by default with the English catalogue, default branding and a 2-minute idle warning', () => {
    const ui = resolveUi(undefined);
    expect(ui.enabled).toBe(true);
    expect(ui.messages).toEqual(BACKOFFICE_UI_MESSAGES);
    expect(ui.branding).toEqual({ productName: 'Back office', accentColor: '#1b6ac9', logoUrl: undefined, backgroundImageUrl: undefined });
    expect(ui.idleWarningSeconds).toBe(120);
    expect(ui.defaultReturnUrl).toBeUndefined();
  });

  it('ui: false and { enabled: false } turn the pages off', () => {
    expect(resolveUi(false).enabled).toBe(false);
    expect(resolveUi({ enabled: false }).enabled).toBe(false);
  });

  it('overrides single messages and keeps the rest', () => {
    const ui = resolveUi({ messages: { signInButton: 'Anmelden', lang: 'de' } });
    expect(ui.messages.signInButton).toBe('Anmelden');
    expect(ui.messages.lang).toBe('de');
    expect(ui.messages.verifyButton).toBe('Verify');
  });

  it('keeps the idle warning below half the idle timeout', () => {
    expect(resolveUi(undefined, { session: { idleTimeoutMinutes: 1 } }).idleWarningSeconds).toBe(30);
    expect(() => resolveUi({ idleWarningSeconds: 31 }, { session: { idleTimeoutMinutes: 1 } })).toThrow(/"ui.idleWarningSeconds" must be an integer from 5 to 30/);
  });

  it('accepts https: and same-origin branding URLs and hex colours', () => {
    const ui = resolveUi({ branding: { productName: 'Acme CMS', logoUrl: '/static/logo.svg', backgroundImageUrl: 'https://cdn.example.com/bg.jpg?v=2', accentColor: '#36C' } });
    expect(ui.branding).toEqual({ productName: 'Acme CMS', logoUrl: '/static/logo.svg', backgroundImageUrl: 'https://cdn.example.com/bg.jpg?v=2', accentColor: '#36C' });
  });

  it.each([
    [{ branding: { accentColor: 'red; background: url(https://evil.example/x)' } }, 'ui.branding.accentColor'],
    [{ branding: { accentColor: '#12345' } }, 'ui.branding.accentColor'],
    [{ branding: { logoUrl: 'javascript:alert(1)' } }, 'ui.branding.logoUrl'],
    [{ branding: { logoUrl: 'http://insecure.example/logo.png' } }, 'ui.branding.logoUrl'],
    [{ branding: { logoUrl: '//evil.example/logo.png' } }, 'ui.branding.logoUrl'],
    [{ branding: { backgroundImageUrl: 'https://x.example/a.png") ; } body { display:none' } }, 'ui.branding.backgroundImageUrl'],
    [{ branding: { backgroundImageUrl: "/bg.png'" } }, 'ui.branding.backgroundImageUrl'],
    [{ branding: { productName: '<img src=x onerror=alert(1)>' } }, 'ui.branding.productName'],
    [{ branding: { productName: '' } }, 'ui.branding.productName'],
    [{ branding: { tagline: 'x' } }, 'ui.branding.tagline'],
    [{ messages: { signInButton: 42 } }, 'ui.messages.signInButton'],
    [{ messages: { noSuchKey: 'x' } }, 'ui.messages.noSuchKey'],
    [{ messages: { signInButton: 'x'.repeat(2001) } }, 'ui.messages.signInButton'],
    [{ defaultReturnUrl: 'https://evil.example/' }, 'ui.defaultReturnUrl'],
    [{ defaultReturnUrl: '//evil.example/' }, 'ui.defaultReturnUrl'],
    [{ enabled: 'yes' }, 'ui.enabled'],
    [{ colour: 'x' }, 'ui.colour'],
    ['on', 'ui'],
  ])('refuses %j naming %s', (ui, option) => {
    expect(failure(ui)).toContain(`option "${option}"`);
  });
});

describe('ui message catalogue: the sign-in answers the pages show', () => {
  it('OWASP ASVS 4.0 2.5.x: every 4xx code of POST /auth/login and POST /auth/passkey/verify has a message of the catalogue (translatable with ui.messages), not the API\'s English message', async () => {
    const { UI_ERROR_MESSAGES } = await import('../../src/backoffice-identity/ui/ui-messages.js');
    const signInCodes = ['invalid_credentials', 'not_allowed', 'local_login_disabled', 'invalid_passkey', 'user_verification_required', 'password_reset_required'];
    const missing = signInCodes.filter((code) => !Object.hasOwn(UI_ERROR_MESSAGES, code) || !Object.hasOwn(BACKOFFICE_UI_MESSAGES, UI_ERROR_MESSAGES[code]!));
    expect(missing, 'sign-in codes without a catalogue message').toEqual([]);
  });

  it("OWASP ASVS 5.0 3.5.x: the sign-in page's ?error=already_signed_in (an automatic provider challenge from a signed-in browser) has a message of its own, not the generic provider failure", async () => {
    const { UI_ERROR_MESSAGES } = await import('../../src/backoffice-identity/ui/ui-messages.js');
    expect(Object.hasOwn(UI_ERROR_MESSAGES, 'already_signed_in') && UI_ERROR_MESSAGES.already_signed_in).toBe('alreadySignedIn');
    expect(BACKOFFICE_UI_MESSAGES).toHaveProperty('alreadySignedIn');
    expect((BACKOFFICE_UI_MESSAGES as Record<string, string>).alreadySignedIn).not.toBe(BACKOFFICE_UI_MESSAGES.externalLoginFailed);
  });
});
