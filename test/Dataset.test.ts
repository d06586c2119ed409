/**
 * `Dataset`: the same query text returns identical rows (values and JS types) on SQLite and
 * PostgreSQL, over every column type; inside a resource; decoded into a user's Schema; typed errors.
 */
import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Effect, Either, Exit, Layer, Option, Schema, Stream, Tracer } from "effect"
import { Dataset, Destination, Pipeline, PipelineContext, Resource, Source, StateValue } from "../src/index.js"
import * as StoredSchema from "../src/internal/schema/StoredSchema.js"
import { tempDir } from "./helpers.js"
import { freshDataset, postgresAvailable, testDestination } from "./postgres.js"

const { Timestamp, CalendarDate, TimeOfDay, SpecialDecimal } = StateValue

const ts = (text: string) => Either.getOrThrow(Timestamp.parse(text))
const dec = (text: string) => BigDecimal.unsafeFromString(text)

/** every column type pipestate loads, one row per case; row 3 is null in every nullable column */
const things = [
  {
    id: 1,
    name: "Ada",
    big: 9007199254740993n,
    small: -5,
    ratio: 0.25,
    ok: true,
    at: ts("2024-02-29T12:34:56.789123+00:00"),
    amount: dec("12.50"),
    doc: { b: 1, a: [1, "x", null], nested: { t: true } },
    raw: new Uint8Array([0, 255, 10]),
    note: "first"
  },
  {
    id: 2,
    name: "Grace",
    big: -9007199254740993n,
    small: 7,
    ratio: -1.5,
    ok: false,
    at: ts("2024-01-01T00:00:00.000001+05:30"),
    amount: dec("-0.001"),
    doc: [1, 2, 3],
    raw: new Uint8Array([]),
    note: null
  },
  {
    id: 3,
    name: "",
    big: 0,
    small: null,
    ratio: null,
    ok: null,
    at: null,
    amount: null,
    doc: null,
    raw: null,
    note: null
  }
]

/**
 * A value as `type:text`: equal strings mean equal values AND equal JS types (a `Buffer` is not a
 * `Uint8Array`, `1` is not `1n`, a BigDecimal keeps its scale, json keys sorted).
 */
const show = (value: unknown): string => {
  if (value === null) return "null"
  if (value === undefined) return "undefined"
  if (typeof value !== "object") return `${typeof value}:${String(value)}`
  if (value instanceof Timestamp) return `Timestamp:${value.toString()}`
  if (value instanceof CalendarDate) return `CalendarDate:${value.iso}`
  if (value instanceof TimeOfDay) return `TimeOfDay:${value.iso}`
  if (value instanceof SpecialDecimal) return `SpecialDecimal:${value.text}`
  if (BigDecimal.isBigDecimal(value)) return `BigDecimal:${value.value}e-${value.scale}`
  if (value instanceof Uint8Array) return `${value.constructor.name}:${Buffer.from(value).toString("hex")}`
  const sorted = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sorted)
      : typeof v === "object" && v !== null
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, sorted((v as Record<string, unknown>)[k])])
          )
        : v
  return `json(${Object.getPrototypeOf(value) === Array.prototype ? "array" : "object"}):${JSON.stringify(sorted(value))}`
}

const showRows = (rows: ReadonlyArray<Record<string, unknown>>) =>
  rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, show(v)])))

/** what every destination must return for `things` (without `_dlt_*` columns) */
const expectedThings = [
  {
    id: "number:1",
    name: "string:Ada",
    big: "bigint:9007199254740993",
    small: "number:-5",
    ratio: "number:0.25",
    ok: "boolean:true",
    at: "Timestamp:2024-02-29T12:34:56.789123+00:00",
    amount: "BigDecimal:125e-1",
    doc: 'json(object):{"a":[1,"x",null],"b":1,"nested":{"t":true}}',
    raw: "Uint8Array:00ff0a",
    note: "string:first"
  },
  {
    id: "number:2",
    name: "string:Grace",
    big: "bigint:-9007199254740993",
    small: "number:7",
    ratio: "number:-1.5",
    ok: "boolean:false",
    at: "Timestamp:2023-12-31T18:30:00.000001+00:00",
    amount: "BigDecimal:-1e-3",
    doc: "json(array):[1,2,3]",
    raw: "Uint8Array:",
    note: "null"
  },
  {
    id: "number:3",
    name: "string:",
    big: "number:0",
    small: "null",
    ratio: "null",
    ok: "null",
    at: "null",
    amount: "null",
    doc: "null",
    raw: "null",
    note: "null"
  }
]

