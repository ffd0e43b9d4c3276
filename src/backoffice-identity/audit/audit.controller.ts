import { Controller, Get, Inject, Query, UsePipes } from '@nestjs/common';
import { ApiOkResponse, ApiProperty, ApiPropertyOptional, ApiResponse, ApiTags } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, IsUUID, Matches, Max, MaxLength, Min, ValidateBy } from 'class-validator';
import { ErrorResponse } from '../auth/auth.dto.js';
import { BACKOFFICE_AUDIT_STORE } from '../constants.js';
import { BackOfficeHttpError } from '../http/backoffice-http-error.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import { MAX_LIST_SKIP, MAX_LIST_SKIP_TEXT, MaxListSkip } from '../http/list-offset.js';
import { QueryInteger } from '../http/query-integer.js';
import { BackOfficeAuthorize } from '../sessions/backoffice-authorize.decorator.js';
import { decodeAuditCursor, encodeAuditCursor } from './audit-cursor.js';
import type { BackOfficeAuditCount, BackOfficeAuditEntry, BackOfficeAuditStore } from './backoffice-audit-store.interface.js';

const COUNT_MODES: BackOfficeAuditCount[] = ['estimate', 'exact', 'none'];

export class AuditQuery {
  @ApiPropertyOptional({
    default: 0,
    deprecated: true,
    minimum: 0,
    maximum: MAX_LIST_SKIP,
    description: `Entries to skip (OFFSET, at most ${MAX_LIST_SKIP_TEXT}: its cost grows with it). Use \`before\` instead; not combined with it.`,
  })
  @IsOptional()
  @QueryInteger()
  @Min(0)
  @MaxListSkip('deeper entries: page with before, the nextCursor of the previous page')
  skip: number = 0;

  @ApiPropertyOptional({ default: 50, maximum: 200 })
  @IsOptional()
  @QueryInteger()
  @Min(1)
  @Max(200)
  take: number = 50;

  @ApiPropertyOptional({ format: 'uuid', description: 'Entries where this user acted or was affected' })
  @IsOptional()
  @IsUUID()
  userId?: string;

  @ApiPropertyOptional({ description: 'Entries of this event name, e.g. `backoffice.user.login.failed`' })
  @IsOptional()
  @IsString()
  @MaxLength(128)
  @Matches(/^[A-Za-z0-9._:-]+$/, { message: 'event must be an event name (letters, digits, ".", "_", ":", "-")' })
  event?: string;

  @ApiPropertyOptional({ description: 'The `nextCursor` of the previous page: entries older than its last item (the fast path)' })
  @IsOptional()
  @IsString()
  @ValidateBy({
    name: 'isAuditCursor',
    validator: { validate: (value: unknown) => typeof value === 'string' && decodeAuditCursor(value) !== null, defaultMessage: () => 'before must be a nextCursor from GET /audit' },
  })
  before?: string;

  @ApiPropertyOptional({
    enum: COUNT_MODES,
    default: 'estimate',
    description: '`estimate`: exact up to 10,000 matches, the planner\'s estimate beyond (`totalExact: false`); `exact`: a full count (slow on millions); `none`: no total',
  })
  @IsOptional()
  @IsIn(COUNT_MODES)
  count: BackOfficeAuditCount = 'estimate';
}

export class AuditEntryResponse {
  @ApiProperty() id!: string;
  @ApiProperty() event!: string;
  @ApiProperty({ type: String, nullable: true }) performingUserId!: string | null;
  @ApiProperty({ type: String, nullable: true }) affectedUserId!: string | null;
  @ApiProperty({ type: String, nullable: true }) ipAddress!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: 'object', additionalProperties: true }) details!: Record<string, unknown>;
}

export class AuditPageResponse {
  @ApiProperty({ type: [AuditEntryResponse] }) items!: AuditEntryResponse[];
  @ApiPropertyOptional({ description: 'Matches of the filters (absent with `count=none`)' }) total?: number;
  @ApiPropertyOptional({ description: 'False when `total` is the planner\'s estimate' }) totalExact?: boolean;
  @ApiProperty({ type: String, nullable: true, description: 'Pass as `before` for the next page; null on the last page' })
  nextCursor!: string | null;
}

const toResponse = (entry: BackOfficeAuditEntry): AuditEntryResponse => ({
  id: entry.id,
  event: entry.event,
  performingUserId: entry.performingUserId,
  affectedUserId: entry.affectedUserId,
  ipAddress: entry.ipAddress,
  createdAt: entry.createdAt.toISOString(),
  details: entry.details,
});

/** The audit trail, newest first, for holders of `audit.read`. */
@ApiTags('audit')
@Controller('audit')
@UsePipes(BackOfficeValidationPipe)
@BackOfficeAuthorize({ permissions: ['audit.read'] })
export class AuditController {
  constructor(@Inject(BACKOFFICE_AUDIT_STORE) private readonly store: BackOfficeAuditStore) {}

  @Get()
  @ApiOkResponse({ type: AuditPageResponse })
  @ApiResponse({ status: 400, type: ErrorResponse, description: `validation_failed (e.g. a \`before\` that is not a cursor, \`before\` with \`skip\`, or \`skip\` over ${MAX_LIST_SKIP_TEXT})` })
  @ApiResponse({ status: 401, type: ErrorResponse, description: 'unauthenticated' })
  @ApiResponse({ status: 403, type: ErrorResponse, description: 'forbidden (needs audit.read)' })
  async list(@Query() query: AuditQuery): Promise<AuditPageResponse> {
    if (query.before !== undefined && query.skip > 0) {
      throw new BackOfficeHttpError(400, 'validation_failed', 'The request is not valid.', {
        errors: [{ field: 'skip', code: 'conflictsWithBefore', description: 'skip cannot be combined with before: page with before alone.' }],
      });
    }
    const page = await this.store.list({
      userId: query.userId,
      event: query.event,
      before: query.before === undefined ? undefined : decodeAuditCursor(query.before)!,
      skip: query.skip,
      take: query.take,
      count: query.count,
    });
    return {
      items: page.items.map(toResponse),
      ...(page.total ? { total: page.total.value, totalExact: page.total.exact } : {}),
      nextCursor: page.next ? encodeAuditCursor(page.next) : null,
    };
  }
}
