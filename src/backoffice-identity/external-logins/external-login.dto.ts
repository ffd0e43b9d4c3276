import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength } from 'class-validator';

export class ExternalLoginProviderResponse {
  @ApiProperty({ example: 'oidc' }) name!: string;
  @ApiProperty({ example: 'Single sign-on' }) displayName!: string;
  @ApiProperty({ description: 'The sign-in page sends people straight to this provider' }) autoRedirect!: boolean;
  @ApiProperty({ description: 'False while the provider cannot be reached (its challenge answers 503)' }) available!: boolean;
}

export class ChallengeQuery {
  @ApiPropertyOptional({ description: 'Same-origin path to land on after sign-in', example: '/backoffice/' })
  @IsOptional()
  @IsString()
  @MaxLength(2048)
  returnUrl?: string;

  @ApiPropertyOptional({ description: '`<userId>.<token>` from an invite email: the provider login is linked to the invited user' })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  invite?: string;
}

export class LinkExternalLoginDto {
  @ApiPropertyOptional({ description: 'Same-origin path to land on after linking', example: '/backoffice/account' })
  @IsOptional()
  @IsString()
  @MaxLength(2048)
  returnUrl?: string;
}

export class LinkExternalLoginResponse {
  @ApiProperty({ description: "The provider's authorization URL: send the browser there" }) redirectUrl!: string;
}
