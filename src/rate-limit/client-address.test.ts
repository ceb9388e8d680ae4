import { describe, expect, it } from 'vitest';
import { createClientAddressResolver, createNetworkList, parseClientAddress } from './client-address.js';

describe('parseClientAddress', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    [' 192.0.2.1 ', '192.0.2.1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:c000:201', '192.0.2.1'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:DB8:1:2::9', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff::', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['[2001:db8::1]', '2001:db8:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
    ['1:2:3:4:5:6:192.0.2.1', '1:2:3:4::/64'],
  ])('counts %j as %s', (raw, subject) => {
    expect(parseClientAddress(raw)?.subject).toBe(subject);
  });

  it.each(['', 'unknown', '1.2.3', '192.0.2.256', '01.2.3.4', '2001:db8::1::2', '192.0.2.0/24'])(
    'does not count %j as an address',
    (raw) => {
      expect(parseClientAddress(raw)).toBeUndefined();
    },
  );
});

describe('createNetworkList', () => {
  const isExempt = createNetworkList(['10.0.0.0/8', 'fd00::/8', '192.0.2.7/32']);

  it.each([
    ['10.1.2.3', true],
    ['::ffff:10.1.2.3', true],
    ['fd12:3456::1', true],
    ['192.0.2.7', true],
    ['192.0.2.8', false],
    ['11.0.0.1', false],
    ['fe80::1', false],
  ])('says whether %s is in the networks: %s', (raw, expected) => {
    const address = parseClientAddress(raw);
    if (!address) throw new Error(`test address ${raw} does not parse`);
    expect(isExempt(address)).toBe(expected);
  });

  it.each([
    ['172.16.0.0/12', '172.31.255.255', true],
    ['172.16.0.0/12', '172.32.0.0', false],
    ['198.51.100.0/20', '198.51.111.1', true],
    ['198.51.100.0/20', '198.51.112.1', false],
    ['0.0.0.0/0', '203.0.113.9', true],
    ['0.0.0.0/0', '2001:db8::1', false],
    ['2001:db8:1:2::/64', '2001:db8:1:2:ffff::1', true],
    ['2001:db8:1:2::/64', '2001:db8:1:3::1', false],
    ['2001:db8::/127', '2001:db8::1', true],
    ['2001:db8::/127', '2001:db8::2', false],
    ['::/0', '2001:db8::1', true],
    ['::ffff:192.0.2.0/120', '192.0.2.200', true],
    ['::ffff:192.0.2.0/120', '192.0.3.1', false],
  ])('matches %s against %s by prefix arithmetic: %s', (cidr, raw, expected) => {
    const address = parseClientAddress(raw);
    if (!address) throw new Error(`test address ${raw} does not parse`);
    expect(createNetworkList([cidr])(address)).toBe(expected);
  });

  it.each(['300.0.0.0/8', '10.0.0.0/33', 'fd00::/129', 'fd00::', 'example.org/8'])(
    'refuses the malformed network %j, naming it',
    (cidr) => {
      expect(() => createNetworkList([cidr])).toThrow(cidr);
    },
  );
});

describe('createClientAddressResolver', () => {
  // The shipped nginx (deploy/nginx/postern-sogo.conf) sends X-Real-IP $remote_addr and
  // X-Forwarded-For $proxy_add_x_forwarded_for: whatever the client sent, plus the address nginx saw.
  const resolve = createClientAddressResolver(['127.0.0.0/8', '::1/128', '10.0.0.0/8']);

  it.each([
    [
      'a client straight from the Internet, headers ignored',
      '203.0.113.9',
      '198.51.100.1',
      '198.51.100.1',
      '203.0.113.9',
    ],
    ['a client straight from the Internet without headers', '203.0.113.9', undefined, undefined, '203.0.113.9'],
    ['nginx on the same host', '127.0.0.1', '203.0.113.9', '203.0.113.9', '203.0.113.9'],
    [
      'nginx, the client forging X-Forwarded-For',
      '127.0.0.1',
      '127.0.0.1, 192.0.2.7, 203.0.113.9',
      '203.0.113.9',
      '203.0.113.9',
    ],
    ['nginx, the client forging X-Real-IP only', '::ffff:127.0.0.1', '203.0.113.9', '203.0.113.9', '203.0.113.9'],
    ['two trusted proxies', '127.0.0.1', '203.0.113.9, 10.1.2.3', '10.1.2.3', '203.0.113.9'],
    ['only trusted hops', '127.0.0.1', '10.1.2.3, 127.0.0.5', undefined, '10.1.2.3'],
    ['an unreadable entry stops the walk', '127.0.0.1', '203.0.113.9, unknown, 10.1.2.3', undefined, '10.1.2.3'],
    ['an unreadable right-most entry leaves the peer', '127.0.0.1', 'garbage', '203.0.113.9', '127.0.0.1'],
    ['X-Real-IP when there is no X-Forwarded-For', '127.0.0.1', undefined, '203.0.113.9', '203.0.113.9'],
    ['an unreadable X-Real-IP leaves the peer', '127.0.0.1', undefined, 'nonsense', '127.0.0.1'],
    ['a local client without a proxy', '127.0.0.1', undefined, undefined, '127.0.0.1'],
    ['IPv6 through the proxy', '::1', '[2001:db8::7]', undefined, '2001:db8::7'],
    ['IPv4-mapped IPv6 through the proxy', '::1', '::ffff:203.0.113.9', undefined, '203.0.113.9'],
  ])('%s', (_label, peer, forwardedFor, realIp, expected) => {
    expect(resolve({ peer, forwardedFor, realIp })).toBe(expected);
  });

  it('trusts no header when no proxy is trusted', () => {
    const direct = createClientAddressResolver([]);
    expect(direct({ peer: '::ffff:127.0.0.1', forwardedFor: '203.0.113.9', realIp: '203.0.113.9' })).toBe('127.0.0.1');
  });

  it('answers undefined only when the peer is unknown', () => {
    expect(resolve({ peer: undefined, forwardedFor: '203.0.113.9' })).toBeUndefined();
  });
});
