import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';
import type { BackOfficeSession } from '../../../sessions/session-store.interface.js';

/** A server-side session. The cookie holds a random token; only its SHA-256 is stored here. */
@Entity({ name: 'backoffice_session' })
@Index(['userId'])
export class BackOfficeSessionEntity implements BackOfficeSession {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @Column({ name: 'token_hash', type: 'char', length: 64, unique: true })
  tokenHash!: string;

  /** The user's security stamp when the session was made: a new stamp ends the session. */
  @Column({ name: 'security_stamp', type: 'varchar', length: 64 })
  securityStamp!: string;

  /**
   * The stamps account changes made in this session are about to give the user, one per change in flight (oldest
   * first); the session is signed in under each until it adopts it. Null: none.
   */
  @Column({ name: 'next_security_stamps', type: 'varchar', length: 64, array: true, nullable: true })
  nextSecurityStamps!: string[] | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'last_seen_at', type: 'timestamptz' })
  lastSeenAt!: Date;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  /** When the user last proved their password in this session (sign-in or re-authentication). */
  @Column({ name: 'reauthenticated_at', type: 'timestamptz', nullable: true })
  reauthenticatedAt!: Date | null;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;

  @Column({ type: 'varchar', length: 64, nullable: true })
  ip!: string | null;

  /** A session that reaches only the two-factor setup routes (a member of a `requireTwoFactor` group without 2FA). */
  @Column({ name: 'two_factor_setup_only', type: 'boolean', default: false })
  twoFactorSetupOnly!: boolean;

  @Column({ name: 'user_agent', type: 'varchar', length: 512, nullable: true })
  userAgent!: string | null;
}
