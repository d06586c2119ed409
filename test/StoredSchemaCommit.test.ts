/**
 * The stored schema travels with the data: a run commits its `_dlt_version` row in the load's
 * transaction, in the structure dlt writes (checked against a row real dlt wrote), fills
 * `_dlt_loads.schema_version_hash`, keeps a copy in the working dir, and a clean machine gets the
 * schema back with the state. A `merge` resource without a primary key is refused before anything runs.
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Stream } from "effect"
import * as Destination from "../src/destination/index.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Schemas from "../src/internal/pipeline/Schemas.js"
import * as Source from "../src/pipeline/Source.js"
import { newestStored, tempDir } from "./helpers.js"

const vector = JSON.parse(
  NodeFs.readFileSync(NodePath.join(import.meta.dirname, "fixtures", "dlt-vectors", "sqlite-state-table.json"), "utf8")
) as { sqlite: { tables: { _dlt_version: { rows: Array<{ schema: { value: string } }> } } } }
const dltDocument = JSON.parse(vector.sqlite.tables._dlt_version.rows[0]?.schema.value ?? "{}") as Record<
  string,
  unknown
> & { tables: Record<string, Record<string, unknown>> }

const items = (rows: ReadonlyArray<Record<string, unknown>>) =>
  Source.make({
    name: "items_source",
    resources: [Resource.make({ name: "items", primaryKey: ["id"] }, Stream.fromIterable(rows))]
  })

const layersIn = (dir: string) =>
  Layer.mergeAll(Pipeline.layer({ name: "vec", dataset: "vec_data", pipelinesDir: dir }), Destination.sqlite()).pipe(
    Layer.provideMerge(NodeContext.layer)
  )

describe("the stored schema commits with the data", () => {
  it.scoped("a _dlt_version row in dlt's structure, the load's schema_version_hash, a copy in the working dir", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const layers = layersIn(dir)
      const target = { dataset: "vec_data", pipelineDir: NodePath.join(dir, "vec") }
      yield* Effect.gen(function* () {
        yield* Pipeline.run(items([{ id: 1, name: "a" }]))
        const d = yield* Destination.Destination
        const row = Option.getOrThrow(yield* d.readSchema(target, "items_source", { _tag: "Newest" }))
        const ours = JSON.parse(row.schema) as Record<string, unknown> & {
          tables: Record<string, Record<string, unknown>>
        }
        // the document has dlt's keys, and dlt's tables have dlt's keys
        expect(Object.keys(ours).sort()).toEqual(Object.keys(dltDocument).sort())
        for (const table of ["_dlt_version", "_dlt_loads", "_dlt_pipeline_state"]) {
          expect(Object.keys(ours.tables[table] ?? {}).sort(), table).toEqual(
            Object.keys(dltDocument.tables[table] ?? {}).sort()
          )
        }
        expect(Object.keys(ours.tables.items ?? {}).sort()).toEqual(Object.keys(dltDocument.tables.items ?? {}).sort())
        expect(ours.tables.items?.columns).toEqual(dltDocument.tables.items?.columns)
        // the load names the schema it was committed with
        const stored = Option.getOrThrow(yield* newestStored(target, "vec"))
        expect(stored.schemaVersionHash).toBe(row.versionHash)
        // a copy in the working dir
        const local = NodeFs.readFileSync(
          NodePath.join(target.pipelineDir, "schemas", "items_source.schema.json"),
          "utf8"
        )
        expect(JSON.parse(local).version_hash).toBe(row.versionHash)

        // an unchanged run writes no new version; a new column does
        yield* Pipeline.run(items([{ id: 2, name: "b" }]))
        expect(Option.getOrThrow(yield* d.readSchema(target, "items_source", { _tag: "Newest" })).version).toBe(
          row.version
        )
        yield* Pipeline.run(items([{ id: 3, name: "c", extra: true }]))
        const grown = Option.getOrThrow(yield* Schemas.newest(d, target, "items_source"))
        expect(grown.version).toBe(row.version + 1)
        expect(Object.keys(grown.tables.items?.columns ?? {})).toContain("extra")
      }).pipe(Effect.provide(layers))
    })
  )

  it.scoped("a clean machine gets the schema back with the state (sync and a run)", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const data = yield* tempDir()
      const layers = Layer.mergeAll(
        Pipeline.layer({ name: "vec", dataset: "vec_data", pipelinesDir: dir }),
        Destination.sqlite({ directory: data })
      ).pipe(Layer.provideMerge(NodeContext.layer))
      const schemaFile = NodePath.join(dir, "vec", "schemas", "items_source.schema.json")
      yield* Pipeline.run(items([{ id: 1, userName: "a" }])).pipe(Effect.provide(layers))
      const before = NodeFs.readFileSync(schemaFile, "utf8")
      NodeFs.rmSync(NodePath.join(dir, "vec"), { recursive: true })
      yield* Pipeline.sync.pipe(Effect.provide(layers))
      expect(NodeFs.readFileSync(schemaFile, "utf8")).toBe(before)
      NodeFs.rmSync(NodePath.join(dir, "vec"), { recursive: true })
      // a run on a clean machine keeps the stored field → column map (userName → user_name)
      const again = yield* Pipeline.run(items([{ id: 2, userName: "b" }])).pipe(Effect.provide(layers))
      expect(again.origin).toBe("destination")
      expect(NodeFs.readFileSync(schemaFile, "utf8")).toBe(before)
    })
  )

  it.scoped("merge without a primary key is refused before anything runs", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const source = Source.make({
        name: "users",
        resources: [Resource.make({ name: "users", writeDisposition: "merge" }, Stream.make({ id: 1 }))]
      })
      const error = yield* Effect.flip(Pipeline.run(source).pipe(Effect.provide(layersIn(dir))))
      expect(error._tag).toBe("InvalidSource")
      expect(error.message).toContain("primaryKey")
      expect(error.message).toContain("append")
      // nothing was loaded: no table, no load
      const tables = yield* Effect.flatMap(Destination.Destination, (d) =>
        d.describeTables({ dataset: "vec_data", pipelineDir: NodePath.join(dir, "vec") }, ["users", "_dlt_loads"])
      ).pipe(Effect.provide(layersIn(dir)))
      expect(tables.size).toBe(0)
    })
  )

  it.scoped(
    "a resource joining a table another resource loaded in an earlier run must agree on its disposition and key",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const layers = yield* Layer.memoize(layersIn(dir))
        const runOne = (resource: Resource.Resource<unknown, never>) =>
          Pipeline.run(Source.make({ name: "shared_src", resources: [resource] })).pipe(Effect.provide(layers))
        const count = Effect.flatMap(Pipeline.dataset, (d) => d.table("shared").rows()).pipe(
          Effect.map((rows) => rows.length),
          Effect.provide(layers)
        )
        yield* runOne(
          Resource.make(
            { name: "a", tableName: "shared", writeDisposition: "merge", primaryKey: ["id"] },
            Stream.make({ id: 1, k: 1 }, { id: 2, k: 1 })
          )
        )
        // b merges on another key: it would delete a's rows
        const onKey = (yield* Effect.flip(
          runOne(
            Resource.make(
              { name: "b", tableName: "shared", writeDisposition: "merge", primaryKey: ["k"] },
              Stream.make({ id: 3, k: 1 })
            )
          )
        )) as { readonly _tag: string; readonly message: string }
        expect(onKey._tag).toBe("InvalidSource")
        expect(onKey.message).toContain("resource b would write table shared")
        expect(onKey.message).toContain("pipestate pipeline vec drop a")
        // c replaces: it would drop a's rows
        const replacing = (yield* Effect.flip(
          runOne(
            Resource.make({ name: "c", tableName: "shared", writeDisposition: "replace" }, Stream.make({ id: 9, k: 9 }))
          )
        )) as { readonly _tag: string }
        expect(replacing._tag).toBe("InvalidSource")
        expect(yield* count).toBe(2)
        // a resource that agrees joins; the table's own writer may still change its disposition
        yield* runOne(
          Resource.make(
            { name: "d", tableName: "shared", writeDisposition: "merge", primaryKey: ["id"] },
            Stream.make({ id: 3, k: 2 })
          )
        )
        expect(yield* count).toBe(3)
        yield* runOne(
          Resource.make({ name: "a", tableName: "shared", writeDisposition: "append" }, Stream.make({ id: 4, k: 2 }))
        )
        expect(yield* count).toBe(4)
      })
  )

  it.scoped("tables named like dlt's or pipestate's own are refused before anything runs", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      for (const tableName of ["_dlt_loads", "_pipestate_loads", "_pipestate_group_runs", "_pipestate_holds"]) {
        const source = Source.make({
          name: "users",
          resources: [Resource.make({ name: "users", tableName }, Stream.make({ id: 1 }))]
        })
        const error = yield* Effect.flip(Pipeline.run(source).pipe(Effect.provide(layersIn(dir))))
        expect(error._tag).toBe("InvalidSource")
        expect(error.message).toContain(`table ${tableName} is reserved`)
      }
    })
  )

  it.scoped("two resources on one table with different primary keys are refused before anything runs", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const source = Source.make({
        name: "t11src",
        resources: [
          Resource.make(
            { name: "a", tableName: "t", writeDisposition: "merge", primaryKey: ["id"] },
            Stream.make({ id: 1, k: "x" })
          ),
          Resource.make(
            { name: "b", tableName: "t", writeDisposition: "merge", primaryKey: ["k"] },
            Stream.make({ id: 3, k: "x" })
          )
        ]
      })
      const error = yield* Effect.flip(Pipeline.run(source).pipe(Effect.provide(layersIn(dir))))
      expect(error._tag).toBe("InvalidSource")
      expect(error.message).toContain('resources a (primary key ["id"]) and b (primary key ["k"])')
      expect(error.message).toContain("table t")
      const tables = yield* Effect.flatMap(Destination.Destination, (d) =>
        d.describeTables({ dataset: "vec_data", pipelineDir: NodePath.join(dir, "vec") }, ["t", "_dlt_loads"])
      ).pipe(Effect.provide(layersIn(dir)))
      expect(tables.size).toBe(0)
    })
  )

  // the commit's transaction reads _dlt_version without looking the table up first (the system
  // tables are made before it); a table dropped behind the process's back must still be re-made
  it.scoped("a _dlt_version table dropped behind a running process is made again by the next run", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const target = { dataset: "vec_data", pipelineDir: NodePath.join(dir, "vec") }
      yield* Effect.gen(function* () {
        yield* Pipeline.run(items([{ id: 1, name: "a" }]))
        const Sqlite = (yield* Effect.promise(() => import("better-sqlite3"))).default
        const db = new Sqlite(NodePath.join(target.pipelineDir, "vec_data.sqlite"))
        try {
          db.exec('DROP TABLE "_dlt_version"')
        } finally {
          db.close()
        }
        const summary = yield* Pipeline.run(items([{ id: 2, name: "b" }]))
        expect(summary.tables.items).toBe(1)
        const d = yield* Destination.Destination
        const schema = Option.getOrThrow(yield* Schemas.newest(d, target, "items_source"))
        expect(Object.keys(schema.tables.items?.columns ?? {})).toContain("name")
      }).pipe(Effect.provide(layersIn(dir)))
    })
  )
})
