import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** A user group; `admin` may manage users. */
@Entity({ name: 'backoffice_group' })
export class BackOfficeGroupEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'varchar', length: 64, unique: true })
  alias!: string;

  @Column({ type: 'varchar', length: 256 })
  name!: string;
}
