/**
 * Every case of ../shared/dlt-vectors (made by dlt 1.26.0's own code), in both directions: dlt's
 * text decodes to the value dlt decoded, our value encodes to dlt's text and hash; documents keep
 * their version and hash; engine migrations and boundary hashes are dlt's.
 */
import { readFileSync } from "node:fs"
import { inflateSync } from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Either, FastCheck as fc } from "effect"
import { uniqueHash } from "../src/pipeline/Incremental.js"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import * as StateBlob from "../src/internal/state/StateBlob.js"
import {
  decode,
  encode,
  equals,
  Float,
  formatSqliteTimestamp,
  HexBytes,
  makeCalendarDate,
  makeDecimal,
  makeTimeOfDay,
  parse,
  parseJson,
  parseSqliteTimestamp,
  record,
  type StateValue,
  stringify,
  Timestamp,
  Uuid
} from "../src/state/StateValue.js"

// a copy of ../shared/dlt-vectors, so that the suite runs wherever the repository is
const VECTORS = new URL("./fixtures/dlt-vectors/", import.meta.url)
const load = <A>(name: string): A => JSON.parse(readFileSync(new URL(name, VECTORS), "utf8")) as A

interface Described {
  readonly type: string
  readonly [key: string]: unknown
}

// the offset of a named zone at a wall time (pendulum inputs name their zone)
const zoneOffset = (wallIso: string, zone: string): string => {
  if (zone === "UTC") return "+00:00"
  if (/^[+-]\d{2}:\d{2}$/.test(zone)) return zone
  const guess = new Date(`${wallIso}Z`)
  const name = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "longOffset" })
    .formatToParts(guess)
    .find((p) => p.type === "timeZoneName")!.value
  return name === "GMT" ? "+00:00" : name.slice(3)
}

// a value description of the vectors as our JS value (`rowDate`: a stdlib UTC datetime as a Date,
// as our rows hold them)
const fromDescription = (d: Described, rowDate = false): StateValue => {
  switch (d.type) {
    case "int": {
      const big = BigInt(d.str as string)
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big
    }
    case "float": {
      const repr = d.repr as string
      const v = repr === "nan" ? Number.NaN : repr === "inf" ? Number.POSITIVE_INFINITY : Number(repr)
      return Number.isSafeInteger(v) && !Object.is(v, -0) ? new Float(v) : v
    }
    case "str":
      return d.value as string
    case "bool":
      return d.value as boolean
    case "None":
      return null
    case "Decimal":
      return Either.getOrThrow(makeDecimal(d.str as string))
    case "datetime": {
      const t = Either.getOrThrow(Timestamp.parse(d.iso as string))
      return rowDate && t.offsetSeconds === 0 && t.microsecond % 1000 === 0 ? t.toDate() : t
    }
    case "pendulum.DateTime": {
      const iso = d.iso as string
      const tz = d.tz as string | null
      const text = tz === null || /[+-]\d{2}:\d{2}$/.test(iso) ? iso : iso + zoneOffset(iso, tz)
      return Either.getOrThrow(Timestamp.parse(text))
    }
    case "date":
    case "pendulum.Date":
      return Either.getOrThrow(makeCalendarDate(d.iso as string))
    case "time":
    case "pendulum.Time":
      return Either.getOrThrow(makeTimeOfDay(d.iso as string))
    case "UUID":
      return new Uuid({ value: d.str as string })
    case "bytes":
      return new Uint8Array(Buffer.from(d.hex as string, "hex"))
    case "HexBytes":
      return new HexBytes(Buffer.from(d.hex as string, "hex"))
    case "list":
      return (d.items as ReadonlyArray<Described>).map((item) => fromDescription(item, rowDate))
    case "dict":
      return record(
        (d.items as ReadonlyArray<readonly [string | Described, Described]>).map(
          ([key, value]) =>
            [typeof key === "string" ? key : (key.str as string), fromDescription(value, rowDate)] as const
        )
      )
    default:
      throw new Error(`no JS value for ${d.type}`)
  }
}

