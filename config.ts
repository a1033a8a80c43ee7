/**
 * Kernel configuration: one TypeBox schema of every option with its default, and loading it from
 * environment variables (`WK_*`) and command-line flags (`--name=value`).
 *
 * Names derive from the schema: top-level `port` is `WK_PORT` / `--port`, `runtime.maxInstances`
 * is `WK_RUNTIME_MAX_INSTANCES` / `--runtime-max-instances`. Arrays are comma-separated,
 * booleans accept true/false/1/0/yes/no/on/off.
 *
 * To add options: add a field with a `default` (or a group: `Type.Object({...}, { default: {} })`
 * whose fields all have defaults) to `KernelConfig`; the env/flag names and docs follow.
 */
import { Type, Kind, type Static, type TSchema, type TObject } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { DEFAULT_ENV_ALLOW_LIST, DEFAULT_MAX_OUTPUT_PAUSE_MS } from './plugins/processes/types.js'
import { KernelsConfig } from './plugins/kernels/options.js'
import { WorkersConfig } from './plugins/workers/options.js'
import { PanelLimits, PanelSocketOptions } from './plugins/panels/options.js'
import { StoreOptions } from './plugins/store.js'
import { RuntimeOptions } from './wasm-runtime/options.js'
import { ExecutorPolicyOptions } from './plugins/executor/options.js'
import { AuthConfig } from './plugins/auth.js'
import { HostGuardOptions } from './plugins/host-guard.js'
import { JsonLimitsOptions } from './plugins/json-limits.js'
import { ERROR_STATUS, KernelError } from './plugins/errors.js'

const KiB = 1024
const MiB = 1024 * KiB

const Int = (def: number, min: number, description: string, max?: number) =>
  Type.Integer({ default: def, minimum: min, ...(max === undefined ? {} : { maximum: max }), description })
/** A time in ms that arms a timer: Node fires a setTimeout past 2^31−1 ms after 1 ms, so that is the bound. */
const Ms = (def: number, min: number, description: string) => Int(def, min, description, 2 ** 31 - 1)

/** Options of the built-in `http` extension. Bytes and ms. */
export const HttpOptions = Type.Object(
  {
    allowedDomains: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'hosts handlers may call: exact names or `*.example.com`; empty = any public host',
    }),
    allowPrivateAddresses: Type.Boolean({
      default: false,
      description: 'allow loopback/private/link-local targets (otherwise only hosts listed exactly in allowedDomains)',
    }),
    maxConcurrent: Int(10, 1, 'requests in flight at once'),
    maxQueue: Int(100, 0, 'requests waiting for a slot before QUEUE_FULL'),
    timeoutMs: Ms(10_000, 1, 'default and maximum time of one call (queue wait included), ms'),
    userAgent: Type.String({ default: 'workspace-kernel/0.1', minLength: 1, description: 'User-Agent header' }),
    maxResponseBytes: Int(5 * MiB, 1, 'largest response body read, bytes'),
  },
  { default: {}, additionalProperties: false },
)

/** Options of the panel WebSocket. Bytes and ms. */
export const WsOptions = Type.Object(
  {
    maxPayloadBytes: Int(1 * MiB, 1, 'largest accepted frame, bytes (bigger: close 1009); the kernel channels have their own, kernels.wsMaxPayloadBytes'),
    ...PanelSocketOptions.properties,
  },
  { default: {}, additionalProperties: false },
)

/** Options of the inspector page (plugins/inspector.ts). */
export const InspectorConfig = Type.Object(
  { enabled: Type.Boolean({ default: true, description: 'serve the inspector page at /inspector' }) },
  { default: {}, additionalProperties: false },
)

