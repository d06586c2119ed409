import { createHash } from "node:crypto"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Chunk, Effect, Either, Exit, Layer, Logger, Option, Stream } from "effect"
import * as ResourceState from "../src/context/ResourceState.js"
import * as Destination from "../src/destination/index.js"
import * as Incremental from "../src/pipeline/Incremental.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Source from "../src/pipeline/Source.js"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import * as StateValue from "../src/state/StateValue.js"
import { tempDir } from "./helpers.js"

interface Row {
  readonly id: string
  readonly t?: number | null
  readonly note?: string
}

const row = (id: string, t: number, note?: string): Row => (note === undefined ? { id, t } : { id, t, note })
const ids = (rows: ReadonlyArray<{ readonly id: string }>) => rows.map((r) => r.id)

/** one resource run: the cursor's stream over `rows`, collected */
const load = <V extends Incremental.CursorValue, A>(
  cursor: Incremental.Cursor<V>,
  rows: ReadonlyArray<A>,
  chunkSize = 2
) =>
  Stream.runCollect(Incremental.stream(cursor, () => Stream.fromIterable(rows).pipe(Stream.rechunk(chunkSize)))).pipe(
    Effect.map(Chunk.toArray)
  )

/** the whole `incremental` key of the resource slot */
const stored = Effect.map(ResourceState.get("incremental"), Option.getOrUndefined)

const entryOf = (path: string) =>
  Effect.map(stored, (cursors) => {
    const value = (cursors as { readonly [key: string]: StateValue.StateValue } | undefined)?.[path]
    return value as
      | {
          readonly initial_value: StateValue.StateValue
          readonly last_value: StateValue.StateValue
          readonly unique_hashes: ReadonlyArray<string>
          readonly start_value: StateValue.StateValue
        }
      | undefined
  })

const scratch = ResourceState.layerScratch({ sourceName: "src", resourceName: "issues" })

/** runs `effect`, returning its result and the warnings it logged */
const withWarnings = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const warnings: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      if (logLevel._tag === "Warning") warnings.push(Array.isArray(message) ? message.join(" ") : String(message))
    })
    return effect.pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Effect.map((result) => [result, warnings] as const)
    )
  })

