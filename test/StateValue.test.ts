import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Either, FastCheck as fc, Schema } from "effect"
import {
  CalendarDate,
  decode,
  encode,
  equals,
  Float,
  formatJson,
  HexBytes,
  InvalidStateValue,
  InvalidTypedJson,
  isJson,
  type Json,
  makeCalendarDate,
  makeDecimal,
  makeTimeOfDay,
  makeUuid,
  NonSerializableStateValue,
  parse,
  parseJson,
  SpecialDecimal,
  type StateValue,
  StateValueFromJson,
  record,
  stringify,
  stringifyBoth,
  stringifySorted,
  TimeOfDay,
  Timestamp,
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

const timestampArb = fc
  .tuple(
    // the wall time, in years 0001..9999
    fc.integer({ min: -62135596800, max: 253402300799 }),
    fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 999_999 })),
    fc.oneof(
      fc.constant(null),
      fc.constant(0),
      fc.integer({ min: -86_399, max: 86_399 }),
      fc.integer({ min: -18, max: 18 }).map((h) => h * 1800)
    )
  )
  .map(([wall, us, offset]) => new Timestamp(wall - (offset ?? 0), us, offset))

const specialDecimalArb = fc
  .constantFrom("NaN", "-NaN", "sNaN", "NaN12", "Infinity", "-Infinity", "-0", "-0.00", "-0E+3", "-0E-9")
  .map((text) => Either.getOrThrow(makeDecimal(text)))

const int64Arb = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n })

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
  fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }).map((n) => new Float(n)),
  int64Arb,
  plainString,
  fc.constantFrom("\uF026abc", "\uF027", "\uF02Ex", "\uF0272024-02-30T00:00:00", "\uF02C1000"),
  dateArb,
  timestampArb,
  specialDecimalArb,
  fc.uint8Array({ maxLength: 10 }).map((bytes) => new HexBytes(bytes)),
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

// the decoded form of a value: what reading it back gives (Date → Timestamp, Uuid → string, a safe
// bigint → number, a Float of a fraction → number, TimeOfDay in Python's spelling)
const kindOf = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "array"
  if (typeof value !== "object") return typeof value
  if (value instanceof Date || value instanceof Timestamp) return "Timestamp"
  if (value instanceof HexBytes) return "HexBytes"
  if (value instanceof Uint8Array) return "bytes"
  if (value instanceof Uuid) return "string"
  if (value instanceof Float) return "Float"
  return BigDecimal.isBigDecimal(value) ? "BigDecimal" : ((value as { _tag?: string })._tag ?? "object")
}

// the same kinds of values at the same places (equals compares the stored text only)
const sameKinds = (a: unknown, b: unknown): boolean => {
  const ka = typeof a === "bigint" && a >= -(2n ** 53n) + 1n && a <= 2n ** 53n - 1n ? "number" : kindOf(a)
  const kb = typeof b === "bigint" && b >= -(2n ** 53n) + 1n && b <= 2n ** 53n - 1n ? "number" : kindOf(b)
  if (ka !== kb)
    return ka === "Float" || kb === "Float"
      ? ["number", "Float"].includes(ka) && ["number", "Float"].includes(kb)
      : false
  if (Array.isArray(a)) return (a as Array<unknown>).every((item, i) => sameKinds(item, (b as Array<unknown>)[i]))
  if (ka === "object") {
    const ra = a as Record<string, unknown>
    const rb = b as Record<string, unknown>
    return Object.keys(ra).every((key) => ra[key] === undefined || sameKinds(ra[key], rb[key]))
  }
  return true
}

