import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, decodeClaims, login, refresh, registerUser, uniqueEmail, type BuildOptions } from '../helper.js'
import { codeIn, linkTokenIn, mailServer, type ReceivedMessage } from '../support/mail-server.js'

const mail = await mailServer()

function buildWithMail (t: Test, options: BuildOptions = {}): Promise<FastifyInstance> {
  return build(t, { ...options, env: { SMTP_URL: mail.smtpUrl, EMAIL_POLL_INTERVAL_MS: '50', ...options.env } })
}

function verify (app: FastifyInstance, payload: Record<string, string>) {
  return app.inject({ method: 'POST', url: '/email/verify', payload })
}

function signup (app: FastifyInstance, email: string, password = 'a perfectly fine password') {
  return app.inject({ method: 'POST', url: '/signup', payload: { email, password } })
}

const isVerification = (message: ReceivedMessage) => message.Subject.startsWith('Confirm your email address')

t.test('signup sends a verification code; confirming it verifies the address in every user object and token', async (t) => {
  const app = await buildWithMail(t)
  const email = uniqueEmail()
  const created = await signup(app, email)
  t.equal(created.statusCode, 201)
  t.equal(created.json().user.emailVerified, false)

  const [message] = await mail.waitForMessages(email)
  t.ok(isVerification(message!), message!.Subject)
  t.match(message!.Text, /valid for 24 hours/)
  const code = codeIn(message!)

  const before = await login(app, { email, password: 'a perfectly fine password' })
  t.equal(decodeClaims(before.token).email_verified, false, 'the claim says so before')
  const profileBefore = await app.inject({ method: 'GET', url: '/user/profile', headers: { authorization: `Bearer ${before.token}` } })
  t.equal(profileBefore.json().user.emailVerified, false)

  const verified = await verify(app, { email, code })
  t.equal(verified.statusCode, 200)
  t.same(verified.json(), { user: { id: created.json().user.id, email, emailVerified: true, createdAt: created.json().user.createdAt } })
  t.equal((await verify(app, { email, code })).json().code, 'VERIFICATION_CODE_INVALID', 'a code works once')

  const refreshed = await refresh(app, before.refreshToken)
  t.equal(decodeClaims(refreshed.json().token).email_verified, true, 'the next token of the session says verified')
  const profile = await app.inject({ method: 'GET', url: '/user/profile', headers: { authorization: `Bearer ${refreshed.json().token}` } })
  t.equal(profile.json().user.emailVerified, true)
})

t.test('asking for a verification answers alike for unverified, verified and unknown addresses, and sends only to the first', async (t) => {
  const app = await buildWithMail(t, { env: { EMAIL_VERIFY_URL: 'https://app.example.com/verify' } })
  const unverified = uniqueEmail()
  await signup(app, unverified)
  const verifiedUser = await registerUser(app)
  const [first] = await mail.waitForMessages(verifiedUser.email)
  t.equal((await verify(app, { token: linkTokenIn(first!) })).statusCode, 200, 'the link\'s token verifies')
  const unknown = uniqueEmail()

  const answers = []
  for (const email of [unverified, verifiedUser.email, unknown]) {
    const response = await app.inject({ method: 'POST', url: '/email/verification', payload: { email } })
    answers.push([response.statusCode, response.body])
  }
  t.same(answers[1], answers[0])
  t.same(answers[2], answers[0])
  t.equal(answers[0]![0], 202)

  const messages = await mail.waitForMessages(unverified, 2)
  t.equal(messages.length, 2, 'a second message to the unverified address')
  t.equal((await verify(app, { email: unverified, code: codeIn(messages[0]!) })).statusCode, 401, 'the first code was replaced')
  t.equal((await verify(app, { email: unverified, code: codeIn(messages[1]!) })).statusCode, 200)
  t.equal((await mail.messagesTo(verifiedUser.email)).length, 1, 'nothing more to the verified address')
  t.same(await mail.messagesTo(unknown), [], 'nothing to the unknown one')
})

