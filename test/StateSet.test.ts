/**
 * What `set` accepts since state values are exact: a lone surrogate is refused at `set` with the
 * path where it was written (dlt cannot read a state holding one); the richer values come back as
 * their decoded forms through typed keys.
 */
import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Effect, Either, Option } from "effect"
import * as ResourceState from "../src/context/ResourceState.js"
import * as StateValue from "../src/state/StateValue.js"

const scratch = ResourceState.layerScratch({ sourceName: "src", resourceName: "items" })

describe("ResourceState.set with exact values", () => {
  it.effect("refuses a lone surrogate with a typed error naming the path, and keeps the slot as it was", () =>
    Effect.gen(function* () {
      yield* ResourceState.set("names", ["ok"])
      const error = yield* Effect.flip(ResourceState.set("names", ["ok", "x\ud800y"]))
      expect(error._tag).toBe("NonSerializableStateValue")
      expect(error.message).toContain("sources.src.resources.items.names[1]")
      expect(error.message).toContain("lone surrogate")
      const keyError = yield* Effect.flip(ResourceState.set("by_key", { "\udc00": 1 }))
      expect(keyError.message).toContain("lone surrogate")
      expect(yield* ResourceState.get("names")).toEqual(Option.some(["ok"]))
    }).pipe(Effect.provide(scratch))
  )

  it.effect("accepts bigints within 64 bits, Timestamps, Floats and special Decimals", () =>
    Effect.gen(function* () {
      const at = Either.getOrThrow(StateValue.Timestamp.parse("2024-02-29T12:34:56.789123+05:30"))
      yield* ResourceState.set("v", {
        id: 9223372036854775807n,
        at,
        ratio: new StateValue.Float(1),
        nan: Either.getOrThrow(StateValue.makeDecimal("NaN")),
        amount: BigDecimal.unsafeFromString("1.23E+5")
      })
      const error = yield* Effect.flip(ResourceState.set("w", 2n ** 64n))
      expect(error.message).toContain("sources.src.resources.items.w")
    }).pipe(Effect.provide(scratch))
  )
})

describe("typed keys over exact values", () => {
  it.effect("TimestampSchema, UuidSchema, BigIntSchema, NumberSchema and DateSchema decode what dlt stores", () =>
    Effect.gen(function* () {
      const seen = ResourceState.key("seen", StateValue.TimestampSchema, () =>
        StateValue.Timestamp.fromDate(new Date(0))
      )
      const run = ResourceState.key("run", StateValue.UuidSchema, () => new StateValue.Uuid({ value: "" }))
      const big = ResourceState.key("big", StateValue.BigIntSchema, () => 0n)
      const ratio = ResourceState.key("ratio", StateValue.NumberSchema, () => 0)
      const day = ResourceState.key("day", StateValue.DateSchema, () => new Date(0))
      // as a restored dlt state holds them
      const restored = Either.getOrThrow(
        StateValue.parse(
          '{"seen":"\uF0272024-01-01T10:20:30.123456+00:00","run":"6f1c2a9e-9d1b-4c55-9a3e-2b8f0e4c7d11",' +
            '"big":9223372036854775807,"ratio":1.0,"day":"\uF0272024-01-01T00:00:00.5+00:00","fine":"\uF0272024-01-01T00:00:00.123456+00:00"}'
        )
      ) as { readonly [key: string]: StateValue.StateValue }
      for (const [k, v] of Object.entries(restored)) yield* ResourceState.set(k, v)
      expect(String(yield* seen.get)).toBe("2024-01-01T10:20:30.123456+00:00")
      expect((yield* run.get).value).toBe("6f1c2a9e-9d1b-4c55-9a3e-2b8f0e4c7d11")
      expect(yield* big.get).toBe(9223372036854775807n)
      expect(yield* ratio.get).toBe(1)
      expect(yield* day.get).toEqual(new Date("2024-01-01T00:00:00.500Z"))
      const fine = ResourceState.key("fine", StateValue.DateSchema, () => new Date(0))
      const failure = yield* Effect.flip(fine.get)
      expect(failure.message).toContain("TimestampSchema")
      // a Date set in this run reads back through TimestampSchema too
      yield* ResourceState.set("seen", new Date("2024-06-01T00:00:00Z"))
      expect(String(yield* seen.get)).toBe("2024-06-01T00:00:00+00:00")
      yield* big.set(2n ** 60n)
      expect(yield* big.get).toBe(2n ** 60n)
    }).pipe(Effect.provide(scratch))
  )
})
