import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';

/**
 * Work that runs after the response (e.g. the forgot-password email, so that known and unknown emails answer
 * in the same time). Failures are logged; shutdown waits for what is in flight.
 */
@Injectable()
export class BackOfficeBackgroundTasks implements OnApplicationShutdown {
  private readonly logger = new Logger('BackOfficeBackgroundTasks');
  private readonly running = new Set<Promise<void>>();

  /** Starts `work` on a later turn of the event loop, after the current response has been written. */
  run(name: string, work: () => Promise<unknown>): void {
    const task: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
      .then(work)
      .then(
        () => undefined,
        (error: unknown) => this.logger.error(`${name} failed: ${error instanceof Error ? error.message : String(error)}`),
      )
      .finally(() => this.running.delete(task));
    this.running.add(task);
  }

  /** Resolves when every task started so far has finished. */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.drain();
  }
}
