/**
 * The sandbox's options as a TypeBox schema: the one place their defaults live. `WasmRuntime` fills
 * what a caller leaves out from it (RUNTIME_OPTION_DEFAULTS); config.ts puts it under `runtime.*`
 * (WK_RUNTIME_MAX_INSTANCES …). Sizes in bytes, times in ms.
 */
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { defaultWorkerThreads } from './admission.js'

const MiB = 1024 * 1024

const Int = (def: number, min: number, description: string, max?: number) =>
  Type.Integer({ default: def, minimum: min, ...(max === undefined ? {} : { maximum: max }), description })

/** Limits of the wasm sandbox (the executor's RuntimeConfig). Bytes and ms. */
export const RuntimeOptions = Type.Object(
  {
    maxInstances: Int(64, 1, 'live sandbox instances (running + suspended) at once'),
    maxQueue: Int(1024, 0, 'executions waiting at the executor\'s gate (plugins/executor/gate.ts) for a slot before CAPACITY_EXCEEDED'),
    memoryLimitBytes: Int(64 * MiB, 1 * MiB, 'linear memory cap per instance, bytes'),
    defaultTimeoutMs: Int(5000, 1, 'wall-clock budget of one execution segment when the tool gives none, ms'),
    inlineSliceMs: Int(1, 0, 'running time an execution may first spend on the event-loop thread before it is run again from the start on a worker, ms (0 = always a worker)'),
    fuelLimit: Int(0, 0, 'fuel (≈ wasm instructions) per execution, 0 = unlimited'),
    maxHostCalls: Int(1000, 1, '$ext/$emit/$view/$log calls per execution'),
    maxStateMutations: Int(1000, 1, 'state mutations per execution'),
    maxEvents: Int(1000, 1, 'emitted events per execution'),
    maxSourceBytes: Int(1 * MiB, 1, 'largest accepted handler source, bytes'),
    memoryCacheEntries: Int(512, 1, 'compiled handlers kept in memory (LRU entries)'),
    cacheDir: Type.Optional(Type.String({ minLength: 1, description: 'folder of the on-disk bytecode cache (unset = none)' })),
    maxCacheSizeBytes: Int(64 * MiB, 0, 'bound of the disk bytecode cache, bytes'),
    workerThreads: Int(defaultWorkerThreads(), 1, 'threads that run sandbox guests (default: cores − 1, the event loop keeps one)', 256),
  },
  { default: {}, additionalProperties: false },
)

export type RuntimeOptions = Static<typeof RuntimeOptions>

/** Every default of RuntimeOptions, filled from the schema. */
export const RUNTIME_OPTION_DEFAULTS = Value.Default(RuntimeOptions, {}) as Required<Omit<RuntimeOptions, 'cacheDir'>>
