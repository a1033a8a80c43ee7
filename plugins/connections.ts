import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/**
 * Connection draining at shutdown. Node's `server.close()` waits for every socket but reaps only
 * keep-alive sockets idle at that instant; a socket that never sent a request, or whose request
 * finishes later, would hold the close until its keep-alive timeout. In `preClose` this destroys
 * every socket with no request in flight, then ends each other one as soon as its response is
 * done. Upgraded (WebSocket) sockets are left to the WebSocket plugin.
 */
async function connectionsPlugin(fastify: FastifyInstance): Promise<void> {
  const server = fastify.server
  const sockets = new Set<Socket>()
  const busy = new Set<Socket>()
  let draining = false

  const onConnection = (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => {
      sockets.delete(socket)
      busy.delete(socket)
    })
  }
  // one listener for every response (no closure and once-wrapper per request): `this` is the response
  function onResponseClose(this: ServerResponse): void {
    const socket = this.req.socket
    busy.delete(socket)
    if (draining) socket.destroySoon()
  }
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    busy.add(req.socket)
    res.on('close', onResponseClose)
  }
  const onUpgrade = (_req: IncomingMessage, socket: Socket) => {
    sockets.delete(socket)
  }
  server.on('connection', onConnection)
  server.on('request', onRequest)
  server.on('upgrade', onUpgrade)

  fastify.addHook('preClose', async () => {
    draining = true
    for (const socket of sockets) if (!busy.has(socket)) socket.destroy()
  })
  fastify.addHook('onClose', async () => {
    server.off('connection', onConnection)
    server.off('request', onRequest)
    server.off('upgrade', onUpgrade)
  })
}

/** Closes quiet HTTP connections at shutdown so `app.close()` does not wait on them. */
export default fp(connectionsPlugin, { name: 'connections', fastify: '5.x' })