const everyType = Source.make({
  name: "every_type",
  resources: [Resource.make({ name: "things" }, Stream.fromIterable(things))]
})

/** what a resource sees through PipelineContext.dataset on the next run */
const probe = Source.make({
  name: "probe",
  resources: [
    Resource.make(
      { name: "probe" },
      Stream.fromEffect(
        Effect.gen(function* () {
          const dataset = yield* PipelineContext.dataset
          const rows = yield* dataset.query`SELECT big, ok, at FROM ${dataset.table("things")} WHERE id = ${1}`
          const row = rows[0] ?? {}
          return {
            seen: Object.entries(row)
              .map(([k, v]) => `${k}=${show(v)}`)
              .join(" ")
          }
        })
      )
    )
  ]
})

/** a table dlt created with `date` and `time` columns (pipestate infers neither), with its schema */
const addDltEventsTable = Effect.gen(function* () {
  const dataset = yield* Pipeline.dataset
  const events = dataset.table("events")
  const [date, time] = dataset.dialect === "sqlite" ? ["DATE", "TIME"] : ["date", "time"]
  yield* dataset.query`CREATE TABLE ${events} (id bigint, day ${dataset.sql.literal(date)}, at_time ${dataset.sql.literal(time)})`
  yield* dataset.query`INSERT INTO ${events} (id, day, at_time) VALUES (1, '2024-02-29', '23:59:59.999999'), (2, NULL, NULL)`
  const schema = StoredSchema.bump(
    StoredSchema.mergeTables(StoredSchema.empty("dlt_events"), [
      {
        name: "events",
        write_disposition: "append",
        resource: "events",
        columns: {
          id: { name: "id", data_type: "bigint", nullable: true },
          day: { name: "day", data_type: "date", nullable: true },
          at_time: { name: "at_time", data_type: "time", nullable: true }
        }
      }
    ])
  )
  // a Timestamp parameter is bound as each destination stores timestamps
  yield* dataset.query`INSERT INTO ${dataset.table("_dlt_version")} (version, engine_version, inserted_at, schema_name, version_hash, schema)
    VALUES (${schema.version}, ${schema.engine_version}, ${Timestamp.fromDate(new Date())}, ${schema.name}, ${schema.version_hash}, ${StoredSchema.toText(schema)})`
})

