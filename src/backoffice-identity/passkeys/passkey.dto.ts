import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional, ApiResponse } from '@nestjs/swagger';
import { ErrorResponse } from '../auth/auth.dto.js';
import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsIn, IsInt, IsNotEmpty, IsObject, IsOptional, IsString, Matches, MaxLength, ValidateNested } from 'class-validator';
import type { StoredPasskey } from '../users/stores/user-store.interface.js';

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** Documents one error response of a passkey route (the module's error body). */
export const documented = (status: number, description: string) => ApiResponse({ status, description, type: ErrorResponse });
/** A required base64url string field of at most `max` characters. */
const base64url = (max: number, description: string) =>
  applyDecorators(
    ApiProperty({ description: `${description} (base64url)`, maxLength: max }),
    IsString(),
    IsNotEmpty(),
    MaxLength(max),
    Matches(BASE64URL, { message: '$property must be base64url' }),
  );

/** `response` of an assertion (`AuthenticatorAssertionResponseJSON`). */
export class PasskeyAssertionResponseDto {
  @base64url(8192, 'clientDataJSON') clientDataJSON!: string;
  @base64url(8192, 'authenticatorData') authenticatorData!: string;
  @base64url(2048, 'signature') signature!: string;

  @ApiPropertyOptional({ description: 'userHandle (base64url)', maxLength: 1024 })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  @Matches(BASE64URL)
  userHandle?: string;
}

/** `response` of an attestation (`AuthenticatorAttestationResponseJSON`). */
export class PasskeyAttestationResponseDto {
  @base64url(8192, 'clientDataJSON') clientDataJSON!: string;
  @base64url(32_768, 'attestationObject') attestationObject!: string;

  @ApiPropertyOptional({ description: 'authenticatorData (base64url)', maxLength: 32_768 })
  @IsOptional()
  @IsString()
  @MaxLength(32_768)
  @Matches(BASE64URL)
  authenticatorData?: string;

  @ApiPropertyOptional({ type: [String], example: ['internal', 'hybrid'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(8)
  @IsString({ each: true })
  @MaxLength(32, { each: true })
  transports?: string[];

  @ApiPropertyOptional({ description: 'COSE algorithm of the key' })
  @IsOptional()
  @IsInt()
  publicKeyAlgorithm?: number;

  @ApiPropertyOptional({ description: 'SubjectPublicKeyInfo of the key (base64url)' })
  @IsOptional()
  @IsString()
  @MaxLength(8192)
  publicKey?: string;
}

abstract class PublicKeyCredentialDto {
  @base64url(1400, 'Credential id') id!: string;
  @base64url(1400, 'Credential id, again') rawId!: string;

  @ApiProperty({ enum: ['public-key'] })
  @IsIn(['public-key'])
  type!: 'public-key';

  @ApiProperty({ type: Object, description: 'Client extension outputs (e.g. credProps)' })
  @IsObject()
  clientExtensionResults!: Record<string, unknown>;

  @ApiPropertyOptional({ enum: ['platform', 'cross-platform'] })
  @IsOptional()
  @IsIn(['platform', 'cross-platform'])
  authenticatorAttachment?: 'platform' | 'cross-platform';
}

/** The browser's assertion (`AuthenticationResponseJSON` of `@simplewebauthn/browser`'s `startAuthentication`). */
export class PasskeyAssertionDto extends PublicKeyCredentialDto {
  @ApiProperty({ type: PasskeyAssertionResponseDto })
  @IsObject()
  @ValidateNested()
  @Type(() => PasskeyAssertionResponseDto)
  response!: PasskeyAssertionResponseDto;
}

/** The browser's attestation (`RegistrationResponseJSON` of `startRegistration`). */
export class PasskeyAttestationDto extends PublicKeyCredentialDto {
  @ApiProperty({ type: PasskeyAttestationResponseDto })
  @IsObject()
  @ValidateNested()
  @Type(() => PasskeyAttestationResponseDto)
  response!: PasskeyAttestationResponseDto;
}

/** Body of `POST /auth/passkey/verify` and `POST /auth/2fa/passkey`. */
export class PasskeyVerifyDto {
  @ApiProperty({ type: PasskeyAssertionDto })
  @IsObject()
  @ValidateNested()
  @Type(() => PasskeyAssertionDto)
  credential!: PasskeyAssertionDto;
}

/** Body of `PATCH /auth/passkeys/:id`. */
export class PasskeyRenameDto {
  @ApiProperty({ example: 'Work laptop', maxLength: 64 })
  @IsString()
  @IsNotEmpty()
  @MaxLength(64)
  name!: string;
}

/** Body of `POST /auth/passkeys`: the attestation for a challenge from `POST /auth/passkeys/options`, and a name. */
export class PasskeyRegisterDto extends PasskeyRenameDto {
  @ApiProperty({ type: PasskeyAttestationDto })
  @IsObject()
  @ValidateNested()
  @Type(() => PasskeyAttestationDto)
  credential!: PasskeyAttestationDto;
}

/** A passkey as its owner sees it: no key material. */
export class PasskeyResponse {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ description: 'Credential id (base64url)' }) credentialId!: string;
  @ApiProperty({ type: [String] }) transports!: string[];
  @ApiProperty({ enum: ['singleDevice', 'multiDevice'] }) deviceType!: string;
  @ApiProperty() backedUp!: boolean;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) lastUsedAt!: string | null;
}

export function toPasskeyResponse(passkey: StoredPasskey): PasskeyResponse {
  return {
    id: passkey.id,
    name: passkey.name,
    credentialId: passkey.credentialId,
    transports: passkey.transports,
    deviceType: passkey.deviceType,
    backedUp: passkey.backedUp,
    createdAt: passkey.createdAt.toISOString(),
    lastUsedAt: passkey.lastUsedAt?.toISOString() ?? null,
  };
}

/** `PublicKeyCredentialCreationOptionsJSON` / `PublicKeyCredentialRequestOptionsJSON`: pass to `startRegistration` / `startAuthentication`. */
export class PasskeyOptionsResponse {
  @ApiProperty({ description: 'Single-use challenge (base64url), valid `passkeys.challengeMinutes`' }) challenge!: string;
  @ApiPropertyOptional({ description: 'Relying party id (authentication) ' }) rpId?: string;
  @ApiPropertyOptional({ type: Object, description: 'Relying party (registration)' }) rp?: object;
  @ApiPropertyOptional({ type: Object, description: 'User entity (registration)' }) user?: object;
  @ApiPropertyOptional({ type: [Object] }) allowCredentials?: object[];
  @ApiPropertyOptional({ type: [Object] }) excludeCredentials?: object[];
  @ApiPropertyOptional() userVerification?: string;
  @ApiPropertyOptional() timeout?: number;
}
