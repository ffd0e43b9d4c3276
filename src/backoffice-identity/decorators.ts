import { Inject } from '@nestjs/common';
import {
  BACKOFFICE_EMAIL_SENDER,
  BACKOFFICE_IDENTITY_OPTIONS,
  BACKOFFICE_SIGN_IN_MANAGER,
  BACKOFFICE_USER_MANAGER,
  BACKOFFICE_USER_STORE,
} from './constants.js';

/** Injects the (possibly swapped) `BackOfficeUserManager`. */
export const InjectBackOfficeUserManager = () => Inject(BACKOFFICE_USER_MANAGER);
/** Injects the (possibly swapped) `BackOfficeSignInManager`. */
export const InjectBackOfficeSignInManager = () => Inject(BACKOFFICE_SIGN_IN_MANAGER);
/** Injects the (possibly swapped) user store. */
export const InjectBackOfficeUserStore = () => Inject(BACKOFFICE_USER_STORE);
/** Injects the (possibly swapped) email sender. */
export const InjectBackOfficeEmailSender = () => Inject(BACKOFFICE_EMAIL_SENDER);
/** Injects the resolved options. */
export const InjectBackOfficeIdentityOptions = () => Inject(BACKOFFICE_IDENTITY_OPTIONS);
