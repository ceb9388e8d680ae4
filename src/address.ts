// The one case folding of mailbox addresses (and alias domains) that postern applies to every
// name that comes from outside: Dovecot, the sign-in form, SSO claims, the Keycloak sync, the
// admin API, SOGo. It must never depend on MariaDB's collation: mailcow's utf8mb4_general_ci
// also equates é with e, ı with i and ignores some combining marks, so every lookup compares
// the folded name byte for byte with the stored one (see storage/mailboxes.ts).

/**
 * ASCII-only lower-casing: A–Z become a–z, every other code point is left as it is. This is what
 * mailcow writes (PHP 8.2's locale-independent strtolower on the local part, idn_to_ascii on the
 * domain, data/web/inc/functions.mailbox.inc.php) and what Dovecot's default `%Lu` does, so
 * `Erin@Example.org` is `erin@example.org`, while `Érin`, `érin` and `erın` stay three other names.
 * No Unicode case mapping, no normalisation: `İ` never turns into `i` plus a combining dot.
 */
export function foldAddress(name: string): string {
  return ASCII_UPPER.test(name) ? name.replace(ASCII_UPPER_ALL, (letter) => letter.toLowerCase()) : name;
}

const ASCII_UPPER = /[A-Z]/;
const ASCII_UPPER_ALL = /[A-Z]/g;

export type NewAddressProblem = 'not_nfc' | 'unfolded_capitals' | 'invisible_characters';

/**
 * Whether a folded name may become a new mailbox. It must survive the folding round trip: be
 * its own Unicode lower case (a capital outside A–Z, such as `İ` or `É`, is not folded, so the
 * same person could arrive spelled two ways) and be in Unicode normal form C (a decomposed `é`
 * would be a second spelling of a precomposed one). Control and format characters (including
 * bidirectional overrides such as U+202E) are refused too.
 */
export function checkNewAddress(
  folded: string,
): { ok: true } | { ok: false; problem: NewAddressProblem; message: string } {
  if (INVISIBLE.test(folded)) {
    return {
      ok: false,
      problem: 'invisible_characters',
      message: 'it contains control or formatting characters',
    };
  }
  if (folded.normalize('NFC') !== folded) {
    return {
      ok: false,
      problem: 'not_nfc',
      message: 'it is not in Unicode normal form C (it has decomposed accents or combining marks)',
    };
  }
  if (folded.toLowerCase() !== folded) {
    return {
      ok: false,
      problem: 'unfolded_capitals',
      message: 'it has capital letters outside A–Z, which postern does not fold to lower case',
    };
  }
  return { ok: true };
}

const INVISIBLE = /[\p{Cc}\p{Cf}\p{Co}\p{Zl}\p{Zp}]/u;
