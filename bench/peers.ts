// This service beside the peers a team would pick instead: Ory Kratos v1.3.1
// (built from the Go module proxy, over PostgreSQL) and Better Auth 1.7 (npm,
// with its MongoDB adapter over the test database), each with 1,000 users,
// bcrypt at cost 10 for all three. Measured: session/token checks per second
// (this service with and without its verified-token cache; Better Auth with
// and without its cookie cache), logins per second against the bcrypt bound,
// peak RSS. The peers are installed under node_modules/.cache/peers, never
// committed. Every server is pinned to CPU 0, the load to CPU 1.
// Usage: MONGODB_URL=… npm run bench:peers   (BENCH_SECONDS, BENCH_USERS)
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import bcrypt from 'bcrypt'
import { MongoClient, ObjectId } from 'mongodb'
import { SERVER_CPUS, databaseUrl, dropBenchDatabases, freePort, machineLine, pinned, requireWrk, root, startServer, table, tokenRotationLua, wrk } from './lib.js'
import { signingSetup } from './tokens.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8)
const USERS = Number(process.env.BENCH_USERS ?? 1000)
const COST = 10
const PASSWORD = 'a password for the bench'
const CONNECTIONS = 50
const cache = join(root, 'node_modules/.cache/peers')

await requireWrk()
console.log(`# peers: ${machineLine()}; ${USERS} users each, bcrypt cost ${COST}, ${SECONDS} s per run`)

/** Kratos v1.3.1: `go install` fails on its replace directives, so the module is downloaded, copied and built (once). */
function kratosBinary (): string {
  const binary = join(cache, 'kratos')
  if (existsSync(binary)) return binary
  console.log('# building Ory Kratos v1.3.1 from the Go module proxy (once, ~3 min)')
  const { Dir } = JSON.parse(execFileSync('go', ['mod', 'download', '-json', 'github.com/ory/kratos@v1.3.1'], { encoding: 'utf8', env: { ...process.env, GOFLAGS: '-mod=mod' } })) as { Dir: string }
  const source = join(cache, 'kratos-src')
  cpSync(Dir, source, { recursive: true })
  execFileSync('chmod', ['-R', 'u+w', source])
  execFileSync('go', ['build', '-o', binary, '.'], { cwd: source, stdio: 'inherit' })
  return binary
}

/** Better Auth 1.7 with its MongoDB adapter, in a directory of its own (once). */
function betterAuthDirectory (): string {
  const directory = join(cache, 'better-auth')
  if (existsSync(join(directory, 'node_modules/better-auth'))) return directory
  console.log('# installing better-auth 1.7 (once)')
  mkdirSync(directory, { recursive: true })
  writeFileSync(join(directory, 'package.json'), JSON.stringify({ name: 'bench-better-auth', private: true, type: 'module' }))
  execFileSync('npm', ['install', '--no-audit', '--no-fund', 'better-auth@1.7.25', '@better-auth/mongo-adapter@1.7.25', 'mongodb@7.9.0', 'bcrypt@6.0.0'], { cwd: directory, stdio: 'inherit' })
  return directory
}

async function waitFor (url: string, what: string) {
  const deadline = Date.now() + 30000
  for (;;) {
    try {
      if ((await fetch(url)).ok) return
    } catch {}
    if (Date.now() > deadline) throw new Error(`${what} did not start`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

function peakRssMiB (child: ChildProcess): number {
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
}

async function stop (child: ChildProcess) {
  if (child.exitCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
}

/** `count` items through `work`, `concurrency` at a time. */
async function inParallel<T> (count: number, concurrency: number, work: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = []
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const index = next++
      results[index] = await work(index)
    }
  }))
  return results
}

/** Logins per second for SECONDS with 8 in flight (bcrypt-bound for all three: the client's cost is noise). */
async function loginRate (login: (index: number) => Promise<void>): Promise<number> {
  const until = Date.now() + SECONDS * 1000
  let done = 0
  let index = 0
  const started = Date.now()
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (Date.now() < until) {
      await login(index++ % USERS)
      done++
    }
  }))
  return done / ((Date.now() - started) / 1000)
}

