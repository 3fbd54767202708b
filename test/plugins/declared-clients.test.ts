import t from 'tap'
import { ConfigError, loadConfig } from '../../config.js'
import { build, freshDatabaseUrl } from '../helper.js'
import { generateSigningKey } from '../../keys.js'

const declare = (clients: unknown) => JSON.stringify(clients)

function tokenRequest (app: Awaited<ReturnType<typeof build>>, id: string, secret: string) {
  return app.inject({
    method: 'POST',
    url: '/oauth/token',
    headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'grant_type=client_credentials'
  })
}

t.test('SERVICE_CLIENTS: a JSON array of clients; a bad one stops start-up naming the client, never its secret', async (t) => {
  t.same(loadConfig({}).clients.declared, [], 'none by default')
  const parsed = loadConfig({ SERVICE_CLIENTS: declare([{ id: 'notes-service', secret: 'notes-dev-secret', scopes: ['revocations:read'] }]) }).clients.declared
  t.same(parsed, [{ id: 'notes-service', secret: 'notes-dev-secret', scopes: ['revocations:read'] }])
  const refusals: Array<[string, RegExp]> = [
    ['not json', /must be a JSON array/],
    [declare({ id: 'a' }), /SERVICE_CLIENTS/],
    [declare([{ id: 'Bad_Id', secret: 'a-long-enough-secret', scopes: [] }]), /SERVICE_CLIENTS\/0\/id/],
    [declare([{ id: 'svc-a', secret: 'short', scopes: [] }]), /SERVICE_CLIENTS\/0\/secret/],
    [declare([{ id: 'svc-a', secret: 'a-long-enough-secret', scopes: ['Not A Scope'] }]), /SERVICE_CLIENTS\/0\/scopes\/0/],
    [declare([{ id: 'svc-a', secret: 'a-long-enough-secret', scopes: [], extra: true }]), /SERVICE_CLIENTS/],
    [declare([{ id: 'svc-a', secret: 'a-long-enough-secret', scopes: [] }, { id: 'svc-a', secret: 'another-long-secret', scopes: [] }]), /declares svc-a twice/]
  ]
  for (const [value, message] of refusals) {
    const error = (() => { try { loadConfig({ SERVICE_CLIENTS: value }) } catch (caught) { return caught } })()
    t.ok(error instanceof ConfigError, value)
    t.match((error as Error).message, message)
    t.notMatch((error as Error).message, /a-long-enough-secret|another-long-secret/, 'no secret in the message')
  }
  const production = { NODE_ENV: 'production', JWT_PRIVATE_KEY: generateSigningKey('EdDSA').privateKeyPem, SMTP_URL: 'smtp://mail:25' }
  t.throws(() => loadConfig({ ...production, SERVICE_CLIENTS: declare([{ id: 'notes-service', secret: 'notes-dev-secret', scopes: [] }]) }),
    /the secret of notes-service must have at least 32 characters when NODE_ENV=production/, 'production: the development secret of compose is refused')
  t.equal(loadConfig({ ...production, SERVICE_CLIENTS: declare([{ id: 'notes-service', secret: 'x'.repeat(32), scopes: [] }]) }).clients.declared.length, 1)
})

t.test('declared clients exist from the start, and a changed declaration replaces the stored one at the next start', async (t) => {
  const database = await freshDatabaseUrl()
  const first = await build(t, { env: { MONGODB_URL: database, SERVICE_CLIENTS: declare([{ id: 'notes-service', secret: 'first-secret-of-notes', scopes: ['revocations:read'] }]) } })
  const issued = await tokenRequest(first, 'notes-service', 'first-secret-of-notes')
  t.equal(issued.statusCode, 200, 'a token for the declared client')
  t.equal(issued.json().scope, 'revocations:read')
  t.equal((await first.inject({ method: 'GET', url: '/revocations', headers: { authorization: `Bearer ${issued.json().access_token}` } })).statusCode, 200, 'and it reads the feed at once')
  t.notOk(JSON.stringify(await first.mongo.db!.collection('clients').findOne({ _id: 'notes-service' as never })).includes('first-secret-of-notes'), 'only the hash is stored')

  const second = await build(t, { env: { MONGODB_URL: database, SERVICE_CLIENTS: declare([{ id: 'notes-service', secret: 'second-secret-of-notes', scopes: ['revocations:read', 'notes:read'], audience: 'notes' }]) } })
  t.equal((await tokenRequest(second, 'notes-service', 'first-secret-of-notes')).statusCode, 401, 'the old secret no longer works')
  const renewed = await tokenRequest(second, 'notes-service', 'second-secret-of-notes')
  t.equal(renewed.statusCode, 200)
  t.equal(renewed.json().scope, 'revocations:read notes:read', 'the scopes follow the declaration')
  t.equal((await second.clientsRepository.list()).length, 1, 'one client, not two')
})
