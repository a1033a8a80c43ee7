import WebSocket from 'ws'
import { ServerConnection } from '@jupyterlab/services'
import type { Server } from './helpers.js'

/** @jupyterlab/services' connection settings for a test server: its token appended, `ws` as the WebSocket. */
export function jupyterlabSettings(server: Server): ServerConnection.ISettings {
  return ServerConnection.makeSettings({
    baseUrl: `${server.base}/`,
    wsUrl: `${server.base.replace('http', 'ws')}/`,
    token: server.token(),
    appendToken: true,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    fetch: globalThis.fetch,
  })
}
