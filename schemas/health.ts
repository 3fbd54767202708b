import { Type } from '@sinclair/typebox'

export const HealthOkSchema = Type.Object({ status: Type.Literal('ok') })

export const HealthUnavailableSchema = Type.Object({
  status: Type.Literal('unavailable'),
  reason: Type.String({ description: 'Which dependency is not ready, e.g. `database`.' })
})