describe("Incremental.cursor (max)", () => {
  // a literal initial value gives a cursor of its widened type
  const t: Incremental.Cursor<number> = Incremental.cursor({ path: "t", initialValue: 0 })

  it.effect("filters unordered rows against the start value, not the running maximum", () =>
    Effect.gen(function* () {
      const first = yield* load(t, [row("a", 5), row("b", 1), row("c", 9), row("d", 3), row("e", 9)])
      expect(ids(first)).toEqual(["a", "b", "c", "d", "e"])
      expect((yield* entryOf("t"))?.last_value).toBe(9)
      expect((yield* entryOf("t"))?.unique_hashes).toHaveLength(2)

      // start is 9: rows below it are old even when they come after a new maximum
      const second = yield* load(t, [row("x", 12), row("y", 10), row("c", 9), row("z", 9), row("old", 2)])
      expect(ids(second)).toEqual(["x", "y", "z"])
      const entry = yield* entryOf("t")
      expect(entry?.last_value).toBe(12)
      expect(entry?.start_value).toBe(9)
      expect(entry?.unique_hashes).toHaveLength(1)
    }).pipe(Effect.provide(scratch))
  )

  it.effect("rows sharing the boundary value across runs: no duplicate, no loss", () =>
    Effect.gen(function* () {
      const first = yield* load(t, [row("a", 5), row("b", 5)])
      expect(ids(first)).toEqual(["a", "b"])

      const second = yield* load(t, [row("a", 5), row("b", 5), row("c", 5), row("d", 6)])
      expect(ids(second)).toEqual(["c", "d"])

      const third = yield* load(t, [row("c", 5), row("d", 6), row("e", 6)])
      expect(ids(third)).toEqual(["e"])
      expect((yield* entryOf("t"))?.unique_hashes).toHaveLength(2) // d and e

      // the last value does not move: the old hashes stay next to the new one
      const fourth = yield* load(t, [row("d", 6), row("e", 6), row("f", 6)])
      expect(ids(fourth)).toEqual(["f"])
      expect((yield* entryOf("t"))?.unique_hashes).toHaveLength(3)
      expect(ids(yield* load(t, [row("d", 6), row("e", 6), row("f", 6)]))).toEqual([])
    }).pipe(Effect.provide(scratch))
  )

  it.effect("a run with no new rows keeps the cursor where it was", () =>
    Effect.gen(function* () {
      yield* load(t, [row("a", 5), row("b", 7)])
      const before = yield* stored
      expect(yield* load(t, [row("a", 5), row("b", 7)])).toEqual([])
      expect(yield* stored).toEqual(before)
    }).pipe(Effect.provide(scratch))
  )

  it.effect("stores {initial_value, last_value, unique_hashes, start_value} at incremental.<path>", () =>
    Effect.gen(function* () {
      // the first run stores the cursor even before a row comes, as dlt does
      const run = yield* t.start
      expect(run.startValue).toBe(0)
      expect(yield* stored).toEqual({ t: { initial_value: 0, last_value: 0, unique_hashes: [], start_value: 0 } })

      yield* Stream.runDrain(run.filter(Stream.make(row("a", 3), row("b", 4))))
      expect(yield* run.lastValue).toBe(4)
      const slot = yield* ResourceState.toJSON
      expect(Object.keys(slot)).toEqual(["incremental"])
      const entry = yield* entryOf("t")
      expect(Object.keys(entry ?? {}).sort()).toEqual(["initial_value", "last_value", "start_value", "unique_hashes"])
      expect(entry).toMatchObject({ initial_value: 0, last_value: 4, start_value: 0 })
      // dlt's hash: 20 characters of base64 (15 bytes of SHAKE-128)
      expect(entry?.unique_hashes).toEqual([expect.stringMatching(/^[A-Za-z0-9+/]{20}$/)])

      const next = yield* t.start
      expect(next.startValue).toBe(4)
    }).pipe(Effect.provide(scratch))
  )

  it.effect("several cursors live side by side under incremental", () =>
    Effect.gen(function* () {
      const other = Incremental.cursor({ path: "meta.seq", initialValue: 10 })
      yield* load(t, [row("a", 3)])
      yield* load(other, [
        { id: "a", meta: { seq: 11 } },
        { id: "b", meta: { seq: 12 } }
      ])
      const cursors = yield* stored
      expect(Object.keys(cursors as object).sort()).toEqual(["meta.seq", "t"])
      expect((yield* entryOf("meta.seq"))?.last_value).toBe(12)
      expect((yield* entryOf("t"))?.last_value).toBe(3)
    }).pipe(Effect.provide(scratch))
  )

  it.effect("the primary key decides which rows are the same; [] turns deduplication off", () =>
    Effect.gen(function* () {
      const byId = Incremental.cursor({ path: "t", initialValue: 0, primaryKey: "id" })
      yield* load(byId, [row("a", 5, "v1")])
      // same id, other content: the same row by its key
      expect(ids(yield* load(byId, [row("a", 5, "v2"), row("b", 5)]))).toEqual(["b"])

      const wholeRow = Incremental.cursor({ path: "t", initialValue: 0 })
      const noDedup = Incremental.cursor({ path: "t", initialValue: 0, primaryKey: [] })
      yield* ResourceState.remove("incremental")
      yield* load(wholeRow, [row("a", 5, "v1")])
      expect(ids(yield* load(wholeRow, [row("a", 5, "v2")]))).toEqual(["a"])
      expect(ids(yield* load(noDedup, [row("a", 5, "v2")]))).toEqual(["a"])
      expect((yield* entryOf("t"))?.unique_hashes).toEqual([])
    }).pipe(Effect.provide(scratch))
  )

  it.effect("hashes only rows at the boundary: a row superseded within its chunk needs no primary key", () =>
    Effect.gen(function* () {
      const byId = Incremental.cursor({ path: "t", initialValue: 0, primaryKey: ["id"] })
      const rows = [{ t: 1 }, { id: "b", t: 2 }]
      expect(yield* load(byId, rows, 10)).toEqual(rows)
      const missing = yield* Effect.flip(load(byId, [{ id: "c", t: 3 }, { t: 3 }], 10))
      expect(missing).toBeInstanceOf(Incremental.IncrementalPrimaryKeyMissing)
      expect(missing).toMatchObject({ resource: "issues", path: "t", key: "id", rowIndex: 1 })
      expect(missing.message).toContain('no field "id"')
    }).pipe(Effect.provide(scratch))
  )

  it.effect("a failing stream leaves the rows it did emit recorded, and nothing past them", () =>
    Effect.gen(function* () {
      const run = yield* t.start
      const exit = yield* Effect.exit(
        Stream.runDrain(run.filter(Stream.concat(Stream.make(row("a", 3)), Stream.fail("the API broke" as const))))
      )
      expect(exit).toStrictEqual(Exit.fail("the API broke"))
      expect((yield* entryOf("t"))?.last_value).toBe(3)
    }).pipe(Effect.provide(scratch))
  )
})