describe("StateValue round trips", () => {
  it.prop(
    "decode(encode(x)) equals x, with the same kinds of values",
    [stateValueArb],
    ([value]) => {
      const json = Either.getOrThrow(encode(value))
      expect(isJson(json)).toBe(true)
      const back = decode(json)
      expect(equals(back, value)).toBe(true)
      expect(sameKinds(back, value)).toBe(true)
    },
    { fastCheck: { numRuns: 1000 } }
  )

  it.prop(
    "parse(stringify(x)) equals x, compact, sorted and pretty",
    [stateValueArb],
    ([value]) => {
      for (const options of [{}, { sortKeys: true }, { sortKeys: true, space: 2 }, { space: 2 }]) {
        const text = Either.getOrThrow(stringify(value, options))
        const back = Either.getOrThrow(parse(text))
        expect(equals(back, value)).toBe(true)
        expect(sameKinds(back, value)).toBe(true)
      }
    },
    { fastCheck: { numRuns: 1000 } }
  )

  it.prop("encode output survives its JSON text unchanged", [stateValueArb], ([value]) => {
    const json = Either.getOrThrow(encode(value))
    const text = formatJson(json)
    expect(formatJson(Either.getOrThrow(parseJson(text)))).toBe(text)
    expect(Either.getOrThrow(stringify(value))).toBe(text)
  })

  it.prop(
    "stringifyBoth writes what stringify and stringifySorted write, and fails as stringify does",
    [
      fc.letrec<{ value: unknown }>((tie) => ({
        value: fc.oneof(
          { depthSize: "small", withCrossShrink: true },
          stateValueArb,
          fc.constantFrom(
            undefined,
            Number.NaN,
            -0,
            2 ** 60,
            2n ** 70n,
            new Map(),
            "x\ud800",
            "\uF0272024-01-01T00:00:00"
          ),
          fc.array(tie("value"), { maxLength: 5 }),
          fc
            .array(
              fc.tuple(
                fc.oneof(fc.string(), fc.constantFrom("10", "9", 'a"b', "\u0001", "\uffff", "\ud83d\ude00")),
                tie("value")
              ),
              {
                maxLength: 5
              }
            )
            .map((entries) => record(entries))
        )
      })).value
    ],
    ([value]) => {
      const both = stringifyBoth(value, "v")
      const doc = stringify(value, { path: "v" })
      if (Either.isLeft(doc)) {
        expect(Either.isLeft(both) && both.left.path === doc.left.path && both.left.reason === doc.left.reason).toBe(
          true
        )
        return
      }
      expect(Either.getOrThrow(both)).toEqual({ doc: doc.right, sorted: Either.getOrThrow(stringifySorted(value)) })
    }
  )

  it.prop("sorted pretty output has JSON.stringify's layout", [fc.jsonValue()], ([json]) => {
    const value = json as Json
    const sorted = Either.getOrThrow(stringify(value, { sortKeys: true }))
    const pretty = Either.getOrThrow(stringify(value, { sortKeys: true, space: 2 }))
    expect(formatJson(Either.getOrThrow(parseJson(pretty)), { sortKeys: true })).toBe(sorted)
    // where JSON.stringify writes the numbers as dlt does (ints) and keeps the sorted key order
    // (no integer-like keys), it re-indents to the same text
    const natural = JSON.stringify(value)
    if (!/"\d+":/.test(sorted) && Either.getOrThrow(stringify(value)) === natural) {
      expect(JSON.stringify(JSON.parse(sorted), null, 2)).toBe(pretty)
    }
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
      big: "\uF0261.2E+4",
      small: "\uF0260.0005",
      negative: "\uF026-0.5",
      at: "\uF0272024-01-01T10:00:00.123000+00:00",
      day: "\uF0282024-01-31",
      time: "\uF02D12:30:00.500000",
      id: "6f9619ff-8b86-d011-b42d-00c04fc964ff",
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
    const state = { sources: { chess: { resources: { players_games: { archives: ["a", "b", "c", "x\ud800y"] } } } } }
    const error = errorOf(state)
    expect(error).toBeInstanceOf(NonSerializableStateValue)
    expect(error.path).toBe("sources.chess.resources.players_games.archives[3]")
    expect(error.reason).toContain("lone surrogate")
    expect(error.message).toContain("sources.chess.resources.players_games.archives[3]")
    expect(errorOf({ archives: [2n ** 64n] }, "sources.chess").path).toBe("sources.chess.archives[0]")
    expect(errorOf({ ok: { "k\udc00": 1 } }, "p").path).toBe('p.ok["k\\udc00"]')
    expect(errorOf({ "weird key": { ok: [{ "a.b": Symbol("s") }] } }).path).toBe('["weird key"].ok[0]["a.b"]')
    expect(errorOf({ $x: { _y1: NaN } }, "p").path).toBe("p.$x._y1")
    expect(errorOf([[1, [2, () => 3]]]).path).toBe("[0][1][1]")
    expect(errorOf(2n ** 64n).path).toBe("")
    expect(errorOf(2n ** 64n).message).toContain("Cannot store the state value")
  })

  it.each([
    ["a function", () => 1, "function"],
    ["a symbol", Symbol("x"), "symbol"],
    ["an integer past 64 bits", 2n ** 64n, "beyond 64 bits"],
    ["an integer below int64", -(2n ** 63n) - 1n, "beyond 64 bits"],
    ["a lone high surrogate", "x\ud800y", "lone surrogate"],
    ["a lone low surrogate", "\udc00", "lone surrogate"],
    ["a non-finite Float", new Float(Number.NaN), "finite"],
    ["an invalid Timestamp", new Timestamp(0, 1_000_000, 0), "microsecond"],
    ["a Timestamp past year 9999", new Timestamp(253402300800, 0, null), "0001..9999"],
    ["a bad SpecialDecimal", new SpecialDecimal({ text: "1.5" }), "makeDecimal"],
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
    ["a time-marked string that reads as a time", "\uF02D12:00:00", "U+F02D"],
    ["a bytes-marked string that reads as bytes", "\uF02B", "U+F02B"],
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

  it("round-trips a large state (100k list entries)", () => {
    const archives = Array.from({ length: 100_000 }, (_, i) => `https://example.com/archive/${i}`)
    const value = { sources: { s: { resources: { r: { archives, at: new Date(0) } } } } }
    const text = Either.getOrThrow(stringify(value, { sortKeys: true }))
    const back = Either.getOrThrow(parse(text))
    expect(equals(back, value)).toBe(true)
  })
})

describe("StateValue decoding of dlt-written values", () => {
  it("reads datetimes with microseconds, offset and naive-ness, as Python's fromisoformat", () => {
    const cases: Array<readonly [string, string]> = [
      ["2024-01-01T00:00:00+00:00", "2024-01-01T00:00:00+00:00"],
      ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00+00:00"],
      ["2024-01-01T10:00:00.123456+02:00", "2024-01-01T10:00:00.123456+02:00"],
      ["2024-01-01T10:00:00.5-05:30", "2024-01-01T10:00:00.500000-05:30"],
      ["2024-01-01 10:00:00", "2024-01-01T10:00:00"],
      ["2024-01-01T10:00", "2024-01-01T10:00:00"],
      ["2024-01-01", "2024-01-01T00:00:00"],
      ["2024-01-01T10:00:00+0530", "2024-01-01T10:00:00+05:30"],
      ["2024-01-01T10:00:00+05:30:15", "2024-01-01T10:00:00+05:30:15"],
      ["0050-06-01T00:00:00+00:00", "0050-06-01T00:00:00+00:00"],
      ["0001-01-01T00:00:00+05:00", "0001-01-01T00:00:00+05:00"]
    ]
    for (const [text, iso] of cases) {
      const value = decode(`\uF027${text}`)
      expect(value).toBeInstanceOf(Timestamp)
      expect(String(value)).toBe(iso)
    }
    const t = decode("\uF0272024-02-29T12:34:56.789123+01:00") as Timestamp
    expect([t.microsecond, t.offsetSeconds, t.isNaive]).toEqual([789123, 3600, false])
    expect(t.toDate().toISOString()).toBe("2024-02-29T11:34:56.789Z")
    expect((decode("\uF0272024-05-06T07:08:09") as Timestamp).isNaive).toBe(true)
  })

  it("reads decimals keeping their spelling; NaN, infinities and negative zeros as SpecialDecimal", () => {
    const value = decode("\uF0261.50") as BigDecimal.BigDecimal
    expect(BigDecimal.isBigDecimal(value)).toBe(true)
    expect(BigDecimal.equals(value, BigDecimal.unsafeFromString("1.5"))).toBe(true)
    for (const text of ["1.50", "1E+5", "1.23E+5", "1E-7", "0.000001", "0E+3", "0.00", "123", "-98.7600"]) {
      expect(Either.getOrThrow(encode(decode(`\uF026${text}`)))).toBe(`\uF026${text}`)
    }
    // what Python's str(Decimal) makes of other spellings
    expect(Either.getOrThrow(encode(decode("\uF0260.0000001")))).toBe("\uF0261E-7")
    expect(Either.getOrThrow(encode(decode("\uF026+1.5e3")))).toBe("\uF0261.5E+3")
    for (const text of ["NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "-0", "-0.000", "-0E+2"]) {
      const special = decode(`\uF026${text}`)
      expect(special).toEqual(new SpecialDecimal({ text }))
      expect(Either.getOrThrow(encode(special))).toBe(`\uF026${text}`)
    }
    // dlt's Wei is not read: the string is carried as it is
    expect(decode("\uF02C1000000000000000000000")).toBe("\uF02C1000000000000000000000")
  })

  it("reads bytes as base64 and dlt's HexBytes, keeping the spelling", () => {
    const hex = decode("\uF02A0xdeadbeef")
    expect(hex).toBeInstanceOf(HexBytes)
    expect([...(hex as Uint8Array)]).toEqual([0xde, 0xad, 0xbe, 0xef])
    expect(Either.getOrThrow(encode(hex))).toBe("\uF02A0xdeadbeef")
    expect(decode("\uF02BAAH+/w==")).toEqual(new Uint8Array([0, 1, 254, 255]))
    // dlt writes b"" as the bare mark (and reads it back as that string); we read empty bytes
    expect(decode("\uF02B")).toEqual(new Uint8Array([]))
    expect(Either.getOrThrow(encode(new Uint8Array([])))).toBe("\uF02B")
  })

  it("reads UUIDs, dates and times", () => {
    expect(decode("\uF029{6F9619FF-8B86-D011-B42D-00C04FC964FF}")).toEqual(
      new Uuid({ value: "6f9619ff-8b86-d011-b42d-00c04fc964ff" })
    )
    expect(decode("\uF0282024-01-31")).toEqual(new CalendarDate({ iso: "2024-01-31" }))
    expect(decode("\uF02D12:30:00.500000")).toEqual(new TimeOfDay({ iso: "12:30:00.500000" }))
    expect(decode("\uF02D12:30:00.5")).toEqual(new TimeOfDay({ iso: "12:30:00.500000" }))
  })

  it("keeps a marked string that does not decode as the string, and writes it back unchanged", () => {
    for (const text of [
      "\uF026",
      "\uF026abc",
      "\uF0261.2.3",
      "\uF027",
      "\uF027garbage",
      "\uF0272024-02-30T00:00:00",
      "\uF0272024-01-01T24:00:00",
      "\uF0272024-01-01T10:60:00+00:00",
      "\uF0272024-01-01T10:00:00.1234567+00:00",
      "\uF0270000-01-01T00:00:00+00:00",
      "\uF0282024-02-30",
      "\uF029not-a-uuid",
      "\uF02Axyz",
      "\uF02ADEADBEEF",
      "\uF02A0xabc",
      "\uF02Bnot base64!",
      "\uF02BAAA",
      "\uF02BAB==",
      "\uF02C1",
      "\uF02D25:00",
      "\uF02Ex"
    ]) {
      expect(decode(text)).toBe(text)
      expect(Either.getOrThrow(encode(text))).toBe(text)
    }
  })

  it("reads numbers as Python does: ints of any size, floats that keep their spelling", () => {
    const value = Either.getOrThrow(
      parse(
        '{"a":9223372036854775807,"b":-9223372036854775808,"c":18446744073709551615,"d":1.0,"e":-0.0,"f":1e16,"g":1000000000000000.0,"h":0.1,"i":-0}'
      )
    ) as Record<string, unknown>
    expect(value.a).toBe(9223372036854775807n)
    expect(value.b).toBe(-9223372036854775808n)
    expect(value.c).toBe(18446744073709551615n)
    expect(value.d).toEqual(new Float(1))
    expect(Object.is(value.e, -0)).toBe(true)
    expect(value.f).toBe(1e16)
    expect(value.g).toEqual(new Float(1e15))
    expect(value.h).toBe(0.1)
    expect(value.i).toBe(0)
    expect(Either.getOrThrow(stringify(value))).toBe(
      '{"a":9223372036854775807,"b":-9223372036854775808,"c":18446744073709551615,"d":1.0,"e":-0.0,"f":1e16,"g":1000000000000000.0,"h":0.1,"i":0}'
    )
  })

  it("keeps the insertion order of integer-like keys", () => {
    const text = '{"10":"a","2":"b","-1":"c","0":"d"}'
    const value = Either.getOrThrow(parse(text))
    expect(Object.keys(value as object)).toEqual(["0", "2", "10", "-1"])
    expect(Either.getOrThrow(stringify(value))).toBe(text)
    expect(Either.getOrThrow(stringify(value, { sortKeys: true }))).toBe('{"-1":"c","0":"d","10":"a","2":"b"}')
    expect(formatJson(Either.getOrThrow(encode(value)), { space: 2 })).toBe(
      '{\n  "10": "a",\n  "2": "b",\n  "-1": "c",\n  "0": "d"\n}'
    )
  })

  it("decodes nested structures", () => {
    const value = decode({ a: ["\uF0261", { b: "\uF0282020-01-01" }], c: 1, d: null, e: true })
    const expected = {
      a: [BigDecimal.make(1n, 0), { b: new CalendarDate({ iso: "2020-01-01" }) }],
      c: 1,
      d: null,
      e: true
    }
    expect(equals(value, expected)).toBe(true)
    expect(sameKinds(value, expected)).toBe(true)
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
    expect(Either.getOrThrow(makeTimeOfDay("12:30:00.5")).iso).toBe("12:30:00.500000")
    expect(Either.getOrThrow(makeTimeOfDay("12:30Z")).iso).toBe("12:30:00+00:00")
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

  it("equals compares the stored text", () => {
    expect(equals(BigDecimal.unsafeFromString("1.50"), BigDecimal.unsafeFromString("1.50"))).toBe(true)
    expect(equals(BigDecimal.unsafeFromString("1.50"), BigDecimal.unsafeFromString("1.5"))).toBe(false)
    expect(equals(new Date(5), Timestamp.fromDate(new Date(5)))).toBe(true)
    expect(equals(new Timestamp(0, 0, 0), new Timestamp(0, 0, 3600))).toBe(false)
    expect(equals(new Timestamp(0, 0, 0), new Timestamp(0, 0, null))).toBe(false)
    expect(equals(5n, 5)).toBe(true)
    expect(equals(new Float(1), 1)).toBe(false)
    expect(
      equals(new Uuid({ value: "6f9619ff-8b86-d011-b42d-00c04fc964ff" }), "6f9619ff-8b86-d011-b42d-00c04fc964ff")
    ).toBe(true)
    expect(equals(new Date(5), new Date(5))).toBe(true)
    expect(equals(new Date(5), new Date(6))).toBe(false)
    expect(equals(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true)
    expect(equals(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false)
    expect(equals({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toBe(true)
    expect(equals({ a: 1 }, { a: 1, b: 2 })).toBe(false)
    expect(equals({ a: 1, b: 2 }, { a: 1, c: 2 })).toBe(false)
    expect(equals([], {})).toBe(false)
    expect(equals("1", 1)).toBe(false)
    expect(equals(new Uuid({ value: "A" }), new Uuid({ value: "A" }))).toBe(false)
    expect(equals(new CalendarDate({ iso: "2020-01-01" }), new TimeOfDay({ iso: "2020-01-01" }))).toBe(false)
  })

  it("StateValueFromJson works inside other Schemas", () => {
    const Slot = Schema.Record({ key: Schema.String, value: StateValueFromJson })
    const decoded = Schema.decodeUnknownSync(Slot)({ at: "\uF0272024-01-01T00:00:00Z", n: [1] })
    expect(decoded).toEqual({ at: Timestamp.fromDate(new Date("2024-01-01T00:00:00Z")), n: [1] })
    expect(Schema.encodeSync(Slot)(decoded)).toEqual({ at: "\uF0272024-01-01T00:00:00+00:00", n: [1] })
    expect(() => Schema.decodeUnknownSync(Slot)({ at: new Date() })).toThrow(/Json/)
    expect(() => Schema.encodeSync(Slot)({ bad: { deep: [(2n ** 64n) as StateValue] } })).toThrow(/deep\[0\]/)
  })
})
