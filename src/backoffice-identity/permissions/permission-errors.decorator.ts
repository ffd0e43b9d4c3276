import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { ErrorResponse } from '../auth/auth.dto.js';
import { BACKOFFICE_AUTHORIZE_METADATA } from '../sessions/backoffice-auth.guard.js';

/** The error responses of a route guarded by permissions, for the OpenAPI document. */
export const permissionErrors = (...permissions: string[]) =>
  applyDecorators(
    ApiResponse({ status: 401, type: ErrorResponse, description: 'unauthenticated' }),
    ApiResponse({ status: 403, type: ErrorResponse, description: `forbidden (needs ${permissions.join(' and ')}) or xsrf_failed` }),
  );

/**
 * Requires permissions on one route of a controller that is already behind `@BackOfficeAuthorize()`: it only
 * replaces the controller's options (no second guard run) and documents the errors.
 */
export const requirePermissions = (...permissions: string[]) =>
  applyDecorators(SetMetadata(BACKOFFICE_AUTHORIZE_METADATA, { permissions }), permissionErrors(...permissions));

/**
 * The 403 of a route that acts on another user (`BackOfficeGroupService.assertMayManage`), for the OpenAPI
 * document; it adds to the 403 of {@link requirePermissions}.
 */
export const mayManageTargetErrors = () =>
  ApiResponse({
    status: 403,
    type: ErrorResponse,
    description: 'forbidden: the user is in admin, or holds a permission the caller lacks (only admins act on such users)',
  });

/**
 * The 403 of a route that changes groups (`BackOfficeGroupService` with an actor), for the OpenAPI document; it adds
 * to the 403 of {@link permissionErrors}.
 */
export const groupChangeErrors = () =>
  ApiResponse({
    status: 403,
    type: ErrorResponse,
    description: 'forbidden: outside admin, a group holding a permission the caller lacks cannot change, and no permission the caller lacks can be granted',
  });
