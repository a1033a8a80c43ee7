import PQueue from 'p-queue'
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { WebSocket } from 'ws'
import { kernelError, toKernelError } from '../errors.js'
import { RuntimeError } from '../../wasm-runtime/errors.js'
import type { Executor, RunResult, Segment, Source } from '../executor.js'
import type { Store } from '../store.js'
import type { CompiledHandler, ExecutionResult, PendingCall } from '../../wasm-runtime/types.js'
import type {
  DeletePanelReply,
  PanelDefinition,
  PanelDescription,
  PanelStatus,
  PanelSummary,
  PatchesReply,
  RunOutcome,
  ToolDefinition,
  ToolInfo,
} from '../../schemas/panels.js'
import { WsCloseCode, type ProgressMessage } from '../../schemas/ws.js'
import { ArgsValidator, type ArgsCheck } from './args.js'
import { CapabilityInference } from './inference.js'
import type { PanelsOptions } from './options.js'
import { InFlightQuotas } from './quotas.js'
import { SessionHub, encode, encodeConnected, type RawStream, type Session } from './sockets.js'
import { CommittedState } from './state.js'

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

/** A handler bound to its panel: what every run of it passes to the executor unchanged (built once, not per trigger). */
interface BoundHandler extends Handler {
  name: string
  scope: Record<string, unknown>
}

interface Tool extends BoundHandler {
  def: ToolDefinition
  check: ArgsCheck
}

interface ActiveRun {
  /** the panel version the run's latest segment read or committed */
  version: number
}

/** Sends a trigger's PROGRESS (WS): the run suspended on, or resumed after, these calls. */
function progress(opts: TriggerOptions, tool: string, phase: 'suspended' | 'resumed', calls: PendingCall[]): void {
  opts.onProgress?.({
    type: 'PROGRESS',
    requestId: opts.requestId,
    tool,
    phase,
    pendingCalls: calls.map((c) => ({ extension: c.extension, method: c.method })),
  })
}

interface Panel {
  key: string
  id: string
  namespace: string
  definition: PanelDefinition
  createdAt: string
  /** the committed state (its `handle` is what executions read lazily) */
  state: CommittedState
  tools: Map<string, Tool>
  lifecycle: { mount?: BoundHandler; unmount?: BoundHandler }
  /** the executor's `callContext` and (REST) `source` of every run of the panel */
  callContext: { panelId: string; namespace: string }
  source: Source
  runs: Set<ActiveRun>
  /** `delete`s waiting for the cancelled runs to end (two DELETEs may wait at once): woken when `runs` empties */
  runsEnded: Array<() => void>
  /**
   * Aborting it cancels every run of the panel in flight (the executor frees a suspended execution
   * at once): one per panel rather than one per run, which a trigger would pay for on every call.
   * Replaced after a delete that failed, so the panel's later runs start uncancelled.
   */
  cancel: AbortController
  /** the actor's input: one segment at a time, in arrival order */
  queue: PQueue
  /** false while `mount` runs: its commits stay in memory until the panel is stored whole */
  persisted: boolean
  closing: boolean
  removed: boolean
}

/** Options of one trigger. */
export interface TriggerOptions {
  requestId?: string
  /** The WebSocket session the trigger came on (fair shares and the per-socket cap); none for REST. */
  socket?: Session
  /** Told when the run suspends on extension calls and when it resumes (WS PROGRESS). */
  onProgress?: (msg: ProgressMessage) => void
}

const keyOf = (namespace: string, id: string): string => `${namespace}\u0000${id}`

/**
 * Panels: named state plus tools whose handlers run in the wasm sandbox, scoped by namespace
 * (another namespace's panel is PANEL_NOT_FOUND). Each panel is an actor (DESIGN.md "State
 * consistency"): its run segments go through its queue one at a time, each commits its mutations
 * durably (`fastify.store`) with one version bump before the next starts, then broadcasts PATCH.
 */
export class PanelManager {
  private readonly panels = new Map<string, Panel>()
  private readonly reserved = new Set<string>()
  private readonly args = new ArgsValidator()
  /** Capability inference off the event loop; ended by the panels plugin's onClose. */
  readonly inference = new CapabilityInference()
  readonly sessions: SessionHub
  readonly quotas: InFlightQuotas
  private readonly perNamespace: number
  private closed = false

  constructor(
    private readonly executor: Executor,
    private readonly extensionMethods: () => Record<string, string[]>,
    private readonly store: Store,
    private readonly log: FastifyBaseLogger,
    private readonly opts: PanelsOptions,
    private readonly observer?: RunObserver,
  ) {
    this.perNamespace = opts.maxPanelsPerNamespace ?? Math.max(1, Math.floor(opts.maxPanels / 4))
    this.quotas = new InFlightQuotas(opts)
    this.sessions = new SessionHub(opts, log)
  }

