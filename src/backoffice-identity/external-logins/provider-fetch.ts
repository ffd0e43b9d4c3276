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

/**
 * openid-client's `customFetch` for every call to a provider: `fetch`, with the body read up to
 * {@link MAX_PROVIDER_RESPONSE_BYTES} (after decompression, so a compressed bomb counts at its real size) and handed
 * on as a new response; a larger answer is cancelled and refused with {@link ProviderResponseTooLargeError}. The
 * request's `signal` (the provider timeout) covers the reading.
 */
export async function fetchFromProvider(url: string, options: RequestInit): Promise<Response> {
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
