import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { WebSocket } from 'ws'
import { KernelError } from '../errors.js'
import type { Executor, RunResult } from '../executor.js'
import type { CompiledHandler, ExecutionResult, PendingCall, StateMutation } from '../../wasm-runtime/types.js'
import type { PanelState } from '../../wasm-runtime/state.js'
import type {
  DeletePanelReply,
  PanelDefinition,
  PanelDescription,
  PanelStateReply,
  PanelStatus,
  PanelSummary,
  RunOutcome,
  ToolDefinition,
  ToolInfo,
} from '../../schemas/panels.js'
import { WsCloseCode, type ProgressMessage } from '../../schemas/ws.js'
import { ArgsValidator, type ArgsCheck } from './args.js'
import { inferCapabilities } from './capabilities.js'
import { SessionHub, encode, type Session, type SessionOptions } from './sessions.js'
import { SuspensionRegistry } from './suspensions.js'

/** Options of the panel manager. Times in ms, sizes in bytes. */
export interface PanelManagerOptions extends Partial<SessionOptions> {
  /** Panels alive at once (all namespaces); creating one more answers 429 TOO_MANY_PANELS. Default 1000. */
  maxPanels?: number
  /** How long a run may wait on its extension calls before it is cancelled with TIMEOUT, ms. Default 30000. */
  suspensionTimeoutMs?: number
}

/** Hooks the plugin uses for Prometheus metrics. */
export interface RunObserver {
  runFinished(status: 'success' | 'error', durationMs: number): void
  suspended(): void
}

interface Handler {
  compiled: CompiledHandler
  capabilities: string[]
  inferred: boolean
  timeoutMs?: number
}

interface Tool extends Handler {
  def: ToolDefinition
  check: ArgsCheck
}

interface ActiveRun {
  controller: AbortController
  suspended: boolean
  /** id of the current suspension (a run may suspend several times, each under a new id) */
  executionId?: string
}

interface Panel {
  key: string
  id: string
  namespace: string
  kind: string
  title?: string
  state: Record<string, unknown>
  /** The same committed state, held by the sandbox for handlers to read lazily. */
  committed: PanelState
  version: number
  createdAt: string
  tools: Map<string, Tool>
  lifecycle: { mount?: Handler; unmount?: Handler }
  runs: Set<ActiveRun>
  closing: boolean
  removed: boolean
}

/** Options of one trigger. */
export interface TriggerOptions {
  requestId?: string
  /** Told when the run suspends on extension calls and when it resumes (WS PROGRESS). */
  onProgress?: (msg: ProgressMessage) => void
}

const keyOf = (namespace: string, id: string): string => `${namespace}\u0000${id}`

function applyMutations(state: Record<string, unknown>, mutations: StateMutation[]): Record<string, unknown> {
  const next: Record<string, unknown> = { ...state }
  for (const m of mutations) {
    if (m.operation === 'delete') delete next[m.key]
    // defineProperty: a key like "__proto__" becomes plain data, never the prototype
    else Object.defineProperty(next, m.key, { value: m.value, enumerable: true, writable: true, configurable: true })
  }
  return next
}

function runtimeErrorToKernel(err: unknown): KernelError {
  if (err instanceof KernelError) return err
  const e = err as { code?: string; message?: string }
  const status = e.code === 'CAPACITY_EXCEEDED' || e.code === 'SHUTDOWN' ? 503 : e.code === 'INVALID_INPUT' ? 400 : 500
  return new KernelError(status, e.code ?? 'INTERNAL_ERROR', e.message ?? String(err))
}

/**
 * Panels: named state plus tools whose handlers run in the wasm sandbox, scoped by namespace
 * (another namespace's panel is PANEL_NOT_FOUND). Every committed step of mutations bumps the
 * panel's `version` and is broadcast as PATCH at once; events go out as EVENT.
 */
export class PanelManager {
  private readonly panels = new Map<string, Panel>()
  private readonly reserved = new Set<string>()
  private readonly args = new ArgsValidator()
  readonly sessions: SessionHub
  readonly suspensions: SuspensionRegistry
  private readonly maxPanels: number
  private closed = false

  constructor(
    private readonly executor: Executor,
    private readonly extensionMethods: () => Record<string, string[]>,
    private readonly log: FastifyBaseLogger,
    opts: PanelManagerOptions = {},
    private readonly observer?: RunObserver,
  ) {
    this.maxPanels = opts.maxPanels ?? 1000
    this.suspensions = new SuspensionRegistry(opts.suspensionTimeoutMs ?? 30_000)
    this.sessions = new SessionHub(
      { maxBufferedBytes: opts.maxBufferedBytes ?? 1024 * 1024, pingIntervalMs: opts.pingIntervalMs ?? 30_000 },
      log,
    )
  }