  /** Panels alive (all namespaces). */
  get size(): number {
    return this.panels.size
  }

  /** Run segments waiting in panel queues (all panels). */
  queued(): number {
    let n = 0
    for (const p of this.panels.values()) n += p.queue.size
    return n
  }

  /**
   * Bring back every stored panel: same id, namespace, state and version, handlers recompiled
   * (through the bytecode cache); `mount` is not run again.
   * @throws KernelError 503 STORE_ERROR, or the compile error of a stored handler (naming the panel)
   */
  async restore(): Promise<number> {
    const stored = await this.store.load()
    for (const sp of stored) {
      const key = keyOf(sp.namespace, sp.id)
      const state = new CommittedState(this.executor.createState(), sp.state, sp.version, this.opts.maxStateBytes)
      const panel = await this.build(sp.definition, sp.namespace, key, state, sp.createdAt).catch((err: unknown) => {
        throw kernelError('RESTORE_FAILED', `stored panel ${sp.namespace}/${sp.id} cannot be restored: ${(err as Error).message}`)
      })
      panel.persisted = true
      this.panels.set(key, panel)
    }
    return stored.length
  }

  /**
   * Create a panel: compile every handler once, infer missing capabilities, run `mount`, store it.
   * Nothing is created when any step fails.
   * @throws KernelError 400 INVALID_DEFINITION / DUPLICATE_TOOL / INVALID_ARGS_SCHEMA /
   *   COMPILATION_ERROR (details: tool, line, column) / MOUNT_FAILED, 409 PANEL_EXISTS,
   *   413 STATE_TOO_LARGE, 429 TOO_MANY_PANELS / NAMESPACE_QUOTA, 503 SHUTDOWN / STORE_ERROR
   */
  async create(def: PanelDefinition, namespace = 'default'): Promise<PanelDescription> {
    if (this.closed) throw kernelError('SHUTDOWN', 'the kernel is shutting down')
    const id = def.id ?? `p_${randomUUID().replace(/-/g, '').slice(0, 16)}`
    const key = keyOf(namespace, id)
    if (this.panels.has(key) || this.reserved.has(key)) throw kernelError('PANEL_EXISTS', `panel "${id}" already exists`)
    this.checkQuota(namespace)
    for (const t of def.tools) {
      if (t.timeoutMs !== undefined && t.timeoutMs > this.opts.maxToolTimeoutMs) {
        throw kernelError('INVALID_DEFINITION', `tool "${t.name}": timeoutMs ${t.timeoutMs} is above maxToolTimeoutMs (${this.opts.maxToolTimeoutMs})`)
      }
    }
    const entries = CommittedState.entries(def.initialState ?? {})
    const state = new CommittedState(this.executor.createState(), entries, 0, this.opts.maxStateBytes)
    this.reserved.add(key)
    let created = false
    try {
      state.checkSize()
      const panel = await this.build({ ...def, id }, namespace, key, state, new Date().toISOString())
      await this.mount(panel)
      await this.store.create({
        namespace, id, definition: panel.definition, createdAt: panel.createdAt, version: state.version, state: state.entries(),
      })
      panel.persisted = true
      this.panels.set(key, panel)
      created = true
      return this.describe(panel)
    } finally {
      this.reserved.delete(key)
      if (!created) state.clear() // the sandbox's copy lives outside V8's heap: free it now
    }
  }

  private checkQuota(namespace: string): void {
    if (this.panels.size + this.reserved.size >= this.opts.maxPanels) {
      throw kernelError('TOO_MANY_PANELS', `the kernel already holds maxPanels (${this.opts.maxPanels}) panels`)
    }
    let mine = 0
    for (const p of this.panels.values()) if (p.namespace === namespace) mine++
    for (const k of this.reserved) if (k.startsWith(`${namespace}\u0000`)) mine++
    if (mine >= this.perNamespace) {
      throw kernelError('NAMESPACE_QUOTA', `namespace "${namespace}" already holds maxPanelsPerNamespace (${this.perNamespace}) panels`)
    }
  }