// what kind of value sits where, Python's names (to compare a decoded value with dlt's)
const kindOf = (value: unknown): unknown => {
  if (value === null) return "None"
  if (typeof value === "string") return "str"
  if (typeof value === "boolean") return "bool"
  if (typeof value === "bigint") return "int"
  if (typeof value === "number") return Number.isSafeInteger(value) && !Object.is(value, -0) ? "int" : "float"
  if (value instanceof Float) return "float"
  if (value instanceof Timestamp) return "datetime"
  if (value instanceof HexBytes) return "HexBytes"
  if (value instanceof Uint8Array) return "bytes"
  if (Array.isArray(value)) return value.map(kindOf)
  if (BigDecimal.isBigDecimal(value)) return "Decimal"
  const tag = (value as { _tag?: string })._tag
  if (tag === "SpecialDecimal") return "Decimal"
  if (tag === "CalendarDate") return "date"
  if (tag === "TimeOfDay") return "time"
  if (tag === "Uuid") return "UUID"
  return Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, kindOf(v)]))
}

const kindOfDescription = (d: Described): unknown => {
  switch (d.type) {
    case "pendulum.DateTime":
      return "datetime"
    case "pendulum.Date":
      return "date"
    case "pendulum.Time":
      return "time"
    case "list":
      return (d.items as ReadonlyArray<Described>).map(kindOfDescription)
    case "dict":
      return Object.fromEntries(
        (d.items as ReadonlyArray<readonly [string, Described]>).map(([k, v]) => [k, kindOfDescription(v)])
      )
    default:
      return d.type
  }
}

const inflate = (blob: string): string => inflateSync(Buffer.from(blob, "base64")).toString("utf8")

// a document as stored (no `_local`, which the blob leaves out) as a state
const fromDoc = (text: string) => PipelineState.fromText(text, { _local: { first_run: false } })

const stateOf = (value: StateValue): PipelineState.PipelineState => ({
  _state_version: 1,
  _state_engine_version: 4,
  pipeline_name: "p",
  dataset_name: "d",
  sources: { s: { resources: { r: { v: value } } } },
  _local: { first_run: false }
})

// --- state-values.json ----------------------------------------------------------------------------

interface ValueCase {
  readonly name: string
  readonly value: Described
  readonly typed_json?: string
  readonly typed_json_sorted?: string
  readonly state?: {
    readonly version: number
    readonly version_hash: string
    readonly doc_text: string
    readonly hash_input: string
    readonly blob: string
  }
  readonly decoded?: { readonly value: Described }
  readonly refused?: { readonly error: string }
}

const values = load<{ readonly cases: ReadonlyArray<ValueCase> }>("state-values.json").cases
const encoded = values.filter((c) => c.refused === undefined)
// Where pipestate refuses what dlt writes, because dlt would not read back what was written:
// float('nan') and float('inf') become null, and a plain string U+F026 + "1.5" comes back as a
// Decimal. pipestate refuses them with a typed error naming the path instead.
const REFUSED_BY_US = new Set(["float_nan", "float_infinity", "str_marker_then_decimal_text"])