/** Options of the process bridge (plugins/processes.ts). Bytes and ms. */
export const ProcessesConfig = Type.Object(
  {
    workspaceRoot: Type.String({ default: '.', minLength: 1, description: 'directory every process cwd and script must stay inside; resolved against the cwd' }),
    maxProcesses: Int(32, 1, 'live processes at once (one more: 429 TOO_MANY_PROCESSES)'),
    maxProcessesPerNamespace: Type.Optional(Type.Integer({ minimum: 1, description: 'live processes of one namespace (one more: 429 NAMESPACE_QUOTA_EXCEEDED; default a quarter of maxProcesses)' })),
    maxPendingInputBytes: Int(1 * MiB, 1, 'stdin bytes a child has not read yet before writes answer 429 INPUT_BACKLOG_FULL'),
    addressSpaceBytes: Int(4 * 1024 * MiB, 64 * MiB, 'RLIMIT_AS of each sandboxed process, bytes (workerd: at least 16 GiB)'),
    maxOpenFiles: Int(1024, 16, 'RLIMIT_NOFILE of each sandboxed process'),
    maxTasks: Int(256, 8, 'processes + threads of one sandbox (pids cgroup where available, and RLIMIT_NPROC)'),
    outputBufferBytes: Int(1 * MiB, 1, 'output replay buffer per process, bytes'),
    maxInputBytes: Int(64 * KiB, 1, 'largest single stdin write, bytes (bigger: 413 INPUT_TOO_LARGE)'),
    defaultTimeoutMs: Ms(0, 0, 'timeout of spawns that give none (0 = none), ms'),
    idleTimeoutMs: Ms(600_000, 0, 'kill a process with no attached client and no input for this long (0 = never), ms'),
    envAllowList: Type.Array(Type.String({ minLength: 1 }), {
      default: [...DEFAULT_ENV_ALLOW_LIST],
      description: 'environment keys a child may receive (from the kernel or the request); `PREFIX_*` matches a prefix; PATH and HOME are always the sandbox’s own',
    }),
    killGraceMs: Ms(2000, 0, 'SIGTERM → SIGKILL grace when a process is killed or the kernel stops, ms'),
    // at most 2^31-1: Node's setTimeout fires at once past it
    maxOutputPauseMs: Ms(DEFAULT_MAX_OUTPUT_PAUSE_MS, 1, 'longest one /processes/:pid/ws client that stopped reading may hold its process paused before it is dropped (close 1013) and the process resumes for the other clients, ms'),
  },
  { default: {}, additionalProperties: false },
)

/** Every kernel option. `Static<typeof KernelConfig>` is the resolved (defaulted, validated) config. */
export const KernelConfig = Type.Object(
  {
    port: Int(3000, 0, 'TCP port to listen on (0 = any free port)', 65535),
    host: Type.String({ default: '127.0.0.1', minLength: 1, description: 'address to listen on' }),
    prefix: Type.String({ default: '', pattern: '^(/[A-Za-z0-9._~-]+)*$', description: 'URL prefix of every kernel route, e.g. /kernel' }),
    logLevel: Type.Union(
      [
        Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'),
        Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent'),
      ],
      { default: 'info', description: 'pino log level' },
    ),
    nodeEnv: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], {
      default: 'development',
      description: 'production = JSON logs; otherwise pretty logs (falls back to NODE_ENV)',
    }),
    ...AuthConfig.properties,
    allowedHosts: HostGuardOptions.properties.allowedHosts,
    corsOrigins: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'origins allowed by CORS and by the Origin check (same origin is always allowed); `*` = any; empty = no CORS headers',
    }),
    maxJsonDepth: JsonLimitsOptions.properties.maxJsonDepth,
    bodyLimitBytes: Int(1 * MiB, 1, 'largest request body, bytes (bigger: 413 PAYLOAD_TOO_LARGE)'),
    ...PanelLimits.properties,
    ...ExecutorPolicyOptions.properties,
    dataDir: StoreOptions.properties.dataDir,
    store: Type.Omit(StoreOptions, ['dataDir'], { default: {}, additionalProperties: false }),
    shutdownTimeoutMs: Ms(10_000, 1, 'graceful shutdown budget before a forced exit 1, ms'),
    // Fastify's own default (10 s) is shorter than a first start's Cranelift compile of guest.wasm on a busy machine
    pluginTimeoutMs: Ms(60_000, 0, "time each plugin of buildApp / the standalone server may take to start (Fastify's pluginTimeout), the guest's first compile when no .cwasm is cached yet included; 0 = no limit, ms"),
    runtime: RuntimeOptions,
    http: HttpOptions,
    ws: WsOptions,
    workers: WorkersConfig,
    processes: ProcessesConfig,
    kernels: KernelsConfig,
    inspector: InspectorConfig,
  },
  { additionalProperties: false },
)

export type KernelConfig = Static<typeof KernelConfig>
export type HttpOptions = Static<typeof HttpOptions>
export type WsOptions = Static<typeof WsOptions>
export type ProcessesConfig = Static<typeof ProcessesConfig>
export type StoreConfig = KernelConfig['store']

