import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Either, Exit, Layer, Option, Schema, Stream } from "effect"
import * as PipelineContext from "../src/context/PipelineContext.js"
import * as ResourceState from "../src/context/ResourceState.js"
import * as SourceState from "../src/context/SourceState.js"
import * as Destination from "../src/destination/index.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Source from "../src/pipeline/Source.js"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import * as StateBlob from "../src/internal/state/StateBlob.js"
import { tempDir, wrapDestination, newestStored } from "./helpers.js"

const Seen = ResourceState.key("seen", Schema.Array(Schema.Number), () => [])

/** a resource that loads the numbers not seen before and remembers them */
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

const runIn = <E, R>(
  dir: string,
  source: Source.Source<E, R>,
  destination: Layer.Layer<Destination.Destination>,
  config: Partial<Pipeline.PipelineConfig> = {}
) =>
  Pipeline.run(source).pipe(
    Effect.provide(Pipeline.layerNode({ name: "p", dataset: "ds", pipelinesDir: dir, ...config })),
    Effect.provide(destination)
  )

const readLocal = (dir: string, name = "p") =>
  PipelineState.fromFileText(NodeFs.readFileSync(NodePath.join(dir, name, "state.json"), "utf8"))

const rowsOf = (destination: Layer.Layer<Destination.Destination>, table: string, dir: string, dataset = "ds") =>
  Effect.gen(function* () {
    const d = yield* Destination.Destination
    const access = yield* d.dataset({ dataset, pipelineDir: NodePath.join(dir, "p") })
    if (!(yield* access.tableExists(table))) return []
    return yield* access.execute(`SELECT * FROM ${access.table(table)} ORDER BY rowid`)
  }).pipe(Effect.provide(destination))