describe("dlt vectors: state values (state-values.json)", () => {
  it("has the cases the README lists", () => {
    expect(values.length).toBe(62)
    expect(encoded.length).toBe(59)
  })

  it.each(encoded.map((c) => [c.name, c] as const))("%s: dlt's text decodes to dlt's value", (_name, c) => {
    const decoded = (Either.getOrThrow(parse(c.typed_json!)) as { readonly v: StateValue }).v
    const expected = c.decoded!.value
    if (c.name === "bytes_empty") {
      // dlt reads its own b"" back as the bare mark string; pipestate reads the empty bytes it was
      expect(decoded).toEqual(new Uint8Array([]))
      return
    }
    expect(kindOf(decoded)).toEqual(kindOfDescription(expected))
    expect(equals(decoded, fromDescription(expected))).toBe(true)
    // and the same from the blob and the document, in the state
    const fromBlob = Either.getOrThrow(StateBlob.decode(c.state!.blob))
    const slot = PipelineState.getResourceSlot(fromBlob, "s", "r")
    expect(kindOf(slot.v)).toEqual(kindOfDescription(expected))
    expect(equals(slot.v!, decoded)).toBe(true)
  })

  it.each(encoded.map((c) => [c.name, c] as const))("%s: our value encodes to dlt's text and hash", (_name, c) => {
    const value = fromDescription(c.value)
    if (REFUSED_BY_US.has(c.name)) {
      expect(Either.isLeft(encode({ v: value }))).toBe(true)
      return
    }
    expect(Either.getOrThrow(stringify(record([["v", value]])))).toBe(c.typed_json)
    expect(Either.getOrThrow(stringify(record([["v", value]]), { sortKeys: true }))).toBe(c.typed_json_sorted)
    const state = stateOf(value)
    expect(Either.getOrThrow(PipelineState.versionHash(state))).toBe(c.state!.version_hash)
    // the first hash is set without a bump, as dlt does
    const bumped = Either.getOrThrow(PipelineState.bumpVersion({ ...state, _version_hash: "" }))
    expect(bumped._state_version).toBe(c.state!.version)
    // our blob holds the same document (keys may come in another order; dlt reads any)
    const ours = Either.getOrThrow(StateBlob.encode(bumped))
    const theirs = Either.getOrThrow(parseJson(c.state!.doc_text))
    expect(equals(decode(Either.getOrThrow(parseJson(inflate(ours)))), decode(theirs))).toBe(true)
  })

  it.each(encoded.map((c) => [c.name, c] as const))(
    "%s: unchanged means identical (text, hash, version)",
    (_name, c) => {
      const decoded = Either.getOrThrow(parse(c.typed_json!))
      expect(Either.getOrThrow(stringify(decoded))).toBe(c.typed_json)
      expect(Either.getOrThrow(stringify(decoded, { sortKeys: true }))).toBe(c.typed_json_sorted)
      for (const state of [
        Either.getOrThrow(StateBlob.decode(c.state!.blob)),
        Either.getOrThrow(fromDoc(c.state!.doc_text))
      ]) {
        expect(state._state_version).toBe(c.state!.version)
        expect(Either.getOrThrow(PipelineState.versionHash(state))).toBe(c.state!.version_hash)
        expect(Either.getOrThrow(PipelineState.bumpVersion(state))).toBe(state)
        const text = inflate(Either.getOrThrow(StateBlob.encode(state)))
        expect(Either.getOrThrow(PipelineState.versionHash(Either.getOrThrow(fromDoc(text))))).toBe(
          c.state!.version_hash
        )
      }
    }
  )

  it.each(values.filter((c) => c.refused !== undefined).map((c) => [c.name, c] as const))(
    "%s: refused as dlt refuses it, with a typed error naming the path",
    (_name, c) => {
      const result = encode({ v: fromDescription(c.value) }, "sources.s.resources.r")
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) {
        expect(result.left._tag).toBe("NonSerializableStateValue")
        expect(result.left.path).toBe("sources.s.resources.r.v")
      }
    }
  )
})

// --- state-documents.json -------------------------------------------------------------------------

interface Step {
  readonly step: string
  readonly version: number
  readonly version_hash: string
  readonly doc_text: string
  readonly hash_input: string
  readonly blob: string
}

const documents = load<{
  readonly documents: ReadonlyArray<{ readonly name: string; readonly steps: ReadonlyArray<Step> }>
}>("state-documents.json").documents

