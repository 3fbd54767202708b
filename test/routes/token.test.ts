import { createHash } from 'node:crypto'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, decodeClaims, login, registerUser, sleep, refresh } from '../helper.js'

function logout (app: FastifyInstance, refreshToken: string) {
  return app.inject({ method: 'POST', url: '/logout', payload: { refreshToken } })
}

async function sessionExists (app: FastifyInstance, sessionId: string) {
  return (await app.mongo.db!.collection('sessions').countDocuments({ _id: new app.mongo.ObjectId(sessionId) })) === 1
}

/** Tokens of the session that have no successor: the live ones. There must never be more than one. */
async function liveTokenCount (app: FastifyInstance, sessionId: string) {
  const { ObjectId } = app.mongo
  const tokens = await app.mongo.db!.collection<{ _id: string, parentHash: string }>('refresh_tokens').find({ sessionId: new ObjectId(sessionId) }).toArray()
  const parents = new Set(tokens.map((token) => token.parentHash))
  return tokens.filter((token) => !parents.has(token._id)).length
}

t.test('refresh rotates the refresh token and answers like login, in the same session', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const response = await refresh(app, user.refreshToken)
  t.equal(response.statusCode, 200)
  const body = response.json()
  t.same(Object.keys(body).sort(), ['expiresIn', 'refreshExpiresIn', 'refreshToken', 'token', 'tokenType'])
  t.not(body.refreshToken, user.refreshToken, 'a new refresh token')
  t.match(body.refreshToken, /^[A-Za-z0-9_-]{80}$/)
  const claims = decodeClaims(body.token)
  t.equal(claims.sid, user.sessionId, 'the same session')
  t.equal(claims.sub, user.id)
  t.not(claims.jti, decodeClaims(user.token).jti, 'a fresh access token')
  t.equal((await app.inject({ method: 'GET', url: '/user/profile', headers: { authorization: `Bearer ${body.token}` } })).statusCode, 200)

  const next = await refresh(app, body.refreshToken)
  t.equal(next.statusCode, 200, 'the new refresh token works')
  t.equal(await liveTokenCount(app, user.sessionId), 1)
})

t.test('refresh accepts the urlencoded form', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const response = await app.inject({ method: 'POST', url: '/token/refresh', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `refreshToken=${user.refreshToken}` })
  t.equal(response.statusCode, 200)
})

t.test('invalid refresh input is a 400; an unknown token is a 401', async (t) => {
  const app = await build(t)
  for (const payload of [{}, { refreshToken: 42 }, { refreshToken: { $ne: null } }, { refreshToken: 'short' }, { refreshToken: 'a'.repeat(43), extra: 1 }]) {
    const response = await app.inject({ method: 'POST', url: '/token/refresh', payload })
    t.equal(response.statusCode, 400, JSON.stringify(payload))
    t.equal(response.json().code, 'FST_ERR_VALIDATION')
  }
  const unknown = await refresh(app, 'A'.repeat(43))
  t.equal(unknown.statusCode, 401)
  t.same(unknown.json(), { statusCode: 401, code: 'REFRESH_TOKEN_INVALID', error: 'Unauthorized', message: 'The refresh token is invalid or its session has ended' })
})

t.test('the same token within the grace window gets the same successor and a fresh access token', async (t) => {
  const app = await build(t, { env: { REFRESH_GRACE_SECONDS: '30' } })
  const user = await registerUser(app)
  const first = (await refresh(app, user.refreshToken)).json()
  const again = await refresh(app, user.refreshToken)
  t.equal(again.statusCode, 200)
  t.equal(again.json().refreshToken, first.refreshToken, 'the same successor')
  t.not(decodeClaims(again.json().token).jti, decodeClaims(first.token).jti, 'a fresh access token')
  t.equal(await liveTokenCount(app, user.sessionId), 1)
  t.equal((await refresh(app, first.refreshToken)).statusCode, 200, 'the successor still works')
})

t.test('only the immediate parent of the current token is forgiven: a grandparent within the window is theft', async (t) => {
  const app = await build(t, { env: { REFRESH_GRACE_SECONDS: '30' } })
  const user = await registerUser(app)
  const t1 = (await refresh(app, user.refreshToken)).json().refreshToken
  const t2 = (await refresh(app, t1)).json().refreshToken

  const parent = await refresh(app, t1)
  t.equal(parent.statusCode, 200, 'the parent of the current token is forgiven')
  t.equal(parent.json().refreshToken, t2)

  const grandparent = await refresh(app, user.refreshToken)
  t.equal(grandparent.statusCode, 401, 'the grandparent is theft')
  t.equal(grandparent.json().code, 'REFRESH_TOKEN_REUSED')
  const newest = await refresh(app, t2)
  t.equal(newest.statusCode, 401, 'the whole session is revoked: its newest token fails too')
  t.equal(newest.json().code, 'REFRESH_TOKEN_INVALID')
  t.notOk(await sessionExists(app, user.sessionId))
})

