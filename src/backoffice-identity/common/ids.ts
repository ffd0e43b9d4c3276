const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * True for a syntactically valid UUID. Ids from clients are checked before they reach a store, so every store
 * (a database column of type uuid, or a map) sees only well-formed ids.
 */
export const isUuid = (value: unknown): value is string => typeof value === 'string' && UUID.test(value);
