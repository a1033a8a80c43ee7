import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { ProcessManager } from '../../plugins/processes.js'
import { alive, running, startServer, until, workspace } from './helpers.js'

// What a bridge process can see and reach (README "Security → Processes"), checked with real processes.

const out = (pm: ProcessManager, pid: number, scope = {}) => pm.output(pid, scope).chunks.map((c) => c.data).join('')

/** Spawn, wait for the exit, return the output and exit. */
async function run(pm: ProcessManager, req: Parameters<ProcessManager['spawn']>[0], scope = {}) {
  const info = await pm.spawn({ idleTimeoutMs: 0, ...req }, scope)
  const exit = await pm.wait(info.pid, scope)
  return { info, exit, output: out(pm, info.pid, scope) }
}

t.test('a sandboxed process cannot read host files outside the workspace, nor see host processes', async (t) => {
  const srv = await startServer(t)
  const pm = srv.app.processes
  writeFileSync(join(srv.root, 'mine.txt'), 'inside')
  const projectFile = join(process.cwd(), 'package.json') // this repository's sources
  const code = [
    'import os',
    `for p in ["/etc/shadow", ${JSON.stringify(projectFile)}, "/root", "/home", "/work"]:`,
    '    print(p, os.path.exists(p))',
    'print("mine", open("mine.txt").read())',
    `print("server-visible", os.path.exists("/proc/${process.pid}"))`,
    'print("pids", sorted(int(n) for n in os.listdir("/proc") if n.isdigit()))',
  ].join('\n')
  const { output, exit } = await run(pm, { type: 'python', code })
  t.equal(exit.code, 0, output)
  for (const path of ['/etc/shadow', projectFile, '/root', '/home', '/work']) t.match(output, `${path} False`, `${path} does not exist inside`)
  t.match(output, 'mine inside', 'the workspace is readable (and is the cwd)')
  t.match(output, 'server-visible False', 'the kernel process is not visible')
  const pids = JSON.parse(/pids (\[.*\])/.exec(output)![1]) as number[]
  t.ok(pids.length <= 3, `only the sandbox's own processes are listed: ${pids}`)
  t.ok(pids.includes(1), 'pid 1 is the sandbox’s init')

  const write = await run(pm, { type: 'shell', code: 'touch /usr/x 2>&1; echo rc=$?; touch /tmp/x && echo tmp-ok; echo term=$TERM' })
  t.match(write.output, /Read-only file system[\s\S]*rc=1/, 'system dirs are read-only')
  t.match(write.output, 'tmp-ok', '/tmp is a private tmpfs')
  t.match(write.output, /term=xterm\S*/, 'a PTY shell gets a TERM (the kernel’s, else xterm-256color)')
})

t.test('a setsid or double-forked child does not survive DELETE (checked by host pid)', async (t) => {
  const srv = await startServer(t)
  const code = 'setsid sleep 4101 & ( sleep 4102 & ) ; nohup sleep 4103 >/dev/null 2>&1 & echo started; sleep 1000'
  const res = await srv.request('POST', '/processes', { type: 'shell', code })
  t.equal(res.status, 201)
  const argv = [['sleep', '4101'], ['sleep', '4102'], ['sleep', '4103']]
  const pids = await until(() => {
    const found = argv.map((a) => running(a)[0])
    return found.every((p) => p !== undefined) && found
  }, 10_000, 'escaped children running')
  t.ok(pids.every(alive), `escapees run before DELETE: ${pids}`)
  const killed = await srv.request('DELETE', `/processes/${res.body.pid}`)
  t.equal(killed.status, 200)
  await until(() => pids.every((p) => !alive(p)), 5000, 'escapees gone')
  t.same(pids.filter(alive), [], 'no descendant survives')
  t.same(argv.flatMap(running), [], 'none by argv either')
})

