import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'

export const ASYMMETRIC_ALGORITHMS = ['EdDSA', 'ES256', 'RS256'] as const
export type AsymmetricAlgorithm = typeof ASYMMETRIC_ALGORITHMS[number]
export type SigningAlgorithm = AsymmetricAlgorithm | 'HS256'

/** A public key that verifies tokens, as the JWKS publishes it. */
export interface VerificationKey {
  kid: string
  algorithm: AsymmetricAlgorithm
  /** SPKI PEM, normalised (never PKCS#1: see fast-jwt's key-confusion advisories). */
  publicKeyPem: string
  jwk: PublicJwk
}

/** Only the public members: a private member can never reach the JWKS by accident. */
export interface PublicJwk {
  kty: string
  kid: string
  alg: AsymmetricAlgorithm
  use: 'sig'
  crv?: string
  x?: string
  y?: string
  n?: string
  e?: string
}

export interface SigningKey extends VerificationKey {
  /** PKCS#8 PEM. */
  privateKeyPem: string
}

export class KeyError extends Error {}

const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----/g

function algorithmOf (key: KeyObject): AsymmetricAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA'
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256'
  if (key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048) return 'RS256'
  throw new KeyError('unsupported key type: use Ed25519 (EdDSA), P-256 (ES256) or RSA of at least 2048 bits (RS256)')
}

/** RFC 7638 thumbprint: a stable `kid` derived from the public key itself. */
function thumbprint (jwk: JsonWebKey): string {
  const members = jwk.kty === 'OKP'
    ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x }
    : jwk.kty === 'EC'
      ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      : { e: jwk.e, kty: jwk.kty, n: jwk.n }
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url')
}

function describePublicKey (publicKey: KeyObject): VerificationKey {
  const algorithm = algorithmOf(publicKey)
  const exported = publicKey.export({ format: 'jwk' })
  const kid = thumbprint(exported)
  const jwk: PublicJwk = { kty: exported.kty!, kid, alg: algorithm, use: 'sig' }
  for (const member of ['crv', 'x', 'y', 'n', 'e'] as const) {
    if (typeof exported[member] === 'string') jwk[member] = exported[member]
  }
  return {
    kid,
    algorithm,
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    jwk
  }
}

/** Accepts real newlines or `\n` escapes (env files and secret stores often flatten PEMs). */
function normalisePem (text: string): string {
  return text.replace(/\\n/g, '\n').trim()
}

export function parseSigningKey (pem: string): SigningKey {
  const privateKey = createPrivateKey(normalisePem(pem))
  return {
    ...describePublicKey(createPublicKey(privateKey)),
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  }
}

/** Every PEM block in the text (public or private keys) as a verification key. */
export function parseVerificationKeys (text: string): VerificationKey[] {
  const blocks = normalisePem(text).match(PEM_BLOCK) ?? []
  if (blocks.length === 0 && text.trim() !== '') throw new KeyError('no PEM block found')
  return blocks.map((block) => {
    const key = block.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(block)) : createPublicKey(block)
    return describePublicKey(key)
  })
}

export function generateSigningKey (algorithm: AsymmetricAlgorithm): SigningKey {
  const { privateKey } = algorithm === 'EdDSA'
    ? generateKeyPairSync('ed25519')
    : algorithm === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 })
  return parseSigningKey(privateKey.export({ format: 'pem', type: 'pkcs8' }).toString())
}

/** Where development keeps its signing key between restarts, per algorithm; git-ignored. */
export const devKeyFile = (algorithm: AsymmetricAlgorithm) => `.dev-signing-key-${algorithm}.pem`

/**
 * In development with no key configured, the key kept in devKeyFile (made on
 * first use), so tokens survive the restarts of `npm run dev`: returns the
 * environment to load the configuration from. Anywhere else, or with a key or
 * secret configured, the environment as it is: production still refuses to
 * start without a key, and tests keep their ephemeral ones.
 */
export function withDevelopmentKey (env: Record<string, string | undefined>, directory = process.cwd()): Record<string, string | undefined> {
  const development = (env.NODE_ENV ?? 'development') === 'development'
  const algorithm = (env.JWT_ALGORITHM ?? 'EdDSA') as AsymmetricAlgorithm
  const configured = ['JWT_PRIVATE_KEY', 'JWT_PRIVATE_KEY_FILE', 'JWT_SECRET'].some((name) => (env[name] ?? '') !== '')
  if (!development || configured || !ASYMMETRIC_ALGORITHMS.includes(algorithm)) return env
  const path = resolve(directory, devKeyFile(algorithm))
  try {
    if (!existsSync(path)) writeFileSync(path, generateSigningKey(algorithm).privateKeyPem, { mode: 0o600 })
  } catch {
    return env // a read-only directory: the ephemeral key pair, with its warning
  }
  return { ...env, JWT_PRIVATE_KEY_FILE: path }
}
