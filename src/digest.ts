// The one SHA-256 digest postern keys stored records by (portal and admin sessions, handoffs, SSO
// states, API keys, recovery codes): a record is named by the hash of its secret, never by the
// secret itself.
import { createHash } from 'node:crypto';

/** Lower-case hex SHA-256 of a UTF-8 string. */
export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}