  private async build(def: PanelDefinition, namespace: string, key: string, state: CommittedState, createdAt: string): Promise<Panel> {
    const names = new Set<string>()
    for (const t of def.tools) {
      if (names.has(t.name)) throw kernelError('DUPLICATE_TOOL', `tool "${t.name}" is defined twice`, { tool: t.name })
      names.add(t.name)
    }
    const checks = def.tools.map((t) => this.args.compile(t.name, t.args))
    const [tools, mount, unmount] = await Promise.all([
      Promise.all(def.tools.map((t) => this.compile(t.name, t.handler, t.capabilities, t.timeoutMs))),
      def.lifecycle?.mount ? this.compile('mount', def.lifecycle.mount) : undefined,
      def.lifecycle?.unmount ? this.compile('unmount', def.lifecycle.unmount) : undefined,
    ])
    const id = def.id as string
    const bind = (name: string, h: Handler): BoundHandler => ({ ...h, name, scope: { panelId: id, namespace, kind: def.kind, tool: name } })
    return {
      key,
      id,
      namespace,
      definition: def,
      createdAt,
      state,
      tools: new Map(def.tools.map((t, i) => [t.name, { ...bind(t.name, tools[i]), def: t, check: checks[i] }])),
      lifecycle: { mount: mount && bind('mount', mount), unmount: unmount && bind('unmount', unmount) },
      callContext: { panelId: id, namespace },
      source: { namespace },
      runs: new Set(),
      runsEnded: [],
      cancel: new AbortController(),
      queue: new PQueue({ concurrency: 1 }),
      persisted: false,
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
      if (!(err instanceof RuntimeError && (err.code === 'COMPILATION_ERROR' || err.code === 'INVALID_INPUT'))) throw toKernelError(err)
      const e = err
      const where = e.line !== undefined ? ` (line ${e.line}, column ${e.column ?? 0})` : ''
      throw kernelError('COMPILATION_ERROR', `${label}: ${e.message || 'does not compile'}${where}`, {
        tool: label,
        line: e.line,
        column: e.column,
      })
    }
    const capabilities = declared ?? (await this.inference.infer(source, label))
    return { compiled, capabilities, inferred: declared === undefined, timeoutMs }
  }

  private async mount(panel: Panel): Promise<void> {
    const h = panel.lifecycle.mount
    if (!h) return
    const { result: r } = await this.runHandler(panel, h, {})
    if (r.status === 'error') {
      throw kernelError('MOUNT_FAILED', `mount failed: ${r.error?.code}: ${r.error?.message}`, r.error)
    }
  }

  /** @throws KernelError 404 PANEL_NOT_FOUND (also for another namespace's panel or one being deleted) */
  private find(namespace: string, id: string): Panel {
    const p = this.panels.get(keyOf(namespace, id))
    if (!p || p.closing) throw kernelError('PANEL_NOT_FOUND', `panel "${id}" not found`)
    return p
  }

  private status(p: Panel): PanelStatus {
    if (p.closing) return 'closing'
    if (p.runs.size === 0) return 'ready'
    return this.executor.suspended(p.key) < p.runs.size ? 'running' : 'suspended'
  }

