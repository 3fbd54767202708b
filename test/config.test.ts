import { readFileSync, statSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError, loadConfig } from '../config.js'
import { devKeyFile, generateSigningKey, withDevelopmentKey } from '../keys.js'
import { renderConfigTable } from '../scripts/config-table.js'

const secret = 'a-production-secret-of-at-least-32-bytes'
const hs256 = { JWT_ALGORITHM: 'HS256' }
const edKey = generateSigningKey('EdDSA')

function configError (env: Record<string, string>): string {
  try {
    loadConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) return error.message
    throw error
  }
  throw new Error('expected a ConfigError')
}

t.test('defaults apply when nothing is set', async (t) => {
  const config = loadConfig({})
  t.match(config, {
    nodeEnv: 'development',
    host: '0.0.0.0',
    port: 3000,
    logLevel: 'info',
    mongodb: { url: 'mongodb://127.0.0.1:27017/auth', serverSelectionTimeoutMs: 5000 },
    jwt: { algorithm: 'EdDSA', issuer: 'auth-service', audience: 'auth-service-clients', accessTokenTtlSeconds: 900, allowQueryToken: true, ephemeral: true },
    sessions: { ttlSeconds: 2592000, refreshGraceSeconds: 10, purgeIntervalSeconds: 3600, accessTokenTtlSeconds: 900 },
    bcryptCost: 12,
    bodyLimitBytes: 16384,
    shutdownGraceMs: 10000
  })
})

t.test('values are converted from strings, and an empty variable counts as unset', async (t) => {
  const config = loadConfig({ PORT: '8080', ALLOW_QUERY_TOKEN: 'false', BCRYPT_COST: '10', LOG_LEVEL: '', ...hs256, JWT_SECRET: secret })
  t.equal(config.port, 8080)
  t.equal(config.jwt.allowQueryToken, false)
  t.equal(config.bcryptCost, 10)
  t.equal(config.logLevel, 'info')
  t.equal(config.jwt.secret, secret)
  t.equal(config.jwt.ephemeral, false)
  t.same(config.jwt.verificationKeys, [], 'HS256 publishes no keys')
})

t.test('a bad value stops start-up with a message naming the variable', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'abc' }, /^Invalid configuration: PORT /],
    [{ PORT: '70000' }, /^Invalid configuration: PORT /],
    [{ LOG_LEVEL: 'loud' }, /^Invalid configuration: LOG_LEVEL must be one of fatal, error/],
    [{ NODE_ENV: 'prod' }, /^Invalid configuration: NODE_ENV must be one of development, test, production$/],
    [{ ALLOW_QUERY_TOKEN: 'maybe' }, /^Invalid configuration: ALLOW_QUERY_TOKEN /],
    [{ BCRYPT_COST: '3' }, /^Invalid configuration: BCRYPT_COST /],
    [{ MONGODB_URL: 'http://db:27017' }, /^Invalid configuration: MONGODB_URL /],
    [{ ACCESS_TOKEN_TTL_SECONDS: '0' }, /^Invalid configuration: ACCESS_TOKEN_TTL_SECONDS /],
    [{ ...hs256, JWT_SECRET: 'too-short' }, /^Invalid configuration: JWT_SECRET must be at least 32 bytes$/],
    [{ JWT_ALGORITHM: 'PS256' }, /^Invalid configuration: JWT_ALGORITHM must be one of EdDSA, ES256, RS256, HS256$/],
    [{ JWT_PRIVATE_KEY: 'not a pem' }, /^Invalid configuration: JWT_PRIVATE_KEY is not a usable private key PEM/],
    [{ JWT_PRIVATE_KEY: edKey.privateKeyPem, JWT_ALGORITHM: 'ES256' }, /^Invalid configuration: JWT_PRIVATE_KEY is a EdDSA key but JWT_ALGORITHM=ES256$/],
    [{ JWT_PRIVATE_KEY: edKey.privateKeyPem, JWT_PRIVATE_KEY_FILE: '/tmp/x' }, /^Invalid configuration: set JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE, not both$/],
    [{ JWT_PRIVATE_KEY_FILE: '/nonexistent/key.pem' }, /^Invalid configuration: JWT_PRIVATE_KEY_FILE cannot be read \(ENOENT\)$/],
    [{ JWT_VERIFY_KEYS: 'garbage' }, /^Invalid configuration: JWT_VERIFY_KEYS holds a key that cannot be used/],
    [{ JWT_SECRET: secret }, /^Invalid configuration: JWT_SECRET is only used with JWT_ALGORITHM=HS256/],
    [{ ...hs256, JWT_SECRET: secret, JWT_PRIVATE_KEY: edKey.privateKeyPem }, /^Invalid configuration: JWT_PRIVATE_KEY is set but JWT_ALGORITHM=HS256/],
    [{ REFRESH_GRACE_SECONDS: '-1' }, /^Invalid configuration: REFRESH_GRACE_SECONDS /],
    [{ SESSION_TTL_SECONDS: '0' }, /^Invalid configuration: SESSION_TTL_SECONDS /]
  ]
  for (const [env, expected] of cases) t.match(configError(env), expected, JSON.stringify(env))
})

