import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/** One notification, as written by the built-in audit listener. */
@Entity({ name: 'backoffice_audit_entry' })
@Index('ix_backoffice_audit_entry_created', ['createdAt', 'id'])
@Index('ix_backoffice_audit_entry_affected', ['affectedUserId', 'createdAt', 'id'])
@Index('ix_backoffice_audit_entry_performing', ['performingUserId', 'createdAt', 'id'])
@Index('ix_backoffice_audit_entry_event', ['event', 'createdAt', 'id'])
export class BackOfficeAuditEntryEntity {
  @PrimaryGeneratedColumn('increment', { type: 'bigint' })
  id!: string;

  @Column({ type: 'varchar', length: 128 })
  event!: string;

  @Column({ name: 'performing_user_id', type: 'uuid', nullable: true })
  performingUserId!: string | null;

  @Column({ name: 'affected_user_id', type: 'uuid', nullable: true })
  affectedUserId!: string | null;

  @Column({ name: 'ip_address', type: 'varchar', length: 64, nullable: true })
  ipAddress!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ type: 'jsonb', default: () => "'{}'" })
  details!: Record<string, unknown>;
}