t.test('env.PATH cannot choose the interpreter; node args come after `--`', async (t) => {
  const srv = await startServer(t)
  const pm = srv.app.processes
  mkdirSync(join(srv.root, 'bin'))
  writeFileSync(join(srv.root, 'bin', 'python3'), '#!/bin/sh\necho FAKE-PYTHON\n', { mode: 0o755 })
  const py = await run(pm, { type: 'python', code: 'import sys, os; print("real", sys.version_info[0], os.environ["PATH"])', env: { PATH: `${srv.root}/bin:/workspace/bin` } })
  t.notMatch(py.output, 'FAKE-PYTHON')
  t.match(py.output, 'real 3 /usr/local/bin:/usr/bin:/bin')
  t.same(py.info.droppedEnv, ['PATH'], 'the request’s PATH is reported as dropped')
  t.ok(py.info.command[0].startsWith('/'), `interpreter by absolute path: ${py.info.command[0]}`)

  const heap = 'const v8 = require("v8"); console.log(JSON.stringify({ argv: process.argv.slice(1), execArgv: process.execArgv, heapMb: Math.round(v8.getHeapStatistics().heap_size_limit / 2 ** 20) }))'
  const node = await run(pm, { type: 'node', code: heap, args: ['--max-old-space-size=8048', '--inspect=0.0.0.0:9229', '-r', './evil.js'] })
  const seen = JSON.parse(node.output)
  t.same(seen.argv, ['--max-old-space-size=8048', '--inspect=0.0.0.0:9229', '-r', './evil.js'], 'args reach process.argv')
  t.same(seen.execArgv.filter((a: string) => a.startsWith('--inspect') || a === '-r'), [], 'none became a node option')
  t.ok(seen.heapMb < 1024, `heap limit stays the kernel’s (${seen.heapMb} MiB), not 8048`)
  const bare = await run(pm, { type: 'node', args: ['--inspect'] })
  t.not(bare.exit.code, 0, 'without code, the first arg names a script, it is not an option')
  t.match(bare.output, /Cannot find module '--inspect'/)
})

t.test('network: false (default) cannot reach a host loopback port; true can', async (t) => {
  const srv = await startServer(t)
  const pm = srv.app.processes
  const port = Number(new URL(srv.base).port)
  const code = `import socket\ns = socket.socket()\ns.settimeout(3)\ntry:\n    s.connect(("127.0.0.1", ${port})); print("connected")\nexcept OSError as e:\n    print("refused", e.errno)`
  const off = await run(pm, { type: 'python', code })
  t.match(off.output, /^refused \d+/, `no route to the host's loopback: ${off.output}`)
  const on = await run(pm, { type: 'python', code, network: true })
  t.match(on.output, 'connected', 'network: true shares the host network')
  const bad = await srv.request('POST', '/processes', { type: 'workerd', network: false })
  t.same([bad.status, bad.body.code], [400, 'INVALID_SPAWN_REQUEST'], 'workerd always needs loopback')
})

t.test('a cwd swapped for a symlink while spawning never reaches outside the workspace', async (t) => {
  const root = workspace(t)
  const outside = workspace(t)
  writeFileSync(join(outside, 'secret.txt'), 'TOP-SECRET')
  const srv = await startServer(t, { workspaceRoot: root, maxProcesses: 64, maxProcessesPerNamespace: 64 })
  const dir = join(root, 'sub')
  mkdirSync(dir)
  let swapping = true
  const swapper = (async () => {
    for (let i = 0; swapping; i++) {
      rmSync(dir, { recursive: true, force: true })
      if (i % 2) symlinkSync(outside, dir)
      else mkdirSync(dir)
      await new Promise((r) => setImmediate(r))
    }
  })()
  const results = await Promise.all(
    Array.from({ length: 22 }, () => srv.request('POST', '/processes', { type: 'shell', cwd: 'sub', code: 'pwd; cat secret.txt 2>&1; cat ../secret.txt 2>&1', idleTimeoutMs: 0 })),
  )
  swapping = false
  await swapper
  let ran = 0
  for (const res of results) {
    if (res.status !== 201) {
      t.match(res.body.code, /^(CWD_OUTSIDE_WORKSPACE|INVALID_CWD|SPAWN_FAILED)$/, 'refused with a typed error')
      continue
    }
    ran++
    await srv.app.processes.wait(res.body.pid)
    t.notMatch(out(srv.app.processes, res.body.pid), 'TOP-SECRET', 'the outside file is never read')
  }
  t.ok(ran + results.filter((r) => r.status === 400 || r.status === 500).length === results.length, `${ran} of ${results.length} ran, the rest refused`)
})