describe("Incremental backfill (endValue)", () => {
  it.effect("loads [initialValue, endValue) and leaves the stored state untouched", () =>
    Effect.gen(function* () {
      const t = Incremental.cursor({ path: "t", initialValue: 0 })
      yield* load(t, [row("a", 5), row("b", 50)])
      const before = yield* stored

      const window = Incremental.cursor({ path: "t", initialValue: 10, endValue: 20 })
      const run = yield* window.start
      expect(run.startValue).toBe(10) // not the stored 50
      expect(run.endValue).toBe(20)
      const rows = yield* Stream.runCollect(
        run.filter(Stream.make(row("x", 9), row("y", 10), row("z", 19), row("w", 20), row("v", 25)))
      )
      expect(ids(Chunk.toArray(rows))).toEqual(["y", "z"])
      expect(yield* run.lastValue).toBe(19)
      expect(yield* stored).toEqual(before)
    }).pipe(Effect.provide(scratch))
  )

  it.effect("a backfill on a fresh resource writes no state at all", () =>
    Effect.gen(function* () {
      const window = Incremental.cursor({ path: "t", initialValue: 10, endValue: 20 })
      expect(ids(yield* load(window, [row("y", 10), row("z", 15)]))).toEqual(["y", "z"])
      expect(yield* ResourceState.toJSON).toEqual({})
    }).pipe(Effect.provide(scratch))
  )

  it.effect("an end value before the initial value is refused", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Incremental.cursor({ path: "t", initialValue: 10, endValue: 5 }).start)
      expect(error).toBeInstanceOf(Incremental.InvalidIncrementalOptions)
      expect(error.message).toContain("endValue 5 must be greater than initialValue 10")
      const minError = yield* Effect.flip(
        Incremental.cursor({ path: "t", initialValue: 10, endValue: 15, lastValueFunc: "min" }).start
      )
      expect(minError.message).toContain("must be less than")
    }).pipe(Effect.provide(scratch))
  )
})

describe("Incremental missing cursor values", () => {
  const rows: ReadonlyArray<Row> = [row("a", 5), { id: "b" }, { id: "c", t: null }, row("d", 2)]

  it.effect("raise: a typed error naming the resource, the path and the row", () =>
    Effect.gen(function* () {
      const t = Incremental.cursor({ path: "t", initialValue: 0 })
      const absent = yield* Effect.flip(load(t, rows))
      expect(absent).toBeInstanceOf(Incremental.IncrementalCursorMissing)
      expect(absent).toMatchObject({ resource: "issues", path: "t", rowIndex: 1, found: "absent" })
      expect(absent.message).toContain('resource issues: row 1 has no value at the cursor path "t"')
      expect(absent.message).toContain('onCursorValueMissing: "include"')

      // the index counts across chunks
      const isNull = yield* Effect.flip(load(t, [row("a", 5), row("b", 6), { id: "c", t: null }], 2))
      expect(isNull).toMatchObject({ rowIndex: 2, found: "null" })
    }).pipe(Effect.provide(scratch))
  )

  it.effect("include: the row is kept and does not move the last value", () =>
    Effect.gen(function* () {
      const t = Incremental.cursor({ path: "t", initialValue: 0, onCursorValueMissing: "include" })
      expect(ids(yield* load(t, rows))).toEqual(["a", "b", "c", "d"])
      expect((yield* entryOf("t"))?.last_value).toBe(5)
      expect(ids(yield* load(t, [{ id: "e" }]))).toEqual(["e"])
      expect((yield* entryOf("t"))?.last_value).toBe(5)
    }).pipe(Effect.provide(scratch))
  )

  it.effect("exclude: the row is dropped", () =>
    Effect.gen(function* () {
      const t = Incremental.cursor({ path: "t", initialValue: 0, onCursorValueMissing: "exclude" })
      expect(ids(yield* load(t, rows))).toEqual(["a", "d"])
      expect((yield* entryOf("t"))?.last_value).toBe(5)
    }).pipe(Effect.provide(scratch))
  )

  it.effect("nested paths: an absent parent is a missing value", () =>
    Effect.gen(function* () {
      const seq = Incremental.cursor({ path: "meta.seq", initialValue: 0, onCursorValueMissing: "exclude" })
      const loaded = yield* load(seq, [{ id: "a", meta: { seq: 1 } }, { id: "b" }, { id: "c", meta: "x" }])
      expect(ids(loaded)).toEqual(["a"])
    }).pipe(Effect.provide(scratch))
  )

  it.effect("a value of another kind is a typed error", () =>
    Effect.gen(function* () {
      const t = Incremental.cursor({ path: "t", initialValue: 0 })
      const error = yield* Effect.flip(load(t, [{ id: "a", t: "5" }]))
      expect(error).toBeInstanceOf(Incremental.IncrementalCursorTypeMismatch)
      expect(error).toMatchObject({ expected: "number", rowIndex: 0 })
      expect(error.message).toContain('has the string "5" at the cursor path "t"')
    }).pipe(Effect.provide(scratch))
  )
})

