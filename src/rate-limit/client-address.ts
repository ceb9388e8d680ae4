// Client addresses as the limiter counts them: an IPv4 address, or an IPv6 /64 (one end site
// usually holds a whole /64 and rotates privacy addresses inside it, so a per-address limit on
// IPv6 is no limit at all). IPv4-mapped IPv6 is the IPv4 address it carries.
import { isIP } from 'node:net';

export interface ClientAddress {
  family: 4 | 6;
  /** Canonical full address (IPv4 dotted, IPv6 eight lower-case groups), for network matching. */
  address: string;
  /** What is counted and banned: the IPv4 address, or the IPv6 /64 as `a:b:c:d::/64`. */
  subject: string;
}

/** undefined when the text is no IP address (then nothing is counted by IP). */
export function parseClientAddress(raw: string): ClientAddress | undefined {
  // Dovecot may send a zone (fe80::1%eth0) and some proxies bracket IPv6; neither changes the client.
  const text = raw
    .trim()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/%.*$/, '');
  const family = isIP(text);
  if (family === 4) return ipv4(text);
  if (family !== 6) return undefined;
  const groups = expandIpv6(text);
  if (!groups) return undefined;
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    const [high = 0, low = 0] = groups.slice(6);
    return ipv4(`${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`);
  }
  const hex = groups.map((group) => group.toString(16));
  return { family: 6, address: hex.join(':'), subject: `${hex.slice(0, 4).join(':')}::/64` };
}

function ipv4(text: string): ClientAddress {
  // isIP accepts only canonical dotted quads (no leading zeros), so the text is already canonical.
  return { family: 4, address: text, subject: text };
}

/** Eight 16-bit groups of a valid IPv6 address (isIP has already said it is one). */
function expandIpv6(text: string): number[] | undefined {
  let body = text.toLowerCase();
  const tail: number[] = [];
  const embedded = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(body);
  if (embedded) {
    const [a, b, c, d] = embedded.slice(1).map(Number) as [number, number, number, number];
    tail.push((a << 8) | b, (c << 8) | d);
    body = body.slice(0, embedded.index);
    // "::1.2.3.4" leaves "::", "64:ff9b::1.2.3.4" leaves "64:ff9b::", "1:2:3:4:5:6:1.2.3.4" leaves "…:6:".
    if (body.endsWith(':') && !body.endsWith('::')) body = body.slice(0, -1);
  }
  const parseGroups = (part: string) => (part === '' ? [] : part.split(':').map((group) => Number.parseInt(group, 16)));
  const gap = body.indexOf('::');
  const wanted = 8 - tail.length;
  let head: number[];
  if (gap === -1) {
    head = parseGroups(body);
  } else {
    const before = parseGroups(body.slice(0, gap));
    const after = parseGroups(body.slice(gap + 2));
    head = [...before, ...new Array<number>(wanted - before.length - after.length).fill(0), ...after];
  }
  const groups = [...head, ...tail];
  return groups.length === 8 && groups.every((group) => Number.isInteger(group)) ? groups : undefined;
}

/**
 * CIDR networks the limiter never counts or bans by IP. Throws on a malformed network, naming it.
 * Matching is plain arithmetic on the parsed groups: node's BlockList builds a SocketAddress per
 * check, which costs more than the rest of a cached login.
 */