describe("dlt vectors: state documents (state-documents.json)", () => {
  const steps = documents.flatMap((d) => d.steps.map((s) => [`${d.name} / ${s.step}`, s] as const))

  it("has 3 documents and 16 steps", () => {
    expect(documents.length).toBe(3)
    expect(steps.length).toBe(16)
  })

  it.each(steps)("%s: read from the blob and the text, same version and hash, no bump", (_name, step) => {
    for (const state of [Either.getOrThrow(StateBlob.decode(step.blob)), Either.getOrThrow(fromDoc(step.doc_text))]) {
      expect(state._state_version).toBe(step.version)
      expect(state._version_hash).toBe(step.version_hash)
      expect(Either.getOrThrow(PipelineState.versionHash(state))).toBe(step.version_hash)
      expect(Either.getOrThrow(PipelineState.bumpVersion(state))).toBe(state)
      // what we store decodes to the same document, hash and version
      const again = Either.getOrThrow(StateBlob.decode(Either.getOrThrow(StateBlob.encode(state))))
      expect(again._state_version).toBe(step.version)
      expect(Either.getOrThrow(PipelineState.versionHash(again))).toBe(step.version_hash)
      // the committed text: the hashed text is dlt's hash input
      const { hash } = Either.getOrThrow(StateBlob.encodeForCommit(state))
      expect(hash).toBe(step.version_hash)
    }
  })

  it("a change bumps the version by one, as dlt's next step", () => {
    const [doc] = documents
    const change1 = doc!.steps.find((s) => s.step === "change 1")!
    const first = Either.getOrThrow(fromDoc(doc!.steps.find((s) => s.step === "first extract")!.doc_text))
    const orders = PipelineState.getResourceSlot(first, "shop", "orders")
    const changed = PipelineState.withResourceSlot(first, "shop", "orders", { ...orders, page: 2 })
    const bumped = Either.getOrThrow(PipelineState.bumpVersion(changed))
    expect(bumped._state_version).toBe(change1.version)
    expect(bumped._version_hash).toBe(change1.version_hash)
  })

  it("incremental boundary hashes in the documents are dlt's hashes of the rows' keys", () => {
    const events = documents.find((d) => d.name === "incremental_int_cursor")!
    const hashesOf = (step: Step, source: string, resource: string, cursor: string) => {
      const state = Either.getOrThrow(fromDoc(step.doc_text))
      const slot = PipelineState.getResourceSlot(state, source, resource) as {
        readonly incremental: { readonly [c: string]: { readonly unique_hashes: ReadonlyArray<string> } }
      }
      return new Set(slot.incremental[cursor]!.unique_hashes)
    }
    const first = events.steps.find((s) => s.step === "first extract")!
    // rows id 1..3 at versions 1, 3, 3: ids 2 and 3 sit on the last value
    expect(hashesOf(first, "vec_doc_events", "events", "version")).toEqual(
      new Set([uniqueHash({ id: 2, version: 3 }, "id"), uniqueHash({ id: 3, version: 3 }, "id")])
    )
    const change3 = events.steps.find((s) => s.step === "change 3")!
    expect(hashesOf(change3, "vec_doc_events", "events", "version")).toEqual(
      new Set([uniqueHash({ id: 6, version: 7 }, "id")])
    )
    const helpdesk = documents.find((d) => d.name === "incremental_datetime_and_date_cursors")!
    const change2 = helpdesk.steps.find((s) => s.step === "change 2")!
    // the new comment (3, 1) on the composite key (ticket_id, n)
    expect(
      hashesOf(change2, "helpdesk", "comments", "created_on").has(
        uniqueHash({ ticket_id: 3, n: 1 }, ["ticket_id", "n"])
      )
    ).toBe(true)
  })
})

// --- engine-migrations.json -----------------------------------------------------------------------

interface Migration {
  readonly name: string
  readonly input_text: string
  readonly migrated_text?: string
  readonly migrated_version?: number
  readonly migrated_version_hash?: string
  readonly hash_of_migrated?: string
  readonly after_bump?: { readonly version: number; readonly version_hash: string; readonly blob: string }
  readonly refused?: string
}

const migrations = load<{ readonly cases: ReadonlyArray<Migration> }>("engine-migrations.json").cases