  /** Panels alive (all namespaces). */
  get size(): number {
    return this.panels.size
  }

  /**
   * Create a panel: compile every handler once, infer missing capabilities, run `mount`.
   * Nothing is created when any step fails.
   * @throws KernelError 400 INVALID_DEFINITION / DUPLICATE_TOOL / INVALID_ARGS_SCHEMA /
   *   COMPILATION_ERROR (details: tool, line, column) / MOUNT_FAILED, 409 PANEL_EXISTS,
   *   429 TOO_MANY_PANELS, 503 SHUTDOWN
   */
  async create(def: PanelDefinition, namespace = 'default'): Promise<PanelDescription> {
    if (this.closed) throw new KernelError(503, 'SHUTDOWN', 'the kernel is shutting down')
    const id = def.id ?? `p_${randomUUID().replace(/-/g, '').slice(0, 16)}`
    const key = keyOf(namespace, id)
    if (this.panels.has(key) || this.reserved.has(key)) throw new KernelError(409, 'PANEL_EXISTS', `panel "${id}" already exists`)
    if (this.panels.size + this.reserved.size >= this.maxPanels) {
      throw new KernelError(429, 'TOO_MANY_PANELS', `the kernel already holds maxPanels (${this.maxPanels}) panels`)
    }
    this.reserved.add(key)
    try {
      const panel = await this.build(def, id, namespace, key)
      await this.mount(panel)
      this.panels.set(key, panel)
      return this.describe(panel)
    } finally {
      this.reserved.delete(key)
    }
  }

  private async build(def: PanelDefinition, id: string, namespace: string, key: string): Promise<Panel> {
    const names = new Set<string>()
    for (const t of def.tools) {
      if (names.has(t.name)) throw new KernelError(400, 'DUPLICATE_TOOL', `tool "${t.name}" is defined twice`, { tool: t.name })
      names.add(t.name)
    }
    const checks = def.tools.map((t) => this.args.compile(t.name, t.args))
    const [tools, mount, unmount] = await Promise.all([
      Promise.all(def.tools.map((t) => this.compile(t.name, t.handler, t.capabilities, t.timeoutMs))),
      def.lifecycle?.mount ? this.compile('mount', def.lifecycle.mount) : undefined,
      def.lifecycle?.unmount ? this.compile('unmount', def.lifecycle.unmount) : undefined,
    ])
    return {
      key,
      id,
      namespace,
      kind: def.kind,
      title: def.title,
      state: applyMutations({}, Object.entries(def.initialState ?? {}).map(([k, value]) => ({ key: k, value, operation: 'set' }))),
      committed: this.committedState(def.initialState),
      version: 0,
      createdAt: new Date().toISOString(),
      tools: new Map(def.tools.map((t, i) => [t.name, { ...tools[i], def: t, check: checks[i] }])),
      lifecycle: { mount, unmount },
      runs: new Set(),
      closing: false,
      removed: false,
    }
  }

  /** Compile one handler; a syntax error names the tool and its line/column. */
  private async compile(label: string, source: string, declared?: string[], timeoutMs?: number): Promise<Handler> {
    let compiled: CompiledHandler
    try {
      compiled = await this.executor.precompile(source)
    } catch (err) {
      const e = err as { code?: string; message?: string; line?: number; column?: number }
      if (e.code !== 'COMPILATION_ERROR' && e.code !== 'INVALID_INPUT') throw runtimeErrorToKernel(err)
      const where = e.line !== undefined ? ` (line ${e.line}, column ${e.column ?? 0})` : ''
      throw new KernelError(400, 'COMPILATION_ERROR', `${label}: ${e.message ?? 'does not compile'}${where}`, {
        tool: label,
        line: e.line,
        column: e.column,
      })
    }
    const capabilities = declared ?? inferCapabilities(source, label)
    return { compiled, capabilities, inferred: declared === undefined, timeoutMs }
  }

  private async mount(panel: Panel): Promise<void> {
    const h = panel.lifecycle.mount
    if (!h) return
    const r = await this.runHandler(panel, 'mount', h, {})
    if (r.status === 'error') {
      throw new KernelError(400, 'MOUNT_FAILED', `mount failed: ${r.error?.code}: ${r.error?.message}`, r.error)
    }
  }

