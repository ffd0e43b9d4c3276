import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsNotEmpty, IsOptional, IsString, MaxLength } from 'class-validator';
import { MAX_PASSWORD_INPUT, UserTokenDto } from '../auth/auth.dto.js';

export class InviteUserDto {
  @ApiProperty({ example: 'new.editor@example.com', maxLength: 256 })
  @IsString()
  @IsNotEmpty()
  @MaxLength(256)
  email!: string;

  @ApiProperty({ example: 'New Editor', maxLength: 256 })
  @IsString()
  @IsNotEmpty()
  @MaxLength(256)
  name!: string;

  @ApiProperty({ type: [String], example: ['editor'] })
  @IsArray()
  @ArrayMaxSize(20)
  @IsString({ each: true })
  @MaxLength(64, { each: true })
  groups!: string[];

  @ApiPropertyOptional({ maxLength: 2000, description: 'A personal note in the invite email' })
  @IsOptional()
  @IsString()
  @MaxLength(2000)
  message?: string;
}

export class AcceptInviteDto extends UserTokenDto {
  @ApiProperty({ maxLength: MAX_PASSWORD_INPUT })
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_PASSWORD_INPUT)
  password!: string;
}
