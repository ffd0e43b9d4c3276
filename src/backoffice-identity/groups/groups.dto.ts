import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsBoolean, IsOptional, IsString, Matches, MaxLength, MinLength, ValidateIf } from 'class-validator';

/** Alias shape: a letter, then letters, digits, `_` or `-`; at most 64 characters. */
export const GROUP_ALIAS_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const MAX_PERMISSIONS = 200;

export class CreateGroupDto {
  @ApiProperty({ example: 'auditors', pattern: GROUP_ALIAS_PATTERN.source, description: 'Stable key used in code and in `groups`; cannot change later' })
  @IsString()
  @Matches(GROUP_ALIAS_PATTERN, { message: 'alias must start with a letter and hold only letters, digits, "_" or "-" (at most 64)' })
  alias!: string;

  @ApiProperty({ example: 'Auditors', minLength: 1, maxLength: 256 })
  @IsString()
  @MinLength(1)
  @MaxLength(256)
  name!: string;

  @ApiProperty({ type: [String], example: ['audit.read'], description: 'Built-in or host-registered permission keys' })
  @IsArray()
  @ArrayMaxSize(MAX_PERMISSIONS)
  @IsString({ each: true })
  @MaxLength(256, { each: true })
  permissions!: string[];

  @ApiPropertyOptional({ default: false, description: 'Members without two-factor authentication must enrol at their next sign-in' })
  @ValidateIf((_, value) => value !== undefined) // null is refused, not skipped
  @IsBoolean()
  requireTwoFactor?: boolean;
}

export class UpdateGroupDto {
  @ApiPropertyOptional({ example: 'Auditors', minLength: 1, maxLength: 256 })
  @ValidateIf((_, value) => value !== undefined) // null is refused, not skipped
  @IsString()
  @MinLength(1)
  @MaxLength(256)
  name?: string;

  @ApiPropertyOptional({ type: [String], example: ['audit.read', 'users.read'], description: 'Replaces the permissions' })
  @ValidateIf((_, value) => value !== undefined) // null is refused, not skipped
  @IsArray()
  @ArrayMaxSize(MAX_PERMISSIONS)
  @IsString({ each: true })
  @MaxLength(256, { each: true })
  permissions?: string[];

  @ApiPropertyOptional({ description: 'Members without two-factor authentication must enrol at their next sign-in' })
  @ValidateIf((_, value) => value !== undefined)
  @IsBoolean()
  requireTwoFactor?: boolean;
}

export class DeleteGroupQuery {
  @ApiPropertyOptional({ description: 'Alias of the group that receives the members first; required when the group has members' })
  @IsOptional()
  @IsString()
  @Matches(GROUP_ALIAS_PATTERN, { message: 'moveMembersTo must be a group alias' })
  moveMembersTo?: string;
}

export class GroupResponse {
  @ApiProperty() alias!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ type: [String], description: 'Effective permissions (`admin`: every permission)' }) permissions!: string[];
  @ApiProperty({ description: 'Members without two-factor authentication must enrol at their next sign-in' }) requireTwoFactor!: boolean;
  @ApiProperty({ description: 'Members, API users included' }) memberCount!: number;
  @ApiProperty({ description: 'Built-in groups (`admin`) cannot be deleted' }) builtIn!: boolean;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;
}

export class PermissionResponse {
  @ApiProperty() key!: string;
  @ApiProperty() description!: string;
  @ApiProperty({ description: 'true for the module\'s own keys, false for host-registered ones' }) builtIn!: boolean;
}

export class GroupListResponse {
  @ApiProperty({ type: [GroupResponse], description: 'A page (`skip`, `take`), by alias' }) items!: GroupResponse[];
  @ApiProperty({ description: 'Groups in all: exact up to 10,000, the planner\'s estimate beyond (then `totalExact` is false)' }) total!: number;
  @ApiProperty() totalExact!: boolean;
  @ApiProperty({ type: [PermissionResponse], description: 'Every permission a group can hold' }) permissions!: PermissionResponse[];
}
