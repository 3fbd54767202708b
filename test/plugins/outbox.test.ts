import t from 'tap'
import { ObjectId } from 'mongodb'
import type { FastifyInstance } from 'fastify'
import { build, freshDatabaseUrl, logCapture, registerUser, sleep, uniqueEmail } from '../helper.js'
import { startOwnMailServer } from '../support/mail-server.js'
import { retryDelayMs } from '../../plugins/email/delivery-worker.js'

const mail = await startOwnMailServer(['--enable-chaos'])
t.teardown(() => mail.close())

const fastRetries = { SMTP_URL: mail.smtpUrl, EMAIL_POLL_INTERVAL_MS: '20', EMAIL_RETRY_BASE_SECONDS: '0.05' }

async function waitUntil (what: string, check: () => Promise<boolean>, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(20)
  }
}

async function metric (app: FastifyInstance, name: string): Promise<number> {
  const text = await app.metricsRegistry.metrics()
  return text.split('\n').filter((line) => line.startsWith(name)).reduce((sum, line) => sum + Number(line.split(' ').pop()), 0)
}

const outbox = (app: FastifyInstance) => app.mongo.db!.collection('outbox')

t.test('the back-off doubles per attempt, with jitter between half and all of it, capped at an hour', async (t) => {
  t.equal(retryDelayMs(1, 5, () => 0), 2500)
  t.equal(retryDelayMs(1, 5, () => 1), 5000)
  t.equal(retryDelayMs(3, 5, () => 1), 20000)
  t.equal(retryDelayMs(30, 5, () => 1), 3600 * 1000)
})

t.test('a refused delivery is retried until it goes through: one message arrives, with its Message-ID', async (t) => {
  const app = await build(t, { env: fastRetries })
  await mail.refuseRecipients(100)
  t.teardown(() => mail.refuseRecipients(0))
  const email = uniqueEmail()
  await app.inject({ method: 'POST', url: '/signup', payload: { email, password: 'a perfectly fine password' } })

  await waitUntil('three attempts failed', async () => (await outbox(app).findOne({ to: email }))!.attempts >= 3)
  const failing = (await outbox(app).findOne({ to: email }))!
  t.equal(failing.state, 'pending')
  t.equal(failing.lastError, 'SMTP 451', 'the failure is recorded as a code, not a server\'s words')
  t.ok(await metric(app, 'email_send_failures_total') >= 3, 'failed attempts are counted')
  t.ok(await metric(app, 'email_outbox_pending') >= 1, 'the queue depth shows it')
  t.ok(await metric(app, 'email_outbox_oldest_pending_age_seconds') > 0, 'and its age')

  await mail.refuseRecipients(0)
  const [message] = await mail.waitForMessages(email)
  await waitUntil('the message is recorded as sent', async () => (await outbox(app).findOne({ to: email }))!.state === 'sent')
  const sent = (await outbox(app).findOne({ to: email }))!
  t.equal(message!.MessageID, `${sent._id.toHexString()}@localhost`, 'the Message-ID names the outbox document')
  t.equal(sent.text, undefined, 'the body (and its code) is gone from the database once sent')
  await sleep(200)
  t.equal((await mail.messagesTo(email)).length, 1, 'exactly one copy arrived')
  t.equal(await metric(app, 'email_sent_total'), 1)
})

t.test('after EMAIL_MAX_ATTEMPTS a message is dead: logged, counted, its body removed', async (t) => {
  const logs = logCapture()
  const app = await build(t, { env: { ...fastRetries, EMAIL_MAX_ATTEMPTS: '3', LOG_LEVEL: 'info' }, logStream: logs })
  await mail.refuseRecipients(100)
  t.teardown(() => mail.refuseRecipients(0))
  const email = uniqueEmail()
  await app.inject({ method: 'POST', url: '/signup', payload: { email, password: 'a perfectly fine password' } })
  await waitUntil('the message is dead', async () => (await outbox(app).findOne({ to: email }))!.state === 'dead')
  const dead = (await outbox(app).findOne({ to: email }))!
  t.equal(dead.attempts, 3)
  t.equal(dead.text, undefined)
  t.equal(await metric(app, 'email_dead_total'), 1)
  const line = logs.lines().map((raw) => JSON.parse(raw)).find((entry) => entry.msg?.startsWith('email message dead'))
  t.match(line, { level: 50, kind: 'email_verification', attempts: 3, lastError: 'SMTP 451' })
  t.notOk(logs.lines().some((raw) => raw.includes(email)), 'the recipient\'s address is in no log line')
})

t.test('two replicas share the outbox: every message is sent, and once', async (t) => {
  const url = await freshDatabaseUrl()
  const env = { ...fastRetries, MONGODB_URL: url, EMAIL_POLL_INTERVAL_MS: '10' }
  const first = await build(t, { env })
  const second = await build(t, { env })
  const users = await Promise.all(Array.from({ length: 12 }, () => registerUser(first)))
  await Promise.all(users.map((user) => second.inject({ method: 'POST', url: '/password/forgot', payload: { email: user.email } })))
  for (const user of users) {
    const messages = await mail.waitForMessages(user.email, 2)
    t.equal(new Set(messages.map((message) => message.MessageID)).size, 2, `${user.email}: two messages, no copies`)
  }
  await sleep(300)
  const counts = await Promise.all(users.map(async (user) => (await mail.messagesTo(user.email)).length))
  t.same(counts, Array(12).fill(2), 'nothing was sent twice')
})

t.test('a claim whose replica died is taken over once it expires', async (t) => {
  const app = await build(t, { env: { ...fastRetries, EMAIL_CLAIM_TIMEOUT_SECONDS: '1' } })
  const email = uniqueEmail()
  // What a replica that claimed the first attempt and died leaves behind.
  const _id = new ObjectId()
  await app.mongo.db!.collection('outbox_claims').insertOne({ _id: `${_id.toHexString()}:1` as unknown as ObjectId, expiresAt: new Date(Date.now() + 1000) })
  await outbox(app).insertOne({ _id, kind: 'password_changed', to: email, subject: 'orphan', text: 'left behind', state: 'pending', attempts: 0, dueAt: new Date(), createdAt: new Date() })
  const started = Date.now()
  const [message] = await mail.waitForMessages(email)
  t.equal(message!.Subject, 'orphan')
  t.ok(Date.now() - started >= 800, 'not before the claim expired')
})

t.test('without SMTP_URL, outside production, messages go to the log with their code, and a warning says so', async (t) => {
  const logs = logCapture()
  const app = await build(t, { env: { LOG_LEVEL: 'info' }, logStream: logs })
  const email = uniqueEmail()
  await app.inject({ method: 'POST', url: '/signup', payload: { email, password: 'a perfectly fine password' } })
  await waitUntil('the message is logged', async () => logs.lines().some((line) => line.includes('email message (not sent: no SMTP_URL)')))
  const entries = logs.lines().map((line) => JSON.parse(line))
  t.ok(entries.some((entry) => entry.level === 40 && entry.msg.startsWith('SMTP_URL is not set')), 'the warning')
  const logged = entries.find((entry) => entry.email?.to === email)
  t.match(logged.email.text, /[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}/, 'with its code')
  await waitUntil('it is recorded as sent', async () => (await outbox(app).findOne({ to: email }))?.state === 'sent')
})
