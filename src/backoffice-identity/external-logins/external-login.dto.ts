import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, MaxLength } from 'class-validator';
import { UserTokenDto } from '../auth/auth.dto.js';

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

  /**
   * `1`: the sign-in page's automatic redirect to an `autoRedirect` provider (not a click). Such a challenge from a
   * browser that sends a live session cookie, or the session cookie twice, goes back to the sign-in page with
   * `?error=already_signed_in` instead of to the provider (login CSRF by cookie tossing, OWASP ASVS 5.0 3.5.x / 7.x).
   */
  @ApiPropertyOptional({
    enum: ['1'],
    description:
      "Set by the sign-in page's automatic redirect to an autoRedirect provider. A browser that sends a live session cookie (or the " +
      'session cookie twice) is sent back to the sign-in page with ?error=already_signed_in: no pending sign-in is started, the provider is not asked',
  })
  @IsOptional()
  @IsIn(['1'])
  auto?: '1';

  /** Refused with 400 `token_in_query`: an invite goes in the body of `POST .../challenge`, never in a URL. */
  @ApiPropertyOptional({ deprecated: true, description: 'Refused (400 token_in_query): send an invite to POST /auth/external/{provider}/challenge' })
  @IsOptional()
  invite?: unknown;
}

/** An invite accepted through a provider: `userId` and `token` from the invite link's fragment. */
export class InviteChallengeDto extends UserTokenDto {
  @ApiPropertyOptional({ description: 'Same-origin path to land on after sign-in', example: '/backoffice/' })
  @IsOptional()
  @IsString()
  @MaxLength(2048)
  returnUrl?: string;
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