t.test('a parent whose successor was already rotated is theft even within the window', async (t) => {
  const app = await build(t, { env: { REFRESH_GRACE_SECONDS: '30' } })
  const user = await registerUser(app)
  const t1 = (await refresh(app, user.refreshToken)).json().refreshToken
  const t2 = (await refresh(app, t1)).json().refreshToken
  const t3 = (await refresh(app, t2)).json().refreshToken
  const stale = await refresh(app, t1)
  t.equal(stale.statusCode, 401, 't1 is two rotations behind')
  t.equal(stale.json().code, 'REFRESH_TOKEN_REUSED')
  t.equal((await refresh(app, t3)).statusCode, 401)
})

t.test('reuse after the grace window revokes the session and its newest token', async (t) => {
  const logs: string[] = []
  const app = await build(t, {
    env: { REFRESH_GRACE_SECONDS: '1', LOG_LEVEL: 'info' },
    logStream: { write: (line: string) => { logs.push(line) } }
  })
  const user = await registerUser(app)
  const t1 = (await refresh(app, user.refreshToken)).json().refreshToken
  await sleep(1300)

  const reused = await refresh(app, user.refreshToken)
  t.equal(reused.statusCode, 401)
  t.same(reused.json(), { statusCode: 401, code: 'REFRESH_TOKEN_REUSED', error: 'Unauthorized', message: 'The refresh token was already used; the session has been revoked' })
  const newest = await refresh(app, t1)
  t.equal(newest.statusCode, 401, 'the newest token of the session fails too')
  t.equal(newest.json().code, 'REFRESH_TOKEN_INVALID')

  const revocation = await app.mongo.db!.collection('revocations').findOne({ _id: new app.mongo.ObjectId(user.sessionId) })
  t.equal(revocation?.reason, 'refresh_token_reused')
  t.notOk(await sessionExists(app, user.sessionId))
  t.ok(logs.some((line) => line.includes('"outcome":"reuse_detected"') && line.includes(user.sessionId)), 'the reuse is logged as an auth event')

  const other = await login(app, user)
  t.equal((await refresh(app, other.refreshToken)).statusCode, 200, 'the user\'s other sessions are untouched')
})

t.test('ten parallel refreshes with one token all get the same successor, round after round', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  let current = user.refreshToken
  const rounds = 25
  for (let round = 0; round < rounds; round++) {
    const responses = await Promise.all(Array.from({ length: 10 }, () => refresh(app, current)))
    const statuses = responses.map((response) => response.statusCode)
    const successors = new Set(responses.map((response) => response.json().refreshToken))
    if (!statuses.every((status) => status === 200) || successors.size !== 1) {
      t.fail(`round ${round}: statuses ${statuses.join(',')}, ${successors.size} distinct successors`)
      break
    }
    const successor: string = responses[0]!.json().refreshToken
    t.not(successor, current)
    current = successor
  }
  t.equal(await liveTokenCount(app, user.sessionId), 1, 'exactly one live token in the session')
  t.equal((await refresh(app, current)).statusCode, 200, 'the last successor is the current token')
})

t.test('a session expires absolutely after its configured lifetime', async (t) => {
  const app = await build(t, { env: { SESSION_TTL_SECONDS: '2' } })
  const user = await registerUser(app)
  const loginBody = await login(app, user)
  t.ok(loginBody.refreshExpiresIn <= 2)
  const rotated = await refresh(app, loginBody.refreshToken)
  t.equal(rotated.statusCode, 200, 'refreshing does not extend the session')
  t.ok(rotated.json().refreshExpiresIn <= 2)
  await sleep(2200)
  const expired = await refresh(app, rotated.json().refreshToken)
  t.equal(expired.statusCode, 401)
  t.equal(expired.json().code, 'SESSION_EXPIRED')
})

t.test('logout ends the session and is idempotent', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const other = await login(app, user)

  const first = await logout(app, user.refreshToken)
  t.equal(first.statusCode, 204)
  t.equal(first.body, '')
  t.equal((await refresh(app, user.refreshToken)).statusCode, 401, 'its refresh token no longer works')
  t.equal((await logout(app, user.refreshToken)).statusCode, 204, 'logging out twice is fine')
  t.equal((await logout(app, 'B'.repeat(43))).statusCode, 204, 'an unknown token too')

  t.equal((await refresh(app, other.refreshToken)).statusCode, 200, 'the other session lives on')
  const revocation = await app.mongo.db!.collection('revocations').findOne({ _id: new app.mongo.ObjectId(user.sessionId) })
  t.equal(revocation?.reason, 'logout')

  // Access tokens are stateless: the profile honours one until it expires.
  // Account management checks the session and refuses it at once.
  t.equal((await user.inject({ method: 'GET', url: '/user/profile' })).statusCode, 200)
  const sessions = await user.inject({ method: 'GET', url: '/user/sessions' })
  t.equal(sessions.statusCode, 401)
  t.equal(sessions.json().code, 'SESSION_REVOKED')
})