describe("Pipeline.run", () => {
  it.scoped("loads rows and keeps resource state across runs of the same pipeline", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = Destination.memory()
      const shared = yield* Layer.memoize(destination)
      const first = yield* runIn(dir, Source.make({ name: "src", resources: [numbers([1, 2, 3])] }), shared)
      expect(first.tables).toEqual({ numbers: 3 })
      expect(first.firstRun).toBe(true)
      expect(first.stateVersionBefore).toBe(0)
      expect(first.stateVersionAfter).toBe(0) // the first hash does not bump the version

      const second = yield* runIn(dir, Source.make({ name: "src", resources: [numbers([1, 2, 3, 4])] }), shared)
      expect(second.tables).toEqual({ numbers: 1 })
      expect(second.firstRun).toBe(false)
      expect(second.stateVersionAfter).toBe(1)

      const third = yield* runIn(dir, Source.make({ name: "src", resources: [numbers([1, 2, 3, 4])] }), shared)
      expect(third.tables).toEqual({ numbers: 0 })
      expect(third.stateChanged).toBe(false)
      expect(third.loadId).toBeNull()
      expect(third.stateVersionAfter).toBe(1)

      const rows = yield* rowsOf(shared, "numbers", dir)
      expect(rows.map((r) => r.n)).toEqual([1, 2, 3, 4])
      expect(rows.every((r) => typeof r._dlt_id === "string" && typeof r._dlt_load_id === "string")).toBe(true)
      const local = Either.getOrThrow(readLocal(dir))
      expect(local.sources.src?.resources).toEqual({ numbers: { seen: [1, 2, 3, 4] } })
    })
  )

  it.scoped("a pipeline with another name never sees the state", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const shared = yield* Layer.memoize(Destination.memory())
      yield* runIn(dir, Source.make({ name: "src", resources: [numbers([1, 2])] }), shared)
      const other = yield* runIn(dir, Source.make({ name: "src", resources: [numbers([1, 2])] }), shared, {
        name: "other"
      })
      expect(other.firstRun).toBe(true)
      expect(other.tables).toEqual({ numbers: 2 })
    })
  )

  it.scoped("a failing stream leaves the committed state and the destination exactly as before", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const shared = yield* Layer.memoize(Destination.memory())
      yield* runIn(dir, Source.make({ name: "src", resources: [numbers([1])] }), shared)
      const before = NodeFs.readFileSync(NodePath.join(dir, "p", "state.json"), "utf8")
      const failing = Resource.make(
        { name: "numbers" },
        Stream.unwrap(
          Effect.gen(function* () {
            yield* Seen.update((list) => [...list, 99])
            return Stream.concat(Stream.make({ n: 99 }), Stream.fail("the API broke" as const))
          })
        )
      )
      const exit = yield* Effect.exit(runIn(dir, Source.make({ name: "src", resources: [failing] }), shared))
      expect(exit).toStrictEqual(Exit.fail("the API broke"))
      expect(NodeFs.readFileSync(NodePath.join(dir, "p", "state.json"), "utf8")).toBe(before)
      const rows = yield* rowsOf(shared, "numbers", dir)
      expect(rows.map((r) => r.n)).toEqual([1])
      const remote = yield* Effect.flatMap(Destination.Destination, (d) =>
        d.stateRows({ dataset: "ds", pipelineDir: NodePath.join(dir, "p") }, "p", 10)
      ).pipe(Effect.provide(shared))
      expect(remote).toHaveLength(1)
    })
  )

  it.scoped("a failing load leaves the committed state exactly as before and loads no rows", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const shared = yield* Layer.memoize(Destination.memory())
      yield* runIn(dir, Source.make({ name: "src", resources: [numbers([1])] }), shared)
      const before = NodeFs.readFileSync(NodePath.join(dir, "p", "state.json"), "utf8")
      // the state row insert fails inside the transaction, after the rows went in
      const broken = wrapDestination((d) => ({
        ...d,
        transaction: (target, options, body) =>
          d.transaction(target, options, (tx) =>
            body({ ...tx, insertState: (row) => tx.insertState({ ...row, state: null as unknown as string }) })
          )
      }))(shared)
      const exit = yield* Effect.exit(runIn(dir, Source.make({ name: "src", resources: [numbers([1, 2, 3])] }), broken))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(NodeFs.readFileSync(NodePath.join(dir, "p", "state.json"), "utf8")).toBe(before)
      const rows = yield* rowsOf(shared, "numbers", dir)
      expect(rows.map((r) => r.n)).toEqual([1])
      const next = yield* runIn(dir, Source.make({ name: "src", resources: [numbers([1, 2, 3])] }), shared)
      expect(next.tables).toEqual({ numbers: 2 })
    })
  )

  it.scoped("a replace resource starts every run with an empty state slot and an empty table", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const shared = yield* Layer.memoize(Destination.memory())
      const Runs = ResourceState.key("runs", Schema.Number, () => 0)
      const snapshot = Resource.make(
        { name: "snapshot", writeDisposition: "replace" },
        Stream.unwrap(
          Effect.map(
            Runs.update((n) => n + 1),
            (n) => Stream.make({ run: n }, { run: n })
          )
        )
      )
      yield* runIn(dir, Source.make({ name: "src", resources: [snapshot] }), shared)
      yield* runIn(dir, Source.make({ name: "src", resources: [snapshot] }), shared)
      const rows = yield* rowsOf(shared, "snapshot", dir)
      expect(rows.map((r) => r.run)).toEqual([1, 1])
      const local = Either.getOrThrow(readLocal(dir))
      expect(local.sources.src?.resources).toEqual({ snapshot: { runs: 1 } })
    })
  )

  it.scoped("merge upserts on the primary key, the last record of a key winning", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const shared = yield* Layer.memoize(Destination.sqlite())
      const users = (rows: ReadonlyArray<{ id: number; name: string }>) =>
        Source.make({
          name: "src",
          resources: [
            Resource.make({ name: "users", writeDisposition: "merge", primaryKey: ["id"] }, Stream.fromIterable(rows))
          ]
        })
      yield* runIn(
        dir,
        users([
          { id: 1, name: "a" },
          { id: 2, name: "b" }
        ]),
        shared
      )
      yield* runIn(
        dir,
        users([
          { id: 2, name: "b2" },
          { id: 3, name: "c" },
          { id: 3, name: "c2" }
        ]),
        shared
      )
      const rows = yield* rowsOf(shared, "users", dir)
      expect(rows.map((r) => [r.id, r.name]).sort()).toEqual([
        [1, "a"],
        [2, "b2"],
        [3, "c2"]
      ])
      expect(NodeFs.existsSync(NodePath.join(dir, "p", "ds.sqlite"))).toBe(true)
    })
  )

  it.scoped("N concurrent resources doing M source-state increments each end with exactly N*M", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const Counter = SourceState.key("counter", Schema.Number, () => 0)
      const N = 8
      const M = 250
      const counting = (i: number) =>
        Resource.make(
          { name: `r${i}` },
          Stream.range(1, M).pipe(
            Stream.mapEffect(() =>
              Effect.zipRight(
                Effect.yieldNow(),
                Counter.update((n) => n + 1)
              )
            ),
            Stream.drain
          )
        )
      const source = Source.make({ name: "src", resources: Array.from({ length: N }, (_, i) => counting(i)) })
      yield* runIn(dir, source, Destination.memory(), { concurrency: N })
      const local = Either.getOrThrow(readLocal(dir))
      expect(local.sources.src?.counter).toBe(N * M)
    })
  )

  it.scoped("source state is read-only in a source's setup effect", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const source = Source.withSetup({
        name: "src",
        setup: SourceState.set("mapping", { a: "b" }),
        resources: () => [numbers([1])]
      })
      const exit = yield* Effect.exit(runIn(dir, source, Destination.memory()))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const error = Chunk.unsafeHead(Cause.failures(exit.cause))
        expect(error).toMatchObject({ _tag: "ReadOnlyState", path: "sources.src.mapping" })
        expect(String((error as Error).message)).toContain("read-only")
      }
    })
  )

  it.scoped("source setup can read the source state and the resources read what another wrote", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const shared = yield* Layer.memoize(Destination.memory())
      const writer = Resource.make(
        { name: "writer" },
        Stream.fromEffect(Effect.as(SourceState.set("mapping", { a: "Alpha" }), { ok: true }))
      )
      yield* runIn(dir, Source.make({ name: "src", resources: [writer] }), shared)
      const source = Source.withSetup({
        name: "src",
        setup: SourceState.get("mapping"),
        resources: (mapping) => [Resource.make({ name: "reader" }, Stream.make({ mapping: Option.getOrNull(mapping) }))]
      })
      yield* runIn(dir, source, shared)
      const rows = yield* rowsOf(shared, "reader", dir)
      expect(rows.map((r) => JSON.parse(String(r.mapping)))).toEqual([{ a: "Alpha" }])
    })
  )

  it.scoped("a value that cannot be stored fails with the path of the offending value", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const bad = Resource.make(
        { name: "players_games" },
        Stream.fromEffect(Effect.as(ResourceState.set("archives", ["a", "b", "c", () => 1]), { x: 1 }))
      )
      const exit = yield* Effect.exit(
        runIn(dir, Source.make({ name: "chess", resources: [bad] }), Destination.memory())
      )
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const error = Chunk.unsafeHead(Cause.failures(exit.cause))
        expect(error).toMatchObject({ _tag: "NonSerializableStateValue" })
        expect((error as { path: string }).path).toBe("sources.chess.resources.players_games.archives[3]")
      }
    })
  )

  it.scoped("infers column types and adds columns as they appear", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const shared = yield* Layer.memoize(Destination.sqlite())
      const when = new Date("2024-02-03T04:05:06.789Z")
      const records = Resource.make(
        { name: "Things" },
        Stream.make(
          { id: 1, name: "a", price: 1.5, ok: true, at: when, tags: ["x"], firstName: "Ada" },
          { id: 2, name: "b", price: 2, ok: false, late: "new column", nested: { deep: 1 } }
        )
      )
      yield* runIn(dir, Source.make({ name: "src", resources: [records] }), shared)
      const columns = yield* Effect.flatMap(Destination.Destination, (d) =>
        d.describeTables({ dataset: "ds", pipelineDir: NodePath.join(dir, "p") }, ["things"])
      ).pipe(Effect.provide(shared))
      expect(Object.fromEntries((columns.get("things") ?? []).map((c) => [c.name, c.type]))).toEqual({
        _dlt_load_id: "text",
        _dlt_id: "text",
        id: "bigint",
        name: "text",
        price: "double",
        ok: "boolean",
        at: "timestamp",
        tags: "json",
        first_name: "text",
        late: "text",
        nested: "json"
      })
      const rows = yield* rowsOf(shared, "things", dir)
      // SQLite keeps timestamps as dlt does: naive UTC text with six fraction digits
      expect(rows[0]).toMatchObject({
        id: 1,
        price: 1.5,
        ok: 1,
        at: "2024-02-03 04:05:06.789000",
        tags: '["x"]',
        late: null
      })
      expect(rows[1]).toMatchObject({ id: 2, price: 2, ok: 0, late: "new column", nested: '{"deep":1}' })
    })
  )

  it.scoped("PipelineContext tells the resource about the pipeline and reads the loaded data", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const shared = yield* Layer.memoize(Destination.memory())
      const probe = Resource.make(
        { name: "probe" },
        Stream.fromEffect(
          Effect.gen(function* () {
            const ctx = yield* PipelineContext.PipelineContext
            const dataset = yield* ctx.dataset
            const exists = yield* dataset.table("probe").exists
            const count = exists
              ? Number((yield* dataset.query`SELECT count(*) AS c FROM ${dataset.table("probe")}`)[0]?.c)
              : 0
            return {
              first_run: ctx.firstRun,
              pipeline: ctx.pipelineName,
              dataset: ctx.datasetName,
              destination: ctx.destinationName,
              count
            }
          })
        )
      )
      yield* runIn(dir, Source.make({ name: "src", resources: [probe] }), shared)
      yield* runIn(dir, Source.make({ name: "src", resources: [probe] }), shared)
      const rows = yield* rowsOf(shared, "probe", dir)
      expect(rows.map((r) => [r.first_run, r.pipeline, r.dataset, r.destination, r.count])).toEqual([
        [1, "p", "ds", "memory", 0],
        [0, "p", "ds", "memory", 1]
      ])
    })
  )

  it.scoped("a typed key whose schema holds a Date (Schema.DateFromSelf) reads back the Date it stored", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.memory())
      const Seen = ResourceState.key("seen", Schema.Struct({ at: Schema.DateFromSelf }), () => ({ at: new Date(0) }))
      const Last = ResourceState.key("last", Schema.DateFromSelf, () => new Date(0))
      const seen: Array<number> = []
      const clock = (ms: number) =>
        Resource.make(
          { name: "clock" },
          Stream.fromEffect(
            Effect.gen(function* () {
              const last = yield* Last.get
              const nested = yield* Seen.get
              seen.push(last.getTime(), nested.at.getTime())
              yield* Last.set(new Date(ms))
              yield* Seen.set({ at: new Date(ms) })
              return { ms }
            })
          )
        )
      yield* runIn(dir, Source.make({ name: "src", resources: [clock(1_234)] }), destination)
      // a clean working dir: the state comes back from the destination
      NodeFs.rmSync(NodePath.join(dir, "p"), { recursive: true })
      yield* runIn(dir, Source.make({ name: "src", resources: [clock(5_678)] }), destination)
      expect(seen).toEqual([0, 0, 1_234, 1_234])
    })
  )

  it.scoped("a primaryKey given as one name (as dlt allows) merges on it", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.memory())
      const users = (rows: ReadonlyArray<{ readonly id: number; readonly name: string }>) =>
        Resource.make({ name: "users", writeDisposition: "merge", primaryKey: "id" }, Stream.fromIterable(rows))
      expect(users([]).primaryKey).toEqual(["id"])
      yield* runIn(dir, Source.make({ name: "src", resources: [users([{ id: 1, name: "a" }])] }), destination)
      yield* runIn(dir, Source.make({ name: "src", resources: [users([{ id: 1, name: "b" }])] }), destination)
      expect((yield* rowsOf(destination, "users", dir)).map((r) => r.name)).toEqual(["b"])
    })
  )

  it.scoped("refuses dataset names a destination would alter or reserves, with InvalidDatasetName", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      for (const dataset of ["a.sub", ".", "..", "pg_temp_x", "PG_mine", "information_schema", "x".repeat(64)]) {
        const error = yield* Effect.flip(
          runIn(dir, Source.make({ name: "src", resources: [numbers([1])] }), Destination.memory(), { dataset })
        )
        expect(error._tag, dataset).toBe("InvalidDatasetName")
      }
      // 63 bytes is fine
      const ok = yield* runIn(dir, Source.make({ name: "src", resources: [numbers([1])] }), Destination.memory(), {
        dataset: "x".repeat(63)
      })
      expect(ok.tables.numbers).toBe(1)
    })
  )

  it.scoped("keeps the newest keepStateVersions state rows on SQLite", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const data = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.sqlite({ directory: data }))
      for (let i = 1; i <= 5; i++) {
        yield* runIn(dir, Source.make({ name: "src", resources: [numbers([i])] }), destination, { keepStateVersions: 2 })
      }
      const versions = yield* Effect.gen(function* () {
        const d = yield* Destination.Destination
        const access = yield* d.dataset({ dataset: "ds", pipelineDir: NodePath.join(dir, "p") })
        return yield* access.execute(`SELECT version FROM ${access.table("_dlt_pipeline_state")} ORDER BY version`)
      }).pipe(Effect.provide(destination))
      expect(versions.map((r) => Number(r.version))).toEqual([3, 4])
    })
  )

  it.scoped("currentState tells the state a run would start from and writes nothing", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const data = yield* tempDir()
      const destination = Destination.sqlite({ directory: data })
      yield* runIn(dir, Source.make({ name: "src", resources: [numbers([1, 2])] }), destination)
      const statePath = NodePath.join(dir, "p", "state.json")
      NodeFs.rmSync(statePath)
      const before = NodeFs.readdirSync(NodePath.join(dir, "p")).sort()
      const state = yield* Pipeline.currentState.pipe(
        Effect.provide(Pipeline.layerNode({ name: "p", dataset: "ds", pipelinesDir: dir })),
        Effect.provide(destination)
      )
      expect(PipelineState.getResourceSlot(state, "src", "numbers")).toEqual({ seen: [1, 2] })
      expect(NodeFs.existsSync(statePath)).toBe(false)
      // nothing was written (the lock only clears debris: spools of killed runs, temporary files)
      const after = NodeFs.readdirSync(NodePath.join(dir, "p"))
      expect(after.filter((entry) => !before.includes(entry))).toEqual([])
    })
  )

  it.scoped("a clean working dir restores the state from the destination (SQLite)", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const data = yield* tempDir()
      const destination = Destination.sqlite({ directory: data })
      yield* runIn(dir, Source.make({ name: "src", resources: [numbers([1, 2])] }), destination)
      yield* runIn(dir, Source.make({ name: "src", resources: [numbers([1, 2, 3])] }), destination)
      NodeFs.rmSync(NodePath.join(dir, "p"), { recursive: true })
      const again = yield* runIn(dir, Source.make({ name: "src", resources: [numbers([1, 2, 3])] }), destination)
      expect(again.origin).toBe("destination")
      expect(again.firstRun).toBe(false)
      expect(again.tables).toEqual({ numbers: 0 })
      expect(again.stateVersionAfter).toBe(1)
      const stored = yield* newestStored({ dataset: "ds", pipelineDir: NodePath.join(dir, "p") }, "p").pipe(
        Effect.provide(destination)
      )
      const decoded = Either.getOrThrow(StateBlob.decode(Option.getOrThrow(stored).state))
      expect(decoded.sources.src?.resources).toEqual({ numbers: { seen: [1, 2, 3] } })
    })
  )

  it.scoped("the destination wins when it holds a newer version than the local file (crash after commit)", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const data = yield* tempDir()
      const destination = Destination.sqlite({ directory: data })
      const statePath = NodePath.join(dir, "p", "state.json")
      yield* runIn(dir, Source.make({ name: "src", resources: [numbers([1])] }), destination)
      const stale = NodeFs.readFileSync(statePath, "utf8")
      yield* runIn(dir, Source.make({ name: "src", resources: [numbers([1, 2])] }), destination)
      // the process died after the commit and before the local write: the file is one version behind
      NodeFs.writeFileSync(statePath, stale)
      const next = yield* runIn(dir, Source.make({ name: "src", resources: [numbers([1, 2])] }), destination)
      expect(next.origin).toBe("destination")
      expect(next.tables).toEqual({ numbers: 0 })
      expect(next.stateVersionBefore).toBe(1)
      const rows = yield* rowsOf(destination, "numbers", dir)
      expect(rows.map((r) => r.n)).toEqual([1, 2])
    })
  )

  it.scoped("a json value that cannot be serialized fails the run with a typed error, not a crash", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const bad = Resource.make({ name: "bad" }, Stream.make({ doc: { big: 1n } }))
      const error = yield* Effect.flip(runIn(dir, Source.make({ name: "src", resources: [bad] }), Destination.sqlite()))
      // refused while normalizing, before the destination sees it
      expect(error._tag).toBe("UnsupportedValue")
      expect(error.message).toContain("a bigint at .big")
    })
  )

  it.scoped("a pipeline layer keeps working after its working dir was deleted", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const data = yield* tempDir()
      const layers = Layer.merge(
        Pipeline.layerNode({ name: "p", dataset: "ds", pipelinesDir: dir }),
        Destination.sqlite({ directory: data })
      )
      const result = yield* Effect.gen(function* () {
        yield* Pipeline.run(Source.make({ name: "src", resources: [numbers([1, 2])] }))
        NodeFs.rmSync(NodePath.join(dir, "p"), { recursive: true })
        return yield* Pipeline.run(Source.make({ name: "src", resources: [numbers([1, 2, 3])] }))
      }).pipe(Effect.provide(layers))
      expect(result).toMatchObject({ origin: "destination", tables: { numbers: 1 } })
    })
  )

  it.scoped("with restoreFromDestination off a clean working dir starts over", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const data = yield* tempDir()
      const destination = Destination.sqlite({ directory: data })
      yield* runIn(dir, Source.make({ name: "src", resources: [numbers([1, 2])] }), destination)
      NodeFs.rmSync(NodePath.join(dir, "p"), { recursive: true })
      const again = yield* runIn(dir, Source.make({ name: "src", resources: [numbers([1, 2])] }), destination, {
        restoreFromDestination: false
      })
      expect(again.origin).toBe("new")
      expect(again.tables).toEqual({ numbers: 2 })
    })
  )
})

