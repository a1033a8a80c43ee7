import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** A running forecast service. */
export interface ForecastServer {
  /** e.g. http://127.0.0.1:41234/forecast */
  url: string
  close(): Promise<void>
}

/** A deterministic "temperature" for a city name, °C. */
export function tempFor(city: string): number {
  let h = 0
  for (const ch of city) h = (h * 31 + ch.charCodeAt(0)) % 997
  return (h % 35) - 5
}

/**
 * A slow local HTTP service: `GET /forecast?city=X` answers `{ city, tempC, summary }` as JSON
 * after `delayMs` (ms). Listens on 127.0.0.1 and a free port. Other paths answer 404.
 */
export async function startForecastServer(delayMs = 300): Promise<ForecastServer> {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    const city = url.searchParams.get('city')
    if (url.pathname !== '/forecast' || !city) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found' }))
      return
    }
    const timer = setTimeout(() => {
      const tempC = tempFor(city)
      const body = JSON.stringify({ city, tempC, summary: tempC > 20 ? 'warm' : tempC > 8 ? 'mild' : 'cold' })
      res.writeHead(200, { 'content-type': 'application/json' }).end(body)
    }, delayMs)
    res.on('close', () => clearTimeout(timer))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/forecast`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
