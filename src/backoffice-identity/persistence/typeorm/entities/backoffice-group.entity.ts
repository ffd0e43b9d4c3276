import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** A user group with its permissions; the built-in `admin` holds every permission. */
@Entity({ name: 'backoffice_group' })
export class BackOfficeGroupEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'varchar', length: 64, unique: true })
  alias!: string;

  @Column({ type: 'varchar', length: 256 })
  name!: string;

  /** Permission keys (built-in or host-registered). */
  @Column({ type: 'text', array: true, default: () => `'{}'` })
  permissions!: string[];

  /** Members must use two-factor authentication: those without it enrol at their next sign-in. */
  @Column({ name: 'require_two_factor', type: 'boolean', default: false })
  requireTwoFactor!: boolean;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz', default: () => 'now()' })
  updatedAt!: Date;
}