describe("scratch state (no pipeline)", () => {
  it.effect("ResourceState and SourceState work without a pipeline", () =>
    Effect.gen(function* () {
      const list = yield* ResourceState.setDefault("archives", [])
      expect(list).toEqual([])
      yield* ResourceState.update("archives", (current) => [
        ...(Option.getOrElse(current, () => []) as Array<string>),
        "a"
      ])
      expect(yield* ResourceState.get("archives")).toEqual(Option.some(["a"]))
      yield* SourceState.set("k", 1)
      expect(yield* SourceState.toJSON).toEqual({ k: 1 })
      const error = yield* Effect.flip(SourceState.set("resources", {}))
      expect(error._tag).toBe("ReservedStateKey")
    }).pipe(Effect.provide(Layer.merge(ResourceState.layerScratch(), SourceState.layerScratch())))
  )

  it.effect("typed keys validate with their schema", () =>
    Effect.gen(function* () {
      const Count = ResourceState.key("count", Schema.Int, () => 0)
      expect(yield* Count.get).toBe(0)
      yield* Count.update((n) => n + 2)
      expect(yield* Count.get).toBe(2)
      const encodeError = yield* Effect.flip(Count.set(1.5))
      expect(encodeError._tag).toBe("InvalidStateKeyValue")
      yield* ResourceState.set("count", "not a number")
      const decodeError = yield* Effect.flip(Count.get)
      expect(decodeError).toMatchObject({
        _tag: "InvalidStateKeyValue",
        direction: "decode",
        path: "sources.scratch.resources.scratch.count"
      })
      // a failed update leaves the stored value untouched
      yield* Effect.flip(Count.update((n) => n + 1))
      expect(yield* ResourceState.get("count")).toEqual(Option.some("not a number"))
    }).pipe(Effect.provide(ResourceState.layerScratch()))
  )
})
