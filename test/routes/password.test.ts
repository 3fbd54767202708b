import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, decodeClaims, login, refresh, registerUser, uniqueEmail, type BuildOptions, revocationsReader } from '../helper.js'
import { codeIn, linkTokenIn, mailServer } from '../support/mail-server.js'

const mail = await mailServer()

/** The app, sending through the test's Mailpit. */
function buildWithMail (t: Test, options: BuildOptions = {}): Promise<FastifyInstance> {
  return build(t, { ...options, env: { SMTP_URL: mail.smtpUrl, EMAIL_FROM: 'Acme <no-reply@acme.test>', EMAIL_POLL_INTERVAL_MS: '50', ...options.env } })
}

function forgot (app: FastifyInstance, email: string) {
  return app.inject({ method: 'POST', url: '/password/forgot', payload: { email } })
}

function reset (app: FastifyInstance, payload: Record<string, string>) {
  return app.inject({ method: 'POST', url: '/password/reset', payload })
}

/** The reset messages that reached `email`, waiting for `count` of them. */
async function resetMessages (email: string, count = 1) {
  const messages = await mail.waitForMessages(email, count + 1)
  return messages.filter((message) => message.Subject.startsWith('Reset your'))
}

t.test('a forgotten password is reset with the code from the message: every session ends, a notice follows', async (t) => {
  const app = await buildWithMail(t)
  const user = await registerUser(app)
  const other = await login(app, user)

  const asked = await forgot(app, `  ${user.email.toUpperCase()} `)
  t.equal(asked.statusCode, 202)
  t.same(asked.json(), { message: 'If an account has this address, a message with a reset code is on its way.' })

  const [message] = await resetMessages(user.email)
  t.ok(message, 'the reset message arrived through SMTP')
  t.match(message!.MessageID, /^[0-9a-f]{24}@acme\.test$/, 'a stable Message-ID named after the message and EMAIL_FROM\'s domain')
  t.match(message!.Text, /valid for 15 minutes/)
  t.notMatch(message!.Text, /token=/, 'no link without PASSWORD_RESET_URL')
  const code = codeIn(message!)

  const done = await reset(app, { email: user.email, code: code.toLowerCase().replace('-', ' '), newPassword: 'a brand new password' })
  t.equal(done.statusCode, 204, 'case, spaces and dashes of a typed code do not matter')

  t.equal((await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: user.password } })).statusCode, 401, 'the old password is gone')
  t.equal((await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: 'a brand new password' } })).statusCode, 200)
  t.equal((await refresh(app, user.refreshToken)).statusCode, 401, 'the first session is over')
  t.equal((await refresh(app, other.refreshToken)).statusCode, 401, 'and the second')
  const feed = (await app.inject({ method: 'GET', url: '/revocations', headers: (await revocationsReader(app)).headers })).json<{ revoked: Array<{ sid?: string, sub?: string, notBefore?: string }> }>()
  const userWide = feed.revoked.filter((entry) => entry.sub === user.id)
  t.equal(userWide.length, 1, 'one user-wide entry in the revocation feed, not one per session')
  t.ok(Date.parse(userWide[0]!.notBefore!) >= Number(decodeClaims(other.token).iat) * 1000, 'not before any token issued before the reset')
  t.notOk(feed.revoked.some((entry) => entry.sid === user.sessionId || entry.sid === other.sessionId), 'no per-session entries')

  const again = await reset(app, { email: user.email, code, newPassword: 'yet another password' })
  t.equal(again.statusCode, 401, 'a code works once')
  t.equal(again.json().code, 'RESET_CODE_INVALID')

  const messages = await mail.waitForMessages(user.email, 3)
  t.ok(messages.some((sent) => sent.Subject === 'Your Auth Service password was changed'), 'a "password changed" notice went out')
  const verified = await login(app, { email: user.email, password: 'a brand new password' })
  const profile = await app.inject({ method: 'GET', url: '/user/profile', headers: { authorization: `Bearer ${verified.token}` } })
  t.equal(profile.json().user.emailVerified, true, 'a reset by email proves the address')
})

