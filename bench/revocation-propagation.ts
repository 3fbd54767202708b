// How fast a logout reaches another service, and what the revocation stream costs.
//  1. Two replicas, A and B, over one database; a consumer (the verification
//     library) follows B's stream. Each of BENCH_LOGOUTS logouts goes to A,
//     under a background load on A; the figure is the time from the logout's
//     204 to the consumer refusing that session's token.
//  2. The same with the consumer polling the feed (every 5 s, the default) instead.
//  3. BENCH_CONSUMERS streams open on B: B's memory, and its CPU per pushed event.
// Usage: MONGODB_URL=… npm run bench:propagation   (BENCH_LOGOUTS, BENCH_CONSUMERS)
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { createClientCredentials, createVerifier, TokenRevokedError, type Verifier } from '@auth-service/verify'
import { LOAD_CPUS, SERVER_CPUS, callJson, databaseUrl, dropBenchDatabases, machineLine, pinned, requireWrk, startServer, table, tokenRotationLua, type RunningServer } from './lib.js'
import { signingSetup } from './tokens.js'

const LOGOUTS = Number(process.env.BENCH_LOGOUTS ?? 200)
const CONSUMERS = Number(process.env.BENCH_CONSUMERS ?? 500)
const PUSHED_EVENTS = 100
const PASSWORD = 'a password for the bench'
const CLIENT_ID = 'bench-consumer'
const CLIENT_SECRET = randomBytes(32).toString('base64url')

await requireWrk()
const mongodbUrl = databaseUrl()
const signing = await signingSetup('EdDSA')
const env = {
  ...signing.env,
  MONGODB_URL: mongodbUrl,
  BCRYPT_COST: '10',
  SERVICE_CLIENTS: JSON.stringify([{ id: CLIENT_ID, secret: CLIENT_SECRET, scopes: ['revocations:read'] }]),
  REVOCATION_STREAMS_PER_CLIENT: String(CONSUMERS + 10),
  REVOCATION_STREAMS_MAX: String(CONSUMERS + 10)
}
// Both replicas on the server core: the consumer, the load and this script on the other.
const a = await startServer(env, { cpus: SERVER_CPUS })
const b = await startServer(env, { cpus: SERVER_CPUS })
console.log(`# revocation propagation: Node ${process.version}, ${LOGOUTS} logouts per figure, ${CONSUMERS} stream consumers; ${machineLine()}`)

const credentials = createClientCredentials({ tokenUrl: `${b.url}/oauth/token`, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
const email = `propagation-${Date.now()}@example.com`
if ((await callJson(a.url, 'POST', '/signup', { email, password: PASSWORD })).status !== 201) throw new Error('signup failed')

async function sessions (count: number) {
  const made: Array<{ token: string, refreshToken: string }> = []
  for (let i = 0; i < count; i++) {
    const login = await callJson(a.url, 'POST', '/login', { email, password: PASSWORD })
    if (login.status !== 200) throw new Error(`login: ${login.status}`)
    made.push({ token: login.body.token!, refreshToken: login.body.refreshToken! })
  }
  return made
}

/** Background load on A while the logouts run: its profile route, two connections. */
function backgroundLoad (seconds: number, token: string) {
  const lua = tokenRotationLua([token], 'header')
  const script = `/tmp/propagation-load-${process.pid}.lua`
  // wrk reads its script from a file.
  return import('node:fs/promises').then(async ({ writeFile }) => {
    await writeFile(script, lua)
    const [command, args] = pinned(LOAD_CPUS, 'wrk', ['-t1', '-c2', `-d${seconds}s`, '-s', script, `${a.url}/user/profile`])
    const child = spawn(command, args, { stdio: 'ignore' })
    return () => { child.kill('SIGTERM') }
  })
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((x, y) => x - y)
  return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)]!
}