describe("Incremental min cursors", () => {
  it.effect("keep rows at or below the start and move the last value down", () =>
    Effect.gen(function* () {
      const t = Incremental.cursor({ path: "t", initialValue: 100, lastValueFunc: "min" })
      const first = yield* load(t, [row("a", 90), row("b", 100), row("c", 110), row("d", 80), row("e", 80)])
      expect(ids(first)).toEqual(["a", "b", "d", "e"])
      const entry = yield* entryOf("t")
      expect(entry?.last_value).toBe(80)
      expect(entry?.unique_hashes).toHaveLength(2)

      const second = yield* load(t, [row("d", 80), row("f", 80), row("g", 85), row("h", 70)])
      expect(ids(second)).toEqual(["f", "h"])
      expect((yield* entryOf("t"))?.last_value).toBe(70)
    }).pipe(Effect.provide(scratch))
  )

  it.effect("a min backfill keeps (endValue, initialValue]", () =>
    Effect.gen(function* () {
      const t = Incremental.cursor({ path: "t", initialValue: 100, endValue: 50, lastValueFunc: "min" })
      expect(ids(yield* load(t, [row("a", 101), row("b", 100), row("c", 51), row("d", 50)]))).toEqual(["b", "c"])
    }).pipe(Effect.provide(scratch))
  )
})

