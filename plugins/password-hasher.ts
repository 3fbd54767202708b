import fp from 'fastify-plugin'
import bcrypt from 'bcrypt'
import type { FastifyInstance } from 'fastify'

export interface PasswordHasher {
  /** bcrypt hash of the password in Unicode NFC, at the configured cost (async: runs on the libuv pool). */
  hash: (password: string) => Promise<string>
  /**
   * Compares a password, in NFC, with a stored hash. `needsRehash` is true
   * when the hash was made with a lower cost than configured, or from the
   * password as typed in another normalisation form (hashes made before
   * passwords were normalised keep working, and are replaced at the next login).
   */
  verify: (password: string, hash: string) => Promise<{ matches: boolean, needsRehash: boolean }>
  /**
   * Pays for one comparison against a throwaway hash, so that a login with an
   * unknown email takes about as long as one with a wrong password.
   */
  verifyAgainstDummy: (password: string) => Promise<false>
}

declare module 'fastify' {
  interface FastifyInstance {
    passwordHasher: PasswordHasher
  }
}

export interface PasswordHasherOptions {
  cost: number
}

export function createPasswordHasher ({ cost }: PasswordHasherOptions): PasswordHasher {
  // Made lazily, once, at the configured cost, so the dummy comparison costs
  // what a real one does without slowing start-up.
  let dummyHash: Promise<string> | undefined

  return {
    hash: (password) => bcrypt.hash(password.normalize('NFC'), cost),
    async verify (password, hash) {
      const normalised = password.normalize('NFC')
      if (await bcrypt.compare(normalised, hash)) return { matches: true, needsRehash: bcrypt.getRounds(hash) < cost }
      // The same characters typed as composed or decomposed are one password.
      const matchesAsTyped = normalised !== password && await bcrypt.compare(password, hash)
      return { matches: matchesAsTyped, needsRehash: matchesAsTyped }
    },
    async verifyAgainstDummy (password) {
      dummyHash ??= bcrypt.hash('not-a-real-password', cost)
      await bcrypt.compare(password.normalize('NFC'), await dummyHash)
      return false
    }
  }
}

async function passwordHasherPlugin (fastify: FastifyInstance, options: PasswordHasherOptions) {
  fastify.decorate('passwordHasher', createPasswordHasher(options))
}

export default fp(passwordHasherPlugin, { name: 'password-hasher', fastify: '5.x' })
