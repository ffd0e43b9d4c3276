import { Controller, Get, Header, Injectable } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { BackOfficeEvents, type BackOfficeIdentityModuleOptions, type UserLogoutSuccessNotification } from '../../../src/backoffice-identity/index.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';
import { createIdentityApp, type IdentityApp, type IdentityAppOptions } from '../../support/identity-app.js';
import { freePort, mailFolder } from './browser.js';

/** A host page of the app's own back office that loads the module's session keeper. */
@Controller()
class HostPagesController {
  @Get('host/editor')
  @Header('Content-Type', 'text/html; charset=utf-8')
  editor(): string {
    return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Host editor</title>
<script src="/backoffice/assets/session.js" defer></script></head>
<body><main><h1>Editing a document</h1><label for="doc">Document</label><textarea id="doc"></textarea>
<p><button type="button" data-backoffice-sign-out>Sign out</button></p></main></body></html>`;
  }

  @Get('host/signed-out')
  @Header('Content-Type', 'text/html; charset=utf-8')
  signedOut(): string {
    return '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signed out</title></head><body><main><h1>You left the host app</h1></main></body></html>';
  }
}

/** Sets `signOutRedirectUrl` on the logout notification, as Umbraco's listeners do, while `url` is set. */
@Injectable()
export class SignOutRedirectListener {
  static url: string | null = null;

  @OnEvent(BackOfficeEvents.LogoutSuccess)
  handle(notification: UserLogoutSuccessNotification): void {
    if (SignOutRedirectListener.url) notification.signOutRedirectUrl = SignOutRedirectListener.url;
  }
}

export interface BrowserApp extends IdentityApp {
  /** `http://localhost:<port>`: the browser's origin and the emails' `publicUrl`. */
  origin: string;
  mailDir: string;
  shutdown(): Promise<void>;
}

/**
 * The module in a Nest app on PostgreSQL (or PGlite), on localhost, with `.eml` pickup mail and host pages; on
 * `port` when given (e.g. one registered at a test OpenID provider beforehand).
 */
export async function startBrowserApp(
  identity: BackOfficeIdentityModuleOptions | ((origin: string) => BackOfficeIdentityModuleOptions) = {},
  port?: number,
  options: Pick<IdentityAppOptions, 'beforeListen'> = {},
): Promise<BrowserApp> {
  const db: TestDatabase = await createTestDatabase();
  const mail = await mailFolder();
  port ??= await freePort();
  const origin = `http://localhost:${port}`;
  const app = await createIdentityApp(db, {
    port,
    identity: { publicUrl: origin, email: { pickupDirectory: mail.dir }, ...(typeof identity === 'function' ? identity(origin) : identity) },
    controllers: [HostPagesController],
    providers: [SignOutRedirectListener],
    beforeListen: options.beforeListen,
  });
  return {
    ...app,
    origin,
    mailDir: mail.dir,
    async shutdown() {
      await app.close();
      await db.drop();
      await mail.remove();
    },
  };
}
