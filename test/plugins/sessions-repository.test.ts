import t from 'tap'
import { build, freshDatabaseUrl, logCapture, login, registerUser } from '../helper.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

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