/** What callers may pass: any subset, groups included (`{ http: { allowedDomains: [...] } }`). */
export type KernelOptions = {
  [K in keyof KernelConfig]?: KernelConfig[K] extends unknown[]
    ? KernelConfig[K]
    : KernelConfig[K] extends object
      ? Partial<KernelConfig[K]>
      : KernelConfig[K]
}

/** One problem found in a configuration: where (`variable` for env/flags), what was given, why. */
export interface ConfigIssue {
  path: string
  variable?: string
  value?: unknown
  message: string
}

/**
 * Thrown by `loadConfig` / `resolveConfig` when any option is invalid: a KernelError with code
 * INVALID_CONFIG (status from the catalog, 500); `message` lists every issue.
 */
export class ConfigError extends KernelError {
  readonly issues: ConfigIssue[]
  constructor(issues: ConfigIssue[]) {
    super(`Invalid configuration:\n${issues.map(formatIssue).join('\n')}`)
    this.name = 'ConfigError'
    this.code = 'INVALID_CONFIG'
    this.statusCode = ERROR_STATUS.INVALID_CONFIG
    this.issues = issues
  }
}

function formatIssue(i: ConfigIssue): string {
  const where = i.variable ?? i.path
  const given = i.value === undefined ? '' : `=${JSON.stringify(i.value)}`
  return `  ${where}${given}: ${i.message}`
}

/** One leaf option, as the env/flag loader and docs see it. */
export interface ConfigVariable {
  /** dotted path in KernelConfig, e.g. `runtime.maxInstances` */
  path: string
  /** environment variable, e.g. `WK_RUNTIME_MAX_INSTANCES` */
  env: string
  /** command-line flag, e.g. `--runtime-max-instances` */
  flag: string
  default: unknown
  description: string
  schema: TSchema
}

const words = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase()

/** Every leaf option with its env name, flag, default and meaning (for `--help` and the README). */
export function configVariables(): ConfigVariable[] {
  const out: ConfigVariable[] = []
  const walk = (obj: TObject, path: string[]) => {
    for (const [key, schema] of Object.entries(obj.properties)) {
      const p = [...path, key]
      if (schema[Kind] === 'Object') {
        walk(schema as TObject, p)
        continue
      }
      const snake = p.map(words).join('_')
      out.push({
        path: p.join('.'),
        env: `WK_${snake.toUpperCase()}`,
        flag: `--${snake.replaceAll('_', '-')}`,
        default: schema.default,
        description: String(schema.description ?? ''),
        schema,
      })
    }
  }
  walk(KernelConfig, [])
  return out
}

type Parsed = { ok: true; value: unknown } | { ok: false; message: string }

const TRUE = new Set(['true', '1', 'yes', 'on'])
const FALSE = new Set(['false', '0', 'no', 'off'])

/** Turns one env/flag string into the schema's type; constraints are checked later by TypeBox. */
function parseRaw(schema: TSchema, raw: string): Parsed {
  const s = raw.trim()
  switch (schema.type) {
    case 'integer':
    case 'number': {
      const n = s === '' ? Number.NaN : Number(s)
      return Number.isFinite(n) ? { ok: true, value: n } : { ok: false, message: `expected a number` }
    }
    case 'boolean':
      if (TRUE.has(s.toLowerCase())) return { ok: true, value: true }
      if (FALSE.has(s.toLowerCase())) return { ok: true, value: false }
      return { ok: false, message: 'expected a boolean (true/false/1/0/yes/no/on/off)' }
    case 'array':
      return { ok: true, value: s.split(',').map((x) => x.trim()).filter((x) => x !== '') }
    default:
      return { ok: true, value: s }
  }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.')
  let obj = target
  for (const k of keys.slice(0, -1)) obj = (obj[k] ??= {}) as Record<string, unknown>
  obj[keys[keys.length - 1]] = value
}

/** `--port=8080`, `--port 8080`, and bare `--auth-enabled` for booleans. */
function parseFlags(argv: string[], vars: ConfigVariable[]): { raw: Map<ConfigVariable, string>; issues: ConfigIssue[] } {
  const byFlag = new Map(vars.map((v) => [v.flag, v]))
  const raw = new Map<ConfigVariable, string>()
  const issues: ConfigIssue[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg : arg.slice(0, eq)
    const v = byFlag.get(name)
    if (!v) {
      issues.push({ path: name, variable: name, message: 'unknown flag (see --help)' })
      continue
    }
    if (eq !== -1) raw.set(v, arg.slice(eq + 1))
    else if (v.schema.type === 'boolean') raw.set(v, 'true')
    else if (i + 1 < argv.length) raw.set(v, argv[++i])
    else issues.push({ path: v.path, variable: name, message: 'missing value' })
  }
  return { raw, issues }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base }
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue
    out[k] = isPlainObject(v) && isPlainObject(out[k]) ? deepMerge(out[k] as Record<string, unknown>, v) : v
  }
  return out
}