t.test('production refuses to start without a signing key or a strong secret', async (t) => {
  t.equal(configError({ NODE_ENV: 'production' }), 'Invalid configuration: JWT_PRIVATE_KEY (or JWT_PRIVATE_KEY_FILE) is required when NODE_ENV=production')
  t.equal(configError({ NODE_ENV: 'production', ...hs256 }), 'Invalid configuration: JWT_SECRET is required when NODE_ENV=production and JWT_ALGORITHM=HS256')
  t.equal(configError({ NODE_ENV: 'production', ...hs256, JWT_SECRET: 'x'.repeat(31) }), 'Invalid configuration: JWT_SECRET must be at least 32 bytes')
  t.equal(configError({ NODE_ENV: 'production', JWT_PRIVATE_KEY: edKey.privateKeyPem, BCRYPT_COST: '8' }), 'Invalid configuration: BCRYPT_COST must be at least 10 when NODE_ENV=production')
  const smtp = { SMTP_URL: 'smtp://mail.example.com:587' }
  t.equal(loadConfig({ NODE_ENV: 'production', ...hs256, JWT_SECRET: secret, ...smtp }).jwt.secret, secret)
  const production = loadConfig({ NODE_ENV: 'production', JWT_PRIVATE_KEY: edKey.privateKeyPem, ...smtp })
  t.equal(production.jwt.signingKey?.kid, edKey.kid)
  t.equal(production.jwt.ephemeral, false)
})

t.test('production refuses to start without SMTP_URL: its reset and verification messages must go out', async (t) => {
  t.equal(configError({ NODE_ENV: 'production', JWT_PRIVATE_KEY: edKey.privateKeyPem }),
    'Invalid configuration: SMTP_URL is required when NODE_ENV=production (verification and password-reset messages must be delivered)')
  t.match(configError({ SMTP_URL: 'http://mail.example.com' }), /^Invalid configuration: SMTP_URL /)
  t.equal(loadConfig({}).email.smtpUrl, undefined, 'elsewhere it may be unset (messages go to the log)')
})

t.test('EMAIL_FROM must hold an address; its domain names the Message-IDs', async (t) => {
  t.equal(loadConfig({}).email.messageIdDomain, 'localhost')
  t.equal(loadConfig({ EMAIL_FROM: 'Acme Accounts <accounts@acme.example>' }).email.messageIdDomain, 'acme.example')
  t.equal(loadConfig({ EMAIL_FROM: 'accounts@acme.example' }).email.messageIdDomain, 'acme.example')
  for (const from of ['Acme', 'Acme <acme>', 'a b@c', '<@x>']) {
    t.equal(configError({ EMAIL_FROM: from }), 'Invalid configuration: EMAIL_FROM must be an email address, or Name <address>', from)
  }
})

t.test('a short secret never appears in the error message', async (t) => {
  t.notMatch(configError({ ...hs256, JWT_SECRET: 'hunter2-is-my-secret' }), /hunter2/)
})

t.test('outside production an ephemeral secret or key pair is generated, different each time', async (t) => {
  const first = loadConfig({ NODE_ENV: 'development', ...hs256 })
  const second = loadConfig({ NODE_ENV: 'test', ...hs256 })
  t.equal(first.jwt.ephemeral, true)
  t.ok(Buffer.byteLength(first.jwt.secret ?? '') >= 32)
  t.not(first.jwt.secret, second.jwt.secret)

  for (const algorithm of ['EdDSA', 'ES256', 'RS256'] as const) {
    const config = loadConfig({ JWT_ALGORITHM: algorithm })
    t.equal(config.jwt.ephemeral, true)
    t.equal(config.jwt.signingKey?.algorithm, algorithm)
    t.same(config.jwt.verificationKeys.map((key) => key.kid), [config.jwt.signingKey?.kid])
  }
})

t.test('keys come from PEM variables (with \\n escapes) or files, and verify keys join the set', async (t) => {
  const directory = t.testdir()
  const es = generateSigningKey('ES256')
  const rsa = generateSigningKey('RS256')
  await writeFile(join(directory, 'private.pem'), es.privateKeyPem)
  await writeFile(join(directory, 'verify.pem'), `${rsa.publicKeyPem}\n${edKey.privateKeyPem}`)

  const fromFiles = loadConfig({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY_FILE: join(directory, 'private.pem'), JWT_VERIFY_KEYS_FILE: join(directory, 'verify.pem') })
  t.equal(fromFiles.jwt.signingKey?.kid, es.kid)
  t.same(fromFiles.jwt.verificationKeys.map((key) => key.kid), [es.kid, rsa.kid, edKey.kid], 'the active key first, then the others')
  t.same(fromFiles.jwt.verificationKeys.map((key) => key.algorithm), ['ES256', 'RS256', 'EdDSA'])

  const escaped = edKey.privateKeyPem.replace(/\n/g, '\\n')
  const fromEscapedVariable = loadConfig({ JWT_PRIVATE_KEY: escaped, JWT_VERIFY_KEYS: `${edKey.publicKeyPem}` })
  t.equal(fromEscapedVariable.jwt.signingKey?.kid, edKey.kid)
  t.equal(fromEscapedVariable.jwt.verificationKeys.length, 1, 'the active key listed again is not duplicated')
  t.equal(fromEscapedVariable.jwt.ephemeral, false)
})

