import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import pg from "pg"
import {
  BigDecimal,
  Cause,
  Deferred,
  Effect,
  Either,
  Exit,
  Fiber,
  Layer,
  Logger,
  Option,
  Redacted,
  Schema,
  Stream
} from "effect"
import * as PipelineContext from "../src/context/PipelineContext.js"
import * as ResourceState from "../src/context/ResourceState.js"
import * as Destination from "../src/destination/index.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Source from "../src/pipeline/Source.js"
import * as StateBlob from "../src/internal/state/StateBlob.js"
import * as StateValue from "../src/state/StateValue.js"
import { tempDir, wrapDestination } from "./helpers.js"
import { freshDataset, postgresAvailable, query, TEST_POSTGRES_URL, testDestination } from "./postgres.js"

const Seen = ResourceState.key("seen", Schema.Array(Schema.Number), () => [])

const numbers = (values: ReadonlyArray<number>, name = "numbers") =>
  Resource.make(
    { name, writeDisposition: "append" },
    Stream.unwrap(
      Effect.gen(function* () {
        const seen = yield* Seen.get
        const todo = values.filter((v) => !seen.includes(v))
        yield* Seen.update((list) => [...list, ...todo])
        return Stream.fromIterable(todo.map((n) => ({ n, label: `n${n}` })))
      })
    )
  )

const run = <E, R>(
  dir: string,
  dataset: string,
  source: Source.Source<E, R>,
  destination: Layer.Layer<Destination.Destination, Destination.DestinationError>,
  config: Partial<Pipeline.PipelineConfig> = {}
) =>
  Pipeline.run(source).pipe(
    Effect.provide(Pipeline.layerNode({ name: "pg_pipeline", dataset, pipelinesDir: dir, ...config })),
    Effect.provide(destination)
  )

const count = (dataset: string, table: string) =>
  Effect.promise(() => query<{ c: string }>(`SELECT count(*) AS c FROM "${dataset}"."${table}"`)).pipe(
    Effect.map((rows) => Number(rows[0]?.c))
  )

const stateRows = (dataset: string) =>
  Effect.promise(() =>
    query<{ version: string; version_hash: string; _dlt_load_id: string }>(
      `SELECT version, version_hash, _dlt_load_id FROM "${dataset}"."_dlt_pipeline_state" ORDER BY _dlt_load_id`
    )
  )

