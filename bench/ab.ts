// Two builds of the service A/B on GET /user/profile, both running at the same
// time on the server core, each loaded by its own wrk on the load core. The
// VM's speed drifts by ±20 % within a minute; run side by side, both builds
// see the same drift. A fresh pair each round, because a process's speed also
// varies by up to ~10 % for its life: a build against itself reads 0.89-1.10
// per round, so trust the median of many rounds, not one.
// Compare builds of one service only: a much smaller process (the bare route)
// gains from sharing the core's caches, so use bench:profile for the ceiling.
// Usage: BENCH_A=/path/to/old/dist/server.js [BENCH_B=dist/server.js] MONGODB_URL=… npm run bench:ab
//        (BENCH_SECONDS, BENCH_ROUNDS, BENCH_ALGORITHM, BENCH_LOG_LEVEL, BENCH_TOKEN_IN=header|query)
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { benchSettings, databaseUrl, dropBenchDatabases, machineLine, median, requireWrk, startServer, table, tokenRotationLua, wrk } from './lib.js'
import { signingSetup, tokenPool } from './tokens.js'

const { seconds: SECONDS, rounds: ROUNDS, connections: CONNECTIONS, algorithm: ALGORITHM, logLevel: LOG_LEVEL, tokenIn: TOKEN_IN } = benchSettings({ seconds: 4, rounds: 8 })
const scriptA = process.env.BENCH_A
const scriptB = process.env.BENCH_B ?? 'dist/server.js'
if (scriptA === undefined) {
  console.error('BENCH_A must name the server script of the build to compare against, e.g. a worktree\'s dist/server.js')
  process.exit(2)
}

await requireWrk()
console.log(`# A/B on one core: ${machineLine()}; ${ALGORITHM}, token in the ${TOKEN_IN}, LOG_LEVEL=${LOG_LEVEL}, ${CONNECTIONS} connections each, ${SECONDS} s × ${ROUNDS} rounds`)
console.log(`# A = ${resolve(scriptA)}\n# B = ${resolve(scriptB)}`)

const setup = await signingSetup(ALGORITHM)
const lua = tokenRotationLua(await tokenPool(setup, 1000), TOKEN_IN)
const env = { ...setup.env, MONGODB_URL: databaseUrl(), LOG_LEVEL }

/** CPU time (user + system) of a process so far, in seconds. */
function cpuSeconds (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

const rows: Array<Array<string | number>> = []
const ratios: number[] = []
const cpuRatios: number[] = []
for (let round = 0; round < ROUNDS; round++) {
  // A fresh pair every round: one process can stay a few per cent slower for
  // its whole life (its JIT's choices), which would bias every round alike.
  const a = await startServer(env, { script: resolve(scriptA) })
  const b = await startServer(env, { script: resolve(scriptB) })
  await Promise.all([a, b].map((server) => wrk(server.url, { lua, connections: CONNECTIONS, seconds: 2 })))
  const cpuBefore = [a, b].map((server) => cpuSeconds(server.process.pid!))
  const [resultA, resultB] = await Promise.all([a, b].map((server) => wrk(server.url, { lua, connections: CONNECTIONS, seconds: SECONDS })))
  if (resultA!.non2xx + resultB!.non2xx > 0) throw new Error('non-2xx answers')
  const cpuPerRequest = [resultA!, resultB!].map((result, i) =>
    (cpuSeconds([a, b][i]!.process.pid!) - cpuBefore[i]!) * 1e6 / (result.requestsPerSecond * SECONDS))
  ratios.push(resultB!.requestsPerSecond / resultA!.requestsPerSecond)
  cpuRatios.push(cpuPerRequest[1]! / cpuPerRequest[0]!)
  await Promise.all([a.stop(), b.stop()])
  rows.push([round + 1, resultA!.requestsPerSecond, resultB!.requestsPerSecond, ratios.at(-1)!.toFixed(3), cpuPerRequest[0]!, cpuPerRequest[1]!])
}
rows.push(['median', '', '', median(ratios).toFixed(3), 'B/A:', median(cpuRatios).toFixed(3)])

console.log(table(['round', 'A req/s', 'B req/s', 'B/A', 'A CPU µs/req', 'B CPU µs/req'], rows))
console.log('B/A > 1: B serves more; the last column\'s median is B\'s CPU per request over A\'s (< 1: B is cheaper)')
await dropBenchDatabases()
