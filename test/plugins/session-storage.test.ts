import t from 'tap'
import { ObjectId } from 'mongodb'
import type { FastifyInstance } from 'fastify'
import { build, refresh, registerUser, revocationsReader } from '../helper.js'
import { newRefreshToken } from '../../plugins/sessions/token-crypto.js'

// Storage per session stays bounded however long it lives: only the newest
// refresh tokens are kept, and an older one that comes back is still known
// (by its MAC) as a rotated-away token of the session: theft.

const CHAIN = Number(process.env.REFRESH_CHAIN_LENGTH ?? 10000)
// Ten thousand refreshes one after the other (each waits for the last) take
// longer than the suite's per-file timeout allows.
t.setTimeout(15 * 60 * 1000)

async function documentsOf (app: FastifyInstance, sessionId: string) {
  const _id = new ObjectId(sessionId)
  const [sessions, tokens] = await Promise.all([
    app.mongo.db!.collection('sessions').countDocuments({ _id }),
    app.mongo.db!.collection('refresh_tokens').countDocuments({ sessionId: _id })
  ])
  return sessions + tokens
}

t.test(`a session refreshed ${CHAIN} times holds at most 3 documents, and an early token of the chain still revokes it`, async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const early: string[] = []
  let token = user.refreshToken
  let most = 0
  for (let i = 1; i <= CHAIN; i++) {
    const response = await refresh(app, token)
    if (response.statusCode !== 200) throw new Error(`refresh ${i}: ${response.statusCode} ${response.body}`)
    if (i <= 3) early.push(token)
    token = response.json().refreshToken
    if (i % 500 === 0 || i === CHAIN) most = Math.max(most, await documentsOf(app, user.sessionId))
  }
  t.ok(most <= 3, `at most 3 documents for the session at every check (the session, the current token and the one it replaced): ${most}`)
  t.equal(await documentsOf(app, user.sessionId), 3)

  const stolen = await refresh(app, early[1]!)
  t.equal(stolen.statusCode, 401)
  t.equal(stolen.json().code, 'REFRESH_TOKEN_REUSED', `a token ${CHAIN - 1} rotations old is recognised as reused`)
  t.equal((await refresh(app, token)).statusCode, 401, 'the whole session is revoked: its newest token fails too')
  const feed = (await app.inject({ method: 'GET', url: '/revocations', headers: (await revocationsReader(app)).headers })).json<{ revoked: Array<{ sid: string }> }>()
  t.ok(feed.revoked.some((entry) => entry.sid === user.sessionId), 'and the other services hear of it')
  t.equal(await documentsOf(app, user.sessionId), 0, 'nothing of the session is left')
})

t.test('a forged token naming a live session revokes nothing', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const forged = newRefreshToken(Buffer.alloc(32, 7), user.sessionId)
  const response = await refresh(app, forged)
  t.equal(response.statusCode, 401)
  t.equal(response.json().code, 'REFRESH_TOKEN_INVALID')
  t.equal((await refresh(app, user.refreshToken)).statusCode, 200, 'the session lives on')
  t.equal((await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: forged } })).statusCode, 204)
  t.equal(await documentsOf(app, user.sessionId), 3, 'a logout with it ends nothing either')
})

t.test('a logout with an old token of the session (no longer stored) ends the session', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  let token = user.refreshToken
  for (let i = 0; i < 3; i++) token = (await refresh(app, token)).json().refreshToken
  t.equal((await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: user.refreshToken } })).statusCode, 204)
  t.equal((await refresh(app, token)).statusCode, 401, 'the newest token is revoked with its session')
})

t.test('a refresh token of the earlier format (43 characters) is still taken, and unknown ones fail as before', async (t) => {
  const app = await build(t)
  const response = await refresh(app, 'x'.repeat(43))
  t.equal(response.statusCode, 401)
  t.equal(response.json().code, 'REFRESH_TOKEN_INVALID')
  t.equal((await refresh(app, 'x'.repeat(60))).statusCode, 400, 'other lengths are malformed')
})