/** runs the scenario on one destination; returns what each query returned, shown as `type:text` */
const scenario = Effect.gen(function* () {
  yield* Pipeline.run(everyType)
  yield* addDltEventsTable
  yield* Pipeline.run(probe)
  const dataset = yield* Pipeline.dataset
  const things = dataset.table("things")

  const all =
    yield* dataset.query`SELECT id, name, big, small, ratio, ok, at, amount, doc, raw, note FROM ${things} WHERE id >= ${1} ORDER BY id`
  // parameters of every kind, bound per dialect
  const byParams = yield* dataset.query`SELECT id FROM ${things}
    WHERE ok = ${true} AND at >= ${ts("2024-02-29T12:34:56.789123+00:00")} AND big = ${9007199254740993n} AND name = ${"Ada"} ORDER BY id`
  const events = yield* dataset.query`SELECT id, day, at_time FROM ${dataset.table("events")} ORDER BY id`
  // expressions and aliases: the driver-neutral rule, and `types` for what SQLite cannot tell
  const aggregates =
    yield* dataset.query`SELECT count(*) AS n, max(id) AS top, sum(small) AS total, min(name) AS first_name FROM ${things}`
  const newest = yield* dataset.query({ types: { newest: "timestamp" } })`SELECT max(at) AS newest FROM ${things}`
  const aliased = yield* dataset.query`SELECT ok AS ok, at AS at FROM ${things} WHERE id = ${2}`
  // the table helper
  const helper = yield* things.rows({ where: { ok: false }, orderBy: "id", limit: 5 })
  const limited = yield* things.rows({ where: dataset.sql`id > ${1}`, orderBy: ["id"], limit: 1 })
  const probeRows = yield* dataset.table("probe").rows()
  const all2 = yield* things.rows({ orderBy: "id" })
  // a limit both databases read alike, or a typed error (SQLite would read -1 as "no limit")
  const none = yield* things.rows({ limit: 0 })
  const badLimits = yield* Effect.forEach([-1, 1.5, Number.NaN], (limit) =>
    Effect.flip(things.rows({ limit })).pipe(
      Effect.map((error) => (error._tag === "InvalidRowsOptions" ? `${error.table}: ${error.reason}` : error._tag))
    )
  )
  return {
    none: none.length,
    badLimits,
    all: showRows(all),
    byParams: showRows(byParams),
    events: showRows(events),
    aggregates: showRows(aggregates),
    newest: showRows(newest),
    aliased: showRows(aliased),
    helper: showRows(helper).map((r) => [r.id, r.ok]),
    limited: showRows(limited).map((r) => r.id),
    probe: probeRows.map((r) => r.seen),
    columns: Object.keys(all2[0] ?? {}).sort(),
    tables: dataset.tables
  }
})

const expectedScenario = {
  none: 0,
  badLimits: [-1, 1.5, "NaN"].map(
    (limit) => `things: limit must be a whole number of at least 0 (all rows: leave it out), not ${limit}`
  ),
  all: expectedThings,
  byParams: [{ id: "number:1" }],
  events: [
    { id: "number:1", day: "CalendarDate:2024-02-29", at_time: "TimeOfDay:23:59:59.999999" },
    { id: "number:2", day: "null", at_time: "null" }
  ],
  aggregates: [{ n: "number:3", top: "number:3", total: "number:2", first_name: "string:" }],
  newest: [{ newest: "Timestamp:2024-02-29T12:34:56.789123+00:00" }],
  aliased: [{ ok: "boolean:false", at: "Timestamp:2023-12-31T18:30:00.000001+00:00" }],
  helper: [["number:2", "boolean:false"]],
  limited: ["number:2"],
  probe: ["big=bigint:9007199254740993 ok=boolean:true at=Timestamp:2024-02-29T12:34:56.789123+00:00"],
  columns: [
    "_dlt_id",
    "_dlt_load_id",
    "amount",
    "at",
    "big",
    "doc",
    "id",
    "name",
    "note",
    "ok",
    "ratio",
    "raw",
    "small"
  ],
  tables: ["events", "probe", "things"]
}

const sqliteLayers = (dir: string) =>
  Layer.mergeAll(
    Pipeline.layerNode({ name: "every_type", dataset: "typed", pipelinesDir: dir }),
    Destination.sqlite({ directory: dir })
  )

const postgresLayers = (dir: string, dataset: string) =>
  Layer.mergeAll(Pipeline.layerNode({ name: "every_type", dataset, pipelinesDir: dir }), testDestination())

