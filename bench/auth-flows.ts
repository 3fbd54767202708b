// 1. POST /login throughput vs the bcrypt bound (compares/s at the same cost on all cores, same run)
// 2. GET /user/profile p99 while /login saturates the CPU, vs unloaded
// 3. POST /token/refresh and POST /signup throughput
// 4. POST /token/refresh throughput for each signing algorithm
// 5. bcrypt: time per hash at cost 10, 11 and 12
// Usage: MONGODB_URL=… npm run bench:auth   (BENCH_SECONDS, BENCH_ROUNDS, BCRYPT_COST, BENCH_ALGORITHMS)
import { spawn } from 'node:child_process'
import bcrypt from 'bcrypt'
import { availableParallelism } from 'node:os'
import { LOAD_CPUS, callJson, cores, databaseUrl, dropBenchDatabases, median, requireWrk, startServer, table, tokenRotationLua, wrk, type RunningServer } from './lib.js'
import { signingSetup, tokenPool, type BenchAlgorithm } from './tokens.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 6)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2)
const COST = Number(process.env.BCRYPT_COST ?? 12)
const threads = availableParallelism()
const ALGORITHMS = (process.env.BENCH_ALGORITHMS ?? 'HS256,EdDSA,ES256,RS256').split(',') as BenchAlgorithm[]

await requireWrk()
const mongodbUrl = databaseUrl()
console.log(`# auth flows: ${cores} cores, Node ${process.version}, server on every core (bcrypt needs them), load on CPU ${LOAD_CPUS ?? '(unpinned)'}; bcrypt cost ${COST}, UV_THREADPOOL_SIZE ${threads}, ${SECONDS} s per run, ${ROUNDS} rounds`)

/** bcrypt.compare per second at the cost, with as many in flight as the pool has threads, in a process of its own. */
function bcryptBound (seconds: number): Promise<number> {
  const script = `
    const bcrypt = require('bcrypt')
    const hash = bcrypt.hashSync('a password for the bench', ${COST})
    let done = 0; const until = Date.now() + ${seconds * 1000}
    async function worker () { while (Date.now() < until) { await bcrypt.compare('a password for the bench', hash); done++ } }
    const started = Date.now()
    Promise.all(Array.from({ length: ${threads * 2} }, worker)).then(() => console.log(done / ((Date.now() - started) / 1000)))`
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, UV_THREADPOOL_SIZE: String(threads) } })
    let out = ''
    child.stdout.on('data', (chunk) => { out += chunk })
    child.on('exit', (code) => code === 0 ? resolve(Number(out)) : reject(new Error(`bcrypt bound failed: ${code}`)))
  })
}

function loginLua (emails: string[]): string {
  return `local emails = {${emails.map((email) => `"${email}"`).join(',')}}
local i = 0
request = function()
  i = i % #emails + 1
  return wrk.format("POST", "/login", { ["Content-Type"] = "application/json" }, '{"email":"' .. emails[i] .. '","password":"a password for the bench"}')
end`
}

const signupCounter = { next: 0 }
function signupLua (): string {
  signupCounter.next += 1
  return `local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/signup", { ["Content-Type"] = "application/json" }, '{"email":"s${signupCounter.next}-' .. n .. '-' .. math.random(1e9) .. '@example.com","password":"a password for the bench"}')
end`
}

/** Clients each following their own session's rotation chain, as many as `clients`, for `seconds`. */
async function refreshThroughput (server: RunningServer, emails: string[], clients: number, seconds: number): Promise<number> {
  const chains = await Promise.all(Array.from({ length: clients }, async (_, i) => {
    const login = await callJson(server.url, 'POST', '/login', { email: emails[i % emails.length], password: 'a password for the bench' })
    return login.body.refreshToken!
  }))
  let done = 0
  const until = Date.now() + seconds * 1000
  const started = Date.now()
  await Promise.all(chains.map(async (first) => {
    let token = first
    while (Date.now() < until) {
      const response = await callJson(server.url, 'POST', '/token/refresh', { refreshToken: token })
      if (response.status !== 200) throw new Error(`refresh answered ${response.status}`)
      token = response.body.refreshToken!
      done++
    }
  }))
  return done / ((Date.now() - started) / 1000)
}

const setup = await signingSetup('EdDSA')
const server = await startServer({
  ...setup.env,
  MONGODB_URL: mongodbUrl,
  BCRYPT_COST: String(COST),
  UV_THREADPOOL_SIZE: String(threads)
}, { cpus: undefined })

