import { Controller, Get, Res } from '@nestjs/common';
import { DataSource } from 'typeorm';

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

  private async databaseUp(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), DATABASE_TIMEOUT_MS);
    });
    try {
      return await Promise.race([this.dataSource.query('SELECT 1').then(() => true), timeout]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }
}
