import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { BACKOFFICE_AUTHORIZE_METADATA, type BackOfficeAuthorizeOptions } from '../sessions/backoffice-auth.guard.js';
import { BackOfficePermissionRegistry } from './backoffice-permissions.js';

/**
 * Fails start-up when a controller of the app (the host's included) requires a permission through
 * `@BackOfficeAuthorize({ permissions })` that is neither built-in nor registered with the `permissions` option:
 * a typo would otherwise lock everyone but `admin` out of the route without a word. Records the groups that routes
 * check by name (`@BackOfficeAuthorize({ groups })`) in the registry: outside `admin`, only their members may give them.
 */
@Injectable()
export class BackOfficePermissionsStartupCheck implements OnModuleInit {
  constructor(
    @Inject(DiscoveryService) private readonly discovery: DiscoveryService,
    @Inject(MetadataScanner) private readonly scanner: MetadataScanner,
    @Inject(BackOfficePermissionRegistry) private readonly registry: BackOfficePermissionRegistry,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getControllers()) {
      const type = wrapper.metatype as (abstract new (...args: never[]) => unknown) | null;
      if (!type?.prototype) continue;
      this.check(type.name, Reflect.getMetadata(BACKOFFICE_AUTHORIZE_METADATA, type));
      for (const method of this.scanner.getAllMethodNames(type.prototype)) {
        this.check(`${type.name}.${method}`, Reflect.getMetadata(BACKOFFICE_AUTHORIZE_METADATA, type.prototype[method]));
      }
    }
  }

  private check(where: string, options: BackOfficeAuthorizeOptions | undefined): void {
    this.registry.addGroupsCheckedByName(options?.groups ?? []);
    const unknown = this.registry.unknown(options?.permissions ?? []);
    if (unknown.length > 0) {
      throw new Error(
        `BackOfficeIdentityModule: ${where} requires the unknown permission "${unknown[0]}" in @BackOfficeAuthorize(); ` +
          'register it with the "permissions" option ({ key, description }) or fix the key.',
      );
    }
  }
}