export function createNetworkList(cidrs: string[]): (address: ClientAddress) => boolean {
  const networks: { family: 4 | 6; groups: number[]; prefixLength: number }[] = [];
  for (const cidr of cidrs) {
    const match = /^([^/]+)\/(\d{1,3})$/.exec(cidr.trim());
    const network = match?.[1] ? parseClientAddress(match[1]) : undefined;
    const declaredFamily = match?.[1] ? isIP(match[1]) : 0;
    const prefixLength = Number(match?.[2]);
    if (!network || declaredFamily === 0 || prefixLength > (declaredFamily === 4 ? 32 : 128)) {
      throw new Error(`rate limiter: exempt network "${cidr}" is not an IPv4 or IPv6 CIDR network`);
    }
    // An IPv4-mapped IPv6 network (::ffff:a.b.c.d/N) is the IPv4 network it carries.
    const isMapped = declaredFamily === 6 && network.family === 4;
    networks.push({
      family: network.family,
      groups: groupsOf(network),
      prefixLength: isMapped ? Math.max(0, prefixLength - 96) : prefixLength,
    });
  }
  return (address) => {
    const groups = groupsOf(address);
    return networks.some(
      (network) => network.family === address.family && hasPrefix(groups, network.groups, network.prefixLength),
    );
  };
}

/** 16-bit groups: two for IPv4, eight for IPv6. */
function groupsOf(address: ClientAddress): number[] {
  if (address.family === 4) {
    const [a = 0, b = 0, c = 0, d = 0] = address.address.split('.').map(Number);
    return [(a << 8) | b, (c << 8) | d];
  }
  return address.address.split(':').map((group) => Number.parseInt(group, 16));
}

function hasPrefix(groups: number[], network: number[], prefixLength: number): boolean {
  let remaining = prefixLength;
  for (let index = 0; remaining > 0; index += 1) {
    const bits = Math.min(16, remaining);
    const mask = (0xffff << (16 - bits)) & 0xffff;
    if (((groups[index] ?? 0) & mask) !== ((network[index] ?? 0) & mask)) return false;
    remaining -= bits;
  }
  return true;
}

/** What a request says about its client: the TCP peer and the proxy headers it carried. */
export interface ForwardedRequest {
  peer: string | undefined;
  /** X-Forwarded-For as received (repeated headers joined with commas). */
  forwardedFor?: string | undefined;
  realIp?: string | undefined;
}

/**
 * The client's address behind trusted reverse proxies. A peer that is not a trusted proxy is the
 * client, whatever headers it sent. From a trusted proxy, X-Forwarded-For is read from the right
 * (each proxy appends the address it saw, so the right-most entries are the only ones a client
 * cannot write): the first address that is not itself a trusted proxy is the client. When the chain
 * holds only trusted proxies, or an entry is unreadable, the left-most trusted hop read so far is
 * the best known. X-Real-IP counts only when there is no X-Forwarded-For at all: the shipped nginx
 * sends both, while some proxies (Apache, Caddy) pass a client's X-Real-IP through unchanged.
 * undefined when even the peer is unknown.
 */
export function createClientAddressResolver(
  trustedProxies: string[],
): (request: ForwardedRequest) => string | undefined {
  const isTrusted = createNetworkList(trustedProxies);
  const trusts = trustedProxies.length > 0;
  return ({ peer, forwardedFor, realIp }) => {
    const peerAddress = peer === undefined ? undefined : readAddress(peer);
    if (!peerAddress) return peer;
    if (!trusts || !isTrusted(peerAddress.parsed)) return peerAddress.text;
    if (forwardedFor !== undefined && forwardedFor.trim() !== '') {
      let client = peerAddress;
      const hops = forwardedFor.split(',');
      for (let index = hops.length - 1; index >= 0; index -= 1) {
        const hop = readAddress(hops[index] ?? '');
        if (!hop) break;
        client = hop;
        if (!isTrusted(hop.parsed)) break;
      }
      return client.text;
    }
    const real = realIp === undefined ? undefined : readAddress(realIp);
    return (real ?? peerAddress).text;
  };
}

/** An address as a log line and the limiter should see it: IPv4-mapped IPv6 as IPv4, no brackets. */
function readAddress(raw: string): { parsed: ClientAddress; text: string } | undefined {
  const parsed = parseClientAddress(raw);
  if (!parsed) return undefined;
  const text =
    parsed.family === 4
      ? parsed.address
      : raw
          .trim()
          .replace(/^\[(.*)\]$/, '$1')
          .replace(/%.*$/, '');
  return { parsed, text };
}
