import { Type, type Static } from '@sinclair/typebox'

const KiB = 1024
const MiB = 1024 * KiB

const Int = (def: number, min: number, description: string) => Type.Integer({ default: def, minimum: min, description })

/**
 * Limits of the panels plugin: the one place their defaults live (config.ts spreads these at the
 * top level, so `maxPanels` is `WK_MAX_PANELS`). Counts, bytes and ms.
 */
export const PanelLimits = Type.Object({
  maxPanels: Int(1000, 1, 'panels alive at once (one more: 429 TOO_MANY_PANELS)'),
  maxPanelsPerNamespace: Type.Optional(Type.Integer({ minimum: 1, description: 'panels one namespace may hold (one more: 429 NAMESPACE_QUOTA); default a quarter of maxPanels' })),
  maxQueuedRunsPerPanel: Int(1000, 1, 'run segments waiting for their panel (one more trigger: 429 PANEL_BUSY)'),
  maxStateBytes: Int(4 * MiB, 1, 'size of one panel state: each key plus its value as JSON, bytes (bigger: 413 STATE_TOO_LARGE)'),
  maxToolTimeoutMs: Int(30_000, 1, 'largest timeoutMs a tool may declare (bigger: 400 INVALID_DEFINITION), ms'),
  maxInFlightPerNamespace: Int(2048, 1, 'triggers of one namespace in flight (one more: 429 NAMESPACE_BUSY)'),
  maxInFlightPerSocket: Int(256, 1, 'triggers of one panel WebSocket in flight (one more: ERROR SOCKET_BUSY)'),
  maxTopicsPerSocket: Int(256, 1, 'subscription topics one panel WebSocket may hold (more: ERROR TOO_MANY_TOPICS)'),
})

/** The panel WebSocket's buffer bound and heartbeat (config.ts puts them under `ws.*`: WK_WS_MAX_BUFFERED_BYTES …). */
export const PanelSocketOptions = Type.Object({
  maxBufferedBytes: Int(4 * MiB, 1, 'outgoing bytes buffered for a slow client before it is dropped'),
  pingIntervalMs: Int(30_000, 0, 'server ping interval; a socket that has not answered the previous ping is terminated (0 = off), ms'),
})

/** Options of the panels plugin: the limits plus its sockets' buffer bound and heartbeat. */
export const PanelsOptions = Type.Composite([PanelLimits, PanelSocketOptions])
export type PanelsOptions = Static<typeof PanelsOptions>