describe("dlt vectors: engine migrations (engine-migrations.json)", () => {
  it.each(migrations.filter((m) => m.refused === undefined).map((m) => [m.name, m] as const))(
    "%s: migrated as dlt migrates it",
    (_name, m) => {
      // the JSON-level migration gives dlt's migrated text, key order included, once decoded
      // (dlt decodes before migrating: a "...Z" datetime comes out as "+00:00")
      const migrated = Either.getOrThrow(
        PipelineState.migrateJson(Either.getOrThrow(parseJson(m.input_text)) as { readonly [key: string]: never })
      )
      expect(Either.getOrThrow(stringify(decode(migrated)))).toBe(m.migrated_text)
      const state = Either.getOrThrow(PipelineState.fromText(m.input_text))
      expect(state._state_engine_version).toBe(4)
      expect(state._state_version).toBe(m.migrated_version)
      expect(state._version_hash).toBe(m.migrated_version_hash)
      expect(Either.getOrThrow(PipelineState.versionHash(state))).toBe(m.hash_of_migrated)
      const bumped = Either.getOrThrow(PipelineState.bumpVersion(state))
      expect(bumped._state_version).toBe(m.after_bump!.version)
      expect(bumped._version_hash).toBe(m.after_bump!.version_hash)
      const theirs = Either.getOrThrow(StateBlob.decode(m.after_bump!.blob))
      expect(Either.getOrThrow(PipelineState.versionHash(theirs))).toBe(m.after_bump!.version_hash)
      expect(theirs._state_version).toBe(m.after_bump!.version)
    }
  )

  it.each(migrations.filter((m) => m.refused !== undefined).map((m) => [m.name, m] as const))(
    "%s: refused",
    (_name, m) => {
      const result = PipelineState.fromText(m.input_text)
      expect(Either.isLeft(result)).toBe(true)
    }
  )
})

// --- incremental-hashes.json ----------------------------------------------------------------------

interface HashGroup {
  readonly name: string
  readonly primary_key: string | ReadonlyArray<string> | null
  readonly boundary_deduplication: boolean
  readonly hashes: ReadonlyArray<{ readonly row: number; readonly hash: string | null; readonly hash_input?: string }>
}

const incremental = load<{ readonly rows: ReadonlyArray<Described>; readonly groups: ReadonlyArray<HashGroup> }>(
  "incremental-hashes.json"
)

describe("dlt vectors: incremental boundary hashes (incremental-hashes.json)", () => {
  const rows = incremental.rows.map((row) => fromDescription(row, true))
  const cases = incremental.groups
    .filter((g) => g.boundary_deduplication)
    .flatMap((g) => g.hashes.map((h) => [`${g.name} row ${h.row}`, g, h] as const))

  it("has 40 hashes", () => expect(cases.length).toBe(40))

  it.each(cases)("%s", (_name, group, h) => {
    const key = group.primary_key === null ? undefined : group.primary_key
    expect(uniqueHash(rows[h.row], key)).toBe(h.hash)
  })
})

// --- SQLite timestamps ----------------------------------------------------------------------------

describe("dlt vectors: SQLite timestamp text (sqlite-state-table.json)", () => {
  const sqlite = load<{
    readonly sqlite: {
      readonly tables: {
        readonly [name: string]: { readonly rows: ReadonlyArray<{ readonly [c: string]: { readonly value: unknown } }> }
      }
    }
  }>("sqlite-state-table.json").sqlite
  const texts = [
    ...sqlite.tables._dlt_pipeline_state!.rows.map((r) => r.created_at!.value as string),
    ...sqlite.tables._dlt_loads!.rows.map((r) => r.inserted_at!.value as string)
  ]

  it.each(texts)("%s reads as UTC and is written back the same", (text) => {
    const t = Either.getOrThrow(parseSqliteTimestamp(text))
    expect(t.offsetSeconds).toBe(0)
    expect(formatSqliteTimestamp(t)).toBe(text)
  })

  it("writes Dates as dlt does, and reads earlier pipestate text", () => {
    expect(formatSqliteTimestamp(new Date("2026-11-29T16:28:54.191Z"))).toBe("2026-11-29 16:28:54.191000")
    expect(formatSqliteTimestamp(new Date("2026-11-29T16:28:54Z"))).toBe("2026-11-29 16:28:54.000000")
    const old = Either.getOrThrow(parseSqliteTimestamp("2026-11-29T15:59:12.318Z"))
    expect(old.toDate().toISOString()).toBe("2026-11-29T15:59:12.318Z")
    expect(formatSqliteTimestamp(Either.getOrThrow(Timestamp.parse("2024-01-01T02:00:00.5+02:00")))).toBe(
      "2024-01-01 00:00:00.500000"
    )
  })
})

