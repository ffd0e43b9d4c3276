import { Column, Entity, JoinTable, ManyToMany, PrimaryGeneratedColumn } from 'typeorm';
import { BackOfficeGroupEntity } from './backoffice-group.entity.js';

/** A back-office user row. Hashes and stamps never leave the server (see `toBackOfficeUserDto`). */
@Entity({ name: 'backoffice_user' })
export class BackOfficeUserEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'varchar', length: 256 })
  username!: string;

  @Column({ name: 'normalized_username', type: 'varchar', length: 256, unique: true })
  normalizedUsername!: string;

  @Column({ type: 'varchar', length: 256 })
  email!: string;

  @Column({ name: 'normalized_email', type: 'varchar', length: 256, unique: true })
  normalizedEmail!: string;

  @Column({ type: 'varchar', length: 256 })
  name!: string;

  @Column({ name: 'password_hash', type: 'text', nullable: true })
  passwordHash!: string | null;

  @Column({ name: 'security_stamp', type: 'varchar', length: 64 })
  securityStamp!: string;

  @Column({ name: 'access_failed_count', type: 'int', default: 0 })
  accessFailedCount!: number;

  @Column({ name: 'lockout_enabled', type: 'boolean', default: true })
  lockoutEnabled!: boolean;

  @Column({ name: 'lockout_end', type: 'timestamptz', nullable: true })
  lockoutEnd!: Date | null;

  @Column({ name: 'is_approved', type: 'boolean', default: true })
  isApproved!: boolean;

  @Column({ name: 'two_factor_enabled', type: 'boolean', default: false })
  twoFactorEnabled!: boolean;

  @Column({ name: 'phone_number', type: 'varchar', length: 64, nullable: true })
  phoneNumber!: string | null;

  @Column({ name: 'phone_number_confirmed', type: 'boolean', default: false })
  phoneNumberConfirmed!: boolean;

  @Column({ name: 'invited_at', type: 'timestamptz', nullable: true })
  invitedAt!: Date | null;

  @Column({ name: 'last_login_at', type: 'timestamptz', nullable: true })
  lastLoginAt!: Date | null;

  @Column({ name: 'last_password_change_at', type: 'timestamptz', nullable: true })
  lastPasswordChangeAt!: Date | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  /** End of the grace period in which a member of a `requireTwoFactor` group may still sign in without 2FA. */
  @Column({ name: 'two_factor_setup_deadline', type: 'timestamptz', nullable: true })
  twoFactorSetupDeadline!: Date | null;

  /** Why an admin disabled the user (shown to admins, never to the user). */
  @Column({ name: 'disabled_reason', type: 'varchar', length: 500, nullable: true })
  disabledReason!: string | null;

  /** When a disable ends by itself (the user is enabled again at the next sign-in or maintenance run). */
  @Column({ name: 'disabled_until', type: 'timestamptz', nullable: true })
  disabledUntil!: Date | null;

  /** When a password checker that owns passwords (LDAP) first vouched for the user: no reset links by email. */
  @Column({ name: 'directory_managed_at', type: 'timestamptz', nullable: true })
  directoryManagedAt!: Date | null;

  /** When an admin's forced reset removed the password, until a new one is set (null: none pending). */
  @Column({ name: 'password_reset_forced_at', type: 'timestamptz', nullable: true })
  passwordResetForcedAt!: Date | null;

  /** `person` or `api` (a machine that signs in with client credentials only). */
  @Column({ type: 'varchar', length: 16, default: 'person' })
  kind!: 'person' | 'api';

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;

  @ManyToMany(() => BackOfficeGroupEntity, { eager: true })
  @JoinTable({
    name: 'backoffice_user_group',
    joinColumn: { name: 'user_id', referencedColumnName: 'id' },
    inverseJoinColumn: { name: 'group_id', referencedColumnName: 'id' },
  })
  groups!: BackOfficeGroupEntity[];
}
