import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Layer, Redacted } from "effect"
import * as Destination from "../src/destination/index.js"
import * as History from "../src/pipeline/History.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import * as StateBlob from "../src/internal/state/StateBlob.js"
import { runShop } from "./cli/fixtures.js"
import { tempDir, newestStored } from "./helpers.js"
import { freshDataset, postgresAvailable, query, TEST_POSTGRES_URL } from "./postgres.js"

const layerFor = (
  dir: string,
  destination: Layer.Layer<Destination.Destination, Destination.DestinationError>,
  dataset = "ds"
) => Layer.merge(Pipeline.layerNode({ name: "shop_pipeline", dataset, pipelinesDir: dir }), destination)

const localState = (dir: string) =>
  Either.getOrThrow(
    PipelineState.fromFileText(NodeFs.readFileSync(NodePath.join(dir, "shop_pipeline", "state.json"), "utf8"))
  )

/** three runs: versions 0, 1, 2 with different content */
const threeVersions = (
  dir: string,
  destination: () => Layer.Layer<Destination.Destination, Destination.DestinationError>,
  dataset = "ds"
) => Effect.forEach([1, 2, 3], (run) => runShop({ pipelinesDir: dir, dataset, run }, destination()), { discard: true })

describe("History (SQLite)", () => {
  it.scoped("lists the kept versions newest first, with hash, load id and creation time", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* threeVersions(dir, () => Destination.sqlite())
      const versions = yield* History.list().pipe(Effect.provide(layerFor(dir, Destination.sqlite())))
      expect(versions.map((v) => v.version)).toEqual([2, 1, 0])
      expect(versions[0]?.hash).toBe(localState(dir)._version_hash)
      expect(versions.every((v) => v.createdAt instanceof Date && /^\d+\.\d{6}$/.test(v.loadId))).toBe(true)
      const limited = yield* History.list({ limit: 2 }).pipe(Effect.provide(layerFor(dir, Destination.sqlite())))
      expect(limited.map((v) => v.version)).toEqual([2, 1])
    })
  )

  it.scoped("restore commits a new version whose content equals the old one, and the next run starts from it", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* threeVersions(dir, () => Destination.sqlite())
      const layer = layerFor(dir, Destination.sqlite())
      const [v2, , v0] = yield* History.list().pipe(Effect.provide(layer))
      const outcome = yield* History.restore({ version: 0 }).pipe(Effect.provide(layer))
      expect(outcome._tag).toBe("Restored")
      if (outcome._tag !== "Restored") return
      expect(outcome.version).toBe(3)
      expect(outcome.versionHash).toBe(v0?.hash)
      expect(outcome.preview.newest.hash).toBe(v2?.hash)
      const versions = yield* History.list().pipe(Effect.provide(layer))
      expect(versions.map((v) => v.version)).toEqual([3, 2, 1, 0])
      const local = localState(dir)
      expect(local._state_version).toBe(3)
      expect(local._version_hash).toBe(v0?.hash)
      expect(PipelineState.getResourceSlot(local, "shop", "orders").last_id).toBe(10)
      expect(local._local.first_run).toBe(false)

      // the stored blob of version 3 decodes to version 0's content
      const stored = yield* newestStored(
        { dataset: "ds", pipelineDir: NodePath.join(dir, "shop_pipeline") },
        "shop_pipeline"
      ).pipe(Effect.provide(Destination.sqlite()))
      const decoded = Either.getOrThrow(StateBlob.decode(stored._tag === "Some" ? stored.value.state : ""))
      expect(PipelineState.getSourceSlot(decoded, "shop").meta).toEqual({ cursor: "c1", keep: true })

      const next = yield* runShop({ pipelinesDir: dir, dataset: "ds", run: 1 }, Destination.sqlite())
      expect(next.stateVersionBefore).toBe(3)
      expect(next.stateChanged).toBe(false)
    })
  )

  it.scoped("restoring the newest content is a no-op; dry runs and refusals change nothing", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* threeVersions(dir, () => Destination.sqlite())
      const layer = layerFor(dir, Destination.sqlite())
      const same = yield* History.restore({ version: 2 }).pipe(Effect.provide(layer))
      expect(same._tag).toBe("AlreadyNewest")
      const dry = yield* History.restore({ version: 1, dryRun: true }).pipe(Effect.provide(layer))
      expect(dry._tag).toBe("DryRun")
      expect(dry.preview.nextVersion).toBe(3)
      const refused = yield* History.restore({ version: 1, confirm: () => Effect.succeed(false) }).pipe(
        Effect.provide(layer)
      )
      expect(refused._tag).toBe("Cancelled")
      expect((yield* History.list().pipe(Effect.provide(layer))).map((v) => v.version)).toEqual([2, 1, 0])
      expect(localState(dir)._state_version).toBe(2)
    })
  )

  it.scoped("an unknown version fails naming the kept ones; a destination without state says so", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* threeVersions(dir, () => Destination.sqlite())
      const missing = yield* History.restore({ version: 7 }).pipe(
        Effect.provide(layerFor(dir, Destination.sqlite())),
        Effect.flip
      )
      expect(missing._tag).toBe("VersionNotFound")
      expect(missing.message).toContain("holds no state version 7; it keeps versions 0..2")
      const empty = yield* History.restore({ version: 0 }).pipe(
        Effect.provide(layerFor(dir, Destination.sqlite(), "other_ds")),
        Effect.flip
      )
      expect(empty._tag).toBe("NoStateInDestination")
      expect(empty.message).toContain("other_ds")
    })
  )
})

describe.skipIf(!postgresAvailable)("History (PostgreSQL)", () => {
  const pg = () => Destination.postgres({ url: Redacted.make(TEST_POSTGRES_URL) })

  it.scoped("restores an old version as a new one and a concurrent commit makes it fail cleanly", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const other = yield* tempDir()
      const dataset = yield* freshDataset("hist")
      yield* threeVersions(dir, pg, dataset)
      const layer = layerFor(dir, pg(), dataset)
      const restored = yield* History.restore({ version: 1 }).pipe(Effect.provide(layer))
      expect(restored._tag).toBe("Restored")
      const rows = yield* Effect.promise(() =>
        query<{ version: string; version_hash: string }>(
          `SELECT version, version_hash FROM "${dataset}"._dlt_pipeline_state ORDER BY version`
        )
      )
      expect(rows.map((r) => Number(r.version))).toEqual([0, 1, 2, 3])
      expect(rows[3]?.version_hash).toBe(rows[1]?.version_hash)

      // another machine commits while the restore asks: the restore fails and writes nothing
      const exit = yield* History.restore({
        version: 0,
        confirm: () => runShop({ pipelinesDir: other, dataset, run: 5 }, pg()).pipe(Effect.as(true), Effect.orDie)
      }).pipe(Effect.provide(layer), Effect.exit)
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain("StateConflict")
      const after = yield* Effect.promise(() =>
        query<{ version: string }>(`SELECT version FROM "${dataset}"._dlt_pipeline_state ORDER BY version`)
      )
      expect(after.map((r) => Number(r.version))).toEqual([0, 1, 2, 3, 4])
    })
  )
})
