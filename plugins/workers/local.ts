import { readdir, readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { HostSummary, RuntimeCapabilities, RuntimeSummary, WorkerDiagnostic, WorkerSummary } from '../../schemas/workers.js'
import { opaqueId, safeHint } from './ids.js'
import { capDiagnostics, diagnostic, now, type CallContext, type ListResult, type WorkerRuntime } from './runtime.js'

/** Options of the read-only metadata runtime. */
export interface LocalRuntimeOptions {
  /** Only metadata whose `workspace_root` resolves to this directory is shown. */
  workspaceRoot: string
  /** Holds `pods/<name>/metadata.json`; without it the host is `degraded` and lists nothing. */
  dataDir?: string
}

/** Directory entries read per scan; more are reported with a diagnostic. */
const MAX_SCAN = 1024
/** Largest metadata file read (bytes). */
const MAX_METADATA_BYTES = 64 * 1024

type ReadOutcome = { worker: WorkerSummary } | { diagnostic: WorkerDiagnostic } | { hidden: true }

/**
 * `local`: a read-only view of worker metadata files `<dataDir>/pods/<name>/metadata.json`
 * (`{ worker_name?, workspace_root, namespace?, resolved_manifest_snapshot?: { role?, profile_selector? },
 * active?: { segment_id? } }`). Files of another workspace root, without a root, unreadable or not JSON
 * are skipped with a diagnostic; ones of another namespace are skipped silently. Nothing here can be
 * spawned, stopped, written or streamed, and the capabilities say so.
 */
export class LocalRuntime implements WorkerRuntime {
  readonly id = 'local'
  private readonly hostId: string
  private readonly root: string

  constructor(private readonly options: LocalRuntimeOptions) {
    this.root = resolve(options.workspaceRoot)
    this.hostId = opaqueId('local-', 'host', `local\0${this.root}`)
  }

  async summary(_ctx: CallContext, limit: number): Promise<RuntimeSummary> {
    return {
      runtime_id: this.id,
      label: 'Local worker metadata',
      kind: 'local',
      status: this.options.dataDir ? 'available' : 'degraded',
      identity_authority: 'registry_projection',
      host_ids: limit > 0 ? [this.hostId] : [],
      capabilities: this.capabilities(),
      diagnostics: this.options.dataDir ? [] : [noDataDir()],
    }
  }

  async listHosts(_ctx: CallContext, limit: number): Promise<ListResult<HostSummary>> {
    if (limit === 0) return { items: [], diagnostics: [] }
    const diagnostics = this.options.dataDir ? [] : [noDataDir()]
    const host: HostSummary = {
      runtime_id: this.id,
      host_id: this.hostId,
      label: 'Local workspace',
      kind: 'local_host',
      status: this.options.dataDir ? 'available' : 'degraded',
      observed_at: now(),
      capabilities: this.capabilities(),
      diagnostics,
    }
    return { items: [host], diagnostics }
  }

  async listWorkers(ctx: CallContext, limit: number): Promise<ListResult<WorkerSummary>> {
    const scan = await this.scan()
    if ('diagnostic' in scan) return { items: [], diagnostics: [scan.diagnostic] }
    const items: WorkerSummary[] = []
    const diagnostics = [...scan.diagnostics]
    for (const name of scan.names) {
      if (items.length >= limit) break
      const outcome = await this.read(ctx, name)
      if ('worker' in outcome) items.push(outcome.worker)
      else if ('diagnostic' in outcome) diagnostics.push(outcome.diagnostic)
    }
    return { items, diagnostics: capDiagnostics(diagnostics) }
  }

  async getWorker(ctx: CallContext, workerId: string) {
    const scan = await this.scan()
    if ('diagnostic' in scan) return { diagnostics: [scan.diagnostic] }
    const name = scan.names.find((n) => workerIdFor(n) === workerId)
    if (name === undefined) return { diagnostics: [] }
    const outcome = await this.read(ctx, name)
    if ('worker' in outcome) return { worker: outcome.worker, diagnostics: [] }
    return { diagnostics: 'diagnostic' in outcome ? [outcome.diagnostic] : [] }
  }

  private async scan(): Promise<{ names: string[]; diagnostics: WorkerDiagnostic[] } | { diagnostic: WorkerDiagnostic }> {
    if (!this.options.dataDir) return { diagnostic: noDataDir() }
    try {
      const entries = await readdir(join(this.options.dataDir, 'pods'), { withFileTypes: true })
      const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort()
      if (names.length <= MAX_SCAN) return { names, diagnostics: [] }
      const note = diagnostic('local_scan_truncated', 'warning', `only the first ${MAX_SCAN} worker directories were read`)
      return { names: names.slice(0, MAX_SCAN), diagnostics: [note] }
    } catch (err) {
      // The OS error message names the path; only its code is reported.
      const why = `the local worker registry could not be read (${errCode(err)})`
      return { diagnostic: diagnostic('local_registry_unreadable', 'warning', why) }
    }
  }

  private async read(ctx: CallContext, name: string): Promise<ReadOutcome> {
    const workerId = workerIdFor(name)
    const bad = (code: string, message: string, severity: WorkerDiagnostic['severity'] = 'warning') => ({
      diagnostic: diagnostic(code, severity, message, workerId),
    })
    let text: string
    try {
      const buf = await readFile(join(this.options.dataDir!, 'pods', name, 'metadata.json'))
      if (buf.length > MAX_METADATA_BYTES) return bad('local_metadata_too_large', `worker metadata exceeds ${MAX_METADATA_BYTES} bytes`)
      text = buf.toString('utf8')
    } catch (err) {
      return bad('local_metadata_unreadable', `worker metadata could not be read (${errCode(err)})`)
    }
    let meta: unknown
    try {
      meta = JSON.parse(text)
    } catch {
      // JSON.parse messages quote the file's text, so they are not passed on.
      return bad('local_metadata_invalid', 'worker metadata is not valid JSON')
    }
    if (!isRecord(meta)) return bad('local_metadata_invalid', 'worker metadata is not a JSON object')
    if (typeof meta.workspace_root !== 'string' || meta.workspace_root === '') {
      return bad('local_workspace_root_missing', 'worker metadata names no workspace root and was skipped')
    }
    if (resolve(meta.workspace_root) !== this.root) {
      return bad('local_workspace_not_visible', 'worker metadata belongs to another workspace and was skipped', 'info')
    }
    const namespace = typeof meta.namespace === 'string' ? meta.namespace : 'default'
    if (namespace !== ctx.namespace) return { hidden: true }
    return { worker: this.project(workerId, name, meta) }
  }

  private project(workerId: string, name: string, meta: Record<string, unknown>): WorkerSummary {
    const manifest = isRecord(meta.resolved_manifest_snapshot) ? meta.resolved_manifest_snapshot : {}
    const active = isRecord(meta.active) ? meta.active : undefined
    const status = active === undefined ? 'metadata_only' : typeof active.segment_id === 'string' ? 'active' : 'active_pending'
    return {
      runtime_id: this.id,
      worker_id: workerId,
      host_id: this.hostId,
      label: safeHint(typeof meta.worker_name === 'string' ? meta.worker_name : name),
      role: hint(manifest.role),
      profile: hint(manifest.profile_selector),
      workspace: { visibility: 'current_workspace', identity: 'runtime_workspace' },
      status,
      created_at: null,
      implementation: { kind: 'local', display_hint: safeHint(name) },
      capabilities: { can_accept_input: false, can_stop: false, can_stream_events: false, can_read_transcript: false },
      diagnostics: [],
    }
  }

  private capabilities(): RuntimeCapabilities {
    const inspectable = this.options.dataDir !== undefined
    return {
      can_list_hosts: true,
      can_list_workers: inspectable,
      can_get_worker: inspectable,
      can_spawn: false,
      can_stop: false,
      can_accept_input: false,
      can_stream_events: false,
      can_read_transcript: false,
      max_workers: MAX_SCAN,
    }
  }
}

/** Public id of the worker stored in directory `name`. */
export function workerIdFor(name: string): string {
  return opaqueId('local-', name)
}

function noDataDir(): WorkerDiagnostic {
  return diagnostic('local_registry_unavailable', 'warning', 'no data directory is configured, so local workers cannot be listed')
}

function hint(value: unknown): string | null {
  const text = typeof value === 'string' ? safeHint(value) : ''
  return text === '' ? null : text
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function errCode(err: unknown): string {
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' ? code : 'error'
}
