import { Global, Module } from '@nestjs/common';

/** The host app's settings, read from the environment once (a real app may use `@nestjs/config`). */
export class HostConfig {
  /** HTTP port; `0` picks a free one. Default 3000. */
  readonly port: number;
  /** `postgres://` URL of the app's database. */
  readonly databaseUrl: string;
  /** TypeORM pool size. Default 10 (use 1 for a single-session PGlite server). */
  readonly databasePoolSize: number;
  /** Base URL of the app, used in email links. */
  readonly publicUrl: string;
  /** Where the end-session endpoint of the organisation's identity provider is. */
  readonly endSessionUrl: string;
  /** Folder for `.eml` files of emails that no listener handled and no SMTP server takes. */
  readonly mailPickupDir: string;
  readonly smtpUrl: string | undefined;
  /** bcrypt cost of new password hashes. Default 12. */
  readonly bcryptCost: number;
  /** Encrypts TOTP secrets at rest; without it two-factor authentication is off. */
  readonly encryptionKey: string | undefined;
  /** Word that passwords of this organisation must not contain. */
  readonly companyName: string;
  /** The first admin, created at start-up when the database has no user yet. */
  readonly adminEmail: string | undefined;
  readonly adminPassword: string | undefined;

  constructor(env: NodeJS.ProcessEnv) {
    const required = (name: string): string => {
      const value = env[name]?.trim();
      if (!value) throw new Error(`host-app: environment variable ${name} is required`);
      return value;
    };
    const integer = (name: string, fallback: number): number => {
      const raw = env[name]?.trim();
      if (!raw) return fallback;
      if (!/^\d+$/.test(raw)) throw new Error(`host-app: ${name} must be a non-negative integer (got ${JSON.stringify(raw)})`);
      return Number(raw);
    };
    this.port = integer('PORT', 3000);
    this.databaseUrl = required('DATABASE_URL');
    this.databasePoolSize = integer('DATABASE_POOL_SIZE', 10);
    this.publicUrl = (env.PUBLIC_URL?.trim() || `http://localhost:${this.port || 3000}`).replace(/\/+$/, '');
    this.endSessionUrl = env.END_SESSION_URL?.trim() || 'https://login.example.com/oidc/logout';
    this.mailPickupDir = env.MAIL_PICKUP_DIR?.trim() || '.data/mail';
    this.smtpUrl = env.SMTP_URL?.trim() || undefined;
    this.bcryptCost = integer('BCRYPT_COST', 12);
    this.encryptionKey = env.BACKOFFICE_ENCRYPTION_KEY?.trim() || undefined;
    this.companyName = env.COMPANY_NAME?.trim() || 'acme';
    this.adminEmail = env.BACKOFFICE_ADMIN_EMAIL?.trim() || undefined;
    this.adminPassword = env.BACKOFFICE_ADMIN_PASSWORD || undefined;
  }
}

/** Makes {@link HostConfig} injectable everywhere, as `ConfigModule.forRoot({ isGlobal: true })` would. */
@Global()
@Module({
  providers: [{ provide: HostConfig, useFactory: () => new HostConfig(process.env) }],
  exports: [HostConfig],
})
export class HostConfigModule {}