// --- dlt-written text, generated ------------------------------------------------------------------

// leaves as dlt writes them: every value text of the vectors, and ints, strings, datetimes, dates
// and times spelled here by Python's rules
const pad = (n: number, width: number) => String(n).padStart(width, "0")
const offsetText = (seconds: number) => {
  const sign = seconds < 0 ? "-" : "+"
  const abs = Math.abs(seconds)
  const rest = abs % 60
  return `${sign}${pad(Math.floor(abs / 3600), 2)}:${pad(Math.floor((abs % 3600) / 60), 2)}${rest === 0 ? "" : `:${pad(rest, 2)}`}`
}
const vectorLeaves = encoded
  .filter((c) => !["nested_mixed", "nested_typed_leaves"].includes(c.name) && !c.name.startsWith("keys_"))
  .map((c) => c.typed_json!.slice('{"v":'.length, -1))
const dltLeaf = fc.oneof(
  fc.constantFrom(...vectorLeaves),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }).map((n) => `${n}`),
  fc
    .fullUnicodeString()
    .map((s) => JSON.stringify(s))
    .filter((s) => !/^"[\uF026-\uF02D]/.test(s)),
  fc
    .tuple(
      fc.date({ min: new Date("0001-01-01T00:00:00Z"), max: new Date("9999-12-31T00:00:00Z"), noInvalidDate: true }),
      fc.integer({ min: 0, max: 999_999 }),
      fc.constantFrom<number | null>(null, 0, 3600, -28800, 19800, 45, -5400)
    )
    .map(([d, micro, offset]) => {
      const iso = d.toISOString().slice(0, 19)
      return JSON.stringify(
        `\uF027${iso}${micro === 0 ? "" : `.${pad(micro, 6)}`}${offset === null ? "" : offsetText(offset)}`
      )
    }),
  fc
    .date({ min: new Date("0001-01-01T00:00:00Z"), max: new Date("9999-12-31T00:00:00Z"), noInvalidDate: true })
    .map((d) => JSON.stringify(`\uF028${d.toISOString().slice(0, 10)}`)),
  fc
    .tuple(fc.integer({ min: 0, max: 86_399 }), fc.integer({ min: 0, max: 999_999 }))
    .map(([s, micro]) =>
      JSON.stringify(
        `\uF02D${pad(Math.floor(s / 3600), 2)}:${pad(Math.floor((s % 3600) / 60), 2)}:${pad(s % 60, 2)}${micro === 0 ? "" : `.${pad(micro, 6)}`}`
      )
    )
)
const { text: dltText } = fc.letrec<{ text: string }>((tie) => ({
  text: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    dltLeaf,
    fc.array(tie("text"), { maxLength: 5 }).map((items) => `[${items.join(",")}]`),
    fc
      .uniqueArray(
        fc.tuple(fc.oneof(fc.fullUnicodeString(), fc.constantFrom("10", "2", "0", "-1", "01")), tie("text")),
        {
          maxLength: 5,
          selector: ([key]) => key
        }
      )
      .map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",")}}`)
  )
}))

describe("dlt-written text, generated", () => {
  it.prop(
    "encode(decode(t)) = t, compact and in insertion order",
    [dltText],
    ([text]) => {
      expect(Either.getOrThrow(stringify(Either.getOrThrow(parse(text))))).toBe(text)
    },
    { fastCheck: { numRuns: 2000 } }
  )
})
