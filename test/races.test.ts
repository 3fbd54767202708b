import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, login, registerUser, refresh } from './helper.js'

async function liveSessions (app: FastifyInstance, userId: string) {
  return app.mongo.db!.collection('sessions').countDocuments({ userId: new app.mongo.ObjectId(userId) })
}

t.test('concurrent password changes: exactly one new password wins, the old one is dead, only the current session lives', async (t) => {
  const app = await build(t)
  for (let round = 0; round < 5; round++) {
    const user = await registerUser(app, { password: 'the original password' })
    const others = await Promise.all([login(app, user), login(app, user)])
    const candidates = Array.from({ length: 6 }, (_, i) => `new password number ${i}`)
    const responses = await Promise.all(candidates.map((newPassword) =>
      user.inject({ method: 'PUT', url: '/user/password', payload: { currentPassword: 'the original password', newPassword } })))
    t.ok(responses.every((response) => [204, 401].includes(response.statusCode)), `round ${round}: ${responses.map((response) => response.statusCode).join(',')}`)

    const working = []
    for (const password of candidates) {
      if ((await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password } })).statusCode === 200) working.push(password)
    }
    t.equal(working.length, 1, `round ${round}: exactly one new password works`)
    t.equal((await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: 'the original password' } })).statusCode, 401)
    for (const other of others) t.equal((await refresh(app, other.refreshToken)).statusCode, 401, 'the other sessions are revoked')
    t.equal((await refresh(app, user.refreshToken)).statusCode, 200, 'the current session lives')
  }
})

t.test('revoking every session while they refresh: no session survives the revoke', async (t) => {
  const app = await build(t)
  for (let round = 0; round < 5; round++) {
    const user = await registerUser(app)
    const sessions = await Promise.all(Array.from({ length: 4 }, () => login(app, user)))
    const [revokeAll, ...refreshed] = await Promise.all([
      user.inject({ method: 'DELETE', url: '/user/sessions' }),
      ...sessions.map((session) => refresh(app, session.refreshToken))
    ])
    t.equal(revokeAll!.statusCode, 204)
    for (const response of refreshed) {
      t.ok([200, 401].includes(response.statusCode))
      if (response.statusCode === 200) t.equal((await refresh(app, response.json().refreshToken)).statusCode, 401, 'a token handed out during the revoke is dead')
    }
    const loggedInAfter = await liveSessions(app, user.id)
    t.equal(loggedInAfter, 0, `round ${round}: no session left`)
    t.equal(await app.mongo.db!.collection('refresh_tokens').countDocuments({ sessionId: { $in: sessions.map((session) => new app.mongo.ObjectId(session.sessionId)) } }), 0, 'nor any of their tokens')
  }
})

t.test('review finding 4: a login that checked the old password while it was being changed never yields a session that outlives the change', async (t) => {
  const app = await build(t)
  let survivors = 0
  let raced = 0
  for (let round = 0; round < 6; round++) {
    const user = await registerUser(app, { password: 'the password before' })
    const oldCredentials = { email: user.email, password: 'the password before' }
    const state = { changed: false }
    const change = user.inject({ method: 'PUT', url: '/user/password', payload: { currentPassword: 'the password before', newPassword: 'the password after' } })
      .then((response) => { state.changed = true; return response })
    // Logins with the old password keep starting until the change has answered.
    const logins: Array<Promise<{ statusCode: number, refreshToken?: string }>> = []
    while (!state.changed) {
      logins.push(app.inject({ method: 'POST', url: '/login', payload: oldCredentials })
        .then((response) => ({ statusCode: response.statusCode, refreshToken: response.statusCode === 200 ? response.json().refreshToken as string : undefined })))
      await new Promise((resolve) => setImmediate(resolve))
    }
    t.equal((await change).statusCode, 204, `round ${round}: the change succeeded`)
    const answered = await Promise.all(logins)
    t.ok(answered.every((login) => [200, 401].includes(login.statusCode)), `round ${round}: logins answer 200 or 401`)
    for (const login of answered) {
      if (login.refreshToken === undefined) continue
      raced += 1
      if ((await refresh(app, login.refreshToken)).statusCode === 200) survivors += 1
    }
    const sessions = await user.inject({ method: 'GET', url: '/user/sessions' })
    t.same(sessions.json().sessions.map((session: { id: string }) => session.id), [user.sessionId], `round ${round}: only the changer's session is listed`)
  }
  t.ok(raced > 0, `logins with the old password succeeded during the changes (${raced})`)
  t.equal(survivors, 0, 'none of their sessions outlives the change')
})

t.test('a login\'s hash upgrade never overwrites a password changed meanwhile', async (t) => {
  const app = await build(t)
  const user = await registerUser(app, { password: 'the password before' })
  const before = (await app.usersRepository.findById(user.id))!
  const version = await app.usersRepository.changePassword(user.id, await app.passwordHasher.hash('the password after'))
  t.not(version, before.credentialsVersion, 'a change makes a new credentials version')
  // What a login that read the old hash before the change would write next.
  await app.usersRepository.upgradePasswordHash(user.id, before.passwordHash, await app.passwordHasher.hash('the password before'))
  t.equal((await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: 'the password before' } })).statusCode, 401, 'the old password stays dead')
  t.equal((await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: 'the password after' } })).statusCode, 200)
})
