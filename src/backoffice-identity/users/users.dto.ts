import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsBoolean, IsIn, IsObject, IsOptional, IsString, Max, MaxLength, Min, ValidateBy } from 'class-validator';
import { UserResponse } from '../auth/auth.dto.js';
import { CONTROL_CHARACTERS } from '../common/lookup-normalizer.js';
import { MAX_LIST_SKIP, MAX_LIST_SKIP_TEXT, MaxListSkip } from '../http/list-offset.js';
import { QueryInteger } from '../http/query-integer.js';

export class ListUsersQuery {
  @ApiPropertyOptional({
    default: 0,
    minimum: 0,
    maximum: MAX_LIST_SKIP,
    description: `Users to skip (OFFSET, at most ${MAX_LIST_SKIP_TEXT}: its cost grows with it); narrow deeper lists with \`filter\` or \`state\``,
  })
  @IsOptional()
  @QueryInteger()
  @Min(0)
  @MaxListSkip('narrow the list with filter or state to reach users deeper than that')
  skip: number = 0;

  @ApiPropertyOptional({ default: 20, minimum: 1, maximum: 100 })
  @IsOptional()
  @QueryInteger()
  @Min(1)
  @Max(100)
  take: number = 20;

  @ApiPropertyOptional({ enum: ['active', 'inactive', 'disabled', 'invited', 'lockedOut'] })
  @IsOptional()
  @IsIn(['active', 'inactive', 'disabled', 'invited', 'lockedOut'])
  state?: 'active' | 'inactive' | 'disabled' | 'invited' | 'lockedOut';

  @ApiPropertyOptional({
    description: 'Text in username, email or name, matched literally (`%`, `_` and `\\` are no wildcards); no control characters',
    maxLength: 256,
  })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  // The stored search text joins the three with newlines, and none of them holds a control character: a filter with
  // one would only ever match across two of them.
  @ValidateBy({
    name: 'noControlCharacters',
    validator: { validate: (value: unknown) => typeof value === 'string' && !CONTROL_CHARACTERS.test(value), defaultMessage: () => 'filter must not hold control characters' },
  })
  filter?: string;
}

export class SetGroupsDto {
  @ApiProperty({ type: [String], example: ['editor', 'writer'] })
  @IsArray()
  @ArrayMaxSize(20)
  @IsString({ each: true })
  @MaxLength(64, { each: true })
  groups!: string[];
}

export class UserPageResponse {
  @ApiProperty({ type: [UserResponse] }) items!: UserResponse[];
  @ApiProperty({ description: 'Matches: exact up to 10,000, the planner\'s estimate beyond (then `totalExact` is false)' }) total!: number;
  @ApiProperty() totalExact!: boolean;
}

export class InviteResponse {
  @ApiProperty({ type: UserResponse }) user!: UserResponse;
}

/** Body of `POST /users/import`. Records are checked one by one and reported, not refused as a whole. */
export class ImportUsersDto {
  @ApiProperty({
    description: 'At most 1,000 records: { email, name, username?, groups, isApproved?, createdAt?, lastLoginAt?, passwordHash?, passwordFormat? }',
    type: 'array',
    items: { type: 'object', additionalProperties: true },
    example: [{ email: 'ed@example.com', name: 'Ed', groups: ['editor'], passwordFormat: 'aspnet-identity', passwordHash: 'AQAAAAIAAYag...' }],
  })
  @IsArray()
  users!: unknown[];

  @ApiPropertyOptional({ default: false, description: 'Check and report, write nothing' })
  @IsOptional()
  @IsBoolean()
  dryRun?: boolean;

  @ApiPropertyOptional({ enum: ['skip', 'update', 'fail'], default: 'skip', description: 'When the email (or username) is taken' })
  @IsOptional()
  @IsIn(['skip', 'update', 'fail'])
  onConflict?: 'skip' | 'update' | 'fail';

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string', nullable: true },
    description: "Other systems' group aliases to this module's; null drops a group",
    example: { administrators: 'admin' },
  })
  @IsOptional()
  @IsObject()
  groupMap?: Record<string, string | null>;
}

export class ImportErrorResponse {
  @ApiProperty() code!: string;
  @ApiProperty() description!: string;
}

export class ImportUserResultResponse {
  @ApiProperty({ type: String, nullable: true }) email!: string | null;
  @ApiProperty({ enum: ['created', 'updated', 'skipped', 'invalid'] }) outcome!: string;
  @ApiPropertyOptional({ type: [ImportErrorResponse] }) errors?: ImportErrorResponse[];
}

export class ImportSummaryResponse {
  @ApiProperty() total!: number;
  @ApiProperty() created!: number;
  @ApiProperty() updated!: number;
  @ApiProperty() skipped!: number;
  @ApiProperty() invalid!: number;
}

export class ImportUsersResponse {
  @ApiProperty({ type: [ImportUserResultResponse] }) results!: ImportUserResultResponse[];
  @ApiProperty({ type: ImportSummaryResponse }) summary!: ImportSummaryResponse;
}
