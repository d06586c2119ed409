/**
 * SQLite's direct write (issue 11): a load's rows go straight into their tables inside a
 * transaction opened at the first row on the stage's own connection, which the commit joins.
 * Readers see nothing before the commit, a failed run leaves nothing, replace / merge / new
 * columns keep their meaning, and a second load of the same file in the process stages to a file
 * and commits after the first.
 */
import * as NodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import Sqlite from "better-sqlite3"
import { Cause, type Duration, Effect, Exit, type Layer, Option, Stream } from "effect"
import { Destination, Pipeline, PipelineContext, Resource, Source } from "../src/index.js"
import { tempDir } from "./helpers.js"

type Row = Record<string, unknown>

const run = (
  destination: Layer.Layer<Destination.Destination>,
  dir: string,
  name: string,
  resource: Resource.Resource<never, never>
) =>
  Pipeline.run(Source.make({ name: "src", resources: [resource] })).pipe(
    Effect.provide(Pipeline.layerNode({ name, dataset: "ds", pipelinesDir: dir, batchSize: 2 })),
    Effect.provide(destination)
  )

const read = (file: string, statement: string): Array<Row> => {
  const db = new Sqlite(file, { readonly: true })
  try {
    return db.prepare(statement).all() as Array<Row>
  } finally {
    db.close()
  }
}

const tableExists = (file: string, table: string): boolean =>
  read(file, `SELECT name FROM sqlite_master WHERE type = 'table' AND name = '${table}'`).length > 0

