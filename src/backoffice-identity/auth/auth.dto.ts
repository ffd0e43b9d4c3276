import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsNotEmpty, IsString, MaxLength } from 'class-validator';
import type { BackOfficeUserDto } from '../users/backoffice-user.js';

/** Longest accepted password input; longer bodies are refused before any hashing. */
export const MAX_PASSWORD_INPUT = 1024;

export class LoginDto {
  @ApiProperty({ example: 'admin@example.com', maxLength: 256 })
  @IsString()
  @IsNotEmpty()
  @MaxLength(256)
  username!: string;

  @ApiProperty({ example: 'correct horse battery staple', maxLength: MAX_PASSWORD_INPUT })
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_PASSWORD_INPUT)
  password!: string;
}

export class TwoFactorCodeDto {
  @ApiProperty({ example: 'totp', description: '`totp`, or `recovery` for a recovery code' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(32)
  provider!: string;

  @ApiProperty({ example: '123456' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(64)
  code!: string;
}

/** Body fields of the email-link flows: whose token, and the token. */
export class UserTokenDto {
  @ApiProperty({ format: 'uuid' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(64)
  userId!: string;

  @ApiProperty({ description: 'The token from the email link' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(512)
  token!: string;
}

/** `POST /auth/reset-password/verify` and `/auth/invite/verify`: the account a live emailed link belongs to. */
export class LinkAccountResponse {
  @ApiProperty({ description: 'The username (the email when usernameIsEmail) of the link\'s user', example: 'admin@example.com' })
  username!: string;
}

export class ReauthenticateDto {
  @ApiProperty({ maxLength: MAX_PASSWORD_INPUT })
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_PASSWORD_INPUT)
  password!: string;
}

export class ReauthenticateResponse {
  @ApiProperty({ format: 'date-time', description: 'Sensitive routes accept this session until then' })
  reauthenticatedUntil!: string;
}

export class RevokedSessionsResponse {
  @ApiProperty({ description: 'How many other sessions ended' }) revoked!: number;
}

export class ChangePasswordDto {
  @ApiProperty({ maxLength: MAX_PASSWORD_INPUT })
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_PASSWORD_INPUT)
  currentPassword!: string;

  @ApiProperty({ maxLength: MAX_PASSWORD_INPUT })
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_PASSWORD_INPUT)
  newPassword!: string;
}

export class UserResponse implements BackOfficeUserDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() username!: string;
  @ApiProperty() email!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ enum: ['active', 'inactive', 'disabled', 'invited', 'lockedOut'] }) state!: BackOfficeUserDto['state'];
  @ApiProperty({ type: [String], example: ['admin'] }) groups!: string[];
  @ApiProperty() twoFactorEnabled!: boolean;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) lastLoginAt!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiPropertyOptional({ type: String, nullable: true, description: 'Disabled users only: why' }) disabledReason?: string | null;
  @ApiPropertyOptional({ type: String, format: 'date-time', nullable: true, description: 'Disabled users only: when it ends by itself' })
  disabledUntil?: string | null;
}

export class UserLoginSummary {
  @ApiProperty({ example: 'oidc' }) provider!: string;
  @ApiProperty({ example: 'Single sign-on' }) displayName!: string;
}

export class SessionDeadlinesResponse {
  @ApiProperty({ format: 'date-time', description: 'The server clock, to correct for client clock skew' }) now!: string;
  @ApiProperty({ format: 'date-time', description: 'Sliding: moved by every authenticated request except peeks' }) idleExpiresAt!: string;
  @ApiProperty({ format: 'date-time', description: 'Never extended' }) absoluteExpiresAt!: string;
}

export class MeResponse extends UserResponse {
  @ApiProperty({ type: SessionDeadlinesResponse }) session!: SessionDeadlinesResponse;
  @ApiProperty({ type: [UserLoginSummary] }) logins!: UserLoginSummary[];
  @ApiProperty({ type: Number, nullable: true, example: 10, description: 'Unused recovery codes while two-factor authentication is on; null while it is off' })
  recoveryCodesLeft!: number | null;
  @ApiProperty({ type: [String], nullable: true, example: ['totp', 'passkey'], description: 'The second factors set up while two-factor authentication is on (recovery codes aside); null while it is off' })
  twoFactorProviders!: string[] | null;
}

export class LoginResponse {
  @ApiProperty({ enum: ['success', 'requiresTwoFactor', 'requiresTwoFactorSetup'] }) status!: 'success' | 'requiresTwoFactor' | 'requiresTwoFactorSetup';
  @ApiPropertyOptional({ type: UserResponse }) user?: UserResponse;
  @ApiPropertyOptional({ type: [String], example: ['totp', 'recovery'], description: 'requiresTwoFactor: providers to answer with; requiresTwoFactorSetup: providers to enrol in' })
  providers?: string[];
  @ApiPropertyOptional({ format: 'date-time', description: 'A group requires 2FA: enrol before this time (grace period)' })
  twoFactorSetupDeadline?: string;
}

export class LogoutResponse {
  @ApiProperty({ type: String, nullable: true, description: 'Set by a UserLogoutSuccessNotification listener' })
  signOutRedirectUrl!: string | null;
}

export class SessionResponse {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) lastSeenAt!: string;
  @ApiProperty({ type: String, nullable: true }) ip!: string | null;
  @ApiProperty({ type: String, nullable: true }) userAgent!: string | null;
  @ApiProperty() current!: boolean;
}

export class ErrorResponse {
  @ApiProperty({ example: 400 }) statusCode!: number;
  @ApiProperty({ example: 'validation_failed' }) code!: string;
  @ApiProperty() message!: string;
  @ApiPropertyOptional({ type: 'array', items: { type: 'object', properties: { code: { type: 'string' }, description: { type: 'string' }, field: { type: 'string' } } } })
  errors?: unknown[];
  @ApiPropertyOptional({ description: 'Seconds until a lockout or rate limit ends' }) retryAfterSeconds?: number;
}