/** Logs each session out on A, one every `spacingMs`, and times until the consumer refuses its token. */
async function propagation (verifier: Verifier, spacingMs: number): Promise<number[]> {
  await verifier.ready()
  const made = await sessions(LOGOUTS)
  for (const session of made) await verifier.verify(session.token)
  const stopLoad = await backgroundLoad(Math.ceil((LOGOUTS * spacingMs + 15_000) / 1000), made[0]!.token)
  const delays = await Promise.all(made.map(async (session, i) => {
    await new Promise((resolve) => setTimeout(resolve, i * spacingMs))
    const response = await callJson(a.url, 'POST', '/logout', { refreshToken: session.refreshToken })
    if (response.status !== 204) throw new Error(`logout: ${response.status}`)
    const answeredAt = performance.now()
    for (;;) {
      try {
        await verifier.verify(session.token)
      } catch (error) {
        if (error instanceof TokenRevokedError) return performance.now() - answeredAt
        throw error
      }
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
  }))
  stopLoad()
  verifier.close()
  return delays
}

function consumer (stream: boolean) {
  return createVerifier({
    issuer: 'auth-service',
    audience: 'auth-service-clients',
    jwksUrl: `${b.url}/.well-known/jwks.json`,
    revocationsUrl: `${b.url}/revocations`,
    revocationsCredentials: credentials,
    revocationsStream: stream
  })
}

const streamDelays = await propagation(consumer(true), 50)
const pollDelays = await propagation(consumer(false), 50)

/** CPU seconds (user + system) the process has used. */
function cpuSeconds (server: RunningServer) {
  const fields = readFileSync(`/proc/${server.process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}
const rssMiB = (server: RunningServer) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.process.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024

// Streams as a consumer opens them; each counts the events it receives.
const token = await credentials.token()
const rssBefore = rssMiB(b)
const received = new Array<number>(CONSUMERS).fill(0)
const aborts = new AbortController()
await Promise.all(received.map(async (_, i) => {
  const response = await fetch(`${b.url}/revocations/stream`, { headers: { authorization: `Bearer ${token}` }, signal: aborts.signal })
  if (response.status !== 200 || response.body === null) throw new Error(`stream ${i}: ${response.status}`)
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  ;(async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }))
      if (done === true) return
      received[i]! += (value!.match(/^event: revoked$/gm) ?? []).length
    }
  })().catch(() => undefined)
}))
await new Promise((resolve) => setTimeout(resolve, 2000))
const rssWithStreams = rssMiB(b)
for (let i = 0; i < CONSUMERS; i++) received[i] = 0

const made = await sessions(PUSHED_EVENTS)
const idleFrom = cpuSeconds(b)
const idleStart = performance.now()
await new Promise((resolve) => setTimeout(resolve, 10_000))
const idleCpuPerSecond = (cpuSeconds(b) - idleFrom) / ((performance.now() - idleStart) / 1000)
const pushFrom = cpuSeconds(b)
const pushStart = performance.now()
for (const session of made) {
  await callJson(a.url, 'POST', '/logout', { refreshToken: session.refreshToken })
  await new Promise((resolve) => setTimeout(resolve, 50))
}
const deadline = Date.now() + 10_000
while (received.some((count) => count < PUSHED_EVENTS) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
const pushSeconds = (performance.now() - pushStart) / 1000
const pushCpu = cpuSeconds(b) - pushFrom - idleCpuPerSecond * pushSeconds
const complete = received.filter((count) => count === PUSHED_EVENTS).length
aborts.abort()

const ms = (value: number) => `${Math.round(value)} ms`
console.log(table(['consumer follows B, logouts on A (under load)', 'p50', 'p99', 'max'], [
  ['stream (default)', ms(percentile(streamDelays, 50)), ms(percentile(streamDelays, 99)), ms(Math.max(...streamDelays))],
  ['polling only, every 5 s', ms(percentile(pollDelays, 50)), ms(percentile(pollDelays, 99)), ms(Math.max(...pollDelays))]
]))
console.log()
console.log(table([`${CONSUMERS} streams on one replica`, 'value'], [
  ['RSS without streams', `${rssBefore.toFixed(0)} MiB`],
  [`RSS with ${CONSUMERS} streams`, `${rssWithStreams.toFixed(0)} MiB (+${((rssWithStreams - rssBefore) / CONSUMERS * 1024).toFixed(0)} KiB per stream)`],
  [`CPU per revocation pushed to all ${CONSUMERS}`, `${(pushCpu / PUSHED_EVENTS * 1000).toFixed(1)} ms (${(pushCpu / PUSHED_EVENTS / CONSUMERS * 1e6).toFixed(0)} µs per stream)`],
  ['consumers that received every event', `${complete} of ${CONSUMERS}`]
]))

await Promise.all([a.stop(), b.stop()])
await dropBenchDatabases()