describe("SQLite direct write", () => {
  it.scopedLive("readers see none of the load's rows or tables before the commit, all of them after", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const file = NodePath.join(dir, "ds.sqlite")
      const destination = Destination.sqlite({ directory: dir })
      const seen: Array<boolean> = []
      const records = Stream.range(0, 9).pipe(
        Stream.map((i) => ({ id: i, name: `n${i}` })),
        Stream.tap((r) =>
          Effect.sync(() => {
            // the rows of earlier batches are in the table inside the open transaction by now
            if (r.id >= 4) seen.push(tableExists(file, "items"))
          })
        )
      )
      yield* run(destination, dir, "p", Resource.make({ name: "items" }, records))
      expect(seen.length).toBeGreaterThan(0)
      expect(seen.every((s) => !s)).toBe(true)
      expect(read(file, "SELECT id FROM items ORDER BY id").map((r) => r.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])

      // a second run: the rows of the first stay visible, the new ones appear at the commit only
      const counts: Array<number> = []
      const more = Stream.range(10, 19).pipe(
        Stream.map((i) => ({ id: i, name: `n${i}` })),
        Stream.tap(() => Effect.sync(() => counts.push(Number(read(file, "SELECT count(*) AS n FROM items")[0]!.n))))
      )
      yield* run(destination, dir, "p", Resource.make({ name: "items" }, more))
      expect(counts.every((n) => n === 10)).toBe(true)
      expect(read(file, "SELECT count(*) AS n FROM items")[0]!.n).toBe(20)
    })
  )

  it.scopedLive("a run failing half-way leaves nothing: no rows, no new table, no new column", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const file = NodePath.join(dir, "ds.sqlite")
      const destination = Destination.sqlite({ directory: dir })
      yield* run(destination, dir, "p", Resource.make({ name: "items" }, Stream.make({ id: 1 })))
      const failing = Stream.range(2, 10).pipe(
        Stream.map((i): Row => ({ id: i, extra: `e${i}` })),
        Stream.concat(Stream.fail("boom"))
      )
      const other = Stream.range(0, 5).pipe(Stream.map((i) => ({ k: i })))
      const exit = yield* Effect.exit(
        Pipeline.run(
          Source.make({
            name: "src",
            resources: [
              Resource.make({ name: "items" }, failing as Stream.Stream<unknown, string>),
              Resource.make({ name: "others" }, other)
            ]
          })
        ).pipe(
          Effect.provide(Pipeline.layerNode({ name: "p", dataset: "ds", pipelinesDir: dir, batchSize: 2 })),
          Effect.provide(destination)
        )
      )
      expect(Exit.isFailure(exit)).toBe(true)
      expect(read(file, "SELECT id FROM items").map((r) => r.id)).toEqual([1])
      expect(read(file, "SELECT name FROM pragma_table_info('items')").map((r) => r.name)).not.toContain("extra")
      expect(tableExists(file, "others")).toBe(false)
      // the file is usable by the next run
      yield* run(destination, dir, "p", Resource.make({ name: "items" }, Stream.make({ id: 2, extra: "x" })))
      expect(read(file, "SELECT id, extra FROM items ORDER BY id")).toEqual([
        { id: 1, extra: null },
        { id: 2, extra: "x" }
      ])
    })
  )

  it.scopedLive("replace empties the table inside the transaction; merge upserts, the last record of a key wins", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const file = NodePath.join(dir, "ds.sqlite")
      const destination = Destination.sqlite({ directory: dir })
      const replace = (ids: ReadonlyArray<number>) =>
        Resource.make({ name: "snap", writeDisposition: "replace" }, Stream.fromIterable(ids.map((id) => ({ id }))))
      yield* run(destination, dir, "r", replace([1, 2, 3, 4, 5]))
      yield* run(destination, dir, "r", replace([7, 8, 9]))
      expect(read(file, "SELECT id FROM snap ORDER BY id").map((r) => r.id)).toEqual([7, 8, 9])

      const merge = (records: ReadonlyArray<Row>) =>
        Resource.make({ name: "users", writeDisposition: "merge", primaryKey: ["id"] }, Stream.fromIterable(records))
      yield* run(
        destination,
        dir,
        "m",
        merge([
          { id: 1, v: "a" },
          { id: 2, v: "b" }
        ])
      )
      yield* run(
        destination,
        dir,
        "m",
        merge([
          { id: 2, v: "b2" },
          { id: 3, v: "c" },
          { id: 2, v: "b3", w: 1 }
        ])
      )
      expect(read(file, "SELECT id, v, w FROM users ORDER BY id")).toEqual([
        { id: 1, v: "a", w: null },
        { id: 2, v: "b3", w: 1 },
        { id: 3, v: "c", w: null }
      ])
    })
  )

  it.scopedLive("new columns and variant columns appear in later batches of one load", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const file = NodePath.join(dir, "ds.sqlite")
      const destination = Destination.sqlite({ directory: dir })
      const records: ReadonlyArray<Row> = [{ a: 1 }, { a: 2 }, { a: 3, b: "x" }, { a: "text" }, { a: 5, c: true }]
      yield* run(destination, dir, "p", Resource.make({ name: "evolve" }, Stream.fromIterable(records)))
      expect(read(file, "SELECT a, b, a__v_text, c FROM evolve ORDER BY rowid")).toEqual([
        { a: 1, b: null, a__v_text: null, c: null },
        { a: 2, b: null, a__v_text: null, c: null },
        { a: 3, b: "x", a__v_text: null, c: null },
        { a: null, b: null, a__v_text: "text", c: null },
        { a: 5, b: null, a__v_text: null, c: 1 }
      ])
    })
  )

  it.scopedLive("two loads of one file at once in this process: the second stages to a file and commits after", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const file = NodePath.join(dir, "ds.sqlite")
      const destination = Destination.sqlite({ directory: dir })
      const slow = (name: string, from: number) =>
        Resource.make(
          { name },
          Stream.range(from, from + 19).pipe(
            Stream.map((id) => ({ id })),
            Stream.tap(() => Effect.sleep("2 millis"))
          )
        )
      yield* Effect.all([run(destination, dir, "p1", slow("t1", 0)), run(destination, dir, "p2", slow("t2", 100))], {
        concurrency: 2
      })
      expect(read(file, "SELECT count(*) AS n FROM t1")[0]!.n).toBe(20)
      expect(read(file, "SELECT count(*) AS n FROM t2")[0]!.n).toBe(20)
    })
  )

  it.scopedLive("a resource writing through its dataset during its own load gets an error naming the open load", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = Destination.sqlite({ directory: dir })
      const records = Stream.concat(
        Stream.make({ id: 1 }, { id: 2 }, { id: 3 }),
        Stream.fromEffect(
          Effect.gen(function* () {
            const dataset = yield* PipelineContext.dataset
            // reading works: only committed data (nothing yet)
            expect(dataset.tables).toEqual([])
            yield* dataset.query`CREATE TABLE IF NOT EXISTS audit (note TEXT)`
            return { id: 4 }
          })
        )
      )
      const exit = yield* Effect.exit(
        Pipeline.run(Source.make({ name: "src", resources: [Resource.make({ name: "items" }, records)] })).pipe(
          Effect.provide(Pipeline.layerNode({ name: "p", dataset: "ds", pipelinesDir: dir, batchSize: 2 })),
          Effect.provide(destination)
        )
      )
      expect(Exit.isFailure(exit)).toBe(true)
      const text = String(exit)
      expect(text).toContain("QueryFailed")
      expect(text).toContain("a load in progress (this run's own, or another's) holds it from its first row to its commit")
      expect(tableExists(NodePath.join(dir, "ds.sqlite"), "items")).toBe(false)
    })
  )

  it.scopedLive("a lockTimeout that is not a duration >= 0 fails the commit with a DestinationError naming it", () =>
    Effect.gen(function* () {
      for (const lockTimeout of ["banana", -5, "-5 seconds"] as const) {
        const dir = yield* tempDir()
        const exit = yield* Effect.exit(
          run(
            Destination.sqlite({ directory: dir, lockTimeout: lockTimeout as Duration.DurationInput }),
            dir,
            "p",
            Resource.make({ name: "items" }, Stream.make({ id: 1 }))
          )
        )
        const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
        expect(error?._tag).toBe("DestinationError")
        expect(error?.message).toContain(`lockTimeout ${JSON.stringify(String(lockTimeout))} is not a duration`)
      }
    })
  )
})
