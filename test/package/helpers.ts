import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

export const run = promisify(execFile)
export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

type Teardown = { teardown(fn: () => unknown): void }

/**
 * The environment of a process in the fresh app: this test's, without what tap, npm or tsx put
 * there (NODE_OPTIONS would load tsx into the child; npm_* would point npm at the clone).
 */
export function appEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(NODE_OPTIONS|NODE_PATH|TAP|npm_|INIT_CWD)/i.test(k)) env[k] = v
  }
  return { ...env, ...extra }
}

/** The fenced code blocks of README.md's section `## <heading>`, in order: `{ lang, code }`. */
export async function readmeBlocks(heading: string): Promise<{ lang: string; code: string }[]> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
  const start = readme.indexOf(`\n## ${heading}\n`)
  if (start < 0) throw new Error(`README.md has no section "## ${heading}"`)
  const end = readme.indexOf('\n## ', start + 4)
  const section = readme.slice(start, end < 0 ? undefined : end)
  return [...section.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], code: m[2] }))
}

/**
 * Packs the main and platform packages (scripts/pack.sh) into a fresh folder, creates an app
 * there and installs only those two tarballs plus fastify. Removed at teardown.
 * Returns the app folder, the tarballs and how long `npm install` took, ms.
 */
export async function installedApp(t: Teardown): Promise<{ dir: string; tarballs: string[]; installMs: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'wk-package-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const { stdout } = await run('bash', [join(ROOT, 'scripts/pack.sh'), dir], { cwd: ROOT, env: appEnv(), maxBuffer: 1 << 24 })
  const tarballs = stdout.trim().split('\n')
  const app = join(dir, 'app')
  await mkdir(app)
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'my-app', private: true, type: 'module' }))
  const started = Date.now()
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...tarballs, 'fastify'], {
    cwd: app,
    env: appEnv(),
    maxBuffer: 1 << 24,
  })
  return { dir: app, tarballs, installMs: Date.now() - started }
}

/** A TCP port free right now on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

/** Spawns `command` in the app folder; resolves once `url` answers (any status), killed at teardown. */
export async function startIn(
  t: Teardown,
  dir: string,
  command: string[],
  env: Record<string, string>,
  url: string,
): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(command[0], command.slice(1), { cwd: dir, env: appEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${command.join(' ')} exited ${child.exitCode}:\n${output}`)
    const up = await fetch(url).then(() => true, () => false)
    if (up) return { child, output: () => output }
    await new Promise((r) => setTimeout(r, 200))
  }
}
