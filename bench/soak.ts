// A mixed load (signups, logins, refreshes, profile reads, logouts) against the
// compiled server for SOAK_SECONDS (default 300), sampling throughput, errors,
// RSS and heap every 10 s. Usage: MONGODB_URL=… npm run bench:soak
import { callJson, databaseUrl, dropBenchDatabases, machineLine, startServer, table } from './lib.js'
import { signingSetup } from './tokens.js'

const SECONDS = Number(process.env.SOAK_SECONDS ?? 300)
const USERS = Number(process.env.SOAK_USERS ?? 20)
const COST = process.env.BCRYPT_COST ?? '10'
const SAMPLE_MS = 10_000

const setup = await signingSetup('EdDSA')
const server = await startServer({ ...setup.env, MONGODB_URL: databaseUrl(), BCRYPT_COST: COST })
console.log(`# soak: ${machineLine()}; ${USERS} virtual users, ${SECONDS} s, bcrypt cost ${COST}`)

const counts = { signup: 0, login: 0, refresh: 0, profile: 0, logout: 0, errors: 0 }
const errorsByKind = new Map<string, number>()

const call = (method: string, path: string, body?: unknown, token?: string) => callJson(server.url, method, path, body, token)

function expect (kind: string, status: number, expected: number) {
  if (status === expected) return true
  counts.errors++
  errorsByKind.set(`${kind} ${status}`, (errorsByKind.get(`${kind} ${status}`) ?? 0) + 1)
  return false
}

async function virtualUser (index: number, until: number) {
  const email = `soak-${index}-${Date.now()}@example.com`
  const password = 'a soak test password'
  if (expect('signup', (await call('POST', '/signup', { email, password })).status, 201)) counts.signup++
  let session = (await call('POST', '/login', { email, password })).body
  counts.login++
  for (let round = 0; Date.now() < until; round++) {
    for (let i = 0; i < 4; i++) {
      if (expect('profile', (await call('GET', '/user/profile', undefined, session.token)).status, 200)) counts.profile++
    }
    const refreshed = await call('POST', '/token/refresh', { refreshToken: session.refreshToken })
    if (expect('refresh', refreshed.status, 200)) {
      counts.refresh++
      session = refreshed.body
    }
    if (round % 20 === 19) {
      if (expect('logout', (await call('POST', '/logout', { refreshToken: session.refreshToken })).status, 204)) counts.logout++
      const login = await call('POST', '/login', { email, password })
      if (expect('login', login.status, 200)) {
        counts.login++
        session = login.body
      }
    }
  }
}

async function memory () {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN) / 2 ** 20
  return { rss: value('process_resident_memory_bytes'), heap: value('nodejs_heap_size_used_bytes') }
}

const started = Date.now()
const until = started + SECONDS * 1000
const samples: Array<Array<string | number>> = []
let lastOps = 0
const sampler = setInterval(() => {
  const ops = counts.signup + counts.login + counts.refresh + counts.profile + counts.logout
  memory().then(({ rss, heap }) => {
    samples.push([Math.round((Date.now() - started) / 1000), (ops - lastOps) / (SAMPLE_MS / 1000), counts.errors, rss, heap])
    lastOps = ops
    console.log(`  t=${samples.at(-1)![0]}s ops/s=${Math.round(Number(samples.at(-1)![1]))} errors=${counts.errors} rss=${rss.toFixed(1)}MiB heap=${heap.toFixed(1)}MiB`)
  }, () => undefined)
}, SAMPLE_MS)

await Promise.all(Array.from({ length: USERS }, (_, index) => virtualUser(index, until)))
clearInterval(sampler)
const peak = server.peakRssMiB()
await server.stop()

const total = counts.signup + counts.login + counts.refresh + counts.profile + counts.logout
console.log(table(['t (s)', 'ops/s', 'errors so far', 'RSS MiB', 'heap used MiB'], samples))
console.log(`total ${total} requests in ${SECONDS} s (${(total / SECONDS).toFixed(0)}/s): ${JSON.stringify(counts)}; peak RSS ${peak.toFixed(0)} MiB`)
if (errorsByKind.size > 0) console.log('errors:', Object.fromEntries(errorsByKind))
const steady = samples.slice(Math.floor(samples.length / 3))
if (steady.length >= 2) {
  const rss = steady.map((row) => Number(row[3]))
  console.log(`RSS over the last two thirds: ${Math.min(...rss).toFixed(1)}–${Math.max(...rss).toFixed(1)} MiB (first ${rss[0]!.toFixed(1)}, last ${rss.at(-1)!.toFixed(1)})`)
}
await dropBenchDatabases()