t.test('resource limits: open files, address space, and tasks per sandbox', async (t) => {
  const srv = await startServer(t, { maxOpenFiles: 64, addressSpaceBytes: 1024 ** 3, maxTasks: 32 })
  const pm = srv.app.processes
  const files = await run(pm, { type: 'python', code: 'fs = []\ntry:\n    while True: fs.append(open("/dev/null"))\nexcept OSError as e:\n    print("opened", len(fs), e.errno)' })
  const opened = Number(/opened (\d+) 24/.exec(files.output)?.[1])
  t.ok(opened > 0 && opened <= 64, `EMFILE after ${opened} files (limit 64)`)
  const memory = await run(pm, { type: 'python', code: 'try:\n    b = bytearray(2 * 1024 ** 3); print("allocated")\nexcept MemoryError:\n    print("MemoryError")' })
  t.match(memory.output, 'MemoryError', '2 GiB cannot be mapped under a 1 GiB address space')
  if (!pm.sandbox.pidsCgroup && process.getuid?.() === 0) {
    t.skip('task limit: no writable pids cgroup here, and Linux does not apply RLIMIT_NPROC to root')
    return
  }
  const fork = 'import os, time\nn = 0\ntry:\n    for i in range(100):\n        if os.fork() == 0:\n            time.sleep(5)\n            os._exit(0)\n        n += 1\n    print("forked", n)\nexcept OSError as e:\n    print("forked", n, "errno", e.errno)'
  const tasks = await run(pm, { type: 'python', code: fork })
  const forked = Number(/forked (\d+)/.exec(tasks.output)?.[1])
  t.ok(forked < 32, `a fork loop stops below the 32-task bound (${tasks.output.trim()})`)
  t.match(tasks.output, 'errno 11', 'fork fails with EAGAIN')
})

t.test('a SIGKILLed kernel leaves no sandboxed process behind', async (t) => {
  const root = workspace(t)
  const script = `
    import { ProcessManager } from ${JSON.stringify(new URL('../../plugins/processes.js', import.meta.url).href.replace(/\.js$/, '.ts'))}
    const pm = new ProcessManager({ workspaceRoot: ${JSON.stringify(root)} })
    await pm.spawn({ type: 'shell', code: 'setsid sleep 4201 & sleep 4202' })
    console.log('spawned')
  `
  writeFileSync(join(root, 'kernel.mts'), script)
  const kernel = spawn(process.execPath, ['--import', 'tsx', join(root, 'kernel.mts')], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve) => kernel.stdout.on('data', (d) => String(d).includes('spawned') && resolve()))
  const pids = await until(() => {
    const found = [running(['sleep', '4201'])[0], running(['sleep', '4202'])[0]]
    return found.every((p) => p !== undefined) && found
  }, 10_000, 'sandboxed sleeps')
  kernel.kill('SIGKILL')
  await until(() => pids.every((p) => !alive(p)), 5000, 'sandbox gone with its kernel')
  t.same(pids.filter(alive), [], '--die-with-parent ended the sandbox')
})

t.test('stdin backpressure: a child that never reads gets at most maxPendingInputBytes queued', async (t) => {
  const bound = 256 * 1024
  const srv = await startServer(t, { maxPendingInputBytes: bound })
  const pm = srv.app.processes
  const { body: proc } = await srv.request('POST', '/processes', { type: 'python', code: 'import time; time.sleep(60)', idleTimeoutMs: 0 })
  const chunk = 'x'.repeat(60_000)
  let accepted = 0
  let refused: { status: number; body: any } | undefined
  for (let i = 0; i < 200 && !refused; i++) {
    const res = await srv.request('POST', `/processes/${proc.pid}/input`, { data: chunk })
    if (res.status === 200) accepted += res.body.bytes
    else refused = res
  }
  t.same([refused?.status, refused?.body.code], [429, 'INPUT_BACKLOG_FULL'], 'a write past the bound is refused')
  t.ok(pm.inputBacklog(proc.pid) <= bound, `server-side backlog ${pm.inputBacklog(proc.pid)} ≤ ${bound}`)
  t.ok(accepted <= bound + 2 * 65_536 + chunk.length, `accepted ${accepted} bytes: the bound plus what the OS pipe holds`)

  // Over the WebSocket the server stops reading frames instead of queueing them.
  const { body: other } = await srv.request('POST', '/processes', { type: 'python', code: 'import time; time.sleep(60)', idleTimeoutMs: 0 })
  const ws = await srv.ws(`/processes/${other.pid}/ws`)
  const frame = Buffer.alloc(64 * 1024, 0x61)
  for (let i = 0; i < 64; i++) ws.socket.send(frame) // 4 MiB
  await new Promise((r) => setTimeout(r, 500))
  t.ok(pm.inputBacklog(other.pid) <= bound, `WS backlog ${pm.inputBacklog(other.pid)} stays ≤ ${bound}`)
  t.notOk(ws.messages.some((m) => m.type === 'ERROR'), 'the client is slowed down, not failed')
})

