import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Largest answer read from a provider (discovery, JWKS, token, userinfo). Real ones are a few kilobytes (an ID token
 * with a groups claim stays well under 100 KB); openid-client reads whatever comes, so without a limit a provider (a
 * hostile or broken one among those configured) could make every callback hold tens of megabytes.
 */
export const MAX_PROVIDER_RESPONSE_BYTES = 1024 * 1024;

/** An answer from a provider that was larger than {@link MAX_PROVIDER_RESPONSE_BYTES}: not read further. */
export class ProviderResponseTooLargeError extends Error {
  constructor(url: string) {
    super(`the answer of ${new URL(url).origin}${new URL(url).pathname} is larger than 1 MiB; it was not read`);
    this.name = 'ProviderResponseTooLargeError';
  }
}

/** The deadline of one callback ended its calls to the provider: what the call was aborted with. */
export class ProviderDeadlineError extends Error {
  constructor(readonly seconds: number) {
    super(`the callback deadline (${seconds} s, callbackTimeoutSeconds) was reached before the provider answered; its calls were cancelled`);
    this.name = 'ProviderDeadlineError';
  }
}

/** The deadline signal of the callback whose provider calls are running (see {@link withProviderDeadline}). */
const callbackDeadline = new AsyncLocalStorage<AbortSignal>();

/**
 * Runs `work` (one callback's calls to the provider) under one deadline of `seconds`: every {@link fetchFromProvider}
 * it makes is cancelled when the deadline passes (besides its own per-call timeout), and none starts after it. The
 * returned promise then rejects with a {@link ProviderDeadlineError}, even if `work` has not noticed yet.
 */
export async function withProviderDeadline<T>(seconds: number, work: () => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let expire!: (error: ProviderDeadlineError) => void;
  const expired = new Promise<never>((_, reject) => (expire = reject));
  const timer = setTimeout(() => {
    const error = new ProviderDeadlineError(seconds);
    controller.abort(error);
    expire(error);
  }, seconds * 1000);
  timer.unref();
  try {
    const running = callbackDeadline.run(controller.signal, work);
    // The work's own failure after the deadline (the aborted fetch) is no second error.
    running.catch(() => undefined);
    return await Promise.race([running, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * openid-client's `customFetch` for every call to a provider: `fetch`, with the body read up to
 * {@link MAX_PROVIDER_RESPONSE_BYTES} (after decompression, so a compressed bomb counts at its real size) and handed
 * on as a new response; a larger answer is cancelled and refused with {@link ProviderResponseTooLargeError}. The
 * request's `signal` (the provider timeout) covers the reading. Within {@link withProviderDeadline} the callback's
 * deadline is combined with it: a call cannot start after the deadline, and one in flight is cancelled at it.
 */
export async function fetchFromProvider(url: string, options: RequestInit): Promise<Response> {
  const deadline = callbackDeadline.getStore();
  if (deadline) {
    deadline.throwIfAborted();
    options = { ...options, signal: options.signal ? AbortSignal.any([options.signal, deadline]) : deadline };
  }
  const response = await fetch(url, options);
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > MAX_PROVIDER_RESPONSE_BYTES) {
    await response.body?.cancel().catch(() => undefined);
    throw new ProviderResponseTooLargeError(url);
  }
  if (!response.body) return response;
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_PROVIDER_RESPONSE_BYTES) {
      await reader.cancel().catch(() => undefined);
      throw new ProviderResponseTooLargeError(url);
    }
    chunks.push(value);
  }
  // The body is decoded already: the length and encoding headers of the wire format no longer apply.
  const headers = new Headers(response.headers);
  headers.delete('content-encoding');
  headers.delete('content-length');
  return new Response(response.status === 204 || response.status === 304 ? null : Buffer.concat(chunks), {
    status: response.status,
    statusText: response.statusText,
    headers,
  });
}
