import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber, Layer, Option, Stream } from "effect"
import { config, demo } from "../../examples/custom-destination/demo.js"
import * as Jsonl from "../../examples/custom-destination/jsonl.js"
import {
  defaultReadings,
  defaultStations,
  type Reading,
  readings,
  type Station,
  stations,
  weather
} from "../../examples/custom-destination/pipeline.js"
import * as ResourceState from "../../src/context/ResourceState.js"
import * as Commit from "../../src/internal/pipeline/Commit.js"
import type * as StateSync from "../../src/internal/pipeline/StateSync.js"

import { Destination, Pipeline, Resource, Source } from "../../src/index.js"
import { tempDir } from "../helpers.js"
import { runExample } from "./runExample.js"

const target = { dataset: config.dataset, pipelineDir: "unused" }

const rowsOf = (table: string, dataset = config.dataset) =>
  Effect.flatMap(Destination.Destination, (d) =>
    Effect.flatMap(d.dataset({ ...target, dataset }), (access) => access.rows(table))
  )

/** the files of a dataset, relative to it, sorted */
const filesOf = (directory: string, dataset = config.dataset) =>
  (NodeFs.readdirSync(NodePath.join(directory, dataset), { recursive: true }) as Array<string>)
    .filter((f) => NodeFs.statSync(NodePath.join(directory, dataset, f)).isFile())
    .sort()

/** a fresh JSON-lines directory and pipelines dir, with the destination over the first */
const withDestination = <A, E, R>(
  f: (dirs: { readonly data: string; readonly pipelines: string }) => Effect.Effect<A, E, R>
) =>
  Effect.gen(function* () {
    const root = yield* tempDir()
    const dirs = { data: NodePath.join(root, "jsonl"), pipelines: NodePath.join(root, "pipelines") }
    return yield* f(dirs).pipe(Effect.provide(Layer.mergeAll(Jsonl.layer({ directory: dirs.data }), NodeContext.layer)))
  })

const runIn = <E, R>(pipelinesDir: string, source: Source.Source<E, R>, extra: Partial<Pipeline.PipelineConfig> = {}) =>
  Pipeline.run(source).pipe(Effect.provide(Pipeline.layerNode({ ...config, pipelinesDir, ...extra })))

