import Database from 'libsql'
import { mkdtempSync, statSync } from 'node:fs'
function run(schema, label) {
  const dir = mkdtempSync('/tmp/wkt-')
  const db = new Database(dir + '/k.db')
  db.pragma('journal_mode = WAL'); db.pragma('synchronous = NORMAL'); db.pragma('wal_autocheckpoint = 0')
  db.exec(schema)
  db.prepare("insert into pn values('d','a',0)").run()
  const up = db.prepare('insert into s values(?,?,?,?) on conflict(ns,id,key) do update set value=excluded.value')
  const ins = db.prepare('insert into p values(?,?,?,?)')
  const del = db.prepare('delete from p where ns=? and id=? and version<=?')
  const ver = db.prepare('update pn set version=? where ns=? and id=? and version=?')
  let v = 0
  const tx = db.transaction(() => { ver.run(v+1,'d','a',v); v++; up.run('d','a','count',String(v)); ins.run('d','a',v,'[{"key":"count","value":1,"operation":"set"}]'); del.run('d','a',v-1000) })
  const w0 = statSync(dir + '/k.db-wal').size
  const t0 = process.cpuUsage()
  for (let i=0;i<2000;i++) tx()
  const c = process.cpuUsage(t0)
  console.log(label, 'frames/commit', ((statSync(dir + '/k.db-wal').size - w0) / 2000 / 4120).toFixed(2), 'cpu us/commit', ((c.user+c.system)/2000).toFixed(0), 'sys', (c.system/2000).toFixed(0))
}
const base = 'create table pn(ns text, id text, version int, primary key(ns,id)) without rowid;'
run(base + 'create table s(ns text, id text, key text, value text, primary key(ns,id,key)); create table p(ns text, id text, version int, m text, primary key(ns,id,version));', 'rowid+pk')
run(base + 'create table s(ns text, id text, key text, value text, primary key(ns,id,key)) without rowid; create table p(ns text, id text, version int, m text, primary key(ns,id,version)) without rowid;', 'without rowid')
