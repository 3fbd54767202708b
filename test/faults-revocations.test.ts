import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createClientCredentials, createVerifier, RevocationStateStaleError, TokenRevokedError, type Verifier } from '@auth-service/verify'
import { freePort, freshDatabaseUrl, sleep, TEST_SIGNING_KEY } from './helper.js'

// The auth service killed (SIGKILL, not a graceful close) while a consumer
// follows its revocation stream: past its staleness bound the consumer
// refuses every token, and it recovers by itself when the service returns,
// knowing what was revoked meanwhile on the other replica.

const root = fileURLToPath(new URL('..', import.meta.url))
const CLIENT_SECRET = 'a-secret-for-the-fault-test-consumer'

async function startReplica (env: Record<string, string>, port: number): Promise<ChildProcess> {
  // The compiled entry point, as `npm start` runs it (npm test builds first).
  const child = spawn(process.execPath, ['dist/server.js'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      PORT: String(port),
      BCRYPT_COST: '4',
      JWT_PRIVATE_KEY: TEST_SIGNING_KEY.privateKeyPem,
      REVOCATION_SYNC_INTERVAL_MS: '100',
      REVOCATION_STREAM_HEARTBEAT_SECONDS: '1',
      SERVICE_CLIENTS: JSON.stringify([{ id: 'fault-consumer', secret: CLIENT_SECRET, scopes: ['revocations:read'] }]),
      ...env
    },
    stdio: 'ignore'
  })
  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`replica exited with ${child.exitCode}`)
    if (await fetch(`http://127.0.0.1:${port}/health/ready`).then((response) => response.ok, () => false)) return child
    if (Date.now() > deadline) throw new Error('replica did not start')
    await sleep(100)
  }
}

async function session (url: string, email: string) {
  const response = await fetch(`${url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: 'a perfectly fine password' }) })
  if (response.status !== 200) throw new Error(`login: ${response.status}`)
  return await response.json() as { token: string, refreshToken: string }
}

async function outcome (verifier: Verifier, token: string): Promise<'accepted' | 'revoked' | 'stale' | string> {
  try {
    await verifier.verify(token)
    return 'accepted'
  } catch (error) {
    if (error instanceof TokenRevokedError) return 'revoked'
    if (error instanceof RevocationStateStaleError) return 'stale'
    return String(error)
  }
}

async function waitFor (what: string, check: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await sleep(50)
  }
}

t.test('a replica killed under a consumer: past the bound it refuses every token, and recovers when the replica returns', async (t) => {
  const env = { MONGODB_URL: await freshDatabaseUrl() }
  const [portA, portB] = [await freePort(), await freePort()]
  let replicaA = await startReplica(env, portA)
  const replicaB = await startReplica(env, portB)
  t.teardown(() => { replicaA.kill('SIGKILL'); replicaB.kill('SIGKILL') })
  const [a, b] = [`http://127.0.0.1:${portA}`, `http://127.0.0.1:${portB}`]

  const email = `fault-${Date.now()}@example.com`
  const signup = await fetch(`${b}/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: 'a perfectly fine password' }) })
  t.equal(signup.status, 201)
  const [kept, loggedOutBefore, loggedOutWhileDown] = [await session(b, email), await session(b, email), await session(b, email)]

  // The consumer follows replica A only; revocations are made on replica B.
  const errors: unknown[] = []
  const verifier = createVerifier({
    issuer: 'auth-service',
    audience: 'auth-service-clients',
    jwksUrl: `${b}/.well-known/jwks.json`,
    revocationsUrl: `${a}/revocations`,
    revocationsCredentials: createClientCredentials({ tokenUrl: `${b}/oauth/token`, clientId: 'fault-consumer', clientSecret: CLIENT_SECRET }),
    revocationsPollIntervalMs: 200,
    revocationsStalenessBoundMs: 2000,
    revocationsStreamIdleTimeoutMs: 1500,
    onError: (error) => errors.push(error)
  })
  t.teardown(() => verifier.close())
  await verifier.ready()
  t.equal(await outcome(verifier, kept.token), 'accepted')

  await fetch(`${b}/logout`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken: loggedOutBefore.refreshToken }) })
  const loggedOutAt = Date.now()
  await waitFor('the logout on B reaches the consumer through A', async () => await outcome(verifier, loggedOutBefore.token) === 'revoked', 1000)
  t.ok(Date.now() - loggedOutAt < 1000, `refused ${Date.now() - loggedOutAt} ms after the logout on the other replica`)

  replicaA.kill('SIGKILL')
  const killedAt = Date.now()
  t.equal(await outcome(verifier, kept.token), 'accepted', 'right after the kill, within the bound, tokens still pass')
  await fetch(`${b}/logout`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken: loggedOutWhileDown.refreshToken }) })
  await waitFor('the consumer goes stale', async () => await outcome(verifier, kept.token) === 'stale', 5000)
  const staleAfter = Date.now() - killedAt
  t.ok(staleAfter >= 1500 && staleAfter < 4000, `every token refused once the bound passed (${staleAfter} ms after the kill; bound 2000 ms)`)
  t.equal(await outcome(verifier, loggedOutWhileDown.token), 'stale', 'the one revoked meanwhile too: nothing is vouched for')
  t.ok(verifier.revocationStatus().stale)

  replicaA = await startReplica(env, portA)
  const restartedAt = Date.now()
  await waitFor('the consumer recovers', async () => await outcome(verifier, kept.token) === 'accepted', 10_000)
  t.pass(`tokens pass again ${Date.now() - restartedAt} ms after the replica is back`)
  t.equal(await outcome(verifier, loggedOutWhileDown.token), 'revoked', 'and what was revoked while it was down is known')
  t.equal(await outcome(verifier, loggedOutBefore.token), 'revoked')
  t.ok(errors.length > 0, 'the consumer reported the lost stream')
})
