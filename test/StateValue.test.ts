import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Either, FastCheck as fc, Schema } from "effect"
import {
  CalendarDate,
  decode,
  encode,
  equals,
  InvalidStateValue,
  InvalidTypedJson,
  isJson,
  type Json,
  makeCalendarDate,
  makeTimeOfDay,
  makeUuid,
  NonSerializableStateValue,
  parse,
  type StateValue,
  StateValueFromJson,
  stringify,
  TimeOfDay,
  Uuid
} from "../src/state/StateValue.js"

const isMarked = (s: string): boolean => {
  const c = s.charCodeAt(0)
  return c >= 0xf026 && c <= 0xf02d
}

const plainString = fc
  .oneof(fc.string(), fc.fullUnicodeString(), fc.constantFrom("\uF026x", "\uF02D"))
  .map((s) => (isMarked(s) ? `_${s}` : s))

const pad = (n: number, width: number): string => String(n).padStart(width, "0")

const dateArb = fc.date({
  min: new Date("0001-01-01T00:00:00.000Z"),
  max: new Date("9999-12-31T23:59:59.999Z"),
  noInvalidDate: true
})

const bigDecimalArb = fc
  .tuple(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.integer({ min: -6, max: 20 }))
  .map(([value, scale]) => BigDecimal.make(value, scale))

const uuidArb = fc.uuid().map((text) => Either.getOrThrow(makeUuid(text.toUpperCase())))

const calendarDateArb = dateArb.map((d) => new CalendarDate({ iso: d.toISOString().slice(0, 10) }))

const timeOfDayArb = fc
  .tuple(
    fc.integer({ min: 0, max: 23 }),
    fc.integer({ min: 0, max: 59 }),
    fc.integer({ min: 0, max: 59 }),
    fc.option(fc.integer({ min: 0, max: 999_999 })),
    fc.constantFrom("", "Z", "+02:00", "-05:30")
  )
  .map(
    ([h, m, s, micros, offset]) =>
      new TimeOfDay({
        iso: `${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}${micros === null ? "" : `.${pad(micros, 6)}`}${offset}`
      })
  )

const leafArb: fc.Arbitrary<StateValue> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  plainString,
  dateArb,
  bigDecimalArb,
  fc.uint8Array({ maxLength: 40 }),
  uuidArb,
  calendarDateArb,
  timeOfDayArb
)

const { value: stateValueArb } = fc.letrec<{ value: StateValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leafArb,
    fc.array(tie("value"), { maxLength: 5 }),
    fc.dictionary(fc.oneof(fc.string(), fc.constantFrom("__proto__", "10", "9", "a b")), tie("value"), {
      maxKeys: 5
    })
  )
}))

const errorOf = (value: unknown, path?: string): NonSerializableStateValue => {
  const result = encode(value, path)
  if (Either.isRight(result)) throw new Error(`expected a failure for ${String(value)}`)
  return result.left
}

describe("StateValue round trips", () => {
  it.prop("decode(encode(x)) equals x", [stateValueArb], ([value]) => {
    const json = Either.getOrThrow(encode(value))
    expect(isJson(json)).toBe(true)
    expect(equals(decode(json), value)).toBe(true)
  })

  it.prop("parse(stringify(x)) equals x, compact, sorted and pretty", [stateValueArb], ([value]) => {
    for (const options of [{}, { sortKeys: true }, { sortKeys: true, space: 2 }, { space: 2 }]) {
      const text = Either.getOrThrow(stringify(value, options))
      expect(equals(Either.getOrThrow(parse(text)), value)).toBe(true)
    }
  })

  it.prop("encode output survives JSON text unchanged", [stateValueArb], ([value]) => {
    const json = Either.getOrThrow(encode(value))
    expect(JSON.parse(JSON.stringify(json))).toEqual(json)
  })

  it.prop("sorted pretty output has JSON.stringify's layout", [fc.jsonValue()], ([json]) => {
    const value = json as Json
    const sorted = Either.getOrThrow(stringify(value, { sortKeys: true }))
    const pretty = Either.getOrThrow(stringify(value, { sortKeys: true, space: 2 }))
    expect(JSON.parse(pretty)).toEqual(JSON.parse(sorted))
    // with no integer-like keys JSON.parse keeps the sorted order, so JSON.stringify can re-indent it
    if (!/"\d+":/.test(sorted)) expect(JSON.stringify(JSON.parse(sorted), null, 2)).toBe(pretty)
  })

  it("is compact by default and sorts keys by code point when asked", () => {
    const value = { b: 1, a: { d: [1, { z: 1, y: 2 }], c: null }, "10": 1, "9": 2, "\u{1F600}": 0, "\uFFFF": 0 }
    expect(Either.getOrThrow(stringify(value, { sortKeys: true }))).toBe(
      '{"10":1,"9":2,"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1,"\uFFFF":0,"\u{1F600}":0}'
    )
    expect(Either.getOrThrow(stringify({ a: [1, 2] }))).toBe('{"a":[1,2]}')
    expect(Either.getOrThrow(stringify({ a: [1, 2], b: {} }, { space: 2 }))).toBe(
      '{\n  "a": [\n    1,\n    2\n  ],\n  "b": {}\n}'
    )
  })

  it("keeps a __proto__ key as data", () => {
    const value = parse('{"__proto__":{"polluted":true}}')
    const decoded = Either.getOrThrow(value) as Record<string, StateValue>
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype)
    expect(Object.keys(decoded)).toEqual(["__proto__"])
    expect(Either.getOrThrow(stringify(decoded))).toBe('{"__proto__":{"polluted":true}}')
  })
})

