import { connect } from 'node:net';

/** An answer read off the socket as it came: status, headers (names in lower case, repeats kept), body text. */
export interface RawHttpAnswer {
  /** 0 when the server closed the connection (or went silent) without answering. */
  status: number;
  headers: Record<string, string[]>;
  body: string;
}

/** `chunked` transfer coding undone (RFC 9112 7.1); trailers ignored. */
function unchunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol === -1) break;
    const size = parseInt(data.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** Parses the first answer in `data` (the server closes the connection after it: requests send `Connection: close`). */
function parseAnswer(data: Buffer, head: boolean): RawHttpAnswer {
  // An interim answer (`100 Continue` to `Expect: 100-continue`) comes before the final one.
  while (/^HTTP\/1\.[01] 1\d\d /.test(data.subarray(0, 13).toString('latin1')) && data.indexOf('\r\n\r\n') !== -1) data = data.subarray(data.indexOf('\r\n\r\n') + 4);
  const end = data.indexOf('\r\n\r\n');
  if (end === -1) return { status: 0, headers: {}, body: data.toString('latin1') };
  const [statusLine, ...lines] = data.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string[]> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    (headers[line.slice(0, colon).trim().toLowerCase()] ??= []).push(line.slice(colon + 1).trim());
  }
  let body = data.subarray(end + 4);
  if (head) body = Buffer.alloc(0);
  else if (headers['transfer-encoding']?.[0]?.toLowerCase() === 'chunked') body = unchunk(body);
  else if (headers['content-length']) body = body.subarray(0, Number(headers['content-length'][0]));
  return { status: Number(statusLine.split(' ')[1]), headers, body: body.toString('utf8') };
}

/**
 * Sends `request` byte for byte (malformed framing, odd methods, paths no URL class would keep) to `url`'s host and
 * port and reads the answer until the server closes the connection or `timeoutMs` passes. `parts` sent one after the
 * other with `pauseMs` between them (a body that stops half way: the socket is ended after the last part).
 */
export function rawHttp(url: string, request: string | Buffer | Array<string | Buffer>, options: { timeoutMs?: number; pauseMs?: number; head?: boolean } = {}): Promise<RawHttpAnswer> {
  const { hostname, port } = new URL(url);
  const parts = Array.isArray(request) ? request : [request];
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(port), hostname);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(parseAnswer(Buffer.concat(chunks), options.head ?? /^HEAD /.test(String(parts[0]))));
    };
    const timer = setTimeout(finish, options.timeoutMs ?? 3000);
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('close', finish);
    socket.on('error', () => undefined);
    socket.on('connect', async () => {
      for (const [i, part] of parts.entries()) {
        if (i > 0) await new Promise((r) => setTimeout(r, options.pauseMs ?? 50));
        if (!socket.destroyed) socket.write(part);
      }
    });
  });
}

/** `METHOD path HTTP/1.1` with a Host, `Connection: close`, the given header lines and body (Content-Length unless framed). */
export function rawRequest(method: string, path: string, options: { headers?: string[]; body?: string | Buffer; version?: string; host?: boolean } = {}): Buffer {
  const body = options.body === undefined ? undefined : Buffer.from(options.body);
  const headers = [...(options.host === false ? [] : ['Host: 127.0.0.1']), 'Connection: close', ...(options.headers ?? [])];
  const framed = headers.some((h) => /^(content-length|transfer-encoding):/i.test(h));
  if (body !== undefined && !framed) headers.push(`Content-Length: ${body.length}`);
  return Buffer.concat([Buffer.from(`${method} ${path} ${options.version ?? 'HTTP/1.1'}\r\n${headers.join('\r\n')}\r\n\r\n`, 'latin1'), body ?? Buffer.alloc(0)]);
}
