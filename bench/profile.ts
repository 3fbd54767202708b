// GET /user/profile with 1,000 distinct users' tokens (round-robin, header and
// query) against a bare Fastify route returning the same JSON: the ceiling.
// For each algorithm, with and without the verified-token cache.
// Usage: MONGODB_URL=… npm run bench:profile   (BENCH_SECONDS, BENCH_ROUNDS, BENCH_ALGORITHMS, BENCH_LOG_LEVEL)
import { join } from 'node:path'
import { databaseUrl, dropBenchDatabases, machineLine, median, requireWrk, root, startServer, table, tokenRotationLua, wrk } from './lib.js'
import { signingSetup, tokenPool, type BenchAlgorithm } from './tokens.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const CONNECTIONS = 50
const POOL = 1000
const ALGORITHMS = (process.env.BENCH_ALGORITHMS ?? 'HS256,EdDSA,ES256,RS256').split(',') as BenchAlgorithm[]
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'warn'

await requireWrk()
const mongodbUrl = databaseUrl()
console.log(`# profile vs ceiling: ${machineLine()}; ${CONNECTIONS} connections, ${SECONDS} s per run, ${ROUNDS} rounds, pool of ${POOL} tokens, LOG_LEVEL=${LOG_LEVEL}`)

const rows: Array<Array<string | number>> = []

for (const algorithm of ALGORITHMS) {
  const setup = await signingSetup(algorithm)
  const tokens = await tokenPool(setup, POOL)
  const header = tokenRotationLua(tokens, 'header')
  const query = tokenRotationLua(tokens, 'query')
  for (const cacheSize of [0, 10000]) {
    const server = await startServer({ ...setup.env, MONGODB_URL: mongodbUrl, JWT_VERIFY_CACHE_SIZE: String(cacheSize), BCRYPT_COST: '10', LOG_LEVEL })
    // A fresh ceiling for every row as well: one long-lived process drifted
    // over the run (the first row's ratio came out lowest whichever algorithm
    // went first), and an identical process can be ~10 % off for its life.
    const bare = await startServer({}, { script: join(root, 'bench/bare-server.mjs') })
    // Warm-up: JIT, connection pools, and (with the cache) one pass over the pool.
    await wrk(`${server.url}`, { lua: header, connections: CONNECTIONS, seconds: 2 })
    await wrk(`${bare.url}`, { lua: header, connections: CONNECTIONS, seconds: 1 })
    const results = { bare: [] as number[], header: [] as number[], query: [] as number[], headerRatio: [] as number[], queryRatio: [] as number[], p99: [] as number[] }
    const ceilingRun = async () => {
      const requestsPerSecond = (await wrk(bare.url, { lua: header, connections: CONNECTIONS, seconds: SECONDS })).requestsPerSecond
      results.bare.push(requestsPerSecond)
      return requestsPerSecond
    }
    // B A B A B …: every run of the service sits between two runs of the
    // ceiling, and its ratio is taken against their mean, so the VM's drift
    // (±20 % over a minute here) hits both sides of each ratio alike.
    let ceilingBefore = await ceilingRun()
    for (let round = 0; round < ROUNDS; round++) {
      const viaHeader = await wrk(server.url, { lua: header, connections: CONNECTIONS, seconds: SECONDS })
      if (viaHeader.non2xx > 0) throw new Error(`${algorithm}: ${viaHeader.non2xx} non-2xx answers`)
      const ceilingBetween = await ceilingRun()
      const viaQuery = await wrk(server.url, { lua: query, connections: CONNECTIONS, seconds: SECONDS })
      if (viaQuery.non2xx > 0) throw new Error(`${algorithm}: ${viaQuery.non2xx} non-2xx answers`)
      const ceilingAfter = await ceilingRun()
      results.header.push(viaHeader.requestsPerSecond)
      results.query.push(viaQuery.requestsPerSecond)
      results.headerRatio.push(viaHeader.requestsPerSecond / ((ceilingBefore + ceilingBetween) / 2))
      results.queryRatio.push(viaQuery.requestsPerSecond / ((ceilingBetween + ceilingAfter) / 2))
      results.p99.push(viaHeader.p99Ms)
      ceilingBefore = ceilingAfter
    }
    rows.push([
      algorithm, cacheSize > 0 ? 'on' : 'off', median(results.bare),
      median(results.header), median(results.headerRatio),
      median(results.query), median(results.queryRatio),
      median(results.p99), server.peakRssMiB()
    ])
    await server.stop()
    await bare.stop()
    console.log(`  ${algorithm} cache ${cacheSize > 0 ? 'on' : 'off'} done`)
  }
}
console.log(table(['algorithm', 'cache', 'ceiling req/s', 'header req/s', 'ratio', 'query req/s', 'ratio', 'header p99 ms', 'peak RSS MiB'], rows))
console.log('ratio = profile / mean of the bare Fastify runs just before and after it, median over the rounds; goal ≥ 0.85')
await dropBenchDatabases()
