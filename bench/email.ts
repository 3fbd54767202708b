// Password-reset requests: how many per second the service accepts
// (POST /password/forgot, known addresses; the same with unknown ones), and how
// long an accepted message waits in the outbox before Mailpit has it, under
// that load (p50/p99 of sentAt − createdAt).
// Usage: MONGODB_URL=… npm run bench:email   (BENCH_SECONDS, BCRYPT_COST, BENCH_USERS)
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import bcrypt from 'bcrypt'
import { MongoClient, ObjectId } from 'mongodb'
import { cores, databaseUrl, dropBenchDatabases, freePort, requireWrk, startServer, table, wrk } from './lib.js'
import { mailpitBinary } from '../scripts/mailpit.js'
import { signingSetup } from './tokens.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const COST = Number(process.env.BCRYPT_COST ?? 12)
const USERS = Number(process.env.BENCH_USERS ?? 2000)
const CONNECTIONS = 4

await requireWrk()
console.log(`# email: ${cores} cores, Node ${process.version}, bcrypt cost ${COST}, ${USERS} accounts, ${SECONDS} s per run, ${CONNECTIONS} connections`)

const smtpPort = await freePort()
const mailpit = spawn(mailpitBinary(), ['--smtp', `127.0.0.1:${smtpPort}`, '--listen', `127.0.0.1:${await freePort()}`, '--max', '0',
  '--smtp-auth-accept-any', '--smtp-auth-allow-insecure', '--disable-version-check', '--quiet'], { stdio: 'ignore' })

// Accounts written straight into the database: signing up thousands at cost 12 would take minutes.
const url = databaseUrl()
const client = await MongoClient.connect(url)
const passwordHash = await bcrypt.hash('a password for the bench', COST)
const emails = Array.from({ length: USERS }, (_, i) => `reset-${i}@bench.example`)
await client.db().collection('users').insertMany(emails.map((email) => {
  const _id = new ObjectId()
  return { _id, email, passwordHash, emailVerified: true, createdAt: _id.getTimestamp(), updatedAt: _id.getTimestamp() }
}))

const server = await startServer({
  MONGODB_URL: url,
  ...(await signingSetup('EdDSA')).env,
  BCRYPT_COST: String(COST),
  SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
  EMAIL_REQUEST_MAX: '1000',
  RATE_LIMIT_IP_MAX: '1000000'
}, { cpus: undefined })

function forgotLua (addresses: string[]): string {
  return `local emails = {${addresses.map((email) => `"${email}"`).join(',')}}
local i = 0
request = function()
  i = i % #emails + 1
  return wrk.format("POST", "/password/forgot", { ["Content-Type"] = "application/json" }, '{"email":"' .. emails[i] .. '"}')
end`
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN

const known = await wrk(`${server.url}`, { lua: forgotLua(emails), connections: CONNECTIONS, seconds: SECONDS })
const unknown = await wrk(`${server.url}`, { lua: forgotLua(emails.map((email) => `nobody-${email}`)), connections: CONNECTIONS, seconds: SECONDS })

// Every accepted message sent, then the wait of each.
const outbox = client.db().collection('outbox')
const deadline = Date.now() + 300_000
while (await outbox.countDocuments({ state: 'pending' }) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 500))
const messages = await outbox.find({ kind: 'password_reset' }, { projection: { createdAt: 1, sentAt: 1, state: 1 } }).toArray()
const waits = messages.filter((message) => message.state === 'sent').map((message) => message.sentAt.getTime() - message.createdAt.getTime()).sort((a, b) => a - b)

console.log(table(['requests', 'accepted/s', 'p50 ms', 'p99 ms', 'non-2xx'], [
  ['forgot, known address (a message queued)', known.requestsPerSecond, known.p50Ms, known.p99Ms, known.non2xx],
  ['forgot, unknown address (nothing queued)', unknown.requestsPerSecond, unknown.p50Ms, unknown.p99Ms, unknown.non2xx]
]))
console.log()
console.log(table(['outbox', 'messages', 'sent', 'wait p50 ms', 'wait p99 ms', 'wait max ms'], [
  ['password_reset, under the known-address load', messages.length, waits.length, percentile(waits, 0.5), percentile(waits, 0.99), waits.at(-1) ?? Number.NaN]
]))

await server.stop()
await client.close()
await dropBenchDatabases()
mailpit.kill()
await once(mailpit, 'exit')
