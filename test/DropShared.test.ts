/**
 * A table several resources write (`tableName` shared): the stored schema records every writer, and
 * `drop` drops the table only when all of them are selected; dropping some of them fails with
 * SharedTable before anything changes (else the others' rows would be lost while they keep their
 * cursors, or stay while the cursor restarts and duplicate).
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Option, Stream } from "effect"
import * as Destination from "../src/destination/index.js"
import * as StoredSchema from "../src/internal/schema/StoredSchema.js"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import * as Drop from "../src/pipeline/Drop.js"
import * as Incremental from "../src/pipeline/Incremental.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Source from "../src/pipeline/Source.js"
import { hasStackTrace } from "./cli/fixtures.js"
import { cliRun } from "./cli/inprocess.js"
import { tempDir } from "./helpers.js"

const writer = (name: string, total: number) => {
  const seq = Incremental.cursor({ path: "seq", initialValue: 0, primaryKey: "seq" })
  return Resource.make(
    { name, tableName: "shared" },
    Incremental.stream(seq, (run) =>
      Stream.range(run.startValue, total).pipe(Stream.map((i) => ({ seq: i, src: name })))
    )
  )
}
const source = (total: number) => Source.make({ name: "t10src", resources: [writer("a", total), writer("b", total)] })

const layerIn = (dir: string) =>
  Layer.merge(Pipeline.layerNode({ name: "t10", dataset: "t10_ds", pipelinesDir: dir }), Destination.sqlite())

/** rows of `shared` per writer: [src, count, max(seq)] */
const rowsIn = (dir: string) =>
  Effect.gen(function* () {
    const d = yield* Pipeline.dataset
    const rows =
      yield* d.query`SELECT src, count(*) AS n, max(seq) AS mx FROM ${d.table("shared")} GROUP BY src ORDER BY src`
    return rows.map((r) => [r.src, Number(r.n), Number(r.mx)])
  }).pipe(Effect.provide(layerIn(dir)))

const stateFile = (dir: string) => NodeFs.readFileSync(NodePath.join(dir, "t10", "state.json"), "utf8")