describe.skipIf(!postgresAvailable)("Destination.postgres", () => {
  it.scoped("loads every column type and maps it to its PostgreSQL type", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const dataset = yield* freshDataset()
      const when = new Date("2024-02-03T04:05:06.789Z")
      const records = Resource.make(
        { name: "things" },
        Stream.make(
          {
            id: 1,
            big: 2n ** 62n,
            name: 'a "quoted", text\nwith newline',
            empty: "",
            price: 1.25,
            ok: true,
            at: when,
            amount: BigDecimal.unsafeFromString("12345678901234567890.000000001"),
            raw: new Uint8Array([0, 1, 255]),
            doc: { nested: ["x", { y: 1 }], quote: 'he said "hi"' }
          },
          { id: 2, name: null, later: "a column that appears late" }
        )
      )
      const summary = yield* run(dir, dataset, Source.make({ name: "src", resources: [records] }), testDestination())
      expect(summary.tables).toEqual({ things: 2 })
      const types = yield* Effect.promise(() =>
        query<{ column_name: string; data_type: string }>(
          "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'things'",
          [dataset]
        )
      )
      expect(Object.fromEntries(types.map((t) => [t.column_name, t.data_type]))).toEqual({
        _dlt_load_id: "text",
        _dlt_id: "text",
        id: "bigint",
        big: "bigint",
        name: "text",
        empty: "text",
        price: "double precision",
        ok: "boolean",
        at: "timestamp with time zone",
        amount: "numeric",
        raw: "bytea",
        doc: "jsonb",
        later: "text"
      })
      const rows = yield* Effect.promise(() =>
        query(
          `SELECT id::text, big::text, name, empty, price, ok, at, amount::text, encode(raw, 'hex') AS raw, doc, later FROM "${dataset}".things ORDER BY id`
        )
      )
      expect(rows[0]).toEqual({
        id: "1",
        big: (2n ** 62n).toString(),
        name: 'a "quoted", text\nwith newline',
        empty: "",
        price: 1.25,
        ok: true,
        at: when,
        amount: "12345678901234567890.000000001",
        raw: "0001ff",
        doc: { nested: ["x", { y: 1 }], quote: 'he said "hi"' },
        later: null
      })
      expect(rows[1]).toMatchObject({ id: "2", name: null, empty: null, later: "a column that appears late" })
    })
  )

  it.scoped("commits rows, the _dlt_loads row and the state row together, and restores on a clean machine", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const dataset = yield* freshDataset()
      const destination = testDestination()
      yield* run(dir, dataset, Source.make({ name: "src", resources: [numbers([1, 2])] }), destination)
      const second = yield* run(
        dir,
        dataset,
        Source.make({ name: "src", resources: [numbers([1, 2, 3])] }),
        destination
      )
      expect(second.stateVersionAfter).toBe(1)
      const loads = yield* Effect.promise(() =>
        query<{ status: string }>(`SELECT status FROM "${dataset}"._dlt_loads ORDER BY load_id`)
      )
      expect(loads.map((l) => Number(l.status))).toEqual([0, 0])
      const states = yield* stateRows(dataset)
      expect(states.map((s) => Number(s.version))).toEqual([0, 1])
      const withData = yield* Effect.promise(() =>
        query<{ c: string }>(
          `SELECT count(DISTINCT n._dlt_load_id) AS c FROM "${dataset}".numbers n JOIN "${dataset}"._dlt_pipeline_state s ON s._dlt_load_id = n._dlt_load_id`
        )
      )
      expect(Number(withData[0]?.c)).toBe(2)

      NodeFs.rmSync(NodePath.join(dir, "pg_pipeline"), { recursive: true })
      const restored = yield* run(
        dir,
        dataset,
        Source.make({ name: "src", resources: [numbers([1, 2, 3])] }),
        destination
      )
      expect(restored).toMatchObject({
        origin: "destination",
        firstRun: false,
        tables: { numbers: 0 },
        stateVersionAfter: 1
      })
      expect(yield* count(dataset, "numbers")).toBe(3)
    })
  )

  it.scoped("merge upserts on the primary key through COPY", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const dataset = yield* freshDataset()
      const destination = testDestination()
      const users = (rows: ReadonlyArray<{ id: number; name: string }>) =>
        Source.make({
          name: "src",
          resources: [
            Resource.make({ name: "users", writeDisposition: "merge", primaryKey: ["id"] }, Stream.fromIterable(rows))
          ]
        })
      yield* run(
        dir,
        dataset,
        users([
          { id: 1, name: "a" },
          { id: 2, name: "b" }
        ]),
        destination
      )
      yield* run(
        dir,
        dataset,
        users([
          { id: 2, name: "b2" },
          { id: 3, name: "c" },
          { id: 3, name: "c2" }
        ]),
        destination
      )
      const rows = yield* Effect.promise(() =>
        query<{ id: string; name: string }>(`SELECT id, name FROM "${dataset}".users ORDER BY id`)
      )
      expect(rows.map((r) => [Number(r.id), r.name])).toEqual([
        [1, "a"],
        [2, "b2"],
        [3, "c2"]
      ])
    })
  )

  it.scoped("(a) a failure after the rows and before the state row leaves no rows, no load and no state row", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const dataset = yield* freshDataset()
      const destination = testDestination()
      yield* run(dir, dataset, Source.make({ name: "src", resources: [numbers([1])] }), destination)
      const broken = wrapDestination((d) => ({
        ...d,
        // the state row violates NOT NULL: the insert fails after COPY wrote the rows
        transaction: (target, options, body) =>
          d.transaction(target, options, (tx) =>
            body({ ...tx, insertState: (row) => tx.insertState({ ...row, state: null as unknown as string }) })
          )
      }))(destination)
      const exit = yield* Effect.exit(
        run(dir, dataset, Source.make({ name: "src", resources: [numbers([1, 2, 3, 4])] }), broken)
      )
      expect(Exit.isFailure(exit)).toBe(true)
      expect(yield* count(dataset, "numbers")).toBe(1)
      expect(yield* count(dataset, "_dlt_loads")).toBe(1)
      expect((yield* stateRows(dataset)).length).toBe(1)
      const next = yield* run(
        dir,
        dataset,
        Source.make({ name: "src", resources: [numbers([1, 2, 3, 4])] }),
        destination
      )
      expect(next.tables).toEqual({ numbers: 3 })
    })
  )

  it.live(
    "(b) the connection killed mid-load leaves the destination as before; the next run loads every row once",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const dir = yield* tempDir()
          const dataset = yield* freshDataset()
          const destination = testDestination()
          const total = 150_000
          const big = Resource.make(
            { name: "big", writeDisposition: "append" },
            Stream.unwrap(
              Effect.gen(function* () {
                const done = yield* ResourceState.get("done")
                if (Option.isSome(done)) return Stream.empty
                yield* ResourceState.set("done", true)
                return Stream.range(1, total).pipe(Stream.map((id) => ({ id, payload: `row ${id}`, more: id * 1.5 })))
              })
            )
          )
          const source = Source.make({ name: "src", resources: [big] })
          const killer = Effect.acquireUseRelease(
            Effect.promise(async () => {
              const client = new pg.Client({ connectionString: TEST_POSTGRES_URL })
              await client.connect()
              return client
            }),
            (client) =>
              Effect.gen(function* () {
                for (let i = 0; i < 3000; i++) {
                  const killed = yield* Effect.promise(() =>
                    client.query<{ pg_terminate_backend: boolean }>(
                      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pipestate' AND state = 'active' AND query LIKE $1`,
                      [`COPY "${dataset}".%`]
                    )
                  )
                  if (killed.rows.some((k) => k.pg_terminate_backend)) return true
                  yield* Effect.sleep("2 millis")
                }
                return false
              }),
            (client) => Effect.promise(() => client.end())
          )
          const killerFiber = yield* Effect.fork(killer)
          const exit = yield* Effect.exit(run(dir, dataset, source, destination))
          const killed = yield* Fiber.join(killerFiber)
          expect(killed).toBe(true)
          expect(Exit.isFailure(exit)).toBe(true)
          if (Exit.isFailure(exit)) {
            const error = Cause.failureOption(exit.cause)
            expect(Option.map(error, (e) => (e as { _tag: string })._tag)).toEqual(Option.some("DestinationError"))
          }
          const tables = yield* Effect.promise(() =>
            query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1`, [dataset])
          )
          // the dataset may exist (created before the transaction) but holds no data table and no load
          expect(tables.map((t) => t.table_name).sort()).not.toContain("big")
          const loads = yield* Effect.promise(() =>
            query(`SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = '_dlt_loads'`, [
              dataset
            ])
          )
          if (loads.length > 0) expect(yield* count(dataset, "_dlt_loads")).toBe(0)
          const next = yield* run(dir, dataset, source, destination)
          expect(next.tables).toEqual({ big: total })
          const check = yield* Effect.promise(() =>
            query<{ c: string; d: string }>(`SELECT count(*) AS c, count(DISTINCT id) AS d FROM "${dataset}".big`)
          )
          expect(check.map((r) => [Number(r.c), Number(r.d)])).toEqual([[total, total]])
        })
      )
  )

  it.live(
    "two runs of one pipeline started at once: one commits, the other fails with StateConflict and writes nothing",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const dirA = yield* tempDir()
          const dirB = yield* tempDir()
          const dataset = yield* freshDataset()
          const destination = testDestination()
          yield* run(dirA, dataset, Source.make({ name: "src", resources: [numbers([1])] }), destination)
          NodeFs.cpSync(dirA, dirB, { recursive: true })
          const bothStarted = yield* Deferred.make<void>()
          let started = 0
          const gated = (tag: string) =>
            Resource.make(
              { name: "numbers" },
              Stream.unwrap(
                Effect.gen(function* () {
                  yield* Seen.update((list) => [...list, tag === "a" ? 100 : 200])
                  started += 1
                  if (started === 2) yield* Deferred.succeed(bothStarted, undefined)
                  yield* Deferred.await(bothStarted)
                  return Stream.make({ n: tag === "a" ? 100 : 200 })
                })
              )
            )
          const [a, b] = yield* Effect.all(
            [
              Effect.either(run(dirA, dataset, Source.make({ name: "src", resources: [gated("a")] }), destination)),
              Effect.either(run(dirB, dataset, Source.make({ name: "src", resources: [gated("b")] }), destination))
            ],
            { concurrency: 2 }
          )
          const outcomes = [a, b]
            .map((e) => (Either.isRight(e) ? "committed" : (e.left as { _tag: string })._tag))
            .sort()
          expect(outcomes).toEqual(["StateConflict", "committed"])
          const loser = [a, b].find(Either.isLeft)!
          expect(String((loser.left as Error).message)).toMatch(/version 0 .* to version 1 /)
          expect(loser.left).toMatchObject({ expectedVersion: 0, foundVersion: 1 })
          expect(yield* count(dataset, "numbers")).toBe(2)
          expect((yield* stateRows(dataset)).map((s) => Number(s.version))).toEqual([0, 1])
        })
      )
  )

  it.scoped("the seed's user_comments example reads max(_id) through PipelineContext.dataset", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const dataset = yield* freshDataset()
      const destination = testDestination()
      let available = [1, 2, 3]
      const comments = (userId: string) =>
        Resource.make(
          { name: "user_comments" },
          Stream.unwrap(
            Effect.gen(function* () {
              const pipeline = yield* PipelineContext.PipelineContext
              let maxId = 0
              if (!pipeline.firstRun) {
                const data = yield* pipeline.dataset
                const rows =
                  yield* data.query`SELECT max(_id) AS max_id FROM ${data.table("user_comments")} WHERE user_id = ${userId}`
                maxId = Number(rows[0]?.max_id ?? 0)
              }
              return Stream.fromIterable(
                available.filter((i) => i > maxId).map((i) => ({ _id: i, value: "ABCDE"[i - 1], user_id: userId }))
              )
            })
          )
        )
      const source = Source.make({ name: "comments", resources: [comments("u1")] })
      expect((yield* run(dir, dataset, source, destination)).tables).toEqual({ user_comments: 3 })
      expect((yield* run(dir, dataset, source, destination)).tables).toEqual({ user_comments: 0 })
      available = [1, 2, 3, 4, 5]
      expect((yield* run(dir, dataset, source, destination)).tables).toEqual({ user_comments: 2 })
      expect(yield* count(dataset, "user_comments")).toBe(5)
    })
  )

  it.scoped("keeps the newest N state rows and warns once when the state grows past the size limit", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const dataset = yield* freshDataset()
      const destination = testDestination()
      const warnings: Array<string> = []
      const logger = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ logLevel, message }) => {
          if (logLevel._tag === "Warning") warnings.push(String(Array.isArray(message) ? message.join(" ") : message))
        })
      )
      for (let i = 1; i <= 5; i++) {
        yield* run(
          dir,
          dataset,
          Source.make({ name: "src", resources: [numbers(Array.from({ length: i * 40 }, (_, k) => k))] }),
          destination,
          {
            keepStateVersions: 3,
            stateSizeWarningBytes: 200
          }
        ).pipe(Effect.provide(logger))
      }
      const states = yield* stateRows(dataset)
      expect(states.map((s) => Number(s.version))).toEqual([2, 3, 4])
      expect(warnings.length).toBeGreaterThanOrEqual(1)
      expect(warnings.filter((w) => w.includes("encoded state")).length).toBeLessThanOrEqual(5)
      expect(warnings[0]).toContain("sources.src.resources.numbers")
    })
  )

  it.scoped("identifiers are quoted: a hostile resource name and dataset are stored, never executed", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const dataset = yield* freshDataset('x"; DROP TABLE y; --')
      yield* Effect.promise(() => query(`CREATE TABLE IF NOT EXISTS public.y (id int)`))
      const hostile = Resource.make({ name: 'x"; DROP TABLE y; --' }, Stream.make({ 'a"; DROP TABLE y; --': 1 }))
      const summary = yield* run(dir, dataset, Source.make({ name: "src", resources: [hostile] }), testDestination())
      expect(Object.keys(summary.tables)).toEqual(["x_drop_table_yxxx"])
      const y = yield* Effect.promise(() => query(`SELECT to_regclass('public.y') AS t`))
      expect(y[0]?.t).toBe("y")
      const rows = yield* Effect.promise(() =>
        query(`SELECT a_drop_table_yxxx FROM "${dataset.replaceAll('"', '""')}".x_drop_table_yxxx`)
      )
      expect(rows).toEqual([{ a_drop_table_yxxx: "1" }])
    })
  )

  it.scoped("devMode loads into a fresh dataset and never restores", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const base = yield* freshDataset()
      const destination = testDestination()
      yield* run(dir, base, Source.make({ name: "src", resources: [numbers([1, 2])] }), destination)
      const dev = yield* run(dir, base, Source.make({ name: "src", resources: [numbers([1, 2])] }), destination, {
        devMode: true
      })
      yield* Effect.addFinalizer(() =>
        Effect.promise(() => query(`DROP SCHEMA IF EXISTS "${dev.dataset}" CASCADE`)).pipe(Effect.ignore)
      )
      expect(dev.dataset).toMatch(new RegExp(`^${base}_\\d{14}$`))
      // the local state belongs to the base dataset: the dev dataset starts from an empty state
      expect(dev).toMatchObject({ origin: "target-changed-new", firstRun: true, tables: { numbers: 2 } })
    })
  )

  it.scoped("a dropped dataset resets the pipeline; sync restores, or fails keeping the local state", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const dataset = yield* freshDataset()
      const destination = testDestination()
      yield* run(dir, dataset, Source.make({ name: "src", resources: [numbers([1, 2])] }), destination)
      yield* run(dir, dataset, Source.make({ name: "src", resources: [numbers([1, 2, 3])] }), destination)

      const layers = Layer.merge(Pipeline.layerNode({ name: "pg_pipeline", dataset, pipelinesDir: dir }), destination)
      NodeFs.writeFileSync(NodePath.join(dir, "pg_pipeline", "state.json"), "{ garbage")
      const restored = yield* Pipeline.sync.pipe(Effect.provide(layers))
      expect(restored).toMatchObject({ version: 1 })
      const local = JSON.parse(NodeFs.readFileSync(NodePath.join(dir, "pg_pipeline", "state.json"), "utf8"))
      expect(local._state_version).toBe(1)

      yield* Effect.promise(() => query(`DROP SCHEMA "${dataset}" CASCADE`))
      const after = yield* run(dir, dataset, Source.make({ name: "src", resources: [numbers([1, 2, 3])] }), destination)
      expect(after).toMatchObject({
        origin: "reset-dataset-dropped",
        firstRun: true,
        stateVersionBefore: 0,
        tables: { numbers: 3 }
      })

      yield* Effect.promise(() => query(`DROP SCHEMA "${dataset}" CASCADE`))
      const before = NodeFs.readFileSync(NodePath.join(dir, "pg_pipeline", "state.json"), "utf8")
      const nothing = yield* Effect.flip(Pipeline.sync.pipe(Effect.provide(layers)))
      expect(nothing._tag).toBe("NoStateInDestination")
      // nothing to restore from: the local state stays as it was
      expect(NodeFs.readFileSync(NodePath.join(dir, "pg_pipeline", "state.json"), "utf8")).toBe(before)
    })
  )

  it.scoped("state blobs written to PostgreSQL decode to the committed document", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const dataset = yield* freshDataset()
      const typed = Resource.make(
        { name: "typed" },
        Stream.fromEffect(
          Effect.as(
            ResourceState.set("values", {
              when: new Date("2024-01-01T00:00:00.000Z"),
              amount: BigDecimal.unsafeFromString("1.5"),
              raw: new Uint8Array([1, 2, 3])
            }),
            { ok: true }
          )
        )
      )
      yield* run(dir, dataset, Source.make({ name: "src", resources: [typed] }), testDestination())
      const rows = yield* Effect.promise(() =>
        query<{ state: string }>(`SELECT state FROM "${dataset}"._dlt_pipeline_state`)
      )
      const decoded = Either.getOrThrow(StateBlob.decode(rows[0]!.state))
      const local = JSON.parse(NodeFs.readFileSync(NodePath.join(dir, "pg_pipeline", "state.json"), "utf8"))
      expect(decoded._version_hash).toBe(local._version_hash)
      const values = (decoded.sources.src?.resources as Record<string, Record<string, unknown>> | undefined)?.typed
        ?.values
      expect(values).toEqual({
        // a Date is stored as a UTC datetime and read back as a Timestamp
        when: StateValue.Timestamp.fromDate(new Date("2024-01-01T00:00:00.000Z")),
        amount: BigDecimal.unsafeFromString("1.5"),
        raw: new Uint8Array([1, 2, 3])
      })
    })
  )

  it.effect("an unreachable server is a DestinationError naming host and port, never the password", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Layer.build(
          Destination.postgres({
            url: Redacted.make("postgres://loader:s3cret-pw@127.0.0.1:1/nowhere"),
            connectTimeout: "2 seconds"
          })
        ).pipe(Effect.scoped)
      )
      expect(error._tag).toBe("DestinationError")
      expect(error.message).toContain("127.0.0.1:1")
      expect(error.message).not.toContain("s3cret-pw")
    }).pipe(Effect.provide(Layer.empty))
  )
})
