import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, registerUser, sleep, type RegisteredUser } from './helper.js'
import { startOwnDatabase, type DatabaseProcess } from './support/database-process.js'
import { startOwnMailServer, type OwnMailServer } from './support/mail-server.js'

// Outages of the mail server and of the database while the outbox is being
// delivered: what was accepted arrives, once per attempt, and nothing stays
// claimed. Each test owns the servers it stops.
const unhandled: unknown[] = []
process.on('unhandledRejection', (reason) => { unhandled.push(reason) })
t.teardown(() => { if (unhandled.length > 0) throw new Error(`unhandled rejections: ${unhandled.length}`) })

const cannotStartDatabase = await startOwnDatabase().then(
  async (database) => { await database.close(); return false as const },
  (error: Error) => `no database process of their own can start here (${error.message.split('\n')[0]}): set FERRETDB_BIN (see .ci/run)`
)
if (cannotStartDatabase !== false) t.comment(`The database fault test is skipped: ${cannotStartDatabase}`)

async function ownMailServer (t: Test): Promise<OwnMailServer> {
  const server = await startOwnMailServer(['--enable-chaos'])
  t.teardown(() => server.close())
  return server
}

async function waitUntil (what: string, check: () => Promise<boolean>, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await check()) return
    } catch {}
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(100)
  }
}

const forgot = (app: FastifyInstance, user: RegisteredUser) => app.inject({ method: 'POST', url: '/password/forgot', payload: { email: user.email } })

/** Reset messages per user, by Message-ID. */
async function resetMessagesOf (mail: OwnMailServer, users: RegisteredUser[]) {
  return Promise.all(users.map(async (user) => (await mail.messagesTo(user.email)).filter((message) => message.Subject.startsWith('Reset your'))))
}

t.test('SMTP down while resets are asked: every accepted message arrives once it is back, none twice', async (t) => {
  const mail = await ownMailServer(t)
  const app = await build(t, { env: { SMTP_URL: mail.smtpUrl, EMAIL_POLL_INTERVAL_MS: '50', EMAIL_RETRY_BASE_SECONDS: '0.2', EMAIL_MAX_ATTEMPTS: '30' } })
  const users = await Promise.all(Array.from({ length: 20 }, () => registerUser(app)))
  await waitUntil('the signup messages are out', async () => (await app.mongo.db!.collection('outbox').countDocuments({ state: 'pending' })) === 0)

  await mail.stop()
  const answers = await Promise.all(users.map((user) => forgot(app, user)))
  t.same(answers.map((answer) => answer.statusCode), Array(20).fill(202), 'every request is accepted while SMTP is down')
  await waitUntil('every message has failed at least once', async () =>
    (await app.mongo.db!.collection('outbox').countDocuments({ kind: 'password_reset', attempts: { $gte: 1 } })) === 20)

  await mail.start()
  await waitUntil('every reset message arrived', async () => (await resetMessagesOf(mail, users)).every((messages) => messages.length >= 1))
  await waitUntil('the outbox has nothing pending', async () => (await app.mongo.db!.collection('outbox').countDocuments({ state: { $ne: 'sent' } })) === 0)
  await sleep(500)
  const received = await resetMessagesOf(mail, users)
  t.same(received.map((messages) => messages.length), Array(20).fill(1), 'exactly one reset message per user')
  const failures = await app.mongo.db!.collection('outbox').find({ kind: 'password_reset' }).toArray()
  t.ok(failures.every((message) => message.attempts >= 2), 'each was retried after refusals')
})

t.test('the database down while the worker sends: nothing lost, nothing stuck claimed', { skip: cannotStartDatabase }, async (t) => {
  const database: DatabaseProcess = await startOwnDatabase()
  t.teardown(() => database.close())
  const mail = await ownMailServer(t)
  const app = await build(t, {
    env: {
      MONGODB_URL: database.url('outbox_outage'),
      MONGODB_SERVER_SELECTION_TIMEOUT_MS: '1000',
      SMTP_URL: mail.smtpUrl,
      EMAIL_POLL_INTERVAL_MS: '50',
      EMAIL_RETRY_BASE_SECONDS: '0.1',
      EMAIL_MAX_ATTEMPTS: '50',
      EMAIL_CLAIM_TIMEOUT_SECONDS: '2'
    }
  })
  const users = await Promise.all(Array.from({ length: 10 }, () => registerUser(app)))
  // Refused for now, so the resets wait in the outbox, retried every ~0.1 s.
  await mail.refuseRecipients(100)
  for (const user of users) t.equal((await forgot(app, user)).statusCode, 202)
  await sleep(300)

  // The database goes while the worker is claiming and sending.
  await mail.refuseRecipients(0)
  await database.stop()
  await sleep(2500)
  await database.start()

  await waitUntil('every reset message arrived', async () => (await resetMessagesOf(mail, users)).every((messages) => messages.length >= 1), 60000)
  await waitUntil('no message is left pending or claimed', async () =>
    (await app.mongo.db!.collection('outbox').countDocuments({ state: { $ne: 'sent' } })) === 0, 60000)
  const received = await resetMessagesOf(mail, users)
  t.ok(received.every((messages) => messages.length >= 1), 'no message was lost')
  const copies = received.reduce((sum, messages) => sum + messages.length - 1, 0)
  t.comment(`${copies} extra copies (at least once: a send whose record was lost with the database is sent again after its claim expires)`)
  t.ok(received.every((messages) => new Set(messages.map((message) => message.MessageID)).size === 1), 'any copy carries the same Message-ID')
})
