// Refresh throughput along one session's chain as it grows: the first 100
// refreshes against refreshes 10,001–10,100 (BENCH_CHAIN), one client, one
// after the other (each needs the token the last one returned). With bounded
// storage per session the two should match.
// Usage: MONGODB_URL=… npm run bench:refresh-chain   (BENCH_CHAIN, BENCH_WINDOW)
import bcrypt from 'bcrypt'
import { MongoClient, ObjectId } from 'mongodb'
import { callJson, databaseUrl, dropBenchDatabases, machineLine, startServer, table } from './lib.js'
import { signingSetup } from './tokens.js'

const CHAIN = Number(process.env.BENCH_CHAIN ?? 10000)
const WINDOW = Number(process.env.BENCH_WINDOW ?? 100)
console.log(`# refresh chain: ${machineLine()}; a window of ${WINDOW} refreshes at the start and after ${CHAIN}`)

const url = databaseUrl()
const client = await MongoClient.connect(url)
const email = 'chain@bench.example'
const _id = new ObjectId()
await client.db().collection('users').insertOne({ _id, email, passwordHash: await bcrypt.hash('a password for the bench', 10), emailVerified: true, createdAt: _id.getTimestamp(), updatedAt: _id.getTimestamp() })
const server = await startServer({ MONGODB_URL: url, BCRYPT_COST: '10', ...(await signingSetup('EdDSA')).env })

const login = await callJson<{ refreshToken: string }>(server.url, 'POST', '/login', { email, password: 'a password for the bench' })
let token = login.body.refreshToken

/** `count` refreshes in a row: refreshes per second. */
async function chain (count: number): Promise<number> {
  const started = performance.now()
  for (let i = 0; i < count; i++) {
    const response = await callJson<{ refreshToken: string }>(server.url, 'POST', '/token/refresh', { refreshToken: token })
    if (response.status !== 200) throw new Error(`refresh failed: ${response.status} ${JSON.stringify(response.body)}`)
    token = response.body.refreshToken
  }
  return count / ((performance.now() - started) / 1000)
}

const first = await chain(WINDOW)
await chain(CHAIN - WINDOW)
const later = await chain(WINDOW)
const sessionId = (await client.db().collection('sessions').findOne({}))!._id
const documents = await client.db().collection('refresh_tokens').countDocuments({ sessionId })

console.log(table(['window', 'refreshes/s'], [
  [`refreshes 1–${WINDOW}`, first],
  [`refreshes ${CHAIN + 1}–${CHAIN + WINDOW}`, later]
]))
console.log(`\nlater / first: ${(later / first).toFixed(2)}; refresh-token documents of the session after ${CHAIN + WINDOW} refreshes: ${documents}`)

await server.stop()
await client.close()
await dropBenchDatabases()