describe("Incremental cursor kinds", () => {
  it.effect("Date cursors compare instants, accept ISO text, and store a typed datetime", () =>
    Effect.gen(function* () {
      const updated = Incremental.cursor({ path: "updated_at", initialValue: new Date("2024-01-01T00:00:00Z") })
      const first = yield* load(updated, [
        { id: "a", updated_at: new Date("2024-03-01T00:00:00Z") },
        // the same instant as a's, written in another zone
        { id: "b", updated_at: "2024-03-01T02:00:00+02:00" },
        { id: "c", updated_at: "2023-12-31T23:59:59Z" },
        { id: "d", updated_at: "2024-02-01" }
      ])
      expect(ids(first)).toEqual(["a", "b", "d"])
      const entry = yield* entryOf("updated_at")
      expect(String(entry?.last_value)).toBe("2024-03-01T00:00:00+00:00")
      expect(String(entry?.initial_value)).toBe("2024-01-01T00:00:00+00:00")
      expect(entry?.unique_hashes).toHaveLength(2)
      const text = Either.getOrThrow(StateValue.stringify(entry))
      expect(text).toContain('"last_value":"\uF0272024-03-01T00:00:00+00:00"')

      const run = yield* updated.start
      expect(run.startValue).toEqual(new Date("2024-03-01T00:00:00Z"))
      const second = yield* Stream.runCollect(
        run.filter(
          Stream.make(
            // loaded by the last run: its hash is of the row as it comes, text included
            { id: "b", updated_at: "2024-03-01T02:00:00+02:00" },
            { id: "e", updated_at: new Date("2024-03-01T00:00:00Z") },
            { id: "f", updated_at: "2024-03-01T00:00:00.001Z" }
          )
        )
      )
      expect(ids(Chunk.toArray(second))).toEqual(["e", "f"])
      expect(yield* run.lastValue).toEqual(new Date("2024-03-01T00:00:00.001Z"))
    }).pipe(Effect.provide(scratch))
  )

  it.effect("text that is no ISO datetime does not pass for a Date", () =>
    Effect.gen(function* () {
      const updated = Incremental.cursor({ path: "at", initialValue: new Date(0) })
      const error = yield* Effect.flip(load(updated, [{ id: "a", at: "2024-02-30" }]))
      expect(error).toMatchObject({ _tag: "IncrementalCursorTypeMismatch", expected: "Date" })
    }).pipe(Effect.provide(scratch))
  )

  it.effect("string cursors compare as strings", () =>
    Effect.gen(function* () {
      const version = Incremental.cursor({ path: "v", initialValue: "b" })
      expect(
        ids(
          yield* load(version, [
            { id: "1", v: "a" },
            { id: "2", v: "c" },
            { id: "3", v: "b" }
          ])
        )
      ).toEqual(["2", "3"])
      expect((yield* entryOf("v"))?.last_value).toBe("c")
    }).pipe(Effect.provide(scratch))
  )

  it.effect("string cursors compare by code points, as Python does (a character above U+FFFF sorts after U+FF00)", () =>
    Effect.gen(function* () {
      const version = Incremental.cursor({ path: "w", initialValue: "" })
      yield* load(version, [
        { id: "1", w: "\uff00" },
        { id: "2", w: "😀" }
      ])
      // Python: max("\uff00", "😀") == "😀" (U+1F600 > U+FF00); UTF-16 code units say the opposite
      expect((yield* entryOf("w"))?.last_value).toBe("😀")
      expect(ids(yield* load(version, [{ id: "3", w: "\uffff" }, { id: "4", w: "😁" }]))).toEqual(["4"])
    }).pipe(Effect.provide(scratch))
  )

  it.effect("bigint cursors are stored as ints (typed decimals past 64 bits), BigDecimal cursors as decimals", () =>
    Effect.gen(function* () {
      const id = Incremental.cursor({ path: "id64", initialValue: 0n })
      yield* load(id, [{ id: "a", id64: 2n ** 63n - 1n }])
      expect((yield* entryOf("id64"))?.last_value).toBe(2n ** 63n - 1n)
      expect((yield* id.start).startValue).toBe(2n ** 63n - 1n)
      const seq = Incremental.cursor({ path: "seq", initialValue: 10n })
      const big = 2n ** 70n
      expect(
        ids(
          yield* load(seq, [
            { id: "a", seq: 9n },
            { id: "b", seq: big },
            { id: "c", seq: 11 }
          ])
        )
      ).toEqual(["b", "c"])
      const entry = yield* entryOf("seq")
      expect(BigDecimal.isBigDecimal(entry?.last_value)).toBe(true)
      expect((yield* seq.start).startValue).toBe(big)

      const price = Incremental.cursor({ path: "price", initialValue: BigDecimal.unsafeFromString("1.50") })
      const loaded = yield* load(price, [
        { id: "a", price: BigDecimal.unsafeFromString("1.5") },
        { id: "b", price: "1.49" },
        { id: "c", price: 2 }
      ])
      expect(ids(loaded)).toEqual(["a", "c"])
      const run = yield* price.start
      expect(BigDecimal.equals(run.startValue, BigDecimal.fromBigInt(2n))).toBe(true)
    }).pipe(Effect.provide(scratch))
  )

  it.effect("a stored value of another kind is reported with its state path", () =>
    Effect.gen(function* () {
      yield* ResourceState.set("incremental", { at: { last_value: "yesterday", unique_hashes: [] } })
      const updated = Incremental.cursor({ path: "at", initialValue: new Date(0) })
      const error = yield* Effect.flip(updated.start)
      expect(error).toBeInstanceOf(Incremental.InvalidIncrementalState)
      expect(error.message).toContain('sources.src.resources.issues.incremental["at"]')
      expect(error.message).toContain('last_value is the string "yesterday"')
    }).pipe(Effect.provide(scratch))
  )
})

