/**
 * Options of the workers plugin: one TypeBox schema with every default (composed into KernelConfig by
 * config.ts as `workers`, so `maxListLimit` is `WK_WORKERS_MAX_LIST_LIMIT`). Counts are items, sizes bytes.
 */
import { Type, type Static } from '@sinclair/typebox'

const MiB = 1024 * 1024
const Int = (def: number, min: number, description: string) => Type.Integer({ default: def, minimum: min, description })

/** Every option of the worker-runtime registry that configuration can set. */
export const WorkersConfig = Type.Object(
  {
    workspaceRoot: Type.String({ default: '.', minLength: 1, description: 'workspace the registry serves (local metadata must name it); resolved against the cwd' }),
    dataDir: Type.Optional(Type.String({ minLength: 1, description: 'folder holding pods/<name>/metadata.json for the local runtime (unset = local host degraded)' })),
    maxListLimit: Int(200, 1, 'largest ?limit= a worker list or transcript read accepts'),
    defaultListLimit: Int(50, 1, '?limit= when none is given (≤ maxListLimit)'),
    transcriptMaxItems: Int(1000, 1, 'transcript items kept per worker, oldest dropped first'),
    transcriptMaxBytes: Int(1 * MiB, 1, 'transcript bytes kept per worker (content + 64 per item), oldest items dropped first'),
    runtimeTranscriptMaxBytes: Int(64 * MiB, 1, 'transcript bytes kept by all workers of one runtime; the namespace holding most is trimmed first'),
    maxWorkers: Type.Optional(Type.Integer({ minimum: 1, description: 'workers each built-in runtime keeps at once (default 1000 embedded, 32 process)' })),
    maxEventsPauseMs: Type.Integer({
      default: 30_000,
      minimum: 1,
      maximum: 2 ** 31 - 1, // Node's setTimeout fires at once past it
      description: 'longest one …/events subscriber that stopped reading may hold its worker paused before it is dropped (close 1013) and the worker resumes, ms',
    }),
    maxWorkersPerNamespace: Type.Optional(Type.Integer({ minimum: 1, description: 'workers one namespace may hold in each built-in runtime (default a quarter of maxWorkers); eviction never crosses namespaces' })),
  },
  { default: {}, additionalProperties: false },
)
export type WorkersConfig = Static<typeof WorkersConfig>
