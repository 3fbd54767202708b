// The revocation feed's cost as it grows: POST /logout (which records a
// revocation under the next seq) and GET /revocations polls, with 0, 1,000 and
// 10,000 still-relevant revocation records in the database. A record lives
// for ACCESS_TOKEN_TTL_SECONDS (15 minutes by default) after its revocation,
// so 10,000 records are ~11 logouts a second.
// Usage: MONGODB_URL=… npm run bench:revocations   (BENCH_SIZES, BENCH_SAMPLES)
import { randomBytes } from 'node:crypto'
import { MongoClient, ObjectId } from 'mongodb'
import { createClientCredentials } from '@auth-service/verify'
import { callJson, databaseUrl, dropBenchDatabases, median, startServer, table } from './lib.js'
import { signingSetup } from './tokens.js'

const SIZES = (process.env.BENCH_SIZES ?? '0,1000,10000').split(',').map(Number)
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 15)
const PASSWORD = 'a password for the bench'

const mongodbUrl = databaseUrl()
const client = await MongoClient.connect(mongodbUrl)
const revocations = client.db().collection('revocations')
// The feed is read as a service client with revocations:read reads it.
const CLIENT_SECRET = randomBytes(32).toString('base64url')
const server = await startServer({
  ...(await signingSetup('EdDSA')).env,
  MONGODB_URL: mongodbUrl,
  BCRYPT_COST: '10',
  SERVICE_CLIENTS: JSON.stringify([{ id: 'bench-reader', secret: CLIENT_SECRET, scopes: ['revocations:read'] }])
})
const readerToken = await createClientCredentials({ tokenUrl: `${server.url}/oauth/token`, clientId: 'bench-reader', clientSecret: CLIENT_SECRET }).token()
console.log(`# revocation feed: Node ${process.version}, ${SAMPLES} samples per figure, database ${new URL(mongodbUrl).host}`)

const call = <Body = Record<string, string>>(method: string, path: string, body?: unknown) =>
  callJson<Body>(server.url, method, path, body, path.startsWith('/revocations') ? readerToken : undefined)

const email = `revocations-${Date.now()}@example.com`
if ((await call('POST', '/signup', { email, password: PASSWORD })).status !== 201) throw new Error('signup failed')

/** Records shaped as the service writes them, continuing the feed's sequence. */
async function seedTo (size: number) {
  const latest = await revocations.find({}).sort({ seq: -1 }).limit(1).next()
  const from = (latest?.seq as number | undefined ?? 0) + 1
  const now = Date.now()
  for (let seq = from; seq <= size; seq += 1000) {
    const batch = Array.from({ length: Math.min(1000, size - seq + 1) }, (_, i) => ({
      _id: new ObjectId(), userId: new ObjectId(), seq: seq + i, revokedAt: new Date(now), reason: 'logout', expiresAt: new Date(now + 900_000)
    }))
    await revocations.insertMany(batch)
  }
}

const rows: Array<Array<string | number>> = []
for (const size of SIZES) {
  await seedTo(size)
  const refreshTokens: string[] = []
  for (let i = 0; i <= SAMPLES; i++) {
    const login = await call('POST', '/login', { email, password: PASSWORD })
    refreshTokens.push(login.body.refreshToken!)
  }
  // The first logout after a restart or a pause may take a slower path; it is not a sample.
  await call('POST', '/logout', { refreshToken: refreshTokens.pop() })
  const logout: number[] = []
  for (const refreshToken of refreshTokens) {
    const response = await call('POST', '/logout', { refreshToken })
    if (response.status !== 204) throw new Error(`logout: ${response.status}`)
    logout.push(response.ms)
  }
  const first = await call('GET', '/revocations')
  // The first poll is a page (up to 1,000); the end is where a poll brings nothing.
  let cursor = first.body.cursor!
  for (;;) {
    const page = (await call<{ revoked: unknown[], cursor: string }>('GET', `/revocations?since=${cursor}`)).body
    if (page.revoked.length === 0) break
    cursor = page.cursor
  }
  const upToDate: number[] = []
  for (let i = 0; i < SAMPLES; i++) upToDate.push((await call('GET', `/revocations?since=${cursor}`)).ms)
  const behind = Buffer.from(`r1.${await revocations.countDocuments() - 10}`).toString('base64url')
  const tenNew: number[] = []
  for (let i = 0; i < SAMPLES; i++) tenNew.push((await call('GET', `/revocations?since=${behind}`)).ms)
  rows.push([await revocations.countDocuments(), median(logout), median(upToDate), median(tenNew), first.ms])
  console.log(`  ${size} done`)
}
console.log(table(['records', 'logout ms', 'poll, nothing new ms', 'poll, 10 new ms', 'first poll (a page of 1,000) ms'], rows))
console.log('median latency of one request at a time, over HTTP on this machine')
await server.stop()
await client.close()
await dropBenchDatabases()
