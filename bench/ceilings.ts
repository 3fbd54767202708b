// Where the gap to the bare route goes: GET /user/profile against two
// ceilings. The bare one (bench/bare-server.mjs) is Fastify and the route,
// nothing else. The hardened one (bench/hardened-ceiling-server.mjs) is the
// service with the same route added, needing no token: every operational
// feature runs, authentication does not.
//   hardened / bare   what the security headers, metrics, load shedding,
//                     request ids and logger cost
//   profile / hardened  what authentication costs (the verification path)
//   profile / bare    bench:profile's ratio
// Usage: MONGODB_URL=… npm run bench:ceilings   (BENCH_SECONDS, BENCH_ROUNDS, BENCH_ALGORITHM, BENCH_LOG_LEVEL, BENCH_TOKEN_IN)
import { join } from 'node:path'
import { benchSettings, databaseUrl, dropBenchDatabases, machineLine, median, requireWrk, root, startServer, table, tokenRotationLua, wrk } from './lib.js'
import { signingSetup, tokenPool } from './tokens.js'

const { seconds: SECONDS, rounds: ROUNDS, connections: CONNECTIONS, algorithm: ALGORITHM, logLevel: LOG_LEVEL, tokenIn: TOKEN_IN } = benchSettings({ seconds: 3, rounds: 6 })

await requireWrk()
console.log(`# profile vs two ceilings: ${machineLine()}; ${ALGORITHM}, cache on, token in the ${TOKEN_IN}, LOG_LEVEL=${LOG_LEVEL}, ${CONNECTIONS} connections, ${SECONDS} s × ${ROUNDS} rounds`)

const setup = await signingSetup(ALGORITHM)
const tokens = await tokenPool(setup, 1000)
const env = { ...setup.env, MONGODB_URL: databaseUrl(), JWT_VERIFY_CACHE_SIZE: '10000', BCRYPT_COST: '10', LOG_LEVEL }
// Every target gets the same requests, tokens included; only the service reads them.
const targets = [
  { name: 'bare', lua: tokenRotationLua(tokens, TOKEN_IN), script: join(root, 'bench/bare-server.mjs'), env: {} },
  { name: 'hardened', lua: tokenRotationLua(tokens, TOKEN_IN, '/bench/profile'), script: join(root, 'bench/hardened-ceiling-server.mjs'), env },
  { name: 'profile', lua: tokenRotationLua(tokens, TOKEN_IN), script: join(root, 'dist/server.js'), env }
] as const
type Name = typeof targets[number]['name']

const runs: Record<Name, number[]> = { bare: [], hardened: [], profile: [] }
const ratios = { hardenedToBare: [] as number[], profileToHardened: [] as number[], profileToBare: [] as number[] }

for (let round = 0; round < ROUNDS; round++) {
  // Fresh processes every round: one process can stay ~10 % off an identical
  // one for its whole life. The order rotates, so none always runs first.
  const order = targets.map((_, i) => targets[(i + round) % targets.length]!)
  const servers = []
  for (const target of order) servers.push({ target, server: await startServer(target.env, { script: target.script }) })
  for (const { target, server } of servers) await wrk(server.url, { lua: target.lua, connections: CONNECTIONS, seconds: 2 })
  // A B C A B C: each target's two runs are averaged, so the VM's drift
  // over the round (±20 % within a minute) hits every target alike.
  const perSecond = { bare: 0, hardened: 0, profile: 0 }
  for (let pass = 0; pass < 2; pass++) {
    for (const { target, server } of servers) {
      const result = await wrk(server.url, { lua: target.lua, connections: CONNECTIONS, seconds: SECONDS })
      if (result.non2xx > 0) throw new Error(`${target.name}: ${result.non2xx} non-2xx answers`)
      perSecond[target.name] += result.requestsPerSecond / 2
    }
  }
  for (const { server } of servers) await server.stop()
  for (const name of Object.keys(runs) as Name[]) runs[name].push(perSecond[name])
  ratios.hardenedToBare.push(perSecond.hardened / perSecond.bare)
  ratios.profileToHardened.push(perSecond.profile / perSecond.hardened)
  ratios.profileToBare.push(perSecond.profile / perSecond.bare)
  console.log(`  round ${round + 1}: bare ${Math.round(perSecond.bare)}, hardened ${Math.round(perSecond.hardened)}, profile ${Math.round(perSecond.profile)} req/s`)
}

console.log(table(
  ['bare req/s', 'hardened req/s', 'profile req/s', 'hardened / bare', 'profile / hardened', 'profile / bare'],
  [[median(runs.bare), median(runs.hardened), median(runs.profile), median(ratios.hardenedToBare), median(ratios.profileToHardened), median(ratios.profileToBare)]]
))
console.log('medians over the rounds; each ratio is taken within a round, then the median of those is shown')
await dropBenchDatabases()
