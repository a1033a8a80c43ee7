import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { RawData, WebSocket } from 'ws'
import type { Kernel } from '../plugins/kernels/kernel.js'
import { BadFrame, V1_PROTOCOL, decodeLegacy, decodeV1, type ClientMessage } from '../plugins/kernels/ws-protocol.js'
import { KernelParams } from '../schemas/kernels.js'
import { authenticated } from './kernels.js'
import { namespaceOf } from './processes.js'

/** Channels a client may send on (iopub is the kernel's; hb is not carried over WebSocket). */
const CLIENT_CHANNELS = new Set(['shell', 'control', 'stdin'])
/** Consecutive undecodable frames before the socket is closed with 1007 (specs/kernels.md section 6). */
const MAX_BAD_FRAMES = 10

const ChannelsQuery = Type.Object({
  session_id: Type.Optional(Type.String({ maxLength: 256, description: 'client session; a reconnect with the same id gets the messages buffered meanwhile' })),
  token: Type.Optional(Type.String()),
})

/** Decodes one frame in the connection's protocol. Throws BadFrame. */
function decode(v1: boolean, data: RawData, isBinary: boolean): ClientMessage {
  const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer)
  if (v1) {
    if (!isBinary) throw new BadFrame('v1 frames are binary')
    return decodeV1(buf)
  }
  return decodeLegacy(buf, isBinary)
}

/**
 * Sets the largest frame `socket` accepts (bytes; a bigger one: ws closes the socket with 1009). ws
 * has one `maxPayload` per server (the panels' `ws.maxPayloadBytes`) and no public per-socket
 * setting (websockets/ws#1473 was declined), so the kernel channels set their receiver's, which ws
 * reads at each frame header. Called from the upgrade callback, before the socket's first frame is read.
 * @throws Error when the installed ws has no such receiver (test/kernels/frame-limit.test.ts catches it)
 */
function limitFrames(socket: WebSocket, bytes: number): void {
  const receiver = (socket as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver
  if (typeof receiver?._maxPayload !== 'number') throw new Error('ws: no per-socket frame limit to set (its internals changed)')
  receiver._maxPayload = bytes
}

/** Serves one connection until it or the kernel goes away. */
function serve(fastify: FastifyInstance, socket: WebSocket, kernel: Kernel, sessionId: string): void {
  const v1 = socket.protocol === V1_PROTOCOL
  const hub = fastify.kernels.channels(kernel)
  const { connection, unsubscribe } = hub.connect(sessionId, v1, socket)
  kernel.connections++
  const allowed = fastify.kernels.options.allowedMessageTypes
  let bad = 0
  socket.on('message', (data, isBinary) => {
    let msg: ClientMessage
    try {
      msg = decode(v1, data, isBinary)
      bad = 0
    } catch (err) {
      if (!(err instanceof BadFrame)) throw err
      if (++bad >= MAX_BAD_FRAMES) socket.close(1007, 'too many invalid frames')
      return
    }
    // unknown channel or disallowed type: dropped, as jupyter_server does
    if (!CLIENT_CHANNELS.has(msg.channel)) return
    if (allowed.length > 0 && !allowed.includes(msg.message.header.msg_type)) return
    try {
      kernel.send(msg.channel as 'shell' | 'control' | 'stdin', msg.message, connection)
    } catch {
      // dead kernel: the client saw status dead; the message goes nowhere
    }
  })
  const onRemoved = () => socket.close(4004, 'kernel deleted')
  kernel.once('removed', onRemoved)
  socket.once('close', () => {
    kernel.off('removed', onRemoved)
    kernel.connections--
    unsubscribe()
    hub.disconnect(connection)
  })
}

/**
 * WebSocket `/api/kernels/:id/channels?session_id=` (Jupyter Server's kernel channels): the
 * `v1.kernel.websocket.jupyter.org` binary protocol when the client offers it, else legacy JSON.
 * iopub goes to every connection, replies and stdin requests to the requesting one. Unknown or other
 * namespace's kernel: 404 before the upgrade. Closes: 1007 after 10 undecodable frames in a row, 1009 for a
 * frame over `kernels.wsMaxPayloadBytes` (10 MiB, Jupyter Server's limit; not the panels' `ws.maxPayloadBytes`),
 * 4004 when the kernel is deleted, 1001 at server shutdown.
 */
export default async function kernelsWsRoutes(fastify: FastifyInstance): Promise<void> {
  authenticated(fastify)
  fastify.get<{ Params: { id: string }; Querystring: { session_id?: string } }>('/api/kernels/:id/channels', {
    websocket: true,
    schema: { tags: ['kernels'], operationId: 'kernelChannels', summary: 'Kernel channels (Jupyter WebSocket protocol, v1 or legacy JSON)', params: KernelParams, querystring: ChannelsQuery },
    preHandler: async (request: FastifyRequest<{ Params: { id: string } }>) => {
      fastify.kernels.get(namespaceOf(request), request.params.id)
    },
  }, (socket, request) => {
    limitFrames(socket, fastify.kernels.options.wsMaxPayloadBytes)
    const kernel = fastify.kernels.get(namespaceOf(request), request.params.id)
    serve(fastify, socket, kernel, request.query.session_id ?? '')
  })
}
