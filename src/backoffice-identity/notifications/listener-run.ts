import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * One run of one listener, as {@link NotificationPublisher} starts it: an identity only. A notification that takes a
 * listener's decision (`SendEmailNotification.handleEmail()`) notes which run made it, so a failure of that same run
 * can be told apart from a failure of another listener.
 */
export type BackOfficeListenerRun = object;

const runs = new AsyncLocalStorage<BackOfficeListenerRun>();

/** Calls `listener` as run `run`: {@link currentListenerRun} answers `run` in it and everything it awaits. */
export function inListenerRun<T>(run: BackOfficeListenerRun, listener: () => T): T {
  return runs.run(run, listener);
}

/** The listener run the caller is part of, or undefined outside the publisher's listeners (a detached timer's run is kept). */
export function currentListenerRun(): BackOfficeListenerRun | undefined {
  return runs.getStore();
}
