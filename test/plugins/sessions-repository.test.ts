import t from 'tap'
import { ObjectId } from 'mongodb'
import type { FastifyInstance } from 'fastify'
import { build, freshDatabaseUrl, logCapture, login, registerUser, sleep } from '../helper.js'

t.test('expiry: a TTL index where the server has one, else one warning and a purge timer', async (t) => {
  const logs = logCapture()
  const app = await build(t, { env: { LOG_LEVEL: 'warn', SESSION_TTL_SECONDS: '1', EXPIRED_PURGE_INTERVAL_SECONDS: '1' }, logStream: logs })
  await app.sessionsRepository.ensureIndexes()
  await app.sessionsRepository.ensureIndexes()
  const mode = app.sessionsRepository.expiryMode
  t.comment(`this server: ${mode}`)
  const warnings = () => logs.lines().filter((line) => line.includes('refuses TTL indexes'))

  for (const name of ['sessions', 'refresh_tokens', 'revocations']) {
    const indexes = await app.mongo.db!.collection(name).indexes()
    const ttl = indexes.find((index) => index.expireAfterSeconds !== undefined)
    const plain = indexes.find((index) => Object.keys(index.key).join() === 'expiresAt')
    t.ok(plain, `${name}: expiresAt is indexed either way`)
    if (mode === 'ttl-index') t.equal(ttl?.expireAfterSeconds, 0, `${name}: TTL index`)
    else t.notOk(ttl, `${name}: no TTL index`)
  }

  const user = await registerUser(app)
  t.equal((await app.mongo.db!.collection('sessions').countDocuments()), 1)
  await sleep(1200)
  t.same(await app.sessionsRepository.listLive(user.id), [], 'an expired session is not listed, purged or not')

  if (mode === 'purge-timer') {
    t.equal(warnings().length, 1, 'one warning, however often the indexes are ensured')
    await sleep(1500)
    t.equal(await app.mongo.db!.collection('sessions').countDocuments(), 0, 'the timer purged the session')
    t.equal(await app.mongo.db!.collection('refresh_tokens').countDocuments(), 0, 'and its refresh token')
  } else {
    t.equal(warnings().length, 0, 'no warning where TTL indexes work')
  }
})

t.test('purgeExpired deletes expired sessions, refresh tokens and revocation records only', async (t) => {
  const databaseUrl = await freshDatabaseUrl()
  const app = await build(t, { env: { MONGODB_URL: databaseUrl, SESSION_TTL_SECONDS: '1', ACCESS_TOKEN_TTL_SECONDS: '1' } })
  const expiring = await registerUser(app)
  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: expiring.refreshToken } })
  const again = await login(app, expiring)
  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: again.refreshToken } })
  await login(app, expiring)
  t.equal(await app.mongo.db!.collection('revocations').countDocuments(), 2)
  await sleep(1200)

  const longLived = await build(t, { env: { MONGODB_URL: databaseUrl } })
  const survivor = await registerUser(longLived)
  await app.sessionsRepository.purgeExpired()
  const sessions = await app.mongo.db!.collection('sessions').find().toArray()
  t.same(sessions.map((session) => session._id.toHexString()), [survivor.sessionId], 'only the live session is left')
  t.equal(await app.mongo.db!.collection('refresh_tokens').countDocuments(), 1)
  const revocations = await app.mongo.db!.collection('revocations').find().toArray()
  t.same(revocations.map((revocation) => revocation._id.toHexString()), [again.sessionId],
    'expired revocations go, except the newest, which keeps the feed sequence from being reused')
})

/** Sessions of one user, created through the repository (no bcrypt: these tests are about the feed). */
async function createSessions (app: FastifyInstance, count: number): Promise<string[]> {
  const userId = new ObjectId().toHexString()
  const created = await Promise.all(Array.from({ length: count }, () => app.sessionsRepository.create({ userId, email: 'feed@example.com', credentialsVersion: '', userAgent: 'test', ip: '127.0.0.1' })))
  return created.map(({ session }) => session.id)
}

async function seqsOf (app: FastifyInstance): Promise<number[]> {
  const recorded = await app.mongo.db!.collection('revocations').find().toArray()
  return recorded.map((revocation) => revocation.seq as number).sort((x, y) => x - y)
}

