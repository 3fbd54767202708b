// GET /auth/verify (the forward-auth check) against GET /user/profile of the
// same server in the same run, with 1,000 distinct users' tokens (goal: at
// least 0.95 of the profile: it does less), and POST /oauth/token per second.
// Usage: MONGODB_URL=… npm run bench:forward-auth   (BENCH_SECONDS, BENCH_ROUNDS, BENCH_ALGORITHM, BENCH_LOG_LEVEL)
import { createHash } from 'node:crypto'
import { MongoClient } from 'mongodb'
import { benchSettings, databaseUrl, dropBenchDatabases, machineLine, median, requireWrk, startServer, table, tokenRotationLua, wrk } from './lib.js'
import { signingSetup, tokenPool } from './tokens.js'

const { seconds: SECONDS, rounds: ROUNDS, connections: CONNECTIONS, algorithm: ALGORITHM, logLevel: LOG_LEVEL } = benchSettings({ seconds: 3, rounds: 5 })

await requireWrk()
console.log(`# forward-auth: ${machineLine()}; ${ALGORITHM}, cache on, LOG_LEVEL=${LOG_LEVEL}, ${CONNECTIONS} connections, ${SECONDS} s × ${ROUNDS} rounds`)

const setup = await signingSetup(ALGORITHM)
const tokens = await tokenPool(setup, 1000)
const url = databaseUrl()

// A service client, written straight into the database (its secret's SHA-256, as the service keeps it).
const clientId = 'svc_0123456789abcdef01234567'
const clientSecret = 'bench-client-secret-of-the-forward-auth-run'
const client = await MongoClient.connect(url)
await client.db().collection('clients').insertOne({
  _id: clientId as never,
  name: 'bench',
  scopes: ['bench:read'],
  secrets: [{ hash: createHash('sha256').update(clientSecret).digest('base64url'), createdAt: new Date() }],
  createdAt: new Date()
})

const env = { ...setup.env, MONGODB_URL: url, JWT_VERIFY_CACHE_SIZE: '10000', BCRYPT_COST: '10', LOG_LEVEL, CLIENT_TOKEN_RATE_MAX: '1000000' }
const targets = [
  { name: 'verify', lua: tokenRotationLua(tokens, 'header', '/auth/verify') },
  { name: 'profile', lua: tokenRotationLua(tokens, 'header', '/user/profile') }
] as const

const runs = { verify: [] as number[], profile: [] as number[] }
const ratios: number[] = []
for (let round = 0; round < ROUNDS; round++) {
  const server = await startServer(env)
  // The first read of the revocation state, then a warm-up of both routes.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  for (const target of targets) await wrk(server.url, { lua: target.lua, connections: CONNECTIONS, seconds: 2 })
  const perSecond = { verify: 0, profile: 0 }
  // A B B A in alternate rounds: the VM's drift within a round hits both alike.
  const order = round % 2 === 0 ? [targets[0], targets[1], targets[1], targets[0]] : [targets[1], targets[0], targets[0], targets[1]]
  for (const target of order) {
    const result = await wrk(server.url, { lua: target.lua, connections: CONNECTIONS, seconds: SECONDS })
    if (result.non2xx > 0) throw new Error(`${target.name}: ${result.non2xx} non-2xx answers`)
    perSecond[target.name] += result.requestsPerSecond / 2
  }
  await server.stop()
  runs.verify.push(perSecond.verify)
  runs.profile.push(perSecond.profile)
  ratios.push(perSecond.verify / perSecond.profile)
  console.log(`  round ${round + 1}: /auth/verify ${Math.round(perSecond.verify)}, /user/profile ${Math.round(perSecond.profile)} req/s`)
}

// Client-credentials tokens: each is a signature and a client lookup.
const server = await startServer(env)
const basic = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`
const tokenLua = `request = function()
  return wrk.format("POST", "/oauth/token", { ["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = "${basic}" }, "grant_type=client_credentials")
end`
await wrk(server.url, { lua: tokenLua, connections: 16, seconds: 2 })
const tokensPerSecond = await wrk(server.url, { lua: tokenLua, connections: 16, seconds: SECONDS * 2 })
if (tokensPerSecond.non2xx > 0) throw new Error(`/oauth/token: ${tokensPerSecond.non2xx} non-2xx answers`)
await server.stop()

console.log(table(
  ['GET /auth/verify req/s', 'GET /user/profile req/s', 'verify / profile', 'goal'],
  [[median(runs.verify), median(runs.profile), median(ratios), '≥ 0.95']]
))
console.log()
console.log(table(['POST /oauth/token req/s (16 connections)', 'p50 ms', 'p99 ms'], [[tokensPerSecond.requestsPerSecond, tokensPerSecond.p50Ms, tokensPerSecond.p99Ms]]))

await client.close()
await dropBenchDatabases()
