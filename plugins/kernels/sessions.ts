/**
 * Jupyter sessions (jupyter_server `services/sessions`): in memory, keyed (namespace, UUID), one per
 * `path`; creating a session for a path that has one returns it. Deleting a session shuts its kernel down.
 */
import { randomUUID } from 'node:crypto'
import { dirname } from 'node:path'
import { KernelError, kernelError, withStatus } from '../errors.js'
import type { KernelManager } from './manager.js'
import type { CreateSessionRequest, PatchSessionRequest, Session } from '../../schemas/kernels.js'

interface SessionRecord {
  id: string
  namespace: string
  path: string
  name: string
  type: string
  kernelId: string
}

/** The sessions of every namespace, over `fastify.kernels`. */
export class SessionManager {
  private readonly sessions = new Map<string, SessionRecord>()

  constructor(private readonly kernels: KernelManager) {}

  private model(s: SessionRecord): Session {
    const kernel = this.kernels.get(s.namespace, s.kernelId).model()
    return { id: s.id, path: s.path, name: s.name, type: s.type, kernel, notebook: { path: s.path, name: s.name } }
  }

  private find(ns: string, id: string): SessionRecord {
    const s = this.sessions.get(id)
    if (!s || s.namespace !== ns) throw kernelError('SESSION_NOT_FOUND', `no session ${id}`)
    return s
  }

  private kernelAlive(s: SessionRecord): boolean {
    try {
      this.kernels.get(s.namespace, s.kernelId)
      return true
    } catch {
      return false
    }
  }

  /** Sessions of `ns` whose kernel still exists (the others are forgotten, as Jupyter prunes them). */
  list(ns: string): Session[] {
    const out: Session[] = []
    for (const s of [...this.sessions.values()]) {
      if (s.namespace !== ns) continue
      if (this.kernelAlive(s)) out.push(this.model(s))
      else this.sessions.delete(s.id)
    }
    return out
  }

  /** Throws 404 SESSION_NOT_FOUND. */
  get(ns: string, id: string): Session {
    const s = this.find(ns, id)
    if (!this.kernelAlive(s)) throw kernelError('KERNEL_GONE', `the kernel of session ${id} is gone`)
    return this.model(s)
  }

  /**
   * Returns the session of `path` if there is one (`created: false`), else starts (or binds) the kernel and
   * creates one. Throws the manager's start errors (a failed start creates nothing), 404 KERNEL_NOT_FOUND
   * for an unknown `kernel.id`.
   */
  async create(ns: string, req: CreateSessionRequest): Promise<{ session: Session; created: boolean }> {
    const existing = [...this.sessions.values()].find((s) => s.namespace === ns && s.path === req.path && this.kernelAlive(s))
    if (existing) return { session: this.model(existing), created: false }
    const kernelId = await this.kernelFor(ns, req.kernel, req.path)
    const record: SessionRecord = { id: randomUUID(), namespace: ns, path: req.path, name: req.name ?? '', type: req.type ?? 'notebook', kernelId }
    this.sessions.set(record.id, record)
    return { session: this.model(record), created: true }
  }

  private async kernelFor(ns: string, ref: { id?: string; name?: string } | undefined, path: string): Promise<string> {
    if (ref?.id) return this.kernels.get(ns, ref.id).id
    try {
      return (await this.kernels.start(ns, { name: ref?.name, path: dirname(path) === '.' ? undefined : dirname(path) })).id
    } catch (err) {
      // Jupyter answers 501 when the kernel cannot start; keep bad requests and limits as they are
      if (err instanceof KernelError && err.statusCode >= 500) throw withStatus(err, 501)
      throw err
    }
  }

  /** Rename / retype / rebind. `kernel: {id}` binds an existing kernel, `{name}` starts a new one (the old one is shut down). */
  async patch(ns: string, id: string, req: PatchSessionRequest): Promise<Session> {
    const s = this.find(ns, id)
    if (req.kernel) {
      const old = s.kernelId
      const next = await this.kernelFor(ns, req.kernel, req.path ?? s.path)
      s.kernelId = next
      if (old !== next && req.kernel.id === undefined) await this.kernels.shutdown(ns, old).catch(() => {})
    }
    if (req.path !== undefined) s.path = req.path
    if (req.name !== undefined) s.name = req.name
    if (req.type !== undefined) s.type = req.type
    if (!this.kernelAlive(s)) throw kernelError('KERNEL_GONE', `the kernel of session ${id} is gone`)
    return this.model(s)
  }

  /** Deletes the session and shuts its kernel down. Throws 404, 410 KERNEL_GONE when the kernel was already gone. */
  async delete(ns: string, id: string): Promise<void> {
    const s = this.find(ns, id)
    this.sessions.delete(id)
    if (!this.kernelAlive(s)) throw kernelError('KERNEL_GONE', `the kernel of session ${id} was already gone`)
    await this.kernels.shutdown(ns, s.kernelId)
  }
}
