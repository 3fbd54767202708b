import { createHash, randomBytes, randomInt } from 'node:crypto'

/** Digits and capitals without the look-alikes 0/O, 1/I/L. */
export const CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ'
export const CODE_LENGTH = 8

/** A code a person types: 8 characters of 31 (about 40 bits), shown as `ABCD-EFGH`. */
export function newCode (): string {
  let code = ''
  for (let i = 0; i < CODE_LENGTH; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]
  return `${code.slice(0, 4)}-${code.slice(4)}`
}

/** What was typed, as it was issued: case, spaces and dashes do not matter. */
export function normaliseCode (typed: string): string {
  return typed.replace(/[\s-]+/g, '').toUpperCase()
}

/** The single-use token of a message's link: 256 random bits. */
export function newLinkToken (): string {
  return randomBytes(32).toString('base64url')
}

/** Link tokens are looked up by their SHA-256 (they are too long to guess: no slow hash needed). */
export function hashLinkToken (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

/** `base` with `token=…` added to its query. */
export function linkWithToken (base: string, token: string): string {
  const url = new URL(base)
  url.searchParams.set('token', token)
  return url.toString()
}

/** `900` → `15 minutes`, `86400` → `24 hours`. */
export function durationInWords (seconds: number): string {
  const [amount, unit] = seconds % 3600 === 0 ? [seconds / 3600, 'hour'] : seconds % 60 === 0 ? [seconds / 60, 'minute'] : [seconds, 'second']
  return `${amount} ${unit}${amount === 1 ? '' : 's'}`
}
