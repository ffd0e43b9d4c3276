import { Inject, Injectable, Logger, type OnApplicationBootstrap, Optional } from '@nestjs/common';
import { ApplicationConfig } from '@nestjs/core';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { moduleGlobalPrefix } from './http-platform.js';

/**
 * Warns at start-up when the host's global prefix (`app.setGlobalPrefix('api')`) applies to the module's routes.
 * The JSON routes work under it, but the sign-in screens (assets, `session.js`, redirects), the links in emails
 * and the OIDC callback URLs name `/<routePrefix>/...` without it, so the host is told how to keep the module out
 * of the prefix. A warning and not an error: hosts that use only the JSON routes under the prefix keep working.
 * Read at `onApplicationBootstrap`: hosts set the prefix after the module is built.
 */
@Injectable()
export class BackOfficeGlobalPrefixCheck implements OnApplicationBootstrap {
  private readonly logger = new Logger('BackOfficeIdentity');

  constructor(
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) private readonly options: ResolvedBackOfficeIdentityOptions,
    @Optional() @Inject(ApplicationConfig) private readonly appConfig?: ApplicationConfig,
  ) {}

  onApplicationBootstrap(): void {
    const { routePrefix } = this.options;
    const { prefix, partly } = moduleGlobalPrefix(this.appConfig, routePrefix);
    if (!prefix) return;
    this.logger.warn(
      `the global prefix "${prefix}" applies to ${partly ? 'some of ' : ''}the module's routes (/${prefix}/${routePrefix}/...), ` +
        `but the sign-in screens, the links in emails and the OIDC callback URLs use /${routePrefix}/... without it. ` +
        `Keep the module out of the prefix: app.setGlobalPrefix('${prefix}', { exclude: ['${routePrefix}{/*path}'] }).`,
    );
  }
}