const emails = Array.from({ length: 40 }, (_, i) => `bench-login-${i}@example.com`)
await Promise.all(emails.map((email) => callJson(server.url, 'POST', '/signup', { email, password: 'a password for the bench' })))

// 1. login vs bcrypt, alternating.
const bound: number[] = []
const logins: number[] = []
await wrk(server.url, { lua: loginLua(emails), connections: threads * 4, seconds: 2 })
for (let round = 0; round < ROUNDS; round++) {
  bound.push(await bcryptBound(SECONDS))
  const result = await wrk(server.url, { lua: loginLua(emails), connections: threads * 4, seconds: SECONDS })
  if (result.non2xx > 0) throw new Error(`${result.non2xx} failed logins`)
  logins.push(result.requestsPerSecond)
}

// 2. profile latency, unloaded and while logins saturate the CPU.
const profileLua = tokenRotationLua(await tokenPool(setup, 1000), 'header')
const unloaded: number[] = []
const loaded: number[] = []
await wrk(server.url, { lua: profileLua, connections: 10, seconds: 2 })
for (let round = 0; round < ROUNDS; round++) {
  unloaded.push((await wrk(server.url, { lua: profileLua, connections: 10, seconds: SECONDS })).p99Ms)
  const saturation = wrk(server.url, { lua: loginLua(emails), connections: threads * 8, seconds: SECONDS + 2 })
  await new Promise((resolve) => setTimeout(resolve, 1000))
  loaded.push((await wrk(server.url, { lua: profileLua, connections: 10, seconds: SECONDS })).p99Ms)
  await saturation
}

// 3. refresh and signup throughput.
const refreshes: number[] = []
const signups: number[] = []
for (let round = 0; round < ROUNDS; round++) {
  refreshes.push(await refreshThroughput(server, emails, 16, SECONDS))
  signups.push((await wrk(server.url, { lua: signupLua(), connections: threads * 4, seconds: SECONDS })).requestsPerSecond)
}
const peak = server.peakRssMiB()
await server.stop()

console.log(table(['measure', 'value', 'reference', 'ratio', 'goal'], [
  [`POST /login req/s (cost ${COST})`, median(logins), median(bound), median(logins) / median(bound), '≥ 0.90 of the bcrypt bound'],
  ['GET /user/profile p99 ms, login saturating', median(loaded), median(unloaded), median(loaded) / median(unloaded), '≤ 5× unloaded'],
  ['POST /token/refresh req/s (16 clients)', median(refreshes), '—', '—', 'reported'],
  [`POST /signup req/s (cost ${COST})`, median(signups), '—', '—', 'reported'],
  ['peak RSS MiB (whole run)', peak, '—', '—', 'reported']
]))

// 4. refresh per signing algorithm: each rotation signs a new access token
// (the verified-token cache plays no part: refresh tokens are opaque).
const refreshRows: Array<Array<string | number>> = []
for (const algorithm of ALGORITHMS) {
  const algorithmSetup = await signingSetup(algorithm)
  const algorithmServer = await startServer({ ...algorithmSetup.env, MONGODB_URL: databaseUrl(), BCRYPT_COST: '10' }, { cpus: undefined })
  const users = Array.from({ length: 16 }, (_, i) => `bench-refresh-${algorithm}-${i}@example.com`)
  await Promise.all(users.map((email) => callJson(algorithmServer.url, 'POST', '/signup', { email, password: 'a password for the bench' })))
  await refreshThroughput(algorithmServer, users, 16, 2)
  const perSecond: number[] = []
  for (let round = 0; round < ROUNDS; round++) perSecond.push(await refreshThroughput(algorithmServer, users, 16, SECONDS))
  refreshRows.push([algorithm, median(perSecond), algorithmServer.peakRssMiB()])
  await algorithmServer.stop()
}
console.log('')
console.log(table(['algorithm', 'POST /token/refresh req/s (16 clients)', 'peak RSS MiB'], refreshRows))

// 5. bcrypt's cost on this machine: one hash on one core, median of 5.
const costRows: Array<Array<string | number>> = []
for (const cost of [10, 11, 12]) {
  const times: number[] = []
  for (let i = 0; i < 5; i++) {
    const started = performance.now()
    bcrypt.hashSync('a password for the bench', cost)
    times.push(performance.now() - started)
  }
  costRows.push([cost, median(times)])
}
console.log('')
console.log(table(['bcrypt cost', 'ms per hash (one core)'], costRows))
await dropBenchDatabases()
