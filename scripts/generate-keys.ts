import { randomBytes } from 'node:crypto'
import { ASYMMETRIC_ALGORITHMS, generateSigningKey, type AsymmetricAlgorithm } from '../keys.js'

/** A new key pair, printed in the format the configuration takes. */
export function renderKeyPair (algorithm: AsymmetricAlgorithm): string {
  const key = generateSigningKey(algorithm)
  const oneLine = (pem: string) => pem.trim().replace(/\n/g, '\\n')
  return [
    `# ${algorithm} key pair, kid ${key.kid}`,
    '# Private key: JWT_PRIVATE_KEY (or a file named by JWT_PRIVATE_KEY_FILE). Keep it secret.',
    key.privateKeyPem.trim(),
    '# Public key: list it in JWT_VERIFY_KEYS to verify this key\'s tokens after it stops signing.',
    key.publicKeyPem.trim(),
    '# The same, as .env lines:',
    `JWT_ALGORITHM=${algorithm}`,
    `JWT_PRIVATE_KEY="${oneLine(key.privateKeyPem)}"`,
    ''
  ].join('\n')
}

/** A new HS256 secret (384 random bits), as .env lines. */
export function renderSharedSecret (): string {
  return [
    '# HS256 shared secret: every service that verifies tokens needs it too. Keep it secret.',
    'JWT_ALGORITHM=HS256',
    `JWT_SECRET=${randomBytes(48).toString('base64url')}`,
    ''
  ].join('\n')
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const algorithm = process.argv[2] ?? 'EdDSA'
  if (algorithm === 'HS256') {
    process.stdout.write(renderSharedSecret())
  } else if (ASYMMETRIC_ALGORITHMS.includes(algorithm as AsymmetricAlgorithm)) {
    process.stdout.write(renderKeyPair(algorithm as AsymmetricAlgorithm))
  } else {
    console.error(`usage: npm run keys:generate [-- ${[...ASYMMETRIC_ALGORITHMS, 'HS256'].join('|')}]`)
    process.exit(2)
  }
}