describe("drop of a table several resources write", () => {
  it.scoped("needs every writer selected; then drops the table and all their states", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* Pipeline.run(source(10)).pipe(Effect.provide(layerIn(dir)))
      expect(yield* rowsIn(dir)).toEqual([
        ["a", 11, 10],
        ["b", 11, 10]
      ])
      // the stored schema records both writers (dlt's `resource` names the first)
      const schema = JSON.parse(
        NodeFs.readFileSync(NodePath.join(dir, "t10", "schemas", "t10src.schema.json"), "utf8")
      ) as StoredSchema.StoredSchema
      expect(schema.tables.shared?.resource).toBe("a")
      expect(schema.tables.shared?.[StoredSchema.RESOURCES_HINT]).toEqual(["a", "b"])
      expect(StoredSchema.tablesOf(schema, "b")).toEqual(["shared"])

      const env = { env: { PIPESTATE_PIPELINES_DIR: dir } }
      const before = stateFile(dir)
      for (const [picked, hint] of [
        ["a", "drop a b"],
        ["b", "drop b a"]
      ] as const) {
        const refused = yield* Effect.promise(() => cliRun(["pipeline", "t10", "drop", picked, "--yes"], env))
        expect(refused.status).toBe(1)
        expect(refused.stderr).toContain(
          `table shared is written by t10src.${picked} (selected) and also by t10src.${picked === "a" ? "b" : "a"} (not selected)`
        )
        expect(refused.stderr).toContain(hint)
        expect(hasStackTrace(refused.stderr)).toBe(false)
      }
      const error = yield* Effect.flip(Drop.apply({ resources: ["a"] }).pipe(Effect.provide(layerIn(dir))))
      expect(error._tag).toBe("SharedTable")
      // nothing changed
      expect(stateFile(dir)).toBe(before)
      expect(yield* rowsIn(dir)).toEqual([
        ["a", 11, 10],
        ["b", 11, 10]
      ])

      // the preview names both resources and the table
      const dry = yield* Effect.promise(() => cliRun(["pipeline", "t10", "drop", "a", "b", "--dry-run"], env))
      expect(dry.status).toBe(0)
      expect(dry.stdout).toMatch(/t10src\.a\s+state and table shared\n/)
      expect(dry.stdout).toMatch(/t10src\.b\s+state and table shared\n/)
      expect(dry.stdout).toContain("tables to drop: shared")
      expect(dry.stdout).not.toContain("not in the destination")

      const outcome = yield* Drop.apply({ resources: ["a", "b"] }).pipe(Effect.provide(layerIn(dir)))
      expect(outcome._tag).toBe("Dropped")
      expect(outcome.preview.plan.tables).toEqual(["shared"])
      const state = JSON.parse(stateFile(dir)) as { sources: { t10src: { resources?: Record<string, unknown> } } }
      expect(Object.keys(state.sources.t10src.resources ?? {})).toEqual([])

      // the next run loads every row of both again, once
      yield* Pipeline.run(source(10)).pipe(Effect.provide(layerIn(dir)))
      expect(yield* rowsIn(dir)).toEqual([
        ["a", 11, 10],
        ["b", 11, 10]
      ])
    })
  )

  it("plan: a schema recording several writers refuses a partial drop and drops the table with all", () => {
    let schema = StoredSchema.empty("src")
    schema = StoredSchema.mergeTables(schema, [
      {
        name: "shared",
        columns: { id: { name: "id", data_type: "bigint" } },
        resource: "a",
        [StoredSchema.RESOURCES_HINT]: ["a", "b"]
      }
    ])
    const schemas = new Map([["src", schema]])
    let state = PipelineState.empty({ pipelineName: "p", datasetName: "ds" })
    state = PipelineState.withResourceSlot(state, "src", "a", { last: 1 })
    state = PipelineState.withResourceSlot(state, "src", "b", { last: 2 })
    const partial = Either.getLeft(Drop.plan(state, { resources: ["b"], schemas })).pipe(Option.getOrThrow)
    expect(partial._tag).toBe("SharedTable")
    if (partial._tag !== "SharedTable") return
    expect(partial.conflicts).toEqual([{ table: "shared", selected: ["src.b"], others: ["src.a"] }])
    expect(partial.resources).toEqual(["b", "a"])
    // a writer known only through the schema (no state) still counts
    const noState = PipelineState.withoutResourceSlot(state, "src", "b")
    expect(Either.isLeft(Drop.plan(noState, { resources: ["a"], schemas }))).toBe(true)
    // state only keeps the table: nothing to refuse
    expect(Either.getOrThrow(Drop.plan(state, { resources: ["a"], schemas, stateOnly: true })).tables).toEqual([])
    const all = Either.getOrThrow(Drop.plan(state, { resources: ["re:^(a|b)$"], schemas }))
    expect(all.tables).toEqual(["shared"])
    expect(all.resources).toEqual([
      { source: "src", resource: "a", tables: ["shared"], hasState: true },
      { source: "src", resource: "b", tables: ["shared"], hasState: true }
    ])
    expect(Object.keys(PipelineState.getResourceSlots(all.state, "src"))).toEqual([])
    expect(Either.getOrThrow(Drop.plan(state, { dropAll: true, schemas })).tables).toEqual(["shared"])

    // a schema written before writers were recorded names only `a`: dropping `b` says so
    const old = StoredSchema.mergeTables(StoredSchema.empty("src"), [
      { name: "shared", columns: { id: { name: "id", data_type: "bigint" } }, resource: "a" }
    ])
    const oldPlan = Either.getOrThrow(Drop.plan(state, { resources: ["b"], schemas: new Map([["src", old]]) }))
    expect(oldPlan.warnings).toEqual([
      "the stored schema of src names no table of src.b: if it wrote a table named otherwise (tableName), that table and its rows stay"
    ])
  })
})