/** bcrypt compares per second at the cost on the server's one core, in a process of its own. */
function bcryptBound (): number {
  const script = `const b=require('bcrypt');const h=b.hashSync('x',${COST});let n=0;const u=Date.now()+${SECONDS * 1000};
(async()=>{const s=Date.now();await Promise.all(Array.from({length:4},async()=>{while(Date.now()<u){await b.compare('x',h);n++}}));console.log(n/((Date.now()-s)/1000))})()`
  const [command, args] = pinned(SERVER_CPUS, process.execPath, ['-e', script])
  return Number(execFileSync(command, args, { cwd: root, encoding: 'utf8' }))
}

const emails = Array.from({ length: USERS }, (_, i) => `peer-${i}@bench.example`)
const rows: Array<Array<string | number>> = []

// --- this service -----------------------------------------------------------
{
  const setup = await signingSetup('EdDSA')
  const url = databaseUrl()
  const client = await MongoClient.connect(url)
  const passwordHash = await bcrypt.hash(PASSWORD, COST)
  await client.db().collection('users').insertMany(emails.map((email) => {
    const _id = new ObjectId()
    return { _id, email, passwordHash, emailVerified: true, createdAt: _id.getTimestamp(), updatedAt: _id.getTimestamp() }
  }))
  await client.close()
  for (const cacheSize of ['10000', '0']) {
    const server = await startServer({ ...setup.env, MONGODB_URL: url, BCRYPT_COST: String(COST), JWT_VERIFY_CACHE_SIZE: cacheSize, LOG_LEVEL: 'warn' })
    const tokens = await inParallel(USERS, 4, async (i) => {
      const response = await fetch(`${server.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: emails[i], password: PASSWORD }) })
      return (await response.json() as { token: string }).token
    })
    await wrk(server.url, { lua: tokenRotationLua(tokens, 'header'), connections: CONNECTIONS, seconds: 2 })
    const check = await wrk(server.url, { lua: tokenRotationLua(tokens, 'header'), connections: CONNECTIONS, seconds: SECONDS })
    const logins = cacheSize === '0'
      ? Number.NaN
      : await loginRate(async (i) => {
        const response = await fetch(`${server.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: emails[i], password: PASSWORD }) })
        if (!response.ok) throw new Error(`login: ${response.status}`)
        await response.arrayBuffer()
      })
    rows.push([cacheSize === '0' ? 'auth-service, every signature verified' : 'auth-service (verified-token cache)', 'GET /user/profile', check.requestsPerSecond, check.p99Ms, logins, server.peakRssMiB()])
    await server.stop()
  }
}

// --- Ory Kratos -------------------------------------------------------------
{
  const binary = kratosBinary()
  const database = `kratos_bench_${process.pid}`
  execFileSync('createdb', ['-h', '127.0.0.1', '-U', 'postgres', database])
  const env = { ...process.env, DSN: `postgres://postgres@127.0.0.1:5432/${database}?sslmode=disable` }
  execFileSync(binary, ['migrate', 'sql', '-e', '--yes'], { env, stdio: 'ignore' })
  const [publicPort, adminPort] = [await freePort(), await freePort()]
  const [command, args] = pinned(SERVER_CPUS, binary, ['serve', '--dev', '--config', join(root, 'bench/peers/kratos.yml')])
  const kratos = spawn(command, args, {
    cwd: join(root, 'bench/peers'),
    env: { ...env, SERVE_PUBLIC_PORT: String(publicPort), SERVE_ADMIN_PORT: String(adminPort), SERVE_PUBLIC_BASE_URL: `http://127.0.0.1:${publicPort}/` },
    stdio: 'ignore'
  })
  const publicUrl = `http://127.0.0.1:${publicPort}`
  try {
    await waitFor(`${publicUrl}/health/alive`, 'Kratos')
    await inParallel(USERS, 4, async (i) => {
      const response = await fetch(`http://127.0.0.1:${adminPort}/admin/identities`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ schema_id: 'default', traits: { email: emails[i] }, credentials: { password: { config: { password: PASSWORD } } } })
      })
      if (!response.ok) throw new Error(`Kratos identity: ${response.status} ${await response.text()}`)
    })
    const login = async (i: number): Promise<string> => {
      const flow = await (await fetch(`${publicUrl}/self-service/login/api`)).json() as { id: string }
      const response = await fetch(`${publicUrl}/self-service/login?flow=${flow.id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ method: 'password', identifier: emails[i], password: PASSWORD })
      })
      const body = await response.json() as { session_token?: string }
      if (body.session_token === undefined) throw new Error(`Kratos login: ${response.status}`)
      return body.session_token
    }
    const sessionTokens = await inParallel(USERS, 4, login)
    const whoamiLua = `local tokens = {\n${sessionTokens.map((token) => `"${token}"`).join(',\n')}\n}\nlocal i = 0\nrequest = function()\n  i = i % #tokens + 1\n  return wrk.format("GET", "/sessions/whoami", { ["X-Session-Token"] = tokens[i] })\nend\n`
    await wrk(publicUrl, { lua: whoamiLua, connections: CONNECTIONS, seconds: 2 })
    const check = await wrk(publicUrl, { lua: whoamiLua, connections: CONNECTIONS, seconds: SECONDS })
    const logins = await loginRate(async (i) => { await login(i) })
    rows.push(['Ory Kratos v1.3.1 (PostgreSQL)', 'GET /sessions/whoami', check.requestsPerSecond, check.p99Ms, logins, peakRssMiB(kratos)])
  } finally {
    await stop(kratos)
    execFileSync('dropdb', ['-h', '127.0.0.1', '-U', 'postgres', '--if-exists', database])
  }
}