describe("StateValue encoding", () => {
  it("writes the dlt marks", () => {
    const uuid = Either.getOrThrow(makeUuid("6F9619FF-8B86-D011-B42D-00C04FC964FF"))
    expect(
      Either.getOrThrow(
        encode({
          decimal: BigDecimal.unsafeFromString("1.50"),
          big: BigDecimal.make(12n, -3),
          small: BigDecimal.make(5n, 4),
          negative: BigDecimal.make(-5n, 1),
          at: new Date("2024-01-01T10:00:00.123Z"),
          day: new CalendarDate({ iso: "2024-01-31" }),
          time: new TimeOfDay({ iso: "12:30:00.5" }),
          id: uuid,
          bytes: new Uint8Array([0, 1, 254, 255]),
          buffer: Buffer.from("hi"),
          skipped: undefined
        })
      )
    ).toEqual({
      decimal: "\uF0261.50",
      big: "\uF02612E+3",
      small: "\uF0260.0005",
      negative: "\uF026-0.5",
      at: "\uF0272024-01-01T10:00:00.123Z",
      day: "\uF0282024-01-31",
      time: "\uF02D12:30:00.5",
      id: "\uF0296f9619ff-8b86-d011-b42d-00c04fc964ff",
      bytes: "\uF02BAAH+/w==",
      buffer: "\uF02BaGk="
    })
  })

  it("accepts a shared reference that is not a cycle, and null-prototype objects", () => {
    const shared = { a: 1 }
    const bare = Object.assign(Object.create(null) as object, { x: 1 })
    expect(Either.getOrThrow(encode({ p: shared, q: [shared, shared], bare }))).toEqual({
      p: { a: 1 },
      q: [{ a: 1 }, { a: 1 }],
      bare: { x: 1 }
    })
  })

  it("names the path of the offending value", () => {
    const state = { sources: { chess: { resources: { players_games: { archives: ["a", "b", "c", 1n] } } } } }
    const error = errorOf(state)
    expect(error).toBeInstanceOf(NonSerializableStateValue)
    expect(error.path).toBe("sources.chess.resources.players_games.archives[3]")
    expect(error.reason).toContain("BigDecimal")
    expect(error.message).toContain("sources.chess.resources.players_games.archives[3]")
    expect(errorOf({ archives: [1n] }, "sources.chess").path).toBe("sources.chess.archives[0]")
    expect(errorOf({ "weird key": { ok: [{ "a.b": Symbol("s") }] } }).path).toBe('["weird key"].ok[0]["a.b"]')
    expect(errorOf({ $x: { _y1: NaN } }, "p").path).toBe("p.$x._y1")
    expect(errorOf([[1, [2, () => 3]]]).path).toBe("[0][1][1]")
    expect(errorOf(1n).path).toBe("")
    expect(errorOf(1n).message).toContain("Cannot store the state value")
  })

  it.each([
    ["a function", () => 1, "function"],
    ["a symbol", Symbol("x"), "symbol"],
    ["a bigint", 10n, "use BigDecimal"],
    ["NaN", NaN, "not finite"],
    ["Infinity", Infinity, "not finite"],
    ["-Infinity", -Infinity, "not finite"],
    ["a Map", new Map([[1, 2]]), "Object.fromEntries"],
    ["a Set", new Set([1]), "array"],
    ["a RegExp", /x/, "RegExp instance"],
    ["a class instance", new (class Point {})(), "Point instance"],
    ["an Int8Array", new Int8Array(2), "Uint8Array"],
    ["an invalid Date", new Date("nope"), "invalid"],
    ["a Date before year 1", new Date("-000010-01-01T00:00:00Z"), "0001..9999"],
    ["a Date after year 9999", new Date("+010000-01-01T00:00:00Z"), "0001..9999"],
    ["a Decimal-marked string", "\uF0261.5", "U+F026"],
    ["a time-marked string", "\uF02Dx", "U+F02D"],
    ["a wei-marked string", "\uF02C1", "U+F02C"],
    ["a bad Uuid", new Uuid({ value: "nope" }), "makeUuid"],
    ["a bad CalendarDate", new CalendarDate({ iso: "2023-02-29" }), "makeCalendarDate"],
    ["a bad TimeOfDay", new TimeOfDay({ iso: "25:00" }), "makeTimeOfDay"]
  ] as const)("rejects %s", (_name, value, reason) => {
    const error = errorOf({ slot: { value } }, "sources.s")
    expect(error.path).toBe("sources.s.slot.value")
    expect(error.reason).toContain(reason)
  })

  it("rejects undefined inside an array or at the top, and cycles", () => {
    expect(errorOf(undefined, "sources.s").path).toBe("sources.s")
    expect(errorOf(undefined).reason).toContain("undefined")
    expect(errorOf({ list: [1, undefined] }).path).toBe("list[1]")
    const sparse: Array<number> = [1]
    sparse[2] = 3
    expect(errorOf({ list: sparse }).path).toBe("list[1]")
    const cyclic: Record<string, unknown> = { a: { b: [] as Array<unknown> } }
    ;((cyclic.a as Record<string, unknown>).b as Array<unknown>).push(cyclic)
    const error = errorOf({ root: cyclic })
    expect(error.path).toBe("root.a.b[0]")
    expect(error.reason).toContain("circular")
    const selfArray: Array<unknown> = []
    selfArray.push(selfArray)
    expect(errorOf(selfArray).path).toBe("[0]")
  })

  it("turns a throwing getter into a typed error", () => {
    const value = {
      get boom(): number {
        throw new Error("kaboom")
      }
    }
    const error = errorOf({ x: value })
    expect(error.path).toBe("x.boom")
    expect(error.reason).toContain("kaboom")
  })

  it("handles a large state fast", () => {
    const archives = Array.from({ length: 100_000 }, (_, i) => `https://example.com/archive/${i}`)
    const value = { sources: { s: { resources: { r: { archives, at: new Date(0) } } } } }
    const started = performance.now()
    const text = Either.getOrThrow(stringify(value, { sortKeys: true }))
    const back = Either.getOrThrow(parse(text))
    expect(performance.now() - started).toBeLessThan(2000)
    expect(equals(back, value)).toBe(true)
  })
})

