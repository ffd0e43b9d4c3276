import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsDateString, IsOptional, IsString, MaxLength, MinLength, ValidateIf } from 'class-validator';

export class UpdateOwnProfileDto {
  @ApiProperty({ example: 'Ada Lovelace', minLength: 1, maxLength: 256 })
  @IsString()
  @MinLength(1)
  @MaxLength(256)
  name!: string;
}

export class RequestEmailChangeDto {
  @ApiProperty({ example: 'new@example.com', maxLength: 256 })
  @IsString()
  @MaxLength(256)
  newEmail!: string;
}

export class ConfirmEmailChangeDto {
  @ApiProperty({ format: 'uuid' })
  @IsString()
  @MaxLength(64)
  userId!: string;

  @ApiProperty()
  @IsString()
  @MaxLength(512)
  token!: string;
}

export class AdminUpdateUserDto {
  @ApiPropertyOptional({ minLength: 1, maxLength: 256 })
  @ValidateIf((_, value) => value !== undefined)
  @IsString()
  @MinLength(1)
  @MaxLength(256)
  name?: string;

  @ApiPropertyOptional({ maxLength: 256 })
  @ValidateIf((_, value) => value !== undefined)
  @IsString()
  @MaxLength(256)
  email?: string;
}

export class DisableUserDto {
  /** The body may be left out (no reason, no end). */
  static readonly optionalBody = true;

  @ApiPropertyOptional({ maxLength: 500, description: 'Why (kept for admins, in the audit trail)' })
  @IsOptional()
  @IsString()
  @MaxLength(500)
  reason?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'The user is enabled again after this time (at the next sign-in)' })
  @IsOptional()
  @IsDateString({ strict: true })
  until?: string;
}
