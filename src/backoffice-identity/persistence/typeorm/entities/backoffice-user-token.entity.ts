import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

import type { BackOfficeTokenPurpose } from '../../../users/stores/user-store.interface.js';

/** A single-use token (invite, password reset), kept only as its SHA-256. */
@Entity({ name: 'backoffice_user_token' })
@Index(['userId', 'purpose'])
export class BackOfficeUserTokenEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @Column({ type: 'varchar', length: 32 })
  purpose!: BackOfficeTokenPurpose;

  @Column({ name: 'token_hash', type: 'char', length: 64, unique: true })
  tokenHash!: string;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  @Column({ name: 'used_at', type: 'timestamptz', nullable: true })
  usedAt!: Date | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  /** For `change_email`: the address that becomes the user's email once the link is opened. */
  @Column({ name: 'new_email', type: 'varchar', length: 256, nullable: true })
  newEmail!: string | null;

  /** Stored beside the live link, its email still on its way: a hand-over of another link leaves it live (migration 1732640000000). */
  @Column({ name: 'hand_over_pending', type: 'boolean', default: false })
  handOverPending!: boolean;
}
