import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Failed-login counter for usernames that match no user, so lockout reveals no account. */
@Entity({ name: 'backoffice_login_attempt' })
export class BackOfficeLoginAttemptEntity {
  @PrimaryColumn({ name: 'normalized_username', type: 'varchar', length: 256 })
  normalizedUsername!: string;

  @Column({ name: 'access_failed_count', type: 'int', default: 0 })
  accessFailedCount!: number;

  @Column({ name: 'lockout_end', type: 'timestamptz', nullable: true })
  lockoutEnd!: Date | null;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
