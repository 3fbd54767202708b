import fp from 'fastify-plugin'
import bcrypt from 'bcrypt'
import type { FastifyInstance } from 'fastify'

export interface PasswordHasher {
  /** bcrypt hash at the configured cost (async: runs on the libuv pool). */
  hash: (password: string) => Promise<string>
  /**
   * Compares a password with a stored hash. `needsRehash` is true when the
   * hash was made with a lower cost than configured.
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
    hash: (password) => bcrypt.hash(password, cost),
    async verify (password, hash) {
      const matches = await bcrypt.compare(password, hash)
      return { matches, needsRehash: matches && bcrypt.getRounds(hash) < cost }
    },
    async verifyAgainstDummy (password) {
      dummyHash ??= bcrypt.hash('not-a-real-password', cost)
      await bcrypt.compare(password, await dummyHash)
      return false
    }
  }
}

async function passwordHasherPlugin (fastify: FastifyInstance, options: PasswordHasherOptions) {
  fastify.decorate('passwordHasher', createPasswordHasher(options))
}

export default fp(passwordHasherPlugin, { name: 'password-hasher', fastify: '5.x' })