// --- Better Auth ------------------------------------------------------------
{
  const directory = betterAuthDirectory()
  for (const cookieCache of ['0', '1']) {
    const url = databaseUrl()
    const server = await startServer({ MONGODB_URL: url, BCRYPT_COST: String(COST), BETTER_AUTH_DIR: directory, COOKIE_CACHE: cookieCache }, { script: join(root, 'bench/peers/better-auth-server.mjs') })
    const cookies = await inParallel(USERS, 4, async (i) => {
      const response = await fetch(`${server.url}/api/auth/sign-up/email`, {
        method: 'POST',
        // Better Auth refuses a write without an Origin (a browser's CSRF defence).
        headers: { 'content-type': 'application/json', origin: server.url },
        body: JSON.stringify({ email: emails[i], password: PASSWORD, name: `peer ${i}` })
      })
      if (!response.ok) throw new Error(`Better Auth sign-up: ${response.status} ${await response.text()}`)
      return response.headers.getSetCookie().map((cookie) => cookie.split(';')[0]).join('; ')
    })
    const sessionLua = `local cookies = {\n${cookies.map((cookie) => `"${cookie}"`).join(',\n')}\n}\nlocal i = 0\nrequest = function()\n  i = i % #cookies + 1\n  return wrk.format("GET", "/api/auth/get-session", { ["Cookie"] = cookies[i] })\nend\n`
    await wrk(server.url, { lua: sessionLua, connections: CONNECTIONS, seconds: 2 })
    const check = await wrk(server.url, { lua: sessionLua, connections: CONNECTIONS, seconds: SECONDS })
    const logins = cookieCache === '1'
      ? Number.NaN
      : await loginRate(async (i) => {
        const response = await fetch(`${server.url}/api/auth/sign-in/email`, { method: 'POST', headers: { 'content-type': 'application/json', origin: server.url }, body: JSON.stringify({ email: emails[i], password: PASSWORD }) })
        if (!response.ok) throw new Error(`Better Auth sign-in: ${response.status}`)
        await response.arrayBuffer()
      })
    rows.push([cookieCache === '1' ? 'Better Auth 1.7 (MongoDB adapter, cookie cache)' : 'Better Auth 1.7 (MongoDB adapter)', 'GET /api/auth/get-session', check.requestsPerSecond, check.p99Ms, logins, server.peakRssMiB()])
    await server.stop()
  }
}

const bound = bcryptBound()
console.log(table(['target', 'session check', 'checks/s', 'check p99 ms', 'logins/s', 'peak RSS MiB'], rows))
console.log(`\nbcrypt bound at cost ${COST} on the server's core: ${bound.toFixed(1)} compares/s`)
const [cached, uncached, kratosRow, betterAuthRow, betterAuthCached] = rows.map((row) => row[2] as number)
console.log(`ratios, checks/s: auth-service (cache) / Kratos ${(cached! / kratosRow!).toFixed(1)}, / Better Auth ${(cached! / betterAuthRow!).toFixed(1)} (${(cached! / betterAuthCached!).toFixed(1)} with its cookie cache); ` +
  `without the cache: / Kratos ${(uncached! / kratosRow!).toFixed(1)}, / Better Auth ${(uncached! / betterAuthRow!).toFixed(1)} (${(uncached! / betterAuthCached!).toFixed(1)})`)
await dropBenchDatabases()
