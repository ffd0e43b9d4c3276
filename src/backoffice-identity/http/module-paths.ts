import { Inject, Injectable, Optional } from '@nestjs/common';
import { ApplicationConfig } from '@nestjs/core';
import { BACKOFFICE_IDENTITY_OPTIONS } from '../constants.js';
import type { ResolvedBackOfficeIdentityOptions } from '../options/backoffice-identity-options.interface.js';
import { isUnderBasePath, moduleBasePath, moduleGlobalPrefix } from './http-platform.js';

/**
 * Tells whether a request URL reaches the module's routes, as the routers match it ({@link isUnderBasePath}: any
 * case, escapes decoded, below Nest's global prefix unless the host excluded the module from it). The one answer
 * the module's middleware (security headers, request context) and the exception filter share. The base path is read at
 * the first call: hosts set their global prefix after the module is built.
 */
@Injectable()
export class BackOfficeModulePaths {
  private readonly routePrefix: string;
  private base?: string;

  constructor(
    @Inject(BACKOFFICE_IDENTITY_OPTIONS) options: ResolvedBackOfficeIdentityOptions,
    @Optional() @Inject(ApplicationConfig) private readonly appConfig?: ApplicationConfig,
  ) {
    this.routePrefix = options.routePrefix;
  }

  /**
   * The module's base path as cookies see it (`/<global prefix>/<routePrefix>`, case kept: cookie paths are
   * case-sensitive). Read at a request, not in a constructor.
   */
  cookieBasePath(): string {
    const global = moduleGlobalPrefix(this.appConfig, this.routePrefix).prefix.replace(/^\/+|\/+$/g, '');
    return `${global ? `/${global}` : ''}/${this.routePrefix}`;
  }

  /**
   * The Path of the pending external sign-in cookie without Secure (no `__Host-` name): `<cookie base path>/auth/external`,
   * so it comes back on the provider's redirect to the callback wherever the module is mounted (global prefix included).
   */
  externalLoginCookiePath(): string {
    return `${this.cookieBasePath()}/auth/external`;
  }

  /** True when `url` (a request target; its query is ignored) is the module's base path or below it. */
  contains(url: string): boolean {
    this.base ??= moduleBasePath(this.routePrefix, moduleGlobalPrefix(this.appConfig, this.routePrefix).prefix);
    return isUnderBasePath(url, this.base);
  }
}