t.test('an unknown address gets the same answer, no message, and pays the same bcrypt', async (t) => {
  const app = await buildWithMail(t, { env: { BCRYPT_COST: '10' } })
  const user = await registerUser(app)
  async function medianMs (email: string) {
    const samples: number[] = []
    for (let i = 0; i < 3; i++) {
      const started = performance.now()
      const response = await forgot(app, email)
      samples.push(performance.now() - started)
      t.equal(response.statusCode, 202)
      t.same(response.json(), { message: 'If an account has this address, a message with a reset code is on its way.' })
    }
    return samples.sort((a, b) => a - b)[1]!
  }
  const nobody = uniqueEmail()
  const unknown = await medianMs(nobody)
  const known = await medianMs(user.email)
  // A ratio, not a speed target: without the dummy hash an unknown address answers in ~1 ms against ~70 ms.
  t.ok(unknown > known * 0.5, `unknown ${unknown.toFixed(1)} ms vs known ${known.toFixed(1)} ms`)
  await mail.waitForMessages(user.email, 4)
  t.same(await mail.messagesTo(nobody), [], 'nothing was sent to the unknown address')
  const wrong = await reset(app, { email: nobody, code: 'ABCD-EFGH', newPassword: 'a brand new password' })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'RESET_CODE_INVALID')
})

t.test('with PASSWORD_RESET_URL the message links to that page; its token resets once', async (t) => {
  const app = await buildWithMail(t, { env: { PASSWORD_RESET_URL: 'https://app.example.com/reset?lang=en' } })
  const user = await registerUser(app)
  await forgot(app, user.email)
  const [message] = await resetMessages(user.email)
  t.match(message!.Text, /https:\/\/app\.example\.com\/reset\?lang=en&token=[A-Za-z0-9_-]{43}/)
  const token = linkTokenIn(message!)
  t.equal((await reset(app, { token, newPassword: 'a brand new password' })).statusCode, 204)
  t.equal((await reset(app, { token, newPassword: 'another new password' })).statusCode, 401, 'the link works once')
  t.equal((await reset(app, { email: user.email, code: codeIn(message!), newPassword: 'another new password' })).statusCode, 401, 'and its code went with it')
  t.ok((await login(app, { email: user.email, password: 'a brand new password' })).token)
})

t.test('asking again replaces the code; an expired code is refused', async (t) => {
  const app = await buildWithMail(t)
  const user = await registerUser(app)
  await forgot(app, user.email)
  await forgot(app, user.email)
  const [first, second] = await resetMessages(user.email, 2)
  t.equal((await reset(app, { email: user.email, code: codeIn(first!), newPassword: 'a brand new password' })).statusCode, 401, 'the first code was replaced')

  await app.mongo.db!.collection('email_codes').updateMany({}, { $set: { expiresAt: new Date(Date.now() - 1000) } })
  t.equal((await reset(app, { email: user.email, code: codeIn(second!), newPassword: 'a brand new password' })).statusCode, 401, 'an expired code is refused')
})

t.test('a code is dead after 5 tries, even when they race', async (t) => {
  const app = await buildWithMail(t)
  const user = await registerUser(app)
  await forgot(app, user.email)
  const [message] = await resetMessages(user.email)
  const code = codeIn(message!)
  const wrongCode = code.startsWith('2') ? '3' + code.slice(1) : '2' + code.slice(1)
  const tries = await Promise.all(Array.from({ length: 8 }, () => reset(app, { email: user.email, code: wrongCode, newPassword: 'a brand new password' })))
  t.same(tries.map((response) => response.statusCode), Array(8).fill(401))
  const counted = await app.mongo.db!.collection('email_code_attempts').countDocuments()
  t.ok(counted >= 6 && counted <= 8, `a sixth try was counted, and killed the code (${counted} counted; tries after its death find no code)`)
  const right = await reset(app, { email: user.email, code, newPassword: 'a brand new password' })
  t.equal(right.statusCode, 401, 'the right code, after 5 wrong ones, is dead')
  t.equal(await app.mongo.db!.collection('email_codes').countDocuments({ purpose: 'password_reset' }), 0, 'and deleted')
})

