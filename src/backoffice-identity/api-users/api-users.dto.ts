import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsOptional, IsString, Max, MaxLength, Min, MinLength } from 'class-validator';
import { UserResponse } from '../auth/auth.dto.js';
import { QueryInteger } from '../http/query-integer.js';

export class CreateApiUserDto {
  @ApiProperty({ example: 'Nightly export', minLength: 1, maxLength: 256 })
  @IsString()
  @MinLength(1)
  @MaxLength(256)
  name!: string;

  @ApiProperty({ type: [String], example: ['auditors'], description: 'Group aliases: the API user holds their permissions' })
  @IsArray()
  @ArrayMaxSize(20)
  @IsString({ each: true })
  @MaxLength(64, { each: true })
  groups!: string[];
}

export class RotateSecretDto {
  /** The body may be left out (no overlap). */
  static readonly optionalBody = true;

  @ApiPropertyOptional({ default: 0, minimum: 0, description: 'Minutes the previous secret keeps working (0: it stops now)' })
  @IsOptional()
  @QueryInteger()
  @Min(0)
  @Max(1_000_000)
  overlapMinutes: number = 0;
}

export class ApiUserCreatedResponse {
  @ApiProperty({ type: UserResponse }) user!: UserResponse;
  @ApiProperty({ example: 'boc_3q2Fh1k0pWm9ZxYt7uVb8cDe' }) clientId!: string;
  @ApiProperty({ description: 'Shown once; only its hash is stored' }) clientSecret!: string;
}

export class SecretRotatedResponse {
  @ApiProperty() clientId!: string;
  @ApiProperty({ description: 'Shown once; only its hash is stored' }) clientSecret!: string;
  @ApiProperty({ type: String, nullable: true, format: 'date-time', description: 'Until then the previous secret still works' })
  previousSecretExpiresAt!: string | null;
}

export class ApiUserResponse {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiProperty() clientId!: string;
  @ApiProperty({ type: [String] }) groups!: string[];
  @ApiProperty() disabled!: boolean;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' }) secretRotatedAt!: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' }) previousSecretExpiresAt!: string | null;
}

export class ApiUserListResponse {
  @ApiProperty({ type: [ApiUserResponse], description: 'A page (`skip`, `take`), oldest first' }) items!: ApiUserResponse[];
  @ApiProperty({ description: 'API users in all: exact up to 10,000, the planner\'s estimate beyond (then `totalExact` is false)' }) total!: number;
  @ApiProperty() totalExact!: boolean;
}

export class TokenRequestDto {
  @ApiProperty({ enum: ['client_credentials'] }) grant_type!: string;
  @ApiPropertyOptional({ description: 'With credentials in the body instead of HTTP Basic' }) client_id?: string;
  @ApiPropertyOptional() client_secret?: string;
  @ApiPropertyOptional({ description: 'Ignored: permissions come from the API user\'s groups' }) scope?: string;
}

export class TokenResponse {
  @ApiProperty() access_token!: string;
  @ApiProperty({ enum: ['Bearer'] }) token_type!: 'Bearer';
  @ApiProperty({
    example: 600,
    description:
      'Seconds until the stored expiry of the token (whole seconds, rounded down). Usually apiUsers.tokenLifetimeMinutes times 60; shorter when the token was issued for a previous secret within its overlap after a rotation (it ends when that secret does).',
  })
  expires_in!: number;
}

export class OAuthErrorResponse {
  @ApiProperty({ example: 401 }) statusCode!: number;
  @ApiProperty({ example: 'invalid_client' }) code!: string;
  @ApiProperty() message!: string;
  @ApiProperty({ enum: ['invalid_request', 'invalid_client', 'unsupported_grant_type'] }) error!: string;
  @ApiProperty() error_description!: string;
}
