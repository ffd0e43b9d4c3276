import { Controller, Get, Res } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { withinTimeLimit } from '../backoffice-identity/common/time-limit.js';

/** How long `/health` waits for the database before it reports it down. */
const DATABASE_TIMEOUT_MS = 3000;

/** The part of the HTTP response this controller uses (Express or Fastify alike). */
export interface StatusResponse {
  status(code: number): unknown;
}

export interface HealthStatus {
  status: 'ok' | 'error';
  database: 'up' | 'down';
}

/** Liveness and database reachability, for load balancers and `docker compose`. */
@Controller('health')
export class HealthController {
  constructor(private readonly dataSource: DataSource) {}

  @Get()
  async check(@Res({ passthrough: true }) res: StatusResponse): Promise<HealthStatus> {
    const up = await this.databaseUp();
    res.status(up ? 200 : 503);
    return up ? { status: 'ok', database: 'up' } : { status: 'error', database: 'down' };
  }

  /** False when `SELECT 1` fails or has not answered within {@link DATABASE_TIMEOUT_MS} (a later failure is ignored). */
  private async databaseUp(): Promise<boolean> {
    try {
      return await withinTimeLimit(this.dataSource.query('SELECT 1').then(() => true), DATABASE_TIMEOUT_MS, () => false);
    } catch {
      return false;
    }
  }
}