/**
 * Fills defaults into `options` and validates the result.
 * @throws ConfigError (code INVALID_CONFIG) listing every invalid option; `names` maps dotted
 *   paths to the env var / flag they came from so messages name what the user typed.
 */
export function resolveConfig(options: KernelOptions = {}, names: Map<string, string> = new Map()): KernelConfig {
  const merged = deepMerge(Value.Default(KernelConfig, {}) as Record<string, unknown>, options as Record<string, unknown>)
  const issues: ConfigIssue[] = [...Value.Errors(KernelConfig, merged)].map((e) => {
    const path = e.path.slice(1).replaceAll('/', '.')
    const value = e.schema.secret === true ? undefined : e.value // never echo a secret into logs
    return { path: path || '(root)', variable: names.get(path), value, message: errorText(e.schema, e.message) }
  })
  const cfg = merged as KernelConfig
  if (issues.length === 0 && !cfg.authEnabled && !isLoopbackHost(cfg.host)) {
    const authVar = names.get('authEnabled') ?? 'authEnabled'
    issues.push({ path: 'authEnabled', variable: authVar, value: false, message: `auth may be off only on a loopback host (host is ${cfg.host})` })
  }
  if (issues.length > 0) throw new ConfigError(dedupe(issues))
  return cfg
}

/** `localhost`, 127.0.0.0/8 or ::1: addresses other machines cannot reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
}

/** TypeBox reports unions of literals as "Expected union value"; name the allowed values instead. */
function errorText(schema: TSchema, message: string): string {
  if (Array.isArray(schema.anyOf) && schema.anyOf.every((s: TSchema) => 'const' in s)) {
    return `expected one of ${schema.anyOf.map((s: TSchema) => s.const).join(', ')}`
  }
  if (schema.type === 'object' && message.includes('property')) return message
  return message.charAt(0).toLowerCase() + message.slice(1)
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>()
  return issues.filter((i) => {
    const key = `${i.path}\0${i.message}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/**
 * Loads the configuration from environment variables and command-line flags (flags win), over
 * `base` (e.g. options from code), then defaults. `nodeEnv` falls back to `NODE_ENV`.
 * @throws ConfigError (code INVALID_CONFIG) naming each bad variable/flag, its value and the rule.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  argv: string[] = process.argv.slice(2),
  base: KernelOptions = {},
): KernelConfig {
  const vars = configVariables()
  const { raw: flagRaw, issues } = parseFlags(argv, vars)
  const options: Record<string, unknown> = {}
  const names = new Map<string, string>()
  for (const v of vars) {
    let source = flagRaw.has(v) ? v.flag : env[v.env] !== undefined ? v.env : undefined
    let raw = flagRaw.get(v) ?? env[v.env]
    // NODE_ENV is shared with other tools: only a value we know counts
    if (raw === undefined && v.path === 'nodeEnv' && ['development', 'production', 'test'].includes(env.NODE_ENV ?? '')) {
      source = 'NODE_ENV'
      raw = env.NODE_ENV
    }
    if (raw === undefined || source === undefined) continue
    names.set(v.path, source)
    const parsed = parseRaw(v.schema, raw)
    if (parsed.ok) setPath(options, v.path, parsed.value)
    else issues.push({ path: v.path, variable: source, value: v.schema.secret === true ? undefined : raw, message: parsed.message })
  }
  if (issues.length > 0) throw new ConfigError(issues)
  return resolveConfig(deepMerge(base as Record<string, unknown>, options) as KernelOptions, names)
}

/** A plain-text table of every variable, for `--help`; `base` shows the caller's own defaults (e.g. the standalone server's `authEnabled: true`). */
export function configHelp(base: KernelOptions = {}): string {
  const shown = (v: ConfigVariable) => (Object.hasOwn(base, v.path) ? (base as Record<string, unknown>)[v.path] : v.default)
  const rows = configVariables().map((v) => `  ${v.env.padEnd(34)} ${v.flag.padEnd(32)} ${JSON.stringify(shown(v)) ?? '(unset)'}\n      ${v.description}`)
  return `workspace-kernel options (environment variable, flag, default):\n${rows.join('\n')}\n`
}