describe("StateValue decoding of dlt-written values", () => {
  it("reads datetimes as pendulum and Python write them", () => {
    const cases: Array<readonly [string, string]> = [
      ["2024-01-01T00:00:00+00:00", "2024-01-01T00:00:00.000Z"],
      ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000Z"],
      ["2024-01-01T10:00:00.123456+02:00", "2024-01-01T08:00:00.123Z"],
      ["2024-01-01T10:00:00.5-05:30", "2024-01-01T15:30:00.500Z"],
      ["2024-01-01 10:00:00", "2024-01-01T10:00:00.000Z"],
      ["2024-01-01T10:00", "2024-01-01T10:00:00.000Z"],
      ["2024-01-01", "2024-01-01T00:00:00.000Z"],
      ["0050-06-01T00:00:00+00:00", "0050-06-01T00:00:00.000Z"]
    ]
    for (const [text, iso] of cases) {
      const value = decode(`\uF027${text}`)
      expect(value).toBeInstanceOf(Date)
      expect((value as Date).toISOString()).toBe(iso)
    }
  })

  it("reads decimals keeping their scale, and wei", () => {
    const value = decode("\uF0261.50") as BigDecimal.BigDecimal
    expect(BigDecimal.isBigDecimal(value)).toBe(true)
    expect(BigDecimal.equals(value, BigDecimal.unsafeFromString("1.5"))).toBe(true)
    expect(Either.getOrThrow(encode(value))).toBe("\uF0261.50")
    expect(Either.getOrThrow(encode(decode("\uF0261E+5")))).toBe("\uF0261E+5")
    expect(Either.getOrThrow(encode(decode("\uF026-0.000")))).toBe("\uF0260.000")
    const wei = decode("\uF02C1000000000000000000000")
    expect(BigDecimal.isBigDecimal(wei)).toBe(true)
    expect(Either.getOrThrow(encode(wei))).toBe("\uF0261000000000000000000000")
  })

  it("reads bytes as hex and base64", () => {
    expect(decode("\uF02A0xdeadbeef")).toEqual(new Uint8Array([0xde, 0xad, 0xbe, 0xef]))
    expect(decode("\uF02ADEADBEEF")).toEqual(new Uint8Array([0xde, 0xad, 0xbe, 0xef]))
    expect(decode("\uF02BAAH+/w==")).toEqual(new Uint8Array([0, 1, 254, 255]))
    expect(decode("\uF02B")).toEqual(new Uint8Array([]))
  })

  it("reads UUIDs, dates and times", () => {
    expect(decode("\uF029{6F9619FF-8B86-D011-B42D-00C04FC964FF}")).toEqual(
      new Uuid({ value: "6f9619ff-8b86-d011-b42d-00c04fc964ff" })
    )
    expect(decode("\uF0282024-01-31")).toEqual(new CalendarDate({ iso: "2024-01-31" }))
    expect(decode("\uF02D12:30:00.500000")).toEqual(new TimeOfDay({ iso: "12:30:00.500000" }))
  })

  it("keeps a marked string that does not decode as the string", () => {
    for (const text of [
      "\uF026NaN",
      "\uF026",
      "\uF0261.2.3",
      "\uF027garbage",
      "\uF0272024-02-30T00:00:00",
      "\uF0272024-01-01T24:00:00",
      "\uF0272024-02-30T00:00:00.000Z",
      "\uF0272024-01-01T24:00:00.000Z",
      "\uF0272024-01-01T10:60:00.000Z",
      "\uF0270000-01-01T00:00:00.000Z",
      "\uF0282024-02-30",
      "\uF029not-a-uuid",
      "\uF02Axyz",
      "\uF02Aabc",
      "\uF02Bnot base64!",
      "\uF02BAAA",
      "\uF02D25:00"
    ]) {
      expect(decode(text)).toBe(text)
    }
  })

  it("decodes nested structures", () => {
    expect(decode({ a: ["\uF0261", { b: "\uF0282020-01-01" }], c: 1, d: null, e: true })).toEqual({
      a: [BigDecimal.unsafeFromString("1"), { b: new CalendarDate({ iso: "2020-01-01" }) }],
      c: 1,
      d: null,
      e: true
    })
  })
})

