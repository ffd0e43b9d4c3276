import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * Failed-login counter for usernames that match no user, so lockout reveals no account. Keyed by an HMAC of
 * the attempted username (people type passwords into the username field): the text is never stored.
 */
@Entity({ name: 'backoffice_login_attempt' })
export class BackOfficeLoginAttemptEntity {
  @PrimaryColumn({ name: 'username_hash', type: 'char', length: 64 })
  usernameHash!: string;

  @Column({ name: 'access_failed_count', type: 'int', default: 0 })
  accessFailedCount!: number;

  @Column({ name: 'lockout_end', type: 'timestamptz', nullable: true })
  lockoutEnd!: Date | null;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
