import { Module } from '@nestjs/common';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { TypeOrmModule } from '@nestjs/typeorm';
import {
  BackOfficeIdentityModule,
  BackOfficeMigrationLockTimeoutError,
  backOfficeIdentityDataSourceFactory,
  backOfficeIdentityMigrations,
} from 'backoffice-identity';
import { CustomBackOfficeUserManager } from './custom-user-manager.js';
import { DashboardController, HealthController } from './dashboard.controller.js';
import { EndSessionListener } from './end-session.listener.js';
import { ExternalMailProvider, InviteEmailListener } from './external-mail.provider.js';
import { HostConfig, HostConfigModule } from './host-config.js';

@Module({
  imports: [
    HostConfigModule,
    // The app owns the DataSource; the module brings its entities (autoLoadEntities) and migrations.
    TypeOrmModule.forRootAsync({
      inject: [HostConfig],
      useFactory: (config: HostConfig) => ({
        type: 'postgres' as const,
        url: config.databaseUrl,
        migrations: [...backOfficeIdentityMigrations],
        migrationsRun: true,
        autoLoadEntities: true,
        extra: { max: config.databasePoolSize },
        // @nestjs/typeorm retries a failed start-up (10 times by default); a lock wait that timed out is not retried.
        toRetry: (error: unknown) => !(error instanceof BackOfficeMigrationLockTimeoutError),
      }),
      // Runs the migrations under a PostgreSQL advisory lock: instances starting together take turns.
      dataSourceFactory: backOfficeIdentityDataSourceFactory,
    }),
    EventEmitterModule.forRoot(),
    BackOfficeIdentityModule.forRootAsync({
      userManager: CustomBackOfficeUserManager,
      imports: [HostConfigModule],
      inject: [HostConfig],
      useFactory: (config: HostConfig) => ({
        publicUrl: config.publicUrl,
        password: { hashCost: config.bcryptCost },
        session: { secureCookies: config.publicUrl.startsWith('https://') },
        email: { smtpUrl: config.smtpUrl, pickupDirectory: config.mailPickupDir },
        twoFactor: { encryptionKey: config.encryptionKey },
      }),
    }),
  ],
  controllers: [DashboardController, HealthController],
  providers: [ExternalMailProvider, InviteEmailListener, EndSessionListener],
})
export class AppModule {}