describe("examples/custom-destination", () => {
  it.scopedLive("loads, loads nothing new, and restores the state from the JSON-lines files", () =>
    withDestination(({ data, pipelines }) =>
      Effect.gen(function* () {
        const [first, second, restored] = yield* demo({ ...config, pipelinesDir: pipelines })
        expect(first.tables).toEqual({ stations: 3, readings: 12 })
        expect(second.tables).toEqual({ stations: 0, readings: 0 })
        expect(restored.origin).toBe("destination")
        expect(restored.tables).toEqual({ stations: 0, readings: 0 })
        expect(restored.stateVersionAfter).toBe(first.stateVersionAfter)
        expect(restored.stateHashAfter).toBe(first.stateHashAfter)

        expect((yield* rowsOf("readings")).map((r) => r.id)).toEqual(defaultReadings.map((r) => r.id))
        expect(yield* rowsOf("stations")).toHaveLength(3)
        // one current file per table, one state file, no lock and no temp file left behind
        expect(filesOf(data).map((f) => f.replace(/\.[0-9a-f-]{36}\./, ".<id>."))).toEqual([
          "manifest.json",
          "schemas/weather.<id>.json",
          "state/weather_pipeline.<id>.json",
          "tables/readings.<id>.jsonl",
          "tables/stations.<id>.jsonl"
        ])
      })
    )
  )

  it.scopedLive("appends, merges on the primary key and replaces", () =>
    withDestination(({ pipelines }) =>
      Effect.gen(function* () {
        const snapshot = (values: ReadonlyArray<string>) =>
          Resource.make(
            { name: "snapshot", writeDisposition: "replace" },
            Stream.fromIterable(values.map((v) => ({ v })))
          )
        const source = (
          s: ReadonlyArray<Station | (Station & { elevation: number })>,
          r: ReadonlyArray<Reading>,
          v: ReadonlyArray<string>
        ) => Source.make({ name: "weather", resources: [stations(s), readings(r), snapshot(v)] })

        yield* runIn(pipelines, source(defaultStations, defaultReadings, ["a", "b"]))
        const later: ReadonlyArray<Reading> = [
          ...defaultReadings,
          { id: 13, station: "oslo", celsius: 4.4, taken_at: "2024-03-05T04:00:00Z" },
          { id: 14, station: "bergen", celsius: 1.1, taken_at: "2024-03-05T04:00:00Z" }
        ]
        const renamed = [
          ...defaultStations.slice(1),
          { id: "oslo", name: "Oslo Blindern (moved)", updated_at: "2024-03-06T00:00:00Z", elevation: 94 }
        ]
        const second = yield* runIn(pipelines, source(renamed, later, ["c"]))
        expect(second.tables).toEqual({ stations: 1, readings: 2, snapshot: 1 })

        expect((yield* rowsOf("readings")).map((r) => r.id)).toEqual([...defaultReadings.map((r) => r.id), 13, 14])
        const merged = yield* rowsOf("stations")
        expect(merged.map((s) => s.id).sort()).toEqual(["bergen", "oslo", "tromso"])
        expect(merged.find((s) => s.id === "oslo")).toMatchObject({ name: "Oslo Blindern (moved)", elevation: 94 })
        // a column added later reads as null in the older rows
        expect(merged.find((s) => s.id === "bergen")?.elevation).toBeNull()
        expect((yield* rowsOf("snapshot")).map((r) => r.v)).toEqual(["c"])
      })
    )
  )

  it.scopedLive(
    "two runs started from the same state that both change one slot: one commits, the other fails with StateConflict",
    () =>
      withDestination(({ data }) =>
        Effect.gen(function* () {
          const go = yield* Deferred.make<void>()
          const gated = (started: Deferred.Deferred<void>, n: number) =>
            Source.make({
              name: "race",
              resources: [
                Resource.make(
                  { name: "numbers" },
                  Stream.fromEffect(
                    Deferred.succeed(started, undefined).pipe(
                      Effect.zipRight(Deferred.await(go)),
                      // both runs change the resource's slot: their changes overlap
                      Effect.zipRight(ResourceState.set("last", n)),
                      Effect.as({ n })
                    )
                  )
                )
              ]
            })
          const started = [yield* Deferred.make<void>(), yield* Deferred.make<void>()] as const
          const machines = [yield* tempDir(), yield* tempDir()] as const
          const fibers = yield* Effect.forEach([0, 1] as const, (i) =>
            Effect.fork(Effect.either(runIn(machines[i], gated(started[i], i))))
          )
          yield* Deferred.await(started[0])
          yield* Deferred.await(started[1])
          const manifestBefore = NodeFs.existsSync(NodePath.join(data, config.dataset, "manifest.json"))
          expect(manifestBefore).toBe(false)
          yield* Deferred.succeed(go, undefined)
          const results = yield* Effect.forEach(fibers, Fiber.join)

          const winners = results.filter(Either.isRight)
          const losers = results.flatMap((r) => (Either.isLeft(r) ? [r.left] : []))
          expect(winners).toHaveLength(1)
          expect(losers.map((e) => (e as { _tag?: unknown })._tag)).toEqual(["StateConflict"])
          // nothing of the loser is visible
          expect((yield* rowsOf("numbers")).map((r) => r.n)).toEqual([results.findIndex(Either.isRight)])
        })
      )
  )

  it.scopedLive("a commit whose expectation fails writes nothing; dropTables and dropDataset", () =>
    withDestination(({ data, pipelines }) =>
      Effect.gen(function* () {
        yield* runIn(pipelines, weather({ stations: defaultStations, readings: defaultReadings }))
        const destination = yield* Destination.Destination
        const manifest = () => NodeFs.readFileSync(NodePath.join(data, config.dataset, "manifest.json"), "utf8")
        const before = manifest()
        // the commit every verb goes through, on the example's driver
        const commit = (
          expected: StateSync.Expectation,
          overrides: Partial<Commit.CommitRequest<void, Destination.StateConflict>> = {}
        ) =>
          Commit.apply(destination, target, {
            pipelineName: config.name,
            load: {
              loadId: "9999999999.000000",
              schemaName: "weather",
              status: 0,
              insertedAt: new Date(),
              schemaVersionHash: null
            },
            stage: Option.none(),
            tables: [],
            state: {
              expected,
              onExpected: () => Effect.succeed({ row: Option.none(), value: undefined }),
              onMoved: (found) => Effect.fail(Commit.conflict(config.name, target.dataset, expected, found))
            },
            dropTables: [],
            keepStateVersions: 100,
            loadIdAfter: (after) => Effect.succeed(`${after}1`),
            schemas: [],
            ...overrides
          })

        const conflict = yield* Effect.flip(
          commit({ _tag: "Newest", newest: Option.none() }, { dropTables: ["readings"] })
        )
        expect(conflict._tag).toBe("StateConflict")
        expect(manifest()).toBe(before)

        yield* commit({ _tag: "Unchecked" }, { dropTables: ["readings"] })
        const access = yield* destination.dataset(target)
        expect(yield* access.tableExists("readings")).toBe(false)
        expect(yield* access.tableExists("stations")).toBe(true)
        expect(yield* destination.stateRows(target, config.name, 1)).toHaveLength(1)
        expect(filesOf(data).some((f) => f.startsWith("tables/readings"))).toBe(false)

        yield* destination.dropDataset(target)
        expect(yield* destination.datasetExists(target)).toBe(false)
        expect(NodeFs.existsSync(NodePath.join(data, config.dataset))).toBe(false)
      })
    )
  )

  it.scopedLive("keeps only the newest keepStateVersions state rows", () =>
    withDestination(({ pipelines }) =>
      Effect.gen(function* () {
        for (let n = 1; n <= 5; n++) {
          const more = defaultReadings.slice(0, n * 2)
          yield* runIn(pipelines, weather({ stations: defaultStations, readings: more }), { keepStateVersions: 2 })
        }
        const history = yield* Effect.flatMap(Destination.Destination, (d) => d.stateRows(target, config.name, 10))
        expect(history.map((h) => h.version)).toEqual([4, 3])
      })
    )
  )

  it.scopedLive("dataset() is not SQL: sql is None and execute fails with a clear error", () =>
    withDestination(({ pipelines }) =>
      Effect.gen(function* () {
        yield* runIn(pipelines, weather({ stations: defaultStations, readings: defaultReadings }))
        const access = yield* Effect.flatMap(Destination.Destination, (d) => d.dataset(target))
        expect(Option.isNone(access.sql)).toBe(true)
        const error = yield* Effect.flip(access.execute("SELECT 1"))
        expect(error._tag).toBe("DestinationError")
        expect(error.message).toContain("not a SQL destination")
      })
    )
  )

  it.scopedLive("npm run example:custom-destination", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const out = yield* runExample("custom-destination", {
        env: {
          PIPESTATE_PIPELINES_DIR: NodePath.join(dir, "pipelines"),
          PIPESTATE_JSONL_DIR: NodePath.join(dir, "jsonl")
        }
      })
      expect(out).toContain("run 1: stations: 3 rows, readings: 12 rows")
      expect(out).toContain("run 2: stations: 0 rows, readings: 0 rows")
      expect(out).toMatch(/run 3: stations: 0 rows, readings: 0 rows \| state version \d+ \(from destination\)/)
    })
  )
})
