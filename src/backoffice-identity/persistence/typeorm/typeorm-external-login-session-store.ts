import { Injectable, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { requireHostDataSource } from './backoffice-data-source.provider.js';
import { DataSource } from 'typeorm';
import type {
  BackOfficeExternalLoginSessionRecord,
  BackOfficeExternalLoginSessionStore,
} from '../../external-logins/external-login-session-store.interface.js';

/** `backoffice_session_external_login` rows; they are deleted with their session (foreign key, cascade). */
@Injectable()
export class TypeOrmBackOfficeExternalLoginSessionStore implements BackOfficeExternalLoginSessionStore {
  constructor(@Optional() @InjectDataSource() private readonly dataSource: DataSource) {
    requireHostDataSource(dataSource);
  }

  async attach(sessionId: string, record: BackOfficeExternalLoginSessionRecord): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO backoffice_session_external_login (session_id, provider, encrypted_id_token) VALUES ($1, $2, $3)`,
      [sessionId, record.provider, record.encryptedIdToken],
    );
  }

  async find(sessionId: string): Promise<BackOfficeExternalLoginSessionRecord | null> {
    const rows: Array<{ provider: string; encrypted_id_token: string | null }> = await this.dataSource.query(
      `SELECT provider, encrypted_id_token FROM backoffice_session_external_login WHERE session_id = $1`,
      [sessionId],
    );
    return rows[0] ? { provider: rows[0].provider, encryptedIdToken: rows[0].encrypted_id_token } : null;
  }
}
