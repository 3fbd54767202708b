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

if (import.meta.url === `file://${process.argv[1]}`) {
  const algorithm = (process.argv[2] ?? 'EdDSA') as AsymmetricAlgorithm
  if (!ASYMMETRIC_ALGORITHMS.includes(algorithm)) {
    console.error(`usage: npm run keys:generate [-- ${ASYMMETRIC_ALGORITHMS.join('|')}]`)
    process.exit(2)
  }
  process.stdout.write(renderKeyPair(algorithm))
}