t.test('wrong codes count as failed logins against the account: the limit answers 429', async (t) => {
  const app = await buildWithMail(t, { env: { RATE_LIMIT_EMAIL_MAX: '3' } })
  const user = await registerUser(app)
  await forgot(app, user.email)
  const codes = []
  for (let i = 0; i < 4; i++) codes.push((await reset(app, { email: user.email, code: 'ABCD-EFGH', newPassword: 'a brand new password' })).statusCode)
  t.same(codes, [401, 401, 401, 429])
  const login = await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: user.password } })
  t.equal(login.statusCode, 429, 'the same budget as logins: guessing codes does not add guesses')
})

t.test('messages asked per address are limited, known or not, so the limit tells nothing', async (t) => {
  const app = await buildWithMail(t, { env: { EMAIL_REQUEST_MAX: '2' } })
  const user = await registerUser(app)
  const nobody = uniqueEmail()
  for (const email of [user.email, nobody]) {
    const statuses = []
    for (let i = 0; i < 3; i++) statuses.push((await forgot(app, email)).statusCode)
    t.same(statuses, [202, 202, 429], email === nobody ? 'unknown address' : 'known address')
  }
  const limited = await forgot(app, nobody)
  t.equal(limited.json().code, 'RATE_LIMITED')
  t.ok(Number(limited.headers['retry-after']) > 0, 'with Retry-After')
})

t.test('bad reset bodies are 400s that change nothing', async (t) => {
  const app = await buildWithMail(t)
  const user = await registerUser(app)
  const bodies: Array<Record<string, unknown>> = [
    {},
    { email: user.email, newPassword: 'a brand new password' },
    { email: user.email, code: 'ABCD-EFGH' },
    { email: user.email, code: 'ABCD-EFGH', newPassword: 'short' },
    { email: user.email, code: 'ABCD-EFGH', newPassword: 'a brand new password', token: 'x'.repeat(43) },
    { token: 'not a token', newPassword: 'a brand new password' },
    { email: { $gt: '' }, code: 'ABCD-EFGH', newPassword: 'a brand new password' },
    { email: user.email, code: 'ABCD/EFGH', newPassword: 'a brand new password' }
  ]
  for (const payload of bodies) {
    const response = await app.inject({ method: 'POST', url: '/password/reset', payload })
    t.equal(response.statusCode, 400, JSON.stringify(payload))
  }
  t.equal((await app.inject({ method: 'POST', url: '/password/forgot', payload: { email: 'not an address' } })).statusCode, 400)
  t.ok((await login(app, user)).token, 'the password is what it was')
})

t.test('a session begun before a reset cannot refresh, even if the reset\'s sweep of sessions never reached it', async (t) => {
  const app = await buildWithMail(t)
  const user = await registerUser(app)
  // The reset's first step alone, as when the database fails right after it.
  await app.usersRepository.resetPassword(user.id, await app.passwordHasher.hash('a brand new password'), new Date())
  const refused = await refresh(app, user.refreshToken)
  t.equal(refused.statusCode, 401)
  const feed = (await app.inject({ method: 'GET', url: '/revocations', headers: (await revocationsReader(app)).headers })).json<{ revoked: Array<{ sid: string }> }>()
  t.ok(feed.revoked.some((entry) => entry.sid === user.sessionId), 'and it is revoked, for the other services too')
  const fresh = await login(app, { email: user.email, password: 'a brand new password' })
  t.equal((await refresh(app, fresh.refreshToken)).statusCode, 200, 'a session begun after the reset refreshes')
})

t.test('a session whose user is gone cannot refresh', async (t) => {
  const app = await buildWithMail(t)
  const user = await registerUser(app)
  await app.usersRepository.deleteUnverified(user.id)
  t.equal((await refresh(app, user.refreshToken)).statusCode, 401)
  t.equal(await app.mongo.db!.collection('sessions').countDocuments(), 0, 'its session was ended')
})
