/**
 * `restore --version N` never produces a state that claims data the dataset lacks: after a resource
 * was dropped, restoring a version from before the drop resets that resource's state (the preview
 * names it), so the next run loads its data again instead of loading nothing.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schema, Stream } from "effect"
import * as ResourceState from "../src/context/ResourceState.js"
import * as Render from "../src/cli/Render.js"
import * as Destination from "../src/destination/index.js"
import * as Drop from "../src/pipeline/Drop.js"
import * as History from "../src/pipeline/History.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Source from "../src/pipeline/Source.js"
import { tempDir } from "./helpers.js"

const Archives = ResourceState.key("archives", Schema.Array(Schema.String), () => [])

/** the seed's pattern: a list of archives already loaded, kept in resource state */
const chess = (archives: ReadonlyArray<string>) =>
  Source.make({
    name: "chess",
    resources: [
      Resource.make(
        { name: "players_games" },
        Stream.unwrap(
          Effect.gen(function* () {
            const seen = yield* Archives.get
            const todo = archives.filter((a) => !seen.includes(a))
            yield* Archives.set([...seen, ...todo])
            return Stream.fromIterable(todo.map((archive) => ({ archive, games: 3 })))
          })
        )
      ),
      Resource.make(
        { name: "players_profiles" },
        Stream.unwrap(Effect.as(ResourceState.set("fetched", archives.length), Stream.make({ player: "magnus" })))
      )
    ]
  })

describe("restore never resurrects a state that claims dropped data", () => {
  it.scoped("drop players_games, restore version 0: its state is reset and the next run loads it again", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const layers = Layer.mergeAll(
        Pipeline.layer({ name: "chess_pipeline", dataset: "chess_data", pipelinesDir: dir }),
        Destination.sqlite()
      ).pipe(Layer.provideMerge(NodeContext.layer))
      const archives = ["2024/01", "2024/02", "2024/03"]
      yield* Effect.gen(function* () {
        const first = yield* Pipeline.run(chess(archives))
        expect(first.tables).toEqual({ players_games: 3, players_profiles: 1 })
        yield* Pipeline.run(chess([...archives, "2024/04"]))
        const dropped = yield* Drop.apply({ resources: ["players_games"] })
        expect(dropped._tag).toBe("Dropped")

        const preview = yield* History.restore({ version: 0, dryRun: true })
        expect(preview._tag).toBe("DryRun")
        expect(preview.preview.resetResources).toEqual(["chess.players_games"])

        const restored = yield* History.restore({ version: 0 })
        expect(restored._tag).toBe("Restored")
        const state = yield* Pipeline.currentState
        expect(state.sources.chess?.resources).toEqual({ players_profiles: { fetched: 3 } })

        const next = yield* Pipeline.run(chess(archives))
        expect(next.tables.players_games).toBe(3)
      }).pipe(Effect.provide(layers))
    })
  )

  it.scoped("a restore with every table present keeps every resource state", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const layers = Layer.mergeAll(
        Pipeline.layer({ name: "chess_pipeline", dataset: "chess_data", pipelinesDir: dir }),
        Destination.sqlite()
      ).pipe(Layer.provideMerge(NodeContext.layer))
      yield* Effect.gen(function* () {
        yield* Pipeline.run(chess(["2024/01"]))
        yield* Pipeline.run(chess(["2024/01", "2024/02"]))
        const restored = yield* History.restore({ version: 0 })
        expect(restored._tag).toBe("Restored")
        expect(restored.preview.resetResources).toEqual([])
        // the second run's rows stay: the restored state does not know them, and the preview says so
        expect(restored.preview.laterRows).toEqual([
          { table: "players_games", rows: 1, resources: ["players_games"] },
          { table: "players_profiles", rows: 1, resources: ["players_profiles"] }
        ])
        expect(Render.restorePreviewText(restored.preview)).toContain(
          "rows loaded after version 0 stay in the dataset: players_games (1 row), players_profiles (1 row)"
        )
        const state = yield* Pipeline.currentState
        expect(state.sources.chess?.resources).toMatchObject({ players_games: { archives: ["2024/01"] } })
      }).pipe(Effect.provide(layers))
    })
  )
})
