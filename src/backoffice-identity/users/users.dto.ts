import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsIn, IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { UserResponse } from '../auth/auth.dto.js';

export class ListUsersQuery {
  @ApiPropertyOptional({ default: 0, minimum: 0 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  skip: number = 0;

  @ApiPropertyOptional({ default: 20, minimum: 1, maximum: 100 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  take: number = 20;

  @ApiPropertyOptional({ enum: ['active', 'inactive', 'disabled', 'invited', 'lockedOut'] })
  @IsOptional()
  @IsIn(['active', 'inactive', 'disabled', 'invited', 'lockedOut'])
  state?: 'active' | 'inactive' | 'disabled' | 'invited' | 'lockedOut';

  @ApiPropertyOptional({ description: 'Text in username, email or name', maxLength: 256 })
  @IsOptional()
  @IsString()
  @MaxLength(256)
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
  @ApiProperty() total!: number;
}

export class InviteResponse {
  @ApiProperty({ type: UserResponse }) user!: UserResponse;
}
