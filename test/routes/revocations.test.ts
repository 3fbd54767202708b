import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, login, registerUser, revocationsReader } from '../helper.js'

interface Feed { revoked: Array<{ sid: string, revokedAt: string, expiresAt: string }>, cursor: string, hasMore: boolean }

const readers = new WeakMap<FastifyInstance, Promise<{ headers: Record<string, string> }>>()
/** The feed read as a service client with `revocations:read` reads it. */
function readFeed (app: FastifyInstance, url: string) {
  if (!readers.has(app)) readers.set(app, revocationsReader(app))
  return readers.get(app)!.then(({ headers }) => app.inject({ method: 'GET', url, headers }))
}

async function poll (app: FastifyInstance, since?: string): Promise<Feed> {
  const response = await readFeed(app, since === undefined ? '/revocations' : `/revocations?since=${since}`)
  if (response.statusCode !== 200) throw new Error(`poll failed: ${response.statusCode} ${response.body}`)
  return response.json()
}

t.test('every revocation path appears in the feed once, with the expiry of its last access token', async (t) => {
  const app = await build(t, { env: { ACCESS_TOKEN_TTL_SECONDS: '600', REFRESH_GRACE_SECONDS: '0' } })
  const user = await registerUser(app)
  const start = await poll(app)
  t.same(start.revoked, [])

  const [a, b, c, d] = [await login(app, user), await login(app, user), await login(app, user), await login(app, user)]
  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: a.refreshToken } })
  await user.inject({ method: 'DELETE', url: `/user/sessions/${b.sessionId}` })
  await app.inject({ method: 'POST', url: '/token/refresh', payload: { refreshToken: c.refreshToken } })
  await app.inject({ method: 'POST', url: '/token/refresh', payload: { refreshToken: c.refreshToken } })
  await user.inject({ method: 'PUT', url: '/user/password', payload: { currentPassword: user.password, newPassword: 'a brand new password' } })
  const other = await login(app, { email: user.email, password: 'a brand new password' })
  await app.inject({ method: 'DELETE', url: '/user/sessions', headers: { authorization: `Bearer ${other.token}` } })

  const feed = await poll(app, start.cursor)
  const sids = feed.revoked.map((entry) => entry.sid)
  t.same(sids, [a.sessionId, b.sessionId, c.sessionId, d.sessionId, user.sessionId, other.sessionId],
    'logout, session delete, reuse detection, password change (the other session), delete-all: in order')
  t.equal(new Set(sids).size, sids.length, 'each once')
  for (const entry of feed.revoked) {
    t.equal(Date.parse(entry.expiresAt) - Date.parse(entry.revokedAt), 600_000, 'revoked + access-token lifetime')
  }
  t.same((await poll(app, feed.cursor)).revoked, [], 'nothing new after the cursor')
  t.equal((await poll(app, feed.cursor)).cursor, feed.cursor, 'an empty poll keeps the cursor')
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.same((await poll(app)).revoked.map((entry) => entry.sid), sids, 'without a cursor (a second later: a new snapshot): every still-relevant entry')
})

t.test('entries leave the feed once their access tokens have expired', async (t) => {
  const app = await build(t, { env: { ACCESS_TOKEN_TTL_SECONDS: '2' } })
  const user = await registerUser(app)
  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: user.refreshToken } })
  const [entry] = (await poll(app)).revoked
  t.ok(entry, 'listed while its tokens may still be valid')
  await new Promise((resolve) => setTimeout(resolve, Date.parse(entry!.expiresAt) - Date.now() + 100))
  readers.delete(app) // the reader's token lived as long as the user's
  t.same((await poll(app)).revoked, [])
})

t.test('the feed is served uncached, and a forged cursor is a 400', async (t) => {
  const app = await build(t)
  const response = await readFeed(app, '/revocations')
  t.equal(response.headers['cache-control'], 'no-cache')
  for (const cursor of ['garbage', Buffer.from('r1.-5').toString('base64url'), Buffer.from('r1.1e400').toString('base64url')]) {
    const bad = await readFeed(app, `/revocations?since=${cursor}`)
    t.equal(bad.statusCode, 400)
    t.equal(bad.json().code, 'INVALID_CURSOR')
  }
})