describe("Incremental boundary hashes, as dlt computes them", () => {
  // what pipestate before dlt's hashes stored: SHA-256 of a canonical text, 16 characters (a single
  // key hashed as a one-item list)
  const legacy = (text: string) => createHash("sha256").update(text).digest("base64").slice(0, 16)

  it.effect("are dlt's: a string key, a list of keys, the whole row", () =>
    Effect.gen(function* () {
      const single = Incremental.cursor({ path: "t", initialValue: 0, primaryKey: "id" })
      yield* load(single, [row("a", 1)])
      expect((yield* entryOf("t"))?.unique_hashes).toEqual([Incremental.uniqueHash({ id: "a" }, "id")])
      const composite = Incremental.cursor({ path: "u", initialValue: 0, primaryKey: ["id", "t"] })
      yield* load(composite, [{ id: "a", u: 1, t: 7 }])
      // dlt: base64(SHAKE-128(json.dumps(["a", 7]))[:15])
      expect((yield* entryOf("u"))?.unique_hashes).toEqual([
        createHash("shake128", { outputLength: 15 }).update('["a",7]').digest("base64")
      ])
      const whole = Incremental.cursor({ path: "v", initialValue: 0 })
      yield* load(whole, [{ v: 1, b: BigDecimal.unsafeFromString("1.50"), a: new Date("2024-01-01T00:00:00Z") }])
      expect((yield* entryOf("v"))?.unique_hashes).toEqual([
        createHash("shake128", { outputLength: 15 })
          .update('{"a":"2024-01-01T00:00:00Z","b":"1.50","v":1}')
          .digest("base64")
      ])
    }).pipe(Effect.provide(scratch))
  )

  it.effect("earlier pipestate hashes are honoured for one run, then replaced by dlt's", () =>
    Effect.gen(function* () {
      yield* ResourceState.set("incremental", {
        t: { initial_value: 0, last_value: 5, unique_hashes: [legacy('["a"]')], start_value: 0 }
      })
      const cursor = Incremental.cursor({ path: "t", initialValue: 0, primaryKey: "id" })
      // a was loaded by the earlier version: skipped; b is new
      expect(ids(yield* load(cursor, [row("a", 5), row("b", 5)]))).toEqual(["b"])
      expect(new Set((yield* entryOf("t"))?.unique_hashes)).toEqual(
        new Set([Incremental.uniqueHash({ id: "a" }, "id"), Incremental.uniqueHash({ id: "b" }, "id")])
      )
      expect(ids(yield* load(cursor, [row("a", 5), row("b", 5), row("c", 5)]))).toEqual(["c"])
    }).pipe(Effect.provide(scratch))
  )

  it.effect("a run that skips only rows of the earlier hashes keeps them", () =>
    Effect.gen(function* () {
      const old = [legacy('["a"]')]
      yield* ResourceState.set("incremental", {
        t: { initial_value: 0, last_value: 5, unique_hashes: old, start_value: 0 }
      })
      const cursor = Incremental.cursor({ path: "t", initialValue: 0, primaryKey: "id" })
      expect(yield* load(cursor, [row("a", 5)])).toEqual([])
      expect((yield* entryOf("t"))?.unique_hashes).toEqual(old)
      expect(yield* load(cursor, [row("a", 5)])).toEqual([])
    }).pipe(Effect.provide(scratch))
  )
})

