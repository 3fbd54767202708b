import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { loadConfig } from '../config.js'
import { renderKeyPair } from '../scripts/generate-keys.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))

function envLines (output: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [, name, value] of output.matchAll(/^(JWT_[A-Z_]+)=(.*)$/gm)) {
    env[name!] = value!.replace(/^"|"$/g, '')
  }
  return env
}

t.test('keys:generate prints a key pair the configuration accepts, for each algorithm', async (t) => {
  for (const algorithm of ['EdDSA', 'ES256', 'RS256'] as const) {
    const output = renderKeyPair(algorithm)
    const kid = /kid (\S+)/.exec(output)?.[1]
    const config = loadConfig({ NODE_ENV: 'production', ...envLines(output) })
    t.equal(config.jwt.algorithm, algorithm)
    t.equal(config.jwt.signingKey?.kid, kid, `${algorithm}: the .env line loads as the printed kid`)
    const pems = output.split('# The same')[0]!.match(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g) ?? []
    t.equal(pems.length, 2)
    t.equal(loadConfig({ JWT_ALGORITHM: algorithm, JWT_PRIVATE_KEY: pems[0]!, JWT_VERIFY_KEYS: pems[1]! }).jwt.verificationKeys.length, 1,
      `${algorithm}: the printed public key is the private key's`)
  }
})

t.test('the npm script runs and refuses an unknown algorithm', async (t) => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/generate-keys.ts'], { cwd: root })
  t.match(stdout, /^# EdDSA key pair, kid /)
  await t.rejects(run(process.execPath, ['--import', 'tsx', 'scripts/generate-keys.ts', 'HS256'], { cwd: root }), { code: 2 })
})
