import { BlockList, isIP } from 'node:net'

/**
 * Where the http extension may go. Loopback, private, link-local, shared (CGNAT), multicast,
 * reserved and unspecified ranges, IPv4 and IPv6. Every IPv6 form that embeds an IPv4 address
 * (IPv4-compatible `::/96`, IPv4-mapped `::ffff:0:0/96`, IPv4-translated `::ffff:0:0:0/96`, NAT64,
 * 6to4) is refused whole: DNS answers A records for IPv4 hosts, so no public name needs them.
 */
// two lists: a BlockList matches IPv4 addresses against IPv6 rules through their mapped form
const blockedV4 = new BlockList()
const blockedV6 = new BlockList()
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15],
  ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blockedV4.addSubnet(net, bits, 'ipv4')
for (const [net, bits] of [
  ['::', 96], ['::ffff:0:0', 96], ['::ffff:0:0:0', 96], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
  ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001:db8::', 32], ['2002::', 16],
] as const) blockedV6.addSubnet(net, bits, 'ipv6')

/** True for any address that is not a public unicast address (see the ranges above). */
export function isPrivateAddress(address: string): boolean {
  const ip = address.replace(/^\[|\]$/g, '').toLowerCase()
  const family = isIP(ip)
  if (family === 4) return blockedV4.check(ip, 'ipv4')
  if (family !== 6) return true // not an IP at all: refuse rather than guess
  return blockedV6.check(ip, 'ipv6')
}

/** Lowercased host without IPv6 brackets or a trailing dot. */
export function normalizeHost(host: string): string {
  return host.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase()
}

/** Whether `host` is in `allowed`: exact names, or `*.example.com` for any subdomain (not example.com). Empty list = all. */
export function hostAllowed(host: string, allowed: readonly string[]): boolean {
  if (allowed.length === 0) return true
  const h = normalizeHost(host)
  return allowed.some((pattern) => {
    const p = normalizeHost(pattern)
    return p.startsWith('*.') ? h.endsWith(p.slice(1)) && h.length > p.length - 1 : h === p
  })
}

/** Whether `host` is listed exactly (not through a wildcard): such hosts may be private. */
export function hostListedExactly(host: string, allowed: readonly string[]): boolean {
  const h = normalizeHost(host)
  return allowed.some((p) => normalizeHost(p) === h)
}
