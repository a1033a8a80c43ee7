import { configVariables } from '../config.js'
const fmt = (v: unknown) => v === undefined ? '—' : Array.isArray(v) ? v.join(', ') : typeof v === 'string' ? JSON.stringify(v) : String(v)
for (const v of configVariables()) if (/^(workers|processes)\./.test(v.path)) console.log(`| \`${v.env}\` | \`${v.flag}\` | ${fmt(v.default)} | ${v.description} |`)
