import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, LogLevel } from "effect"
import { pipelineConfig, runTwice } from "../examples/chess/demo.js"
import { ChessApi } from "../examples/chess/server.js"
import * as Destination from "../src/destination/index.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import { tempDir } from "./helpers.js"
import { freshDataset, postgresAvailable, testDestination } from "./postgres.js"

const demo = (pipelinesDir: string, dataset: string, destination: Layer.Layer<Destination.Destination, unknown>) =>
  runTwice.pipe(
    Effect.provide(
      Layer.mergeAll(
        ChessApi.layer(),
        FetchHttpClient.layer,
        Pipeline.layerNode({ ...pipelineConfig, dataset, pipelinesDir }),
        destination
      )
    ),
    Logger.withMinimumLogLevel(LogLevel.Warning)
  )

describe("the chess demo", () => {
  it.scoped("loads every game on the first run and nothing on the second (SQLite)", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const [first, second] = yield* demo(dir, "chess_data", Destination.sqlite())
      expect(first?.tables.players_games).toBe(109)
      expect(first?.firstRun).toBe(true)
      expect(second?.tables.players_games).toBe(0)
      expect(second?.stateVersionAfter).toBe(first?.stateVersionAfter)
      expect(NodeFs.existsSync(NodePath.join(dir, "chess_pipeline", "chess_data.sqlite"))).toBe(true)
    })
  )

  it.scoped.skipIf(!postgresAvailable)(
    "on PostgreSQL, a deleted pipelines dir restores the state: 0 new rows, the same version",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const dataset = yield* freshDataset("chess")
        const destination = yield* Layer.memoize(testDestination())
        const [first] = yield* demo(dir, dataset, destination)
        expect(first?.tables.players_games).toBe(109)
        NodeFs.rmSync(dir, { recursive: true, force: true })
        const [again, after] = yield* demo(dir, dataset, destination)
        expect(again).toMatchObject({ origin: "destination", firstRun: false, tables: { players_games: 0 } })
        expect(again?.stateVersionAfter).toBe(first?.stateVersionAfter)
        expect(after?.tables.players_games).toBe(0)
      })
  )
})
