import { Controller, Get, Query, UsePipes } from '@nestjs/common';
import { ApiOkResponse, ApiProperty, ApiPropertyOptional, ApiResponse, ApiTags } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsUUID, Max, Min } from 'class-validator';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { ErrorResponse } from '../auth/auth.dto.js';
import { BackOfficeValidationPipe } from '../http/backoffice-validation.pipe.js';
import { BackOfficeAuthorize } from '../sessions/backoffice-authorize.decorator.js';
import { BackOfficeAuditEntryEntity } from './backoffice-audit-entry.entity.js';

export class AuditQuery {
  @ApiPropertyOptional({ default: 0 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(10_000_000)
  skip: number = 0;

  @ApiPropertyOptional({ default: 50, maximum: 200 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  take: number = 50;

  @ApiPropertyOptional({ format: 'uuid', description: 'Entries where this user acted or was affected' })
  @IsOptional()
  @IsUUID()
  userId?: string;
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
  @ApiProperty() total!: number;
}

/** The audit trail, newest first, for holders of `audit.read`. */
@ApiTags('audit')
@Controller('audit')
@UsePipes(BackOfficeValidationPipe)
@BackOfficeAuthorize({ permissions: ['audit.read'] })
export class AuditController {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  @Get()
  @ApiOkResponse({ type: AuditPageResponse })
  @ApiResponse({ status: 401, type: ErrorResponse, description: 'unauthenticated' })
  @ApiResponse({ status: 403, type: ErrorResponse, description: 'forbidden (needs audit.read)' })
  async list(@Query() query: AuditQuery): Promise<AuditPageResponse> {
    const qb = this.dataSource.getRepository(BackOfficeAuditEntryEntity).createQueryBuilder('a');
    if (query.userId) qb.where('(a.affectedUserId = :id OR a.performingUserId = :id)', { id: query.userId });
    const [rows, total] = await qb.orderBy('a.createdAt', 'DESC').addOrderBy('a.id', 'DESC').skip(query.skip).take(query.take).getManyAndCount();
    return {
      items: rows.map((r) => ({ ...r, id: String(r.id), createdAt: r.createdAt.toISOString() })),
      total,
    };
  }
}