t.test('review finding 10: only cursors exactly as issued are accepted, and one ahead of the feed is a 400', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: user.refreshToken } })
  const feed = await poll(app)
  const seq = Number(Buffer.from(feed.cursor, 'base64url').toString().slice(3))
  t.ok(seq >= 1, `the feed has an entry (cursor at ${seq})`)
  const encode = (text: string) => Buffer.from(text).toString('base64url')
  for (const loose of ['r1.', `r1. ${seq}`, 'r1.1e0', 'r1.0x1', 'r1.01', `r1.+${seq}`, `r1.${seq}.0`, `r1.${seq} `, 'R1.1']) {
    const response = await readFeed(app, `/revocations?since=${encode(loose)}`)
    t.equal(response.statusCode, 400, JSON.stringify(loose))
    t.equal(response.json().code, 'INVALID_CURSOR')
  }
  t.equal((await readFeed(app, `/revocations?since=${feed.cursor}=`)).statusCode, 400, 'padding or other bytes around a valid cursor')
  t.equal((await readFeed(app, `/revocations?since=${encode('r1.0')}`)).statusCode, 200, 'the start of the feed is fine')
  t.equal((await readFeed(app, `/revocations?since=${encode(`r1.${seq}`)}`)).statusCode, 200, 'and its end')
  const ahead = await readFeed(app, `/revocations?since=${encode(`r1.${seq + 1}`)}`)
  t.equal(ahead.statusCode, 400, 'a cursor past the end (a restored database) is refused, so the consumer starts over')
  t.equal(ahead.json().code, 'INVALID_CURSOR')
})

t.test('review finding 11: reads without a cursor are limited per address and served from a one-second snapshot', async (t) => {
  const app = await build(t, { env: { RATE_LIMIT_IP_MAX: '3' } })
  const first = await poll(app)
  const user = await registerUser(app)
  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: user.refreshToken } })
  t.same(await poll(app), first, 'within the second, the whole feed is the same snapshot')
  t.same((await poll(app, first.cursor)).revoked.map((entry) => entry.sid), [user.sessionId], 'and its cursor misses nothing written since')
  t.equal((await readFeed(app, '/revocations')).statusCode, 200, 'a third read')
  const limited = await readFeed(app, '/revocations')
  t.equal(limited.statusCode, 429, 'the fourth read without a cursor in the window is refused')
  t.equal(limited.json().code, 'RATE_LIMITED')
  for (let i = 0; i < 5; i++) t.equal((await readFeed(app, `/revocations?since=${first.cursor}`)).statusCode, 200, 'polls with a cursor are not limited')

  const fresh = await build(t, { env: { RATE_LIMIT_IP_MAX: '100' } })
  const before = await poll(fresh)
  const other = await registerUser(fresh)
  await fresh.inject({ method: 'POST', url: '/logout', payload: { refreshToken: other.refreshToken } })
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const after = await poll(fresh)
  t.not(after.cursor, before.cursor, 'after the second, a new snapshot')
  t.same(after.revoked.map((entry) => entry.sid), [other.sessionId])
})

t.test('a full page says hasMore, and the next one finishes the feed', async (t) => {
  const app = await build(t)
  const { ObjectId } = app.mongo
  const now = Date.now()
  await app.sessionsRepository.ensureIndexes()
  await app.mongo.db!.collection('revocations').insertMany(Array.from({ length: 1001 }, (_, i) => ({
    _id: new ObjectId(), userId: new ObjectId(), seq: i + 1, revokedAt: new Date(now), reason: 'logout', expiresAt: new Date(now + 600_000)
  })))
  const first = await poll(app)
  t.equal(first.revoked.length, 1000)
  t.equal(first.hasMore, true, 'a full page: more follows')
  const second = await poll(app, first.cursor)
  t.equal(second.revoked.length, 1)
  t.equal(second.hasMore, false, 'the end of the feed')
  t.equal((await poll(app, second.cursor)).hasMore, false)
})

t.test('a poller never misses a revocation written concurrently with its polls', async (t) => {
  const app = await build(t)
  const users = await Promise.all(Array.from({ length: 8 }, () => registerUser(app)))
  const sessions = (await Promise.all(users.flatMap((user) => [login(app, user), login(app, user), login(app, user)]))).map((session) => session.refreshToken)

  const seen = new Set<string>()
  let cursor = (await poll(app)).cursor
  const writer = { done: false }
  const poller = (async () => {
    while (!writer.done) {
      const feed = await poll(app, cursor)
      for (const entry of feed.revoked) seen.add(entry.sid)
      cursor = feed.cursor
    }
  })()
  // Revocations in concurrent waves, racing each other and the poller.
  for (let i = 0; i < sessions.length; i += 6) {
    await Promise.all(sessions.slice(i, i + 6).map((refreshToken) => app.inject({ method: 'POST', url: '/logout', payload: { refreshToken } })))
  }
  writer.done = true
  await poller
  const last = await poll(app, cursor)
  for (const entry of last.revoked) seen.add(entry.sid)

  const recorded = await app.mongo.db!.collection('revocations').find().toArray()
  t.equal(recorded.length, sessions.length)
  const seqs = recorded.map((revocation) => revocation.seq as number).sort((x, y) => x - y)
  t.same(seqs, seqs.map((_, index) => seqs[0]! + index), 'sequence numbers are gapless')
  t.equal(seen.size, sessions.length, 'the poller saw every revocation')
})