t.test('review finding 9: logout answers 204 to a token of any shape, 400 only to a missing or non-string one', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  for (const refreshToken of ['not a token', '', 'x'.repeat(44), 'ünïcödé', `${user.refreshToken} `]) {
    const response = await logout(app, refreshToken)
    t.equal(response.statusCode, 204, JSON.stringify(refreshToken))
    t.equal(response.body, '')
  }
  t.equal((await refresh(app, user.refreshToken)).statusCode, 200, 'a near miss of a real token ends nothing')
  const form = await app.inject({ method: 'POST', url: '/logout', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'refreshToken=whatever' })
  t.equal(form.statusCode, 204, 'in a form too')
  for (const payload of [{}, { refreshToken: 42 }, { refreshToken: null }, { refreshToken: ['a'] }, { refreshToken: 'a', extra: 1 }]) {
    const response = await app.inject({ method: 'POST', url: '/logout', payload })
    t.equal(response.statusCode, 400, JSON.stringify(payload))
    t.equal(response.json().code, 'FST_ERR_VALIDATION')
  }
})

t.test('logout racing refresh leaves no live session behind', async (t) => {
  const app = await build(t)
  for (let round = 0; round < 10; round++) {
    const user = await registerUser(app)
    const [, refreshed] = await Promise.all([logout(app, user.refreshToken), refresh(app, user.refreshToken)])
    t.ok([200, 401].includes(refreshed.statusCode), `round ${round}: refresh answered ${refreshed.statusCode}`)
    if (refreshed.statusCode === 200) {
      t.equal((await refresh(app, refreshed.json().refreshToken)).statusCode, 401, 'a token handed out during the logout dies with the session')
    }
    t.notOk(await sessionExists(app, user.sessionId))
  }
})

interface StoredToken { _id: string, parentHash: string, sealedToken?: string, issuedAt: Date }

function storedTokens (app: FastifyInstance) {
  return app.mongo.db!.collection<StoredToken>('refresh_tokens')
}

function hashOf (refreshToken: string) {
  return createHash('sha256').update(refreshToken).digest('base64url')
}

t.test('review finding 6: a sealed successor is gone once it is rotated, and once its grace window is over', async (t) => {
  const app = await build(t, { env: { REFRESH_GRACE_SECONDS: '1' } })
  const user = await registerUser(app)
  const first = (await refresh(app, user.refreshToken)).json().refreshToken as string
  const second = (await refresh(app, first)).json().refreshToken as string
  const sealed = async (token: string) => (await storedTokens(app).findOne({ _id: hashOf(token) }))?.sealedToken !== undefined
  t.notOk(await sealed(first), 'the rotated token keeps no sealed copy: an old token and a database read no longer open the chain')
  t.ok(await sealed(second), 'the current one keeps its copy for its grace window')
  t.equal((await refresh(app, first)).json().refreshToken, second, 'and a repeat within the window still gets it')

  await sleep(1100)
  await app.sessionsRepository.purgeSealedSuccessors()
  t.notOk(await sealed(second), 'after the window no sealed copy is left')
  t.equal(await storedTokens(app).countDocuments({ sealedToken: { $exists: true } }), 0, 'in the whole collection')
  t.equal((await refresh(app, second)).statusCode, 200, 'the current token still rotates')
})

t.test('review finding 7: a successor marked undelivered does not make its parent "reused"', async (t) => {
  const app = await build(t, { env: { REFRESH_GRACE_SECONDS: '1' } })
  const user = await registerUser(app)
  // What another replica's rotation answered with 503 leaves behind once its
  // mark is written: the successor committed, flagged as never delivered.
  const session = await app.mongo.db!.collection('sessions').findOne({ _id: new app.mongo.ObjectId(user.sessionId) })
  const undelivered = hashOf('never-delivered-successor-never-delivered-x')
  await storedTokens(app).insertOne({
    _id: undelivered,
    parentHash: hashOf(user.refreshToken),
    sessionId: session!._id,
    issuedAt: new Date(),
    expiresAt: session!.expiresAt
  } as StoredToken)
  await app.mongo.db!.collection<{ _id: string, sessionId: unknown, expiresAt: Date }>('undelivered_refresh_tokens').insertOne({ _id: undelivered, sessionId: session!._id, expiresAt: session!.expiresAt })
  await sleep(1300)

  const retried = await refresh(app, user.refreshToken)
  t.equal(retried.statusCode, 200, 'the client\'s retry after the window rotates afresh')
  const next = retried.json().refreshToken as string
  t.equal(await liveTokenCount(app, user.sessionId), 1, 'with one live token: the undelivered successor is withdrawn')
  t.equal((await refresh(app, next)).statusCode, 200, 'and the session goes on')

  await sleep(1300)
  const replayed = await refresh(app, user.refreshToken)
  t.equal(replayed.json().code, 'REFRESH_TOKEN_REUSED', 'a parent whose successor was used stays theft')
  t.notOk(await sessionExists(app, user.sessionId))
})

t.test('review finding 7: the parent of a delivered, still unused successor presented after the window is still theft', async (t) => {
  const app = await build(t, { env: { REFRESH_GRACE_SECONDS: '1' } })
  const user = await registerUser(app)
  t.equal((await refresh(app, user.refreshToken)).statusCode, 200)
  await sleep(1300)
  t.equal((await refresh(app, user.refreshToken)).json().code, 'REFRESH_TOKEN_REUSED', 'its successor was unused, but it was confirmed')
})