t.test('REQUIRE_EMAIL_VERIFICATION: a correct login to an unverified account is a 403 that issues nothing', async (t) => {
  const app = await buildWithMail(t, { env: { REQUIRE_EMAIL_VERIFICATION: 'true' } })
  const email = uniqueEmail()
  await signup(app, email)
  const wrong = await app.inject({ method: 'POST', url: '/login', payload: { email, password: 'not the password' } })
  t.equal(wrong.statusCode, 401, 'a wrong password is still just a wrong password')
  const refused = await app.inject({ method: 'POST', url: '/login', payload: { email, password: 'a perfectly fine password' } })
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().code, 'EMAIL_NOT_VERIFIED')
  t.equal(await app.mongo.db!.collection('sessions').countDocuments(), 0, 'no session was created')

  const [message] = await mail.waitForMessages(email)
  t.equal((await verify(app, { email, code: codeIn(message!) })).statusCode, 200)
  t.ok((await login(app, { email, password: 'a perfectly fine password' })).token)
})

t.test('an email change: a code to the new address, a notice to the old, the move when it is confirmed', async (t) => {
  const app = await buildWithMail(t)
  const user = await registerUser(app)
  const newEmail = uniqueEmail()
  const change = (payload: Record<string, string>, token = user.token) =>
    app.inject({ method: 'PUT', url: '/user/email', headers: { authorization: `Bearer ${token}` }, payload })

  t.equal((await change({ newEmail, password: 'not the password' })).json().code, 'INVALID_CURRENT_PASSWORD')
  t.equal((await change({ newEmail: user.email, password: user.password })).json().code, 'EMAIL_TAKEN', 'its own address')
  const other = await registerUser(app)
  t.equal((await change({ newEmail: other.email, password: user.password })).statusCode, 409, 'another account\'s address')
  t.equal((await app.inject({ method: 'PUT', url: `/user/email?secret_token=${user.token}`, payload: { newEmail, password: user.password } })).statusCode, 401, 'never with a token in the URL')

  const asked = await change({ newEmail: ` ${newEmail.toUpperCase()}`, password: user.password })
  t.equal(asked.statusCode, 202)
  const [code] = await mail.waitForMessages(newEmail)
  t.ok(isVerification(code!))
  const toOld = await mail.waitForMessages(user.email, 2)
  t.ok(toOld.some((message) => message.Subject.endsWith('email address is about to change') && message.Text.includes(newEmail)), 'a notice went to the old address')
  t.ok((await login(app, user)).token, 'nothing changed yet')

  const confirmed = await verify(app, { email: newEmail, code: codeIn(code!) })
  t.equal(confirmed.statusCode, 200)
  t.same(confirmed.json().user, { id: user.id, email: newEmail, emailVerified: true, createdAt: confirmed.json().user.createdAt })
  t.equal((await app.inject({ method: 'POST', url: '/login', payload: { email: user.email, password: user.password } })).statusCode, 401, 'the old address no longer logs in')
  const session = await login(app, { email: newEmail, password: user.password })
  t.equal(decodeClaims(session.token).email, newEmail)
  t.equal(decodeClaims((await refresh(app, user.refreshToken)).json().token).email, newEmail, 'an older session\'s next token has the new address')
  const notices = await mail.waitForMessages(user.email, 3)
  t.ok(notices.some((message) => message.Subject.endsWith('email address was changed')), 'and the old address was told')
})

t.test('an email change loses to an account that took the address meanwhile: 409', async (t) => {
  const app = await buildWithMail(t)
  const user = await registerUser(app)
  const newEmail = uniqueEmail()
  await app.inject({ method: 'PUT', url: '/user/email', headers: { authorization: `Bearer ${user.token}` }, payload: { newEmail, password: user.password } })
  const [message] = await mail.waitForMessages(newEmail)
  t.equal((await signup(app, newEmail)).statusCode, 201)
  t.notMatch(message!.Text, /token=/, 'no link without EMAIL_VERIFY_URL')
  const taken = await verify(app, { email: newEmail, code: codeIn(message!) })
  t.equal(taken.statusCode, 409, taken.body)
  t.equal(taken.json().code, 'EMAIL_TAKEN')
  t.ok((await login(app, user)).token, 'the account keeps its address')
})

