import { describe, expect, it } from 'vitest';
import { isAllowedFrom } from './admin-auth.js';

describe('isAllowedFrom', () => {
  it.each([
    { address: '192.0.2.5', allow: '192.0.2.5', allowed: true },
    { address: '192.0.2.5', allow: '10.0.0.0/8, 192.0.2.0/24', allowed: true },
    { address: '192.0.3.5', allow: '192.0.2.0/24', allowed: false },
    { address: '::ffff:192.0.2.5', allow: '192.0.2.0/24', allowed: true },
    { address: '2001:db8::1', allow: '2001:db8::/32', allowed: true },
    { address: '2001:db9::1', allow: '2001:db8::/32', allowed: false },
    { address: '2001:db8::1', allow: '192.0.2.0/24', allowed: false },
    { address: '192.0.2.5', allow: '', allowed: false },
    { address: '192.0.2.5', allow: 'not-an-ip', allowed: false },
    { address: undefined, allow: '0.0.0.0/0', allowed: false },
  ])('$address against "$allow" → $allowed', ({ address, allow, allowed }) => {
    expect(isAllowedFrom(address, allow)).toBe(allowed);
  });
});