describe("Dataset on SQLite", () => {
  it.scopedLive("every column type decodes to the documented JS values", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const result = yield* scenario.pipe(Effect.provide(sqliteLayers(dir)))
      expect(result).toEqual(expectedScenario)
    })
  )

  it.scopedLive("a Schema decodes rows into the user's type; a mismatch is a RowDecodeError", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* Effect.gen(function* () {
        yield* Pipeline.run(everyType)
        const dataset = yield* Pipeline.dataset
        const Thing = Schema.Struct({ id: Schema.Number, name: Schema.String, ok: Schema.NullOr(Schema.Boolean) })
        const decoded = yield* dataset.query({
          schema: Thing
        })`SELECT id, name, ok FROM ${dataset.table("things")} ORDER BY id`
        expect(decoded).toEqual([
          { id: 1, name: "Ada", ok: true },
          { id: 2, name: "Grace", ok: false },
          { id: 3, name: "", ok: null }
        ])
        const Strict = Schema.Struct({ id: Schema.Number, ok: Schema.Boolean })
        const refused = yield* Effect.flip(
          dataset.query({ schema: Strict })`SELECT id, ok FROM ${dataset.table("things")} ORDER BY id`
        )
        expect(refused._tag).toBe("RowDecodeError")
        expect(refused).toMatchObject({ row: 2 })
        expect(refused.message).toContain("row 2")
        expect(refused.message).toContain("ok")
        const helper = yield* dataset
          .table("things")
          .rows({ schema: Schema.Struct({ id: Schema.Number }), where: { id: 2 } })
        expect(helper).toEqual([{ id: 2 }])
      }).pipe(Effect.provide(sqliteLayers(dir)))
    })
  )

  it.scopedLive("typed errors: a missing table, a bad query, a value that does not fit its type, no data yet", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* Effect.gen(function* () {
        // before any load: no schema, no tables; a query names the missing table
        const empty = yield* Pipeline.dataset
        expect(empty.tables).toEqual([])
        const early = yield* Effect.flip(empty.table("things").rows())
        expect(early._tag).toBe("TableNotFound")
        expect(early.message).toContain('has no table "things"')

        yield* Pipeline.run(everyType)
        const dataset = yield* Pipeline.dataset
        const missing = yield* Effect.flip(dataset.query`SELECT * FROM ${dataset.table("nope")}`)
        expect(missing).toBeInstanceOf(Dataset.TableNotFound)
        expect(missing).toMatchObject({ _tag: "TableNotFound", table: "nope", known: ["things"] })
        const missingRows = yield* Effect.flip(dataset.table("nope").rows())
        expect(missingRows).toMatchObject({ _tag: "TableNotFound", table: "nope" })
        // a table that is there but named without its dataset (PostgreSQL's search_path): the
        // message says how to name it
        expect(new Dataset.TableNotFound({ dataset: "d", table: "things", known: ["things"] }).message).toContain(
          `\${dataset.table("things")}`
        )
        expect(yield* dataset.table("nope").exists).toBe(false)
        expect(yield* dataset.table("things").exists).toBe(true)

        const bad = yield* Effect.flip(dataset.query`SELEKT ${1}`)
        expect(bad).toBeInstanceOf(Dataset.QueryFailed)
        expect(bad.message).toContain("SELEKT ?")

        // a schema of an engine pipestate cannot read leaves its tables untyped; the dataset still opens
        yield* dataset.query`INSERT INTO ${dataset.table("_dlt_version")} (version, engine_version, inserted_at, schema_name, version_hash, schema)
          VALUES (${1}, ${99}, ${new Date()}, ${"future"}, ${"h"}, ${JSON.stringify({ name: "future", engine_version: 99 })})`
        const reopened = yield* Pipeline.dataset
        expect(reopened.tables).toEqual(["things"])
        expect(reopened.schemas.map((schema) => schema.name)).toEqual(["every_type"])

        const wrongType = yield* Effect.flip(
          dataset.query({ types: { name: "bigint" } })`SELECT name FROM ${dataset.table("things")} WHERE id = ${1}`
        )
        expect(wrongType).toMatchObject({ _tag: "RowDecodeError", row: 0, column: "name" })
        expect(wrongType.message).toContain('the text "Ada" is not a bigint')
      }).pipe(Effect.provide(sqliteLayers(dir)))
    })
  )

  it.scopedLive("each query is a span with the statement, the dataset and the row count", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const spans: Array<{ readonly name: string; readonly attributes: ReadonlyMap<string, unknown> }> = []
      const tracer = Tracer.make({
        span: (name, parent, context, links, startTime, kind) => {
          const attributes = new Map<string, unknown>()
          const span: Tracer.Span = {
            _tag: "Span",
            name,
            spanId: `s${spans.length}`,
            traceId: "t",
            parent,
            context,
            status: { _tag: "Started", startTime },
            attributes,
            links,
            sampled: true,
            kind,
            end: () => void spans.push({ name, attributes }),
            attribute: (key, value) => void attributes.set(key, value),
            event: () => undefined,
            addLinks: () => undefined
          }
          return span
        },
        context: (f) => f()
      })
      yield* Effect.gen(function* () {
        yield* Pipeline.run(everyType)
        const dataset = yield* Pipeline.dataset
        yield* dataset.query`SELECT id FROM ${dataset.table("things")} WHERE id > ${1}`
      }).pipe(Effect.provide(sqliteLayers(dir)), Effect.withTracer(tracer))
      const query = spans.find((s) => s.name === "pipestate.dataset.query")
      expect(query?.attributes.get("db.query.text")).toBe('SELECT id FROM main."things" WHERE id > ?')
      expect(query?.attributes.get("pipestate.dataset")).toBe("typed")
      expect(query?.attributes.get("pipestate.tables")).toBe("things")
      expect(query?.attributes.get("pipestate.rows")).toBe(2)
      expect(spans.some((s) => s.name === "pipestate.dataset.open")).toBe(true)
    })
  )

  it.scopedLive("a destination that is not SQL has no dataset: DatasetUnavailable", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const notSql = Layer.effect(
        Destination.Destination,
        Effect.map(Destination.Destination, (d) => ({
          ...d,
          dataset: (target: Parameters<typeof d.dataset>[0]) =>
            Effect.map(d.dataset(target), (access) => ({ ...access, sql: Option.none() }))
        }))
      ).pipe(Layer.provide(Destination.sqlite({ directory: dir })))
      const exit = yield* Effect.exit(
        Pipeline.dataset.pipe(
          Effect.provide(Layer.mergeAll(Pipeline.layerNode({ name: "p", dataset: "d", pipelinesDir: dir }), notSql))
        )
      )
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain("DatasetUnavailable")
    })
  )
})