describe("Incremental datetime cursors with microseconds", () => {
  const at = (text: string) => Either.getOrThrow(StateValue.Timestamp.parse(text))

  it.effect("Timestamp cursors compare microseconds and store the row's value with its offset", () =>
    Effect.gen(function* () {
      const cursor = Incremental.cursor({ path: "t", initialValue: at("2024-01-01T00:00:00+00:00"), primaryKey: "id" })
      const rows = [
        { id: "a", t: at("2024-05-01T14:00:00.123456+02:00") },
        { id: "b", t: "2024-05-01T12:00:00.123789+00:00" },
        { id: "c", t: at("2024-05-01T12:00:00.123788+00:00") }
      ]
      expect(ids(yield* load(cursor, rows))).toEqual(["a", "b", "c"])
      const entry = yield* entryOf("t")
      expect(String(entry?.last_value)).toBe("2024-05-01T12:00:00.123789+00:00")
      expect(entry?.unique_hashes).toEqual([Incremental.uniqueHash({ id: "b" }, "id")])
      // the boundary row within the same millisecond is not loaded again; one a microsecond later is
      const next = [...rows, { id: "d", t: at("2024-05-01T12:00:00.12379+00:00") }]
      expect(ids(yield* load(cursor, next))).toEqual(["d"])
    }).pipe(Effect.provide(scratch))
  )

  it.effect("a Date cursor continues a dlt cursor with microseconds without reloading its boundary", () =>
    Effect.gen(function* () {
      // as dlt stores it
      yield* ResourceState.set("incremental", {
        t: {
          initial_value: at("2024-01-01T00:00:00+00:00"),
          last_value: at("2024-05-01T12:00:00.123456+00:00"),
          unique_hashes: [Incremental.uniqueHash({ id: "a" }, "id")],
          start_value: at("2024-01-01T00:00:00+00:00")
        }
      })
      const cursor = Incremental.cursor({ path: "t", initialValue: new Date("2024-01-01T00:00:00Z"), primaryKey: "id" })
      const run = yield* cursor.start
      // a Date cannot hold the microseconds: rounded down, so that a query from it includes the boundary
      expect(run.startValue).toEqual(new Date("2024-05-01T12:00:00.123Z"))
      const kept = yield* Stream.runCollect(
        run.filter(
          Stream.make(
            { id: "z", t: "2024-05-01T12:00:00.123000+00:00" },
            { id: "a", t: "2024-05-01T12:00:00.123456+00:00" },
            { id: "b", t: "2024-05-01T12:00:00.123457+00:00" }
          )
        )
      )
      expect(ids(Chunk.toArray(kept))).toEqual(["b"])
    }).pipe(Effect.provide(scratch))
  )

  it.effect("CalendarDate cursors, as dlt's date cursors", () =>
    Effect.gen(function* () {
      const day = (iso: string) => Either.getOrThrow(StateValue.makeCalendarDate(iso))
      const cursor = Incremental.cursor({ path: "d", initialValue: day("2024-01-01"), primaryKey: ["ticket_id", "n"] })
      const rows = [
        { ticket_id: 1, n: 1, d: day("2024-03-01") },
        { ticket_id: 2, n: 1, d: "2024-03-02" }
      ]
      expect(yield* load(cursor, rows)).toHaveLength(2)
      const entry = yield* entryOf("d")
      expect(entry?.last_value).toEqual(day("2024-03-02"))
      expect(yield* load(cursor, rows)).toEqual([])
    }).pipe(Effect.provide(scratch))
  )
})

describe("Incremental boundary hashes", () => {
  const day = Incremental.cursor({ path: "t", initialValue: 0, primaryKey: "id" })
  const many = (n: number, t = 1) => Array.from({ length: n }, (_, i) => row(`r${i}`, t))

  it.effect("warns once per run past 200 rows sharing the last value", () =>
    Effect.gen(function* () {
      const [loaded, warnings] = yield* withWarnings(load(day, many(250), 20))
      expect(loaded).toHaveLength(250)
      expect((yield* entryOf("t"))?.unique_hashes).toHaveLength(250)
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain('rows share the cursor value 1 at "t"')

      const [, quiet] = yield* withWarnings(load(day, many(150, 2), 20))
      expect(quiet).toEqual([])
    }).pipe(Effect.provide(scratch))
  )

  it.effect("caps the hashes at maxUniqueHashes, keeping the newest, with a warning", () =>
    Effect.gen(function* () {
      const capped = Incremental.cursor({ path: "t", initialValue: 0, primaryKey: "id", maxUniqueHashes: 50 })
      const [loaded, warnings] = yield* withWarnings(load(capped, many(60), 7))
      expect(loaded).toHaveLength(60)
      expect((yield* entryOf("t"))?.unique_hashes).toHaveLength(50)
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain("rows at this boundary may be duplicated on the next run")
      expect(warnings[0]).toContain("maxUniqueHashes")

      // the 10 oldest were forgotten: they load again, the 50 newest do not
      const [again] = yield* withWarnings(load(capped, many(60), 7))
      expect(ids(again)).toEqual(Array.from({ length: 10 }, (_, i) => `r${i}`))
    }).pipe(Effect.provide(scratch))
  )

  it.effect("refuses a maxUniqueHashes that is not a positive integer", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Incremental.cursor({ path: "t", initialValue: 0, maxUniqueHashes: 0 }).start)
      expect(error).toBeInstanceOf(Incremental.InvalidIncrementalOptions)
    }).pipe(Effect.provide(scratch))
  )
})