t.test('weak or unsupported keys are refused', async (t) => {
  const { generateKeyPairSync } = await import('node:crypto')
  const weakRsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  t.match(configError({ JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY: weakRsa }), /JWT_PRIVATE_KEY is not a usable private key PEM \(unsupported key type/)
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  t.match(configError({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: p384 }), /unsupported key type/)
})

t.test('the configuration table in docs/configuration.md is the one generated from the schema', async (t) => {
  const readme = await readFile(new URL('../docs/configuration.md', import.meta.url), 'utf8')
  const section = /<!-- config-table:start -->\n([\s\S]*?)\n<!-- config-table:end -->/.exec(readme)
  t.ok(section, 'docs/configuration.md has the generated section')
  t.equal(section?.[1], renderConfigTable(), 'regenerate with: npm run config:table')
})

t.test('TRUST_PROXY takes true, false, a hop count or proxy addresses; CORS_ORIGINS a list', async (t) => {
  t.equal(loadConfig({}).trustProxy, false)
  t.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, true)
  t.equal(loadConfig({ TRUST_PROXY: '2' }).trustProxy, 2)
  t.same(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 192.168.1.5' }).trustProxy, ['10.0.0.0/8', '192.168.1.5'])
  t.match(configError({ TRUST_PROXY: 'my-proxy.local' }), /^Invalid configuration: TRUST_PROXY must be/)
  t.same(loadConfig({}).corsOrigins, [])
  t.same(loadConfig({ CORS_ORIGINS: 'https://a.example, https://b.example' }).corsOrigins, ['https://a.example', 'https://b.example'])
  t.same(loadConfig({ CORS_ORIGINS: 'http://localhost:5173' }).corsOrigins, ['http://localhost:5173'])
})

t.test('the database is the MONGODB_URL path, or auth when it names none (the driver would use test)', async (t) => {
  const database = (url: string) => loadConfig({ MONGODB_URL: url }).mongodb.database
  t.equal(database('mongodb://127.0.0.1:27017'), 'auth')
  t.equal(database('mongodb://127.0.0.1:27017/'), 'auth')
  t.equal(database('mongodb://127.0.0.1:27017/?retryWrites=false'), 'auth')
  t.equal(database('mongodb://a:1,b:2/accounts?replicaSet=rs0'), 'accounts')
  t.equal(database('mongodb+srv://user:pw@cluster.example.net/users'), 'users')
  t.equal(loadConfig({}).mongodb.database, 'auth', 'and the default URL names auth')
})

t.test('review finding 12: a CORS_ORIGINS entry that is not an origin stops start-up, naming the variable', async (t) => {
  for (const value of ['not-a-url', 'https://a.example/', 'https://a.example/app', 'ftp://a.example', 'https://a.example, *', 'a.example']) {
    t.match(configError({ CORS_ORIGINS: value }), /^Invalid configuration: CORS_ORIGINS must be/, value)
  }
})

t.test('in development without a key, the service keeps one in a git-ignored file, so tokens survive restarts', async (t) => {
  const directory = t.testdir()
  const first = withDevelopmentKey({}, directory)
  t.equal(first.JWT_PRIVATE_KEY_FILE, join(directory, devKeyFile('EdDSA')), 'NODE_ENV unset is development')
  const kid = loadConfig(first).jwt.signingKey?.kid
  t.equal(loadConfig(withDevelopmentKey({ NODE_ENV: 'development' }, directory)).jwt.signingKey?.kid, kid, 'the same key after a restart')
  t.equal((statSync(first.JWT_PRIVATE_KEY_FILE!).mode & 0o777), 0o600, 'readable by its owner only')
  t.equal(loadConfig(withDevelopmentKey({ JWT_ALGORITHM: 'ES256' }, directory)).jwt.signingKey?.algorithm, 'ES256', 'one file per algorithm')
  const ignored = readFileSync(new URL('../.gitignore', import.meta.url), 'utf8')
  t.match(ignored, /^\.dev-signing-key-\*\.pem$/m, 'git ignores them')
  for (const env of [{ NODE_ENV: 'production' }, { NODE_ENV: 'test' }, { JWT_PRIVATE_KEY: 'x' }, { JWT_PRIVATE_KEY_FILE: 'x' }, { JWT_ALGORITHM: 'HS256' }, { JWT_SECRET: 'x' }]) {
    t.equal(withDevelopmentKey(env, directory), env, `left as it is: ${JSON.stringify(env)}`)
  }
})