t.test('per-namespace quota: one namespace cannot take every process slot', async (t) => {
  const srv = await startServer(t, { maxProcesses: 8 })
  const pm = srv.app.processes
  t.equal(pm.options.maxProcessesPerNamespace, 2, 'default: a quarter of maxProcesses')
  const sleeper = { type: 'python' as const, code: 'import time; time.sleep(60)', idleTimeoutMs: 0 }
  await pm.spawn(sleeper, { namespace: 'flood' })
  await pm.spawn(sleeper, { namespace: 'flood' })
  await t.rejects(pm.spawn(sleeper, { namespace: 'flood' }), { statusCode: 429, code: 'NAMESPACE_QUOTA_EXCEEDED' })
  const victim = await pm.spawn(sleeper, { namespace: 'victim' })
  t.equal(victim.status, 'running', 'another namespace is still served')
  t.equal(pm.list({ namespace: 'flood' }).length, 2)
  const internal = { owner: 'kernels', type: 'python' as const, file: '/usr/bin/python3', args: ['-c', 'import time; time.sleep(60)'], cwd: srv.root, env: {} }
  await t.rejects(pm.spawnInternal({ ...internal, namespace: 'flood' }), { statusCode: 429, code: 'NAMESPACE_QUOTA_EXCEEDED' }, 'an internal spawn naming the namespace counts in its quota')
  const unscoped = await pm.spawnInternal(internal)
  t.equal(unscoped.status, 'running', 'one naming none counts only towards maxProcesses')
})

t.test('internal spawns: loopback, read-only and writable extra paths on request, hidden from public callers', async (t) => {
  const srv = await startServer(t)
  const pm = srv.app.processes
  const lib = workspace(t) // e.g. a virtualenv or a kernel script folder, outside the workspace
  const own = workspace(t) // e.g. a kernel's connection-file folder
  writeFileSync(join(lib, 'kernel.js'), 'require("fs").writeFileSync(process.argv[3] + "/ran", "yes"); const s = require("net").connect(Number(process.argv[2]), "127.0.0.1", () => { s.end("hello from " + process.env.ROLE + " in " + process.cwd()) })')
  const got = new Promise<string>((resolve) => {
    const server = createServer((c) => c.on('data', (d) => (resolve(String(d)), server.close())))
    server.listen(0, '127.0.0.1', () => spawnIt((server.address() as { port: number }).port))
    t.teardown(() => server.close())
  })
  let info: Awaited<ReturnType<ProcessManager['spawnInternal']>> | undefined
  const spawnIt = async (port: number) => {
    info = await pm.spawnInternal({
      owner: 'kernels',
      type: 'node',
      file: process.execPath,
      args: [join(lib, 'kernel.js'), String(port), own],
      cwd: srv.root,
      env: { ROLE: 'kernel' },
      sandbox: { network: 'host', readOnlyPaths: [lib], writablePaths: [own] },
    })
  }
  t.equal(await got, 'hello from kernel in /workspace', 'the program ran from a read-only path and reached host loopback')
  await until(() => existsSync(join(own, 'ran')), 5000, 'wrote to its writable path')
  await until(() => info)
  t.throws(() => pm.get(info!.pid), { statusCode: 404 }, 'hidden from public callers')
  t.equal(pm.get(info!.pid, { owner: 'kernels' }).pid, info!.pid, 'found by its owner')
  t.same((await srv.request('GET', `/processes/${info!.pid}`)).status, 404)
  writeFileSync(join(lib, 'probe.js'), 'require("fs").writeFileSync(__filename, "x")')
  const ro = await pm.spawnInternal({ owner: 'kernels', type: 'node', file: process.execPath, args: [join(lib, 'probe.js')], cwd: srv.root, env: {}, sandbox: { readOnlyPaths: [lib] } })
  await pm.wait(ro.pid, { owner: 'kernels' })
  t.match(out(pm, ro.pid, { owner: 'kernels' }), /EROFS/, 'extra paths are read-only')
  renameSync(join(lib, 'probe.js'), join(lib, 'probe.done'))
})