describe("Incremental through Pipeline.run", () => {
  const updated = Incremental.cursor({ path: "t", initialValue: 0, primaryKey: "id" })

  const issues = <E>(rows: Stream.Stream<Row, E>) =>
    Source.make({
      name: "src",
      resources: [
        Resource.make(
          { name: "issues", writeDisposition: "append", primaryKey: ["id"] },
          Incremental.stream(updated, () => rows)
        )
      ]
    })

  const runIn = <E>(dir: string, destination: Layer.Layer<Destination.Destination>, rows: Stream.Stream<Row, E>) =>
    Pipeline.run(issues(rows)).pipe(
      Effect.provide(Pipeline.layerNode({ name: "p", dataset: "ds", pipelinesDir: dir })),
      Effect.provide(destination)
    )

  const localEntry = (dir: string) => {
    const state = Either.getOrThrow(
      PipelineState.fromFileText(NodeFs.readFileSync(NodePath.join(dir, "p", "state.json"), "utf8"))
    )
    const resources = state.sources.src?.resources as
      | { readonly issues?: { readonly incremental?: { readonly [path: string]: StateValue.StateValue } } }
      | undefined
    return resources?.issues?.incremental?.t
  }

  const loadedIds = (dir: string, destination: Layer.Layer<Destination.Destination>) =>
    Effect.gen(function* () {
      const d = yield* Destination.Destination
      const access = yield* d.dataset({ dataset: "ds", pipelineDir: NodePath.join(dir, "p") })
      const rows = yield* access.execute(`SELECT id FROM ${access.table("issues")} ORDER BY rowid`)
      return rows.map((r) => r.id)
    }).pipe(Effect.provide(destination))

  it.scoped("the cursor persists across runs: equal boundary values load once", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const shared = yield* Layer.memoize(Destination.memory())
      const first = yield* runIn(dir, shared, Stream.make(row("a", 5), row("b", 5)))
      expect(first.tables).toEqual({ issues: 2 })
      expect(localEntry(dir)).toMatchObject({ initial_value: 0, last_value: 5, start_value: 0 })

      const second = yield* runIn(dir, shared, Stream.make(row("a", 5), row("b", 5), row("c", 5), row("d", 6)))
      expect(second.tables).toEqual({ issues: 2 })
      const entry = localEntry(dir)
      expect(entry).toMatchObject({ initial_value: 0, last_value: 6, start_value: 5 })
      expect(Object.keys(entry as object).sort()).toEqual([
        "initial_value",
        "last_value",
        "start_value",
        "unique_hashes"
      ])

      const third = yield* runIn(dir, shared, Stream.make(row("c", 5), row("d", 6)))
      expect(third.tables).toEqual({ issues: 0 })
      expect(yield* loadedIds(dir, shared)).toEqual(["a", "b", "c", "d"])
    })
  )

  it.scoped("a failing stream advances nothing: the draft state is discarded", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const shared = yield* Layer.memoize(Destination.memory())
      yield* runIn(dir, shared, Stream.make(row("a", 5), row("b", 5)))
      const before = NodeFs.readFileSync(NodePath.join(dir, "p", "state.json"), "utf8")

      const broken = Stream.concat(Stream.make(row("c", 7), row("d", 8)), Stream.fail("the API broke" as const))
      const exit = yield* Effect.exit(runIn(dir, shared, broken))
      expect(exit).toStrictEqual(Exit.fail("the API broke"))
      expect(NodeFs.readFileSync(NodePath.join(dir, "p", "state.json"), "utf8")).toBe(before)
      expect(localEntry(dir)).toMatchObject({ last_value: 5 })

      // the rows of the failed run are loaded by the next one
      const retry = yield* runIn(dir, shared, Stream.make(row("b", 5), row("c", 7), row("d", 8)))
      expect(retry.tables).toEqual({ issues: 2 })
      expect(localEntry(dir)).toMatchObject({ last_value: 8, start_value: 5 })
      expect(yield* loadedIds(dir, shared)).toEqual(["a", "b", "c", "d"])
    })
  )
})
