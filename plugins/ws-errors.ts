import type { FastifyRequest } from 'fastify'
import { Counter, type Registry } from 'prom-client'
import type { WebSocket } from 'ws'

/** Errors a peer causes by its own doing: logged at debug, never with a stack at error level. */
const CLIENT_SIDE = new Set(['ECONNRESET', 'EPIPE'])

/**
 * The `errorHandler` of @fastify/websocket for the kernel's sockets. A malformed frame (ws's
 * `WS_ERR_*` errors: bad opcode, RSV bits, mask, invalid UTF-8, too long …) is the client's fault:
 * logged at debug, counted in `kernel_ws_malformed_frames_total{code}`, and the socket is left to
 * ws, which has already started the close handshake with the matching code (1002/1007/1009).
 * A peer reset is logged at debug; anything else is a server fault: error log, socket terminated.
 */
export function wsErrorHandler(registry: Registry): (error: Error, socket: WebSocket, request: FastifyRequest) => void {
  const malformed = new Counter({
    name: 'kernel_ws_malformed_frames_total',
    help: 'WebSocket frames refused as malformed, by ws error code',
    labelNames: ['code'],
    registers: [registry],
  })
  return (error, socket, request) => {
    const code = (error as NodeJS.ErrnoException).code ?? ''
    if (code.startsWith('WS_ERR_')) {
      malformed.inc({ code })
      request.log.debug({ code, reason: error.message }, 'malformed WebSocket frame')
      return
    }
    if (CLIENT_SIDE.has(code)) {
      request.log.debug({ code }, 'WebSocket peer went away')
    } else {
      request.log.error({ err: error }, 'WebSocket error')
    }
    socket.terminate()
  }
}
