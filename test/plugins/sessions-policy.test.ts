import t from 'tap'
import { decideRepeatedRotation, type RepeatedRotation } from '../../plugins/sessions/rotation-policy.js'
import { hashRefreshToken, newRefreshToken, refreshTokenKey, sealSuccessor, sessionOfRefreshToken, unsealSuccessor } from '../../plugins/sessions/token-crypto.js'

// The rules and the crypto of refresh-token rotation, without a database.

const key = refreshTokenKey('a signing secret of the tests, at least 32 bytes')
const sessionId = '65f0c0ffee0000000000beef'
const token = () => newRefreshToken(key, sessionId)

const fresh: RepeatedRotation = { successorUsed: false, successorUndelivered: false, sinceIssuedMs: 1000, graceMs: 10000, sealedCopyKept: true }

t.test('a token presented again within the grace window gets the same successor', async (t) => {
  t.equal(decideRepeatedRotation(fresh), 'same-successor')
  t.equal(decideRepeatedRotation({ ...fresh, sinceIssuedMs: 10000 }), 'same-successor', 'up to the window\'s end')
})

t.test('after the window, or once the successor was used, or without its sealed copy, it is theft', async (t) => {
  t.equal(decideRepeatedRotation({ ...fresh, sinceIssuedMs: 10001 }), 'theft')
  t.equal(decideRepeatedRotation({ ...fresh, successorUsed: true }), 'theft', 'a used successor makes its parent stolen, even within the window')
  t.equal(decideRepeatedRotation({ ...fresh, sealedCopyKept: false }), 'theft', 'no copy left to hand out')
  t.equal(decideRepeatedRotation({ ...fresh, graceMs: 0, sinceIssuedMs: 1 }), 'theft', 'a window of 0 forgives nothing')
})

t.test('a successor that was never delivered is withdrawn, whenever the parent comes back, unless it was used', async (t) => {
  t.equal(decideRepeatedRotation({ ...fresh, successorUndelivered: true }), 'withdraw-and-rotate')
  t.equal(decideRepeatedRotation({ ...fresh, successorUndelivered: true, sinceIssuedMs: 86_400_000, sealedCopyKept: false }), 'withdraw-and-rotate')
  t.equal(decideRepeatedRotation({ ...fresh, successorUndelivered: true, successorUsed: true }), 'theft', 'used means someone held it')
})

t.test('refresh tokens hold 256 random bits, are stored as their SHA-256, and name their session under a MAC', async (t) => {
  const tokens = new Set(Array.from({ length: 1000 }, token))
  t.equal(tokens.size, 1000)
  for (const each of tokens) t.match(each, /^[A-Za-z0-9_-]{80}$/)
  const [first] = tokens
  t.equal(hashRefreshToken(first!), hashRefreshToken(first!))
  t.not(hashRefreshToken(first!), first)
  t.match(hashRefreshToken(first!), /^[A-Za-z0-9_-]{43}$/)
  t.equal(sessionOfRefreshToken(key, first!), sessionId, 'the token names its session')
})

t.test('only the service\'s own key recognises a token: forged, altered, foreign and old-format ones are nobody\'s', async (t) => {
  const genuine = token()
  const bytes = Buffer.from(genuine, 'base64url')
  const otherSession = Buffer.from(bytes)
  otherSession[0] = otherSession[0]! ^ 1
  t.equal(sessionOfRefreshToken(key, otherSession.toString('base64url')), null, 'another session id under the same MAC')
  const flipped = Buffer.from(bytes)
  flipped[59] = flipped[59]! ^ 1
  t.equal(sessionOfRefreshToken(key, flipped.toString('base64url')), null, 'an altered MAC')
  t.equal(sessionOfRefreshToken(refreshTokenKey('another deployment\'s signing secret, 32 bytes+'), genuine), null, 'another key')
  for (const other of ['', 'x'.repeat(43), 'x'.repeat(80), `${genuine.slice(0, 79)}!`, genuine + 'A']) {
    t.equal(sessionOfRefreshToken(key, other), null, JSON.stringify(other.slice(0, 12)))
  }
})

t.test('a sealed successor opens only with its parent, and not once tampered with', async (t) => {
  const parent = token()
  const successor = token()
  const sealed = sealSuccessor(parent, successor)
  t.equal(unsealSuccessor(parent, sealed), successor)
  t.not(sealSuccessor(parent, successor), sealed, 'a fresh IV each time')
  t.equal(unsealSuccessor(token(), sealed), null, 'another token opens nothing')
  t.notOk(sealed.includes(successor), 'the successor is not in the clear')
  const bytes = Buffer.from(sealed, 'base64url')
  bytes[bytes.length - 1]! ^= 1
  t.equal(unsealSuccessor(parent, bytes.toString('base64url')), null, 'a flipped bit is refused')
  t.equal(unsealSuccessor(parent, 'not base64url at all'), null)
})
