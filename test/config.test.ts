import { readFile } from 'node:fs/promises'
import t from 'tap'
import { ConfigError, loadConfig } from '../config.js'
import { renderConfigTable } from '../scripts/config-table.js'

const secret = 'a-production-secret-of-at-least-32-bytes'

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
    jwt: { issuer: 'auth-service', audience: 'auth-service-clients', accessTokenTtlSeconds: 900, allowQueryToken: true, secretIsEphemeral: true },
    bcryptCost: 12,
    bodyLimitBytes: 16384,
    shutdownGraceMs: 10000
  })
})

t.test('values are converted from strings, and an empty variable counts as unset', async (t) => {
  const config = loadConfig({ PORT: '8080', ALLOW_QUERY_TOKEN: 'false', BCRYPT_COST: '10', LOG_LEVEL: '', JWT_SECRET: secret })
  t.equal(config.port, 8080)
  t.equal(config.jwt.allowQueryToken, false)
  t.equal(config.bcryptCost, 10)
  t.equal(config.logLevel, 'info')
  t.equal(config.jwt.secret, secret)
  t.equal(config.jwt.secretIsEphemeral, false)
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
    [{ JWT_SECRET: 'too-short' }, /^Invalid configuration: JWT_SECRET must be at least 32 bytes$/]
  ]
  for (const [env, expected] of cases) t.match(configError(env), expected, JSON.stringify(env))
})

t.test('production refuses to start without a strong signing secret', async (t) => {
  t.equal(configError({ NODE_ENV: 'production' }), 'Invalid configuration: JWT_SECRET is required when NODE_ENV=production')
  t.equal(configError({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(31) }), 'Invalid configuration: JWT_SECRET must be at least 32 bytes')
  t.equal(configError({ NODE_ENV: 'production', JWT_SECRET: secret, BCRYPT_COST: '8' }), 'Invalid configuration: BCRYPT_COST must be at least 10 when NODE_ENV=production')
  t.equal(loadConfig({ NODE_ENV: 'production', JWT_SECRET: secret }).jwt.secret, secret)
})

t.test('a short secret never appears in the error message', async (t) => {
  t.notMatch(configError({ JWT_SECRET: 'hunter2-is-my-secret' }), /hunter2/)
})

t.test('outside production an ephemeral secret is generated, different each time', async (t) => {
  const first = loadConfig({ NODE_ENV: 'development' })
  const second = loadConfig({ NODE_ENV: 'test' })
  t.equal(first.jwt.secretIsEphemeral, true)
  t.ok(Buffer.byteLength(first.jwt.secret) >= 32)
  t.not(first.jwt.secret, second.jwt.secret)
})

t.test('the README configuration table is the one generated from the schema', async (t) => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
  const section = /<!-- config-table:start -->\n([\s\S]*?)\n<!-- config-table:end -->/.exec(readme)
  t.ok(section, 'the README has the generated section')
  t.equal(section?.[1], renderConfigTable(), 'regenerate with: npm run config:table')
})
