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
