import t from 'tap'
import { alive, children, startServer, until } from './helpers.js'

t.test('app.close() terminates and reaps every child, grandchildren included', async (t) => {
  const srv = await startServer(t, { killGraceMs: 300 })
  const pm = srv.app.processes
  const shell = await pm.spawn({ type: 'shell' })
  const detach = pm.attach(shell.pid, () => {})
  // A background job in its own process group, and a foreground one, both inside the PTY session.
  pm.write(shell.pid, 'sleep 1000 & echo "bg=$!"\n')
  const bg = Number(
    await until(() => /bg=(\d+)/.exec(pm.output(shell.pid).chunks.map((c) => c.data).join(''))?.[1], 10_000, 'background pid'),
  )
  pm.write(shell.pid, 'sleep 1001\n')
  await until(() => pm.get(shell.pid).foreground === 'sleep', 10_000, 'foreground sleep')
  const python = await pm.spawn({ type: 'python', code: 'import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint("ready", flush=True)\ntime.sleep(1000)' })
  await until(() => pm.get(python.pid).outputBytes > 0, 10_000, 'python ready')
  const node = await pm.spawn({ type: 'node', code: "const c = require('child_process').spawn('sleep', ['1002'], { stdio: 'ignore' }); console.log('child=' + c.pid); setInterval(() => {}, 1000)" })
  const grandchild = Number(await until(() => /child=(\d+)/.exec(pm.output(node.pid).chunks.map((c) => c.data).join(''))?.[1], 10_000, 'node child pid'))
  const workerd = await pm.spawn({ type: 'workerd' })

  const leaders = [shell.pid, python.pid, node.pid, workerd.pid]
  const all = [...leaders, bg, grandchild]
  t.ok(all.every(alive), 'everything runs before close')
  const exits: string[] = []
  pm.on('exit', (event) => exits.push(`${event.pid}:${event.exit.reason}`))

  await srv.app.close()
  detach()
  t.same(all.filter(alive), [], 'no process survives close (by pid)')
  t.same(children().filter((pid) => leaders.includes(pid)), [], 'every direct child was reaped')
  t.same(exits.sort(), leaders.map((pid) => `${pid}:shutdown`).sort(), 'each exit is reported with reason shutdown')
  t.equal(pm.get(python.pid).exit?.signal, 'SIGKILL', 'a child ignoring SIGTERM is killed after the grace period')
  await t.rejects(pm.spawn({ type: 'shell' }), { statusCode: 503, code: 'SHUTTING_DOWN' })
})