describe("StateValue text, constructors, equality, Schema", () => {
  it("parse fails with InvalidTypedJson on bad text", () => {
    const result = parse('{"a":')
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      expect(result.left).toBeInstanceOf(InvalidTypedJson)
      expect(result.left.message).toContain("not valid JSON")
    }
  })

  it("constructors validate", () => {
    expect(Either.getOrThrow(makeUuid("urn:uuid:12345678123456781234567812345678")).value).toBe(
      "12345678-1234-5678-1234-567812345678"
    )
    expect(Either.getOrThrow(makeCalendarDate("2024-02-29")).iso).toBe("2024-02-29")
    expect(Either.getOrThrow(makeTimeOfDay("12:30:00.5")).iso).toBe("12:30:00.5")
    const bad: ReadonlyArray<Either.Either<unknown, InvalidStateValue>> = [
      makeUuid("xyz"),
      makeCalendarDate("2023-02-29"),
      makeTimeOfDay("12:60")
    ]
    for (const result of bad) {
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) expect(result.left).toBeInstanceOf(InvalidStateValue)
    }
  })

  it("equals compares by value", () => {
    expect(equals(BigDecimal.unsafeFromString("1.50"), BigDecimal.unsafeFromString("1.5"))).toBe(true)
    expect(equals(new Date(5), new Date(5))).toBe(true)
    expect(equals(new Date(5), new Date(6))).toBe(false)
    expect(equals(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true)
    expect(equals(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false)
    expect(equals({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toBe(true)
    expect(equals({ a: 1 }, { a: 1, b: 2 })).toBe(false)
    expect(equals({ a: 1, b: 2 }, { a: 1, c: 2 })).toBe(false)
    expect(equals([], {})).toBe(false)
    expect(equals("1", 1)).toBe(false)
    expect(equals(new Uuid({ value: "A" }), new Uuid({ value: "A" }))).toBe(true)
    expect(equals(new CalendarDate({ iso: "2020-01-01" }), new TimeOfDay({ iso: "2020-01-01" }))).toBe(false)
  })

  it("StateValueFromJson works inside other Schemas", () => {
    const Slot = Schema.Record({ key: Schema.String, value: StateValueFromJson })
    const decoded = Schema.decodeUnknownSync(Slot)({ at: "\uF0272024-01-01T00:00:00Z", n: [1] })
    expect(decoded).toEqual({ at: new Date("2024-01-01T00:00:00Z"), n: [1] })
    expect(Schema.encodeSync(Slot)(decoded)).toEqual({ at: "\uF0272024-01-01T00:00:00.000Z", n: [1] })
    expect(() => Schema.decodeUnknownSync(Slot)({ at: new Date() })).toThrow(/Json/)
    expect(() => Schema.encodeSync(Slot)({ bad: { deep: [1n as unknown as StateValue] } })).toThrow(/deep\[0\]/)
  })
})
