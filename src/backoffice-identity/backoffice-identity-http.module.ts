import { Module } from '@nestjs/common';
import { AuthController } from './auth/auth.controller.js';

/** The REST controllers; mounted under `routePrefix` by `BackOfficeIdentityModule`. */
@Module({ controllers: [AuthController] })
export class BackOfficeIdentityHttpModule {}
