import { Injectable } from '@nestjs/common';
import {
  BackOfficeUserManager,
  BackOfficeUserManagerDependencies,
  type BackOfficeUser,
  type IdentityError,
  type PasswordValidator,
} from 'backoffice-identity';
import { HostConfig } from './host-config.js';

/** This organisation's own password rule, on top of the module's policy: no company name in passwords. */
export class NoCompanyNamePasswordValidator implements PasswordValidator {
  constructor(private readonly companyName: string) {}

  validate(password: string, _user: BackOfficeUser | null): IdentityError[] {
    if (!password.toLowerCase().includes(this.companyName.toLowerCase())) return [];
    return [{ code: 'password_contains_company_name', description: `Passwords must not contain "${this.companyName}".` }];
  }
}

/**
 * The app's user manager. It extends the module's manager: the stricter password rule applies to every
 * password the module sets (create, change, reset, invite acceptance).
 */
@Injectable()
export class CustomBackOfficeUserManager extends BackOfficeUserManager {
  constructor(deps: BackOfficeUserManagerDependencies, config: HostConfig) {
    super(deps);
    this.passwordValidators.push(new NoCompanyNamePasswordValidator(config.companyName));
  }
}
