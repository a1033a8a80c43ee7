import { ProcessManager } from '/work/wt/procs/plugins/processes/manager.js'
const pm = new ProcessManager({ workspaceRoot: '/tmp/wsx', killGraceMs: 500 })
const run = async (req: any) => {
  const p = await pm.spawn(req)
  const exit = await pm.wait(p.pid)
  console.log(JSON.stringify(req).slice(0, 80), '→', exit, JSON.stringify(pm.output(p.pid).chunks.map((c) => c.data).join('')).slice(0, 300))
}
await run({ type: 'node', code: 'console.log(process.cwd(), process.argv.slice(1), process.env.PATH)', args: ['--inspect', '--max-old-space-size=8000'] })
await run({ type: 'node', args: ['--inspect'] })
await run({ type: 'python', code: 'import os; print(os.getcwd(), os.getpid(), open("/etc/passwd").read()[:20])' })
await run({ type: 'python', code: 'open("/etc/shadow")' })
await run({ type: 'shell', code: 'ls /; ls /proc | head -3; echo $PATH $HOME' })
const s = await pm.spawn({ type: 'python', code: 'import time\nprint("up", flush=True)\ntime.sleep(100)' })
await new Promise((r) => setTimeout(r, 300))
console.log('info', pm.get(s.pid))
console.log('killed', await pm.kill(s.pid).then((i) => i.exit))
await pm.close()
