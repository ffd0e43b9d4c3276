/** A page of a list: `skip` rows passed over first (an offset), then at most `take`. */
export interface BackOfficeListPage {
  skip: number;
  take: number;
}

/** `page` of `rows` (all the rows, in their order) and whether rows follow it: for stores without a paged read. */
export function slicePage<T>(rows: readonly T[], page: BackOfficeListPage): { items: T[]; more: boolean } {
  return { items: rows.slice(page.skip, page.skip + page.take), more: rows.length > page.skip + page.take };
}

/** `page` of `rows` (all the rows, in their order) with their exact count: a counted list's page for stores without a paged read. */
export function countedPage<T>(rows: readonly T[], page: BackOfficeListPage): { items: T[]; total: number; totalExact: boolean } {
  return { items: slicePage(rows, page).items, total: rows.length, totalExact: true };
}