  /** @throws KernelError 404 PANEL_NOT_FOUND (also for another namespace's panel or one being deleted) */
  private find(namespace: string, id: string): Panel {
    const p = this.panels.get(keyOf(namespace, id))
    if (!p || p.closing) throw new KernelError(404, 'PANEL_NOT_FOUND', `panel "${id}" not found`)
    return p
  }

  private status(p: Panel): PanelStatus {
    if (p.closing) return 'closing'
    if (p.runs.size === 0) return 'ready'
    for (const r of p.runs) if (!r.suspended) return 'running'
    return 'suspended'
  }

  private summary(p: Panel): Omit<PanelSummary, 'tools'> {
    return {
      id: p.id,
      kind: p.kind,
      title: p.title,
      status: this.status(p),
      version: p.version,
      clients: this.sessions.count(p.key),
      activeRuns: p.runs.size,
      createdAt: p.createdAt,
    }
  }

  private describe(p: Panel): PanelDescription {
    const tools: ToolInfo[] = [...p.tools.values()].map((t) => ({
      name: t.def.name,
      description: t.def.description,
      args: t.def.args,
      capabilities: t.capabilities,
      capabilitiesInferred: t.inferred,
      timeoutMs: t.timeoutMs,
    }))
    const life = (h?: Handler) => (h ? { capabilities: h.capabilities, capabilitiesInferred: h.inferred } : undefined)
    return {
      ...this.summary(p),
      namespace: p.namespace,
      tools,
      lifecycle: { mount: life(p.lifecycle.mount), unmount: life(p.lifecycle.unmount) },
    }
  }

  /** Panels of one namespace, oldest first. */
  list(namespace = 'default'): PanelSummary[] {
    const out: PanelSummary[] = []
    for (const p of this.panels.values()) {
      if (p.namespace === namespace && !p.closing) out.push({ ...this.summary(p), tools: [...p.tools.keys()] })
    }
    return out
  }

  /** @throws KernelError 404 PANEL_NOT_FOUND */
  get(namespace: string, id: string): PanelDescription {
    return this.describe(this.find(namespace, id))
  }

  /** @throws KernelError 404 PANEL_NOT_FOUND */
  getState(namespace: string, id: string): PanelStateReply {
    const p = this.find(namespace, id)
    return { panelId: p.id, state: p.state, version: p.version }
  }

  /**
   * Delete a panel: stop new work, cancel its runs (suspended ones at once), run `unmount`,
   * close its sockets with 4004 PANEL_DELETED, forget it.
   * @throws KernelError 404 PANEL_NOT_FOUND
   */
  async delete(namespace: string, id: string): Promise<DeletePanelReply> {
    const p = this.find(namespace, id)
    p.closing = true
    for (const r of p.runs) r.controller.abort(new Error('panel deleted'))
    this.suspensions.cancel('panel deleted', p.key)
    let unmount: 'success' | 'error' | undefined
    if (p.lifecycle.unmount) {
      const r = await this.runHandler(p, 'unmount', p.lifecycle.unmount, {}).catch((err: unknown) => {
        this.log.warn({ err, panel: id }, 'unmount could not run')
        return undefined
      })
      unmount = r?.status ?? 'error'
    }
    this.sessions.closeAll(WsCloseCode.PANEL_DELETED, 'PANEL_DELETED', p.key)
    p.removed = true
    p.committed.clear() // the sandbox's copy lives outside V8's heap: free it now, not at the next GC
    this.panels.delete(p.key)
    return { id, deleted: true, unmount }
  }

  /**
   * Run a tool: check args against its JSON Schema, run the handler (committing and
   * broadcasting each segment), return the outcome. A failing handler is an outcome
   * (`status: 'error'`), not a throw.
   * @throws KernelError 404 PANEL_NOT_FOUND / TOOL_NOT_FOUND, 400 INVALID_ARGS, 503 CAPACITY_EXCEEDED / SHUTDOWN
   */
  async trigger(namespace: string, id: string, toolName: string, args: unknown, opts: TriggerOptions = {}): Promise<RunOutcome> {
    const p = this.find(namespace, id)
    const tool = p.tools.get(toolName)
    if (!tool) throw new KernelError(404, 'TOOL_NOT_FOUND', `panel "${id}" has no tool "${toolName}"`)
    const value = args === undefined ? {} : args
    const invalid = tool.check(value)
    if (invalid) throw new KernelError(400, 'INVALID_ARGS', `tool "${toolName}": ${invalid}`)
    const r = await this.runHandler(p, toolName, tool, value, opts)
    return {
      status: r.status,
      returnValue: r.returnValue,
      error: r.error && { code: r.error.code, message: r.error.message, line: r.error.line, column: r.error.column },
      version: p.version,
      events: r.events,
      viewCommands: r.viewCommands,
      logs: r.logs,
      segments: r.segments,
      durationMs: r.durationMs,
    }
  }

