import { ApiPropertyOptional, type HeadersObject } from '@nestjs/swagger';
import { IsOptional, Max, Min } from 'class-validator';
import type { BackOfficeListPage } from '../common/list-page.js';
import { BackOfficeRequestContextStore } from '../common/request-context.js';
import { MAX_LIST_SKIP, MAX_LIST_SKIP_TEXT, MaxListSkip } from './list-offset.js';
import { QueryInteger } from './query-integer.js';

/**
 * Rows a page of `GET /auth/sessions`, `GET /users/api` and `GET /groups` holds when the client names no `take`. These
 * lists answered every row before they were paged, and the contract (and clients built on it, such as a group picker
 * that writes the ticked groups back) expects them whole: the default is the largest page, so a client that sends no
 * paging parameters gets every row of any list of a realistic length. The bound only protects the server against an
 * absurd list; a longer one says where the rest is (`Link: rel="next"`).
 */
export const DEFAULT_LIST_PAGE_SIZE = 1000;

/**
 * The largest `take` of those lists (one page is built in memory and sent as one JSON body). Equal to
 * {@link DEFAULT_LIST_PAGE_SIZE}: a smaller default would silently cut answers clients expect whole.
 */
export const MAX_LIST_PAGE_SIZE = 1000;

/**
 * Query of the lists that were unpaged before (`GET /auth/sessions`, `GET /users/api`, `GET /groups`): the module's
 * `skip` / `take`, both optional, validated like `GET /users`' (400 `validation_failed` naming the field for a
 * negative, fractional, non-numeric, Unicode-digit, repeated or too large value). Other query fields are ignored
 * (these routes ignored the query before, and a client's cache buster such as `_=<time>` must not start failing).
 */
export class ListPageQuery implements BackOfficeListPage {
  /**
   * The fields this query reads; {@link BackOfficeValidationPipe} drops the others. Read only from the class that
   * defines it (not inherited): a subclass that adds a field is validated whole unless it names its own.
   */
  static readonly queryFields: readonly string[] = ['skip', 'take'];

  @ApiPropertyOptional({ type: 'integer', default: 0, minimum: 0, maximum: MAX_LIST_SKIP, description: `Rows to skip (OFFSET, at most ${MAX_LIST_SKIP_TEXT})` })
  @IsOptional()
  @QueryInteger()
  @Min(0)
  @MaxListSkip('no list of this kind is that long')
  skip: number = 0;

  @ApiPropertyOptional({
    type: 'integer',
    default: DEFAULT_LIST_PAGE_SIZE,
    minimum: 1,
    maximum: MAX_LIST_PAGE_SIZE,
    description:
      'Rows in the page (default: the largest page, so a client that names no `take` gets the whole list unless it is longer than that); ' +
      'when more follow, the answer has a `Link: <...>; rel="next"` header (RFC 8288)',
  })
  @IsOptional()
  @QueryInteger()
  @Min(1)
  @Max(MAX_LIST_PAGE_SIZE)
  take: number = DEFAULT_LIST_PAGE_SIZE;
}

/**
 * The response headers of a page of those lists, for their `@ApiOkResponse({ headers })`: `Link` (RFC 8288) with the
 * next page's reference, sent only when rows follow the page (so absent on the last or only page).
 */
export const LIST_PAGE_RESPONSE_HEADERS: HeadersObject = {
  Link: {
    description:
      'Only when rows follow this page: `<path?skip=..&take=..>; rel="next"` (RFC 8288; the path left out when it needs quoting), the same route with `skip` moved on by `take` ' +
      `(none when that \`skip\` would be over ${MAX_LIST_SKIP_TEXT}). Absent on the last page.`,
    required: false,
    schema: { type: 'string' },
  },
};

/**
 * Characters a path may hold inside a `Link` header's `<...>` as is (RFC 3986 path characters, escapes kept); not
 * `//` first, which would make it a reference to another host.
 */
const PLAIN_PATH = /^\/(?!\/)[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/;

/**
 * The `Link` header value that points to the page after `page` (RFC 8288 `rel="next"`): the request's own path with
 * `skip` moved on by `take`. A path the request context lacks (or one that needs quoting) gives the same-document
 * reference `<?skip=..&take=..>`, which RFC 3986 resolves against the request's URL. Undefined when that page's
 * `skip` would be over {@link MAX_LIST_SKIP} (the route refuses it).
 */
export function nextPageLink(page: BackOfficeListPage): string | undefined {
  const skip = page.skip + page.take;
  if (skip > MAX_LIST_SKIP) return undefined;
  const path = BackOfficeRequestContextStore.current().path;
  const base = path && path.length < 512 && PLAIN_PATH.test(path) ? path : '';
  return `<${base}?skip=${skip}&take=${page.take}>; rel="next"`;
}

/** Whether a page of `itemCount` rows at `page.skip` leaves rows of `total` after it. */
export function rowsFollow(page: BackOfficeListPage, itemCount: number, total: number): boolean {
  return page.skip + itemCount < total;
}