t.test('EMAIL_TEMPLATES_DIR replaces a template; the HTML part escapes what it shows', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'templates-'))
  t.teardown(() => import('node:fs/promises').then((fs) => fs.rm(directory, { recursive: true })))
  await writeFile(join(directory, 'email_verification.txt'), 'Subject: Welcome to {{product}}\n\nYour code: {{code}} ({{expiresIn}}) for {{email}}\n')
  await writeFile(join(directory, 'email_verification.html'), '<p>Your code: <b>{{code}}</b> for {{email}}</p>')
  const app = await buildWithMail(t, { env: { EMAIL_TEMPLATES_DIR: directory, EMAIL_PRODUCT_NAME: 'Acme & Co' } })
  const email = `o'hara.${Date.now()}@example.com`
  await signup(app, email)
  const [message] = await mail.waitForMessages(email)
  t.equal(message!.Subject, 'Welcome to Acme & Co')
  t.match(message!.Text, new RegExp(`^Your code: [A-Z0-9]{4}-[A-Z0-9]{4} \\(24 hours\\) for ${email}`))
  t.match(message!.HTML, /for o&#39;hara\./, 'escaped in HTML')
  t.equal((await verify(app, { email, code: codeIn(message!) })).statusCode, 200)

  await writeFile(join(directory, 'password_reset.txt'), 'no subject line')
  await t.rejects(buildWithMail(t, { env: { EMAIL_TEMPLATES_DIR: directory } }), /password_reset\.txt must start with a "Subject: …" line/)
  await writeFile(join(directory, 'password_reset.txt'), 'Subject: x\n\n{{#code}}unclosed')
  await t.rejects(buildWithMail(t, { env: { EMAIL_TEMPLATES_DIR: directory } }), /not a valid Mustache template/)
})

t.test('bad verification bodies are 400s', async (t) => {
  const app = await buildWithMail(t)
  for (const payload of [{}, { email: uniqueEmail() }, { code: 'ABCD-EFGH' }, { token: 'short' }, { email: uniqueEmail(), code: 'ABCD-EFGH', extra: 1 }]) {
    t.equal((await app.inject({ method: 'POST', url: '/email/verify', payload })).statusCode, 400, JSON.stringify(payload))
  }
  t.equal((await app.inject({ method: 'POST', url: '/email/verification', payload: { email: 'nope' } })).statusCode, 400)
  const unknown = await verify(app, { email: uniqueEmail(), code: 'ABCD-EFGH' })
  t.equal(unknown.statusCode, 401)
  t.equal(unknown.json().code, 'VERIFICATION_CODE_INVALID')
})

t.test('the email routes have the limits of the rest: messages per address, wrong codes and wrong passwords per account', async (t) => {
  const app = await buildWithMail(t, { env: { EMAIL_REQUEST_MAX: '1', RATE_LIMIT_EMAIL_MAX: '2' } })
  const user = await registerUser(app)
  const ask = () => app.inject({ method: 'POST', url: '/email/verification', payload: { email: user.email } })
  t.same([(await ask()).statusCode, (await ask()).statusCode], [202, 429], 'one message per address per window')

  const guesses = []
  for (let i = 0; i < 3; i++) guesses.push((await verify(app, { email: user.email, code: 'ABCD-EFGH' })).statusCode)
  t.same(guesses, [401, 401, 429], 'wrong verification codes count against the account')

  const other = await registerUser(app)
  const changes = []
  for (let i = 0; i < 3; i++) {
    changes.push((await app.inject({ method: 'PUT', url: '/user/email', headers: { authorization: `Bearer ${other.token}` }, payload: { newEmail: uniqueEmail(), password: 'not the password' } })).statusCode)
  }
  t.same(changes, [401, 401, 429], 'wrong passwords at PUT /user/email too')
})