  private summary(p: Panel): Omit<PanelSummary, 'tools'> {
    return {
      id: p.id,
      kind: p.definition.kind,
      title: p.definition.title,
      status: this.status(p),
      version: p.state.version,
      clients: this.sessions.count(p.key),
      activeRuns: p.runs.size,
      queuedRuns: p.queue.size,
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

  /**
   * The committed state, as the JSON text of `PanelStateReply` (the state's text comes from the
   * addon as is, never parsed and re-serialized).
   * @throws KernelError 404 PANEL_NOT_FOUND
   */
  getState(namespace: string, id: string): string {
    const p = this.find(namespace, id)
    return `{"panelId":${JSON.stringify(p.id)},"state":${p.state.json()},"version":${p.state.version}}`
  }

  /**
   * Committed batches after `since` from the patch log, oldest first, at most `limit`.
   * @throws KernelError 404 PANEL_NOT_FOUND, 400 INVALID_SINCE (beyond the panel's version),
   *   410 PATCHES_EXPIRED (the log no longer reaches back to `since`), 503 STORE_ERROR
   */
  async patches(namespace: string, id: string, since: number, limit: number): Promise<PatchesReply> {
    const p = this.find(namespace, id)
    const version = p.state.version
    if (since > version) throw kernelError('INVALID_SINCE', `since (${since}) is beyond the panel's version (${version})`)
    const n = Math.min(limit, version - since)
    const batches = n === 0 ? [] : await this.store.patches(p, since, n)
    if (n > 0 && batches[0]?.version !== since + 1) {
      throw kernelError('PATCHES_EXPIRED', `the patch log no longer reaches back to version ${since}: read GET /panels/${id}/state`, { since, version })
    }
    return { panelId: p.id, since, version, patches: batches }
  }

  /**
   * Delete a panel: stop new work, cancel its runs (suspended ones at once), run `unmount` after
   * its last segment, remove it from the store, close its sockets with 4004 PANEL_DELETED.
   * @throws KernelError 404 PANEL_NOT_FOUND, 503 STORE_ERROR (the panel stays)
   */
  async delete(namespace: string, id: string): Promise<DeletePanelReply> {
    const p = this.find(namespace, id)
    p.closing = true
    p.cancel.abort(new Error('panel deleted'))
    let unmount: 'success' | 'error' | undefined
    if (p.lifecycle.unmount) {
      const r = await this.runHandler(p, p.lifecycle.unmount, {}, {}, new AbortController().signal).catch((err: unknown) => {
        this.log.warn({ err, panel: id }, 'unmount could not run')
        return undefined
      })
      unmount = r?.result.status ?? 'error'
    }
    await p.queue.onIdle()
    await this.runsEnded(p)
    try {
      await this.store.delete(p)
    } catch (err) {
      p.closing = false
      p.cancel = new AbortController()
      throw err
    }
    this.sessions.closeAll(WsCloseCode.PANEL_DELETED, 'PANEL_DELETED', p.key)
    p.removed = true
    p.state.clear() // the sandbox's copy lives outside V8's heap: free it now, not at the next GC
    this.panels.delete(p.key)
    return { id, deleted: true, unmount }
  }

  /**
   * Waits until the panel's (cancelled) runs have ended, then one event-loop turn, so that each
   * run's caller has answered (REST 200 / WS ERROR with code CANCELLED) before the sockets close.
   * Bounded: an aborted run ends at once, or after its running segment (≤ its timeout).
   */
  private async runsEnded(p: Panel): Promise<void> {
    if (p.runs.size > 0) await new Promise<void>((resolve) => p.runsEnded.push(resolve))
    await new Promise<void>((resolve) => setImmediate(resolve))
  }

  /**
   * Run a tool: check args against its JSON Schema, run the handler (each segment through the
   * panel's queue, committed and broadcast), return the outcome. A failing handler is an outcome
   * (`status: 'error'`), not a throw.
   * @throws KernelError 404 PANEL_NOT_FOUND / TOOL_NOT_FOUND, 400 INVALID_ARGS, 413 STATE_TOO_LARGE,
   *   429 PANEL_BUSY / NAMESPACE_BUSY / SOCKET_BUSY, 503 CAPACITY_EXCEEDED / SHUTDOWN / STORE_ERROR
   */
  async trigger(namespace: string, id: string, toolName: string, args: unknown, opts: TriggerOptions = {}): Promise<RunOutcome> {
    const p = this.find(namespace, id)
    const tool = p.tools.get(toolName)
    if (!tool) throw kernelError('TOOL_NOT_FOUND', `panel "${id}" has no tool "${toolName}"`)
    const value = args === undefined ? {} : args
    const invalid = tool.check(value)
    if (invalid) throw kernelError('INVALID_ARGS', `tool "${toolName}": ${invalid}`)
    if (p.queue.size >= this.opts.maxQueuedRunsPerPanel) {
      throw kernelError('PANEL_BUSY', `panel "${id}" already has maxQueuedRunsPerPanel (${this.opts.maxQueuedRunsPerPanel}) segments queued`)
    }
    const leave = this.quotas.enter({ namespace, socket: opts.socket })
    try {
      const { result: r, version } = await this.runHandler(p, tool, value, opts)
      return {
        status: r.status,
        returnValue: r.returnValue,
        error: r.error && { code: r.error.code, message: r.error.message, line: r.error.line, column: r.error.column },
        version,
        events: r.events,
        viewCommands: r.viewCommands,
        logs: r.logs,
        segments: r.segments,
        durationMs: r.durationMs,
      }
    } finally {
      leave()
    }
  }

  private async runHandler(
    p: Panel,
    h: BoundHandler,
    args: unknown,
    opts: TriggerOptions = {},
    signal = p.cancel.signal,
  ): Promise<{ result: RunResult; version: number }> {
    const run: ActiveRun = { version: p.state.version }
    p.runs.add(run)
    try {
      // no named closures here: each would cost a defineProperty of its name under tsx (≈ 1 µs a trigger)
      const result = await this.executor.run(
        h.compiled,
        {
          panelId: p.id,
          handlerName: h.name,
          state: p.state.handle,
          args,
          scope: h.scope,
          capabilities: h.capabilities,
          extensions: this.extensionMethods(),
        },
        {
          timeoutMs: h.timeoutMs,
          signal,
          callContext: p.callContext,
          source: opts.socket ? { namespace: p.namespace, socket: opts.socket } : p.source,
          owner: p.key,
          turn: this.turn.bind(this, p, run, h.name, opts),
          onResume: opts.onProgress && progress.bind(undefined, opts, h.name, 'resumed'),
        },
      )
      this.observer?.runFinished(result.status, result.durationMs)
      return { result, version: run.version }
    } catch (err) {
      throw toKernelError(err)
    } finally {
      p.runs.delete(run)
      if (p.runs.size === 0) for (const wake of p.runsEnded.splice(0)) wake()
    }
  }

  /**
   * One segment in the panel's queue: run it against the committed state (it waits for the
   * executor's gate inside `segment`), then commit. The next segment of the panel starts after that.
   */
  private turn(p: Panel, run: ActiveRun, tool: string, opts: TriggerOptions, segment: Segment): Promise<ExecutionResult> {
    return p.queue.add(async () => {
      run.version = p.state.version
      const seg = await segment()
      await this.commit(p, run, seg)
      if (seg.status === 'suspended') {
        this.observer?.suspended()
        progress(opts, tool, 'suspended', seg.pendingCalls)
      }
      return seg
    }) as Promise<ExecutionResult>
  }

  /**
   * Commit one segment: a failed segment commits nothing (no PATCH, no EVENT). Otherwise its
   * mutations are checked against maxStateBytes, made durable, applied with one version bump,
   * then broadcast as PATCH, followed by its events.
   * @throws KernelError 413 STATE_TOO_LARGE / 503 STORE_ERROR (nothing applied; the executor cancels a suspended execution)
   */
  private async commit(p: Panel, run: ActiveRun, seg: ExecutionResult): Promise<void> {
    if (seg.status === 'error' || p.removed) return
    if (seg.stateMutations.length > 0) {
      const c = p.state.prepare(seg.stateMutations)
      if (p.persisted) {
        await this.store.commit({ namespace: p.namespace, id: p.id, version: c.version, changes: c.changes, mutations: c.mutations })
      }
      p.state.apply(c)
      run.version = c.version
      this.sessions.broadcastPatch(p.key, c.mutations, c.version)
    }
    for (const e of seg.events) this.sessions.broadcastEvent(p.key, e)
  }

  /**
   * Attach a WebSocket to a panel and send CONNECTED. With `since` (a version the client has) and
   * a patch log that still holds every batch after it: `CONNECTED { version: since, resumed: true }`
   * without state, then the missed PATCHes in order, then live traffic. Otherwise (no `since`,
   * `since` ahead of the panel, log too short, store unreadable): the full state with
   * `resumed: false`. Live broadcasts meanwhile are held and sent after, without gap or duplicate.
   * The session is removed again when this fails. `stream` is the TCP stream under `socket` (its
   * frames of one tick are written together).
   * @throws KernelError 404 PANEL_NOT_FOUND
   */
  async connect(namespace: string, id: string, socket: WebSocket, since?: number, stream?: RawStream): Promise<Session> {
    const p = this.find(namespace, id)
    const s = this.sessions.add(p.key, socket, stream)
    try {
      const tools = [...p.tools.keys()]
      const version = p.state.version
      if (since !== undefined && since === version) {
        s.send(encode({ type: 'CONNECTED', panelId: p.id, version, resumed: true, tools }))
        return s
      }
      if (since !== undefined && since < version) {
        s.hold()
        const batches = await this.store.patches(p, since, version - since).catch(() => [])
        if (batches.length === version - since && batches[0].version === since + 1) {
          s.send(encode({ type: 'CONNECTED', panelId: p.id, version: since, resumed: true, tools }))
          for (const b of batches) s.send(encode({ type: 'PATCH', mutations: b.mutations, version: b.version }))
          s.release(version)
          return s
        }
      }
      if (p.removed) throw kernelError('PANEL_NOT_FOUND', `panel "${id}" not found`)
      s.send(encodeConnected({ type: 'CONNECTED', panelId: p.id, version: p.state.version, resumed: false, tools }, p.state.json()))
      s.release(p.state.version)
      return s
    } catch (err) {
      this.sessions.remove(s)
      throw err
    }
  }

  disconnect(s: Session): void {
    this.sessions.remove(s)
  }

  /**
   * Shut down: refuse new panels, cancel every run (suspended ones at once), close every socket with 1001.
   * Panels are dropped without `unmount` (the executor is going away with the app); what was
   * committed stays in the store.
   */
  close(): void {
    this.closed = true
    for (const p of this.panels.values()) p.cancel.abort(new Error('kernel shutting down'))
    this.sessions.closeAll(WsCloseCode.GOING_AWAY, 'SHUTDOWN')
    this.sessions.stop()
    this.panels.clear()
  }
}