describe.skipIf(!postgresAvailable)("Dataset on PostgreSQL", () => {
  it.scopedLive("the same query text returns identical rows (values and JS types) as on SQLite", () =>
    Effect.gen(function* () {
      const sqliteDir = yield* tempDir()
      const pgDir = yield* tempDir()
      const dataset = yield* freshDataset("typed")
      const onSqlite = yield* scenario.pipe(Effect.provide(sqliteLayers(sqliteDir)))
      const onPostgres = yield* scenario.pipe(Effect.provide(postgresLayers(pgDir, dataset)))
      expect(onPostgres).toEqual(onSqlite)
      expect(onPostgres).toEqual(expectedScenario)
    })
  )

  it.scopedLive("typed errors on PostgreSQL: a missing table, a bad query", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const name = yield* freshDataset("typed")
      yield* Effect.gen(function* () {
        // before any load the schema (the dataset) does not exist: no tables, a typed error
        const empty = yield* Pipeline.dataset
        expect(empty.tables).toEqual([])
        expect(yield* Effect.flip(empty.table("things").rows())).toMatchObject({ _tag: "TableNotFound" })
        yield* Pipeline.run(everyType)
        const dataset = yield* Pipeline.dataset
        const missing = yield* Effect.flip(dataset.query`SELECT * FROM ${dataset.table("nope")}`)
        expect(missing).toMatchObject({ _tag: "TableNotFound", table: "nope", known: ["things"] })
        const bad = yield* Effect.flip(dataset.query`SELEKT ${1}`)
        expect(bad._tag).toBe("QueryFailed")
        expect(bad.message).toContain("SELEKT $1")
      }).pipe(Effect.provide(postgresLayers(dir, name)))
    })
  )
})
