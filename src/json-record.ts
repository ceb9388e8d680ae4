// The one reader of the JSON records postern keeps in Redis (portal and admin sessions, SSO
// transactions, webmail handoffs, sync progress): a record that is missing, not JSON, not an
// object or not of the expected shape is no record at all, never an exception.

/** `text` parsed as an object that `isValid` accepts, else undefined. */
export function parseJsonRecord<T extends object>(
  text: string | null | undefined,
  isValid: (value: Partial<T>) => boolean,
): T | undefined {
  if (!text) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && isValid(value as Partial<T>) ? (value as T) : undefined;
  } catch {
    return undefined;
  }
}
