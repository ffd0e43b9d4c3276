import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsNotEmpty, IsString, MaxLength, ValidateIf } from 'class-validator';
import { MAX_PASSWORD_INPUT } from '../auth/auth.dto.js';

export class TwoFactorSetupDto {
  @ApiProperty({ example: 'totp' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(32)
  provider!: string;
}

export class TwoFactorDisableDto {
  @ApiPropertyOptional({ maxLength: MAX_PASSWORD_INPUT, description: 'Required, except with denyLocalLogin (the recent provider sign-in is the proof)' })
  // Only a missing password is optional: null stays a 400 (IsOptional would let it through to count toward lockout).
  @ValidateIf((_, value) => value !== undefined)
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_PASSWORD_INPUT)
  password?: string;
}

export class TwoFactorSetupResponse {
  @ApiProperty({ description: 'Base32 secret, for manual entry' }) secret!: string;
  @ApiProperty({ example: 'otpauth://totp/Back%20office:admin%40example.com?issuer=Back%20office&secret=...' }) otpauthUri!: string;
  @ApiProperty({ description: 'PNG data URL of the QR code of otpauthUri' }) qrCodeDataUrl!: string;
}

/** The body of `POST /auth/2fa/recovery-codes`: none, or an empty JSON object (any field is refused). */
export class RecoveryCodesRegenerateDto {
  /** The body may be left out. */
  static readonly optionalBody = true;
  /** No field is accepted. */
  static readonly emptyBody = true;
}

export class RecoveryCodesResponse {
  @ApiProperty({ type: [String], description: '10 single-use codes, shown once' }) recoveryCodes!: string[];
}