t.test('replicas on one database hand out gapless seqs, however far behind one replica is', async (t) => {
  const databaseUrl = await freshDatabaseUrl()
  // A's driver reports its commands, to count what finding the latest seq costs;
  // its revocation state does not read the feed meanwhile, so every command counted is the revoke's.
  const replicaA = await build(t, { env: { MONGODB_URL: `${databaseUrl}?monitorCommands=true`, REVOCATION_SYNC_INTERVAL_MS: '60000' } })
  const replicaB = await build(t, { env: { MONGODB_URL: databaseUrl } })
  const sessions = await createSessions(replicaA, 40)
  const revocationCommands: string[] = []
  replicaA.mongo.client.on('commandStarted', (event) => {
    if (event.command[event.commandName] === 'revocations') revocationCommands.push(event.commandName)
  })

  t.ok(await replicaA.sessionsRepository.revoke(sessions[0]!, 'logout'))
  // A saw seq 1; B then writes 2..14, so A's next seq is found by doubling past 14 and bisecting back.
  for (const sessionId of sessions.slice(1, 14)) t.ok(await replicaB.sessionsRepository.revoke(sessionId, 'logout'))
  revocationCommands.length = 0
  t.ok(await replicaA.sessionsRepository.revoke(sessions[14]!, 'logout'))
  // 1 and 2, then 3, 5, 9 and 17 (absent), then 13, 15 and 14: nine lookups and the insert.
  t.ok(revocationCommands.length <= 10, `A found 15 in a few lookups, not a retry per missed seq (${revocationCommands.join()})`)
  t.same(await seqsOf(replicaA), Array.from({ length: 15 }, (_, i) => i + 1), 'A took 15, after B\'s 14')

  // Both replicas at once, each with its own idea of the latest seq.
  await Promise.all(sessions.slice(15).map((sessionId, i) => (i % 2 === 0 ? replicaA : replicaB).sessionsRepository.revoke(sessionId, 'logout')))
  t.same(await seqsOf(replicaA), Array.from({ length: 40 }, (_, i) => i + 1), 'gapless and unique')
  const [feedA, feedB] = await Promise.all([replicaA, replicaB].map((replica) => replica.sessionsRepository.listRevocations(0, 1000)))
  t.equal(feedA!.latestSeq, 40)
  t.equal(feedB!.latestSeq, 40)
  t.same(feedA!.revocations.map((revocation) => revocation.seq), Array.from({ length: 40 }, (_, i) => i + 1))
})

t.test('a replica whose last seen seq was purged starts again from the real latest', async (t) => {
  const databaseUrl = await freshDatabaseUrl()
  const replicaA = await build(t, { env: { MONGODB_URL: databaseUrl } })
  const replicaB = await build(t, { env: { MONGODB_URL: databaseUrl } })
  const sessions = await createSessions(replicaA, 5)
  await replicaA.sessionsRepository.revoke(sessions[0]!, 'logout')
  for (const sessionId of sessions.slice(1, 4)) await replicaB.sessionsRepository.revoke(sessionId, 'logout')
  // What a purge elsewhere leaves once 1..3 have expired: the prefix gone, the newest kept.
  await replicaA.mongo.db!.collection('revocations').deleteMany({ seq: { $lt: 4 } })

  await replicaA.sessionsRepository.revoke(sessions[4]!, 'logout')
  t.same(await seqsOf(replicaA), [4, 5], 'never seq 2 again')
  t.equal((await replicaA.sessionsRepository.listRevocations(4, 1000)).revocations[0]?.sessionId, sessions[4])
})

t.test('the feed reads a poll close to its end by seq, and a longer one by range, alike', async (t) => {
  const app = await build(t)
  const sessions = await createSessions(app, 45)
  for (const sessionId of sessions) await app.sessionsRepository.revoke(sessionId, 'logout')
  // One record in the middle no longer in force (not yet purged): no path may serve it.
  await app.mongo.db!.collection('revocations').updateOne({ seq: 30 }, { $set: { expiresAt: new Date(Date.now() - 1000) } })

  const byRange = await app.sessionsRepository.listRevocations(0, 1000)
  t.same(byRange.revocations.map((revocation) => revocation.seq), Array.from({ length: 45 }, (_, i) => i + 1).filter((seq) => seq !== 30))
  for (const afterSeq of [13, 20, 44]) {
    const bySeq = await app.sessionsRepository.listRevocations(afterSeq, 1000)
    t.same(bySeq, { latestSeq: 45, revocations: byRange.revocations.filter((revocation) => revocation.seq > afterSeq) }, `after ${afterSeq}`)
  }
  t.same(await app.sessionsRepository.listRevocations(45, 1000), { latestSeq: 45, revocations: [] }, 'at the end: nothing')
  t.same(await app.sessionsRepository.listRevocations(60, 1000), { latestSeq: 45, revocations: [] }, 'past the end (a cursor from elsewhere): nothing')
  const page = await app.sessionsRepository.listRevocations(40, 3)
  t.same(page.revocations.map((revocation) => revocation.seq), [41, 42, 43], 'the limit holds on either path')
})

t.test('purging removes revocation records only below the oldest one in force', async (t) => {
  const app = await build(t)
  const sessions = await createSessions(app, 4)
  for (const sessionId of sessions) await app.sessionsRepository.revoke(sessionId, 'logout')
  const records = app.mongo.db!.collection('revocations')
  const past = new Date(Date.now() - 1000)
  // Expiry out of seq order (clocks of two replicas differ): 1 and 3 expired, 2 and 4 in force.
  await records.updateMany({ seq: { $in: [1, 3] } }, { $set: { expiresAt: past } })
  await app.sessionsRepository.purgeExpired()
  t.same(await seqsOf(app), [2, 3, 4], 'only 1 goes; 3 waits for 2, unserved')
  t.same((await app.sessionsRepository.listRevocations(0, 1000)).revocations.map((revocation) => revocation.seq), [2, 4])

  await records.updateMany({}, { $set: { expiresAt: past } })
  await app.sessionsRepository.purgeExpired()
  t.same(await seqsOf(app), [4], 'all expired: the newest stays')
  await app.sessionsRepository.revoke((await createSessions(app, 1))[0]!, 'logout')
  t.same(await seqsOf(app), [4, 5])
})
