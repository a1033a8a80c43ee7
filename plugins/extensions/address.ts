import { BlockList, isIP } from 'node:net'

/**
 * Where the http extension may go. Loopback, private, link-local, shared (CGNAT), multicast,
 * reserved and unspecified ranges, IPv4 and IPv6 (IPv4-mapped IPv6 is checked as its IPv4).
 */
const blocked = new BlockList()
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15],
  ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net, bits, 'ipv4')
for (const [net, bits] of [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
  ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001:db8::', 32], ['2002::', 16],
] as const) blocked.addSubnet(net, bits, 'ipv6')

const MAPPED_V4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i
const MAPPED_V4_HEX = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i

/** True for any address that is not a public unicast address (see the ranges above). */
export function isPrivateAddress(address: string): boolean {
  const ip = address.replace(/^\[|\]$/g, '').toLowerCase()
  const family = isIP(ip)
  if (family === 4) return blocked.check(ip, 'ipv4')
  if (family !== 6) return true // not an IP at all: refuse rather than guess
  const dotted = MAPPED_V4.exec(ip)
  if (dotted) return isPrivateAddress(dotted[1])
  const hex = MAPPED_V4_HEX.exec(ip)
  if (hex) {
    const n = (parseInt(hex[1], 16) << 16) | parseInt(hex[2], 16)
    return isPrivateAddress([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'))
  }
  return blocked.check(ip, 'ipv6')
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