  private async runHandler(p: Panel, name: string, h: Handler, args: unknown, opts: TriggerOptions = {}): Promise<RunResult> {
    const run: ActiveRun = { controller: new AbortController(), suspended: false }
    p.runs.add(run)
    const progress = (phase: 'suspended' | 'resumed', calls: PendingCall[]) =>
      opts.onProgress?.({
        type: 'PROGRESS',
        requestId: opts.requestId,
        tool: name,
        phase,
        pendingCalls: calls.map((c) => ({ extension: c.extension, method: c.method })),
      })
    try {
      const result = await this.executor.run(
        h.compiled,
        {
          panelId: p.id,
          handlerName: name,
          state: p.committed,
          args,
          scope: { panelId: p.id, namespace: p.namespace, kind: p.kind, tool: name },
          capabilities: h.capabilities,
          extensions: this.extensionMethods(),
        },
        {
          timeoutMs: h.timeoutMs,
          signal: run.controller.signal,
          callContext: { panelId: p.id, namespace: p.namespace },
          onSegment: (seg) => {
            this.onSegment(p, name, run, seg)
            if (seg.status === 'suspended') progress('suspended', seg.pendingCalls)
          },
          onResume: (calls) => {
            run.suspended = false
            progress('resumed', calls)
          },
        },
      )
      this.observer?.runFinished(result.status, result.durationMs)
      return result
    } catch (err) {
      throw runtimeErrorToKernel(err)
    } finally {
      if (run.executionId) this.suspensions.settle(run.executionId)
      p.runs.delete(run)
    }
  }

  /** The sandbox's copy of a new panel's state. @throws KernelError 400 INVALID_INPUT (e.g. a lone-surrogate key) */
  private committedState(initial: Record<string, unknown> | undefined): PanelState {
    try {
      return this.executor.createState(initial)
    } catch (err) {
      throw runtimeErrorToKernel(err)
    }
  }

  /** Commit one segment atomically (one version bump), broadcast it, track its suspension. */
  private onSegment(p: Panel, tool: string, run: ActiveRun, seg: ExecutionResult): void {
    if (run.executionId) this.suspensions.settle(run.executionId)
    run.executionId = undefined
    if (p.removed) return
    if (seg.stateMutations.length > 0) {
      p.state = applyMutations(p.state, seg.stateMutations)
      p.committed.apply(seg.stateMutations)
      p.version++
      this.sessions.broadcastPatch(p.key, seg.stateMutations, p.version)
    }
    for (const e of seg.events) this.sessions.broadcastEvent(p.key, e)
    if (seg.status === 'suspended' && seg.executionId) {
      run.suspended = true
      run.executionId = seg.executionId
      this.observer?.suspended()
      this.suspensions.register({ panelKey: p.key, tool, executionId: seg.executionId, controller: run.controller, since: Date.now() })
    }
  }

  /**
   * Attach a WebSocket to a panel and send CONNECTED { panelId, state, version, tools }.
   * @throws KernelError 404 PANEL_NOT_FOUND
   */
  connect(namespace: string, id: string, socket: WebSocket): Session {
    const p = this.find(namespace, id)
    const s = this.sessions.add(p.key, socket)
    s.send(encode({ type: 'CONNECTED', panelId: p.id, state: p.state, version: p.version, tools: [...p.tools.keys()] }))
    return s
  }

  disconnect(s: Session): void {
    this.sessions.remove(s)
  }

  /**
   * Shut down: refuse new panels, cancel suspended runs, close every socket with 1001.
   * Panels are dropped without `unmount` (the executor is going away with the app).
   */
  close(): void {
    this.closed = true
    this.suspensions.cancel('kernel shutting down')
    for (const p of this.panels.values()) for (const r of p.runs) r.controller.abort(new Error('kernel shutting down'))
    this.sessions.closeAll(WsCloseCode.GOING_AWAY, 'SHUTDOWN')
    this.sessions.stop()
    this.panels.clear()
  }
}
