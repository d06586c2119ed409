/**
 * `pipestate pipeline <name> sync` never destroys a local state it cannot replace, finds its target
 * from the local state and the working dir before guessing, and every command an error message
 * recommends works as printed. The CLI runs in-process through its `run(argv)`.
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Redacted } from "effect"
import * as Destination from "../../src/destination/index.js"
import * as Pipeline from "../../src/pipeline/Pipeline.js"
import * as PipelineState from "../../src/internal/state/PipelineState.js"
import { tempDir } from "../helpers.js"
import { freshDataset, postgresAvailable, TEST_POSTGRES_URL } from "../postgres.js"
import { shop } from "./fixtures.js"
import { cli } from "./inprocess.js"

/** a POSIX shell's words of a command line (single quotes only, as the messages print them) */
const words = (line: string): Array<string> => {
  const result: Array<string> = []
  const pattern = /'((?:[^']|'\\'')*)'|(\S+)/g
  for (const match of line.matchAll(pattern)) {
    result.push(match[1] !== undefined ? match[1].replaceAll("'\\''", "'") : (match[2] ?? ""))
  }
  return result
}

const runShop = (
  pipelinesDir: string,
  destination: Layer.Layer<Destination.Destination, unknown>,
  options: { readonly run?: number; readonly dataset?: string } = {}
) =>
  Pipeline.run(shop(options.run ?? 1)).pipe(
    Effect.provide(
      Pipeline.layer({ name: "shop_pipeline", dataset: options.dataset ?? "shop_data", pipelinesDir }).pipe(
        Layer.provide(NodeContext.layer)
      )
    ),
    Effect.provide(destination)
  )

const stateFile = (pipelinesDir: string) => NodePath.join(pipelinesDir, "shop_pipeline", "state.json")

describe("pipestate pipeline <name> sync", () => {
  it.scopedLive("a dataset that holds no state: exit non-zero, the local state untouched", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* runShop(dir, Destination.sqlite())
      const before = NodeFs.readFileSync(stateFile(dir), "utf8")
      const typo = yield* cli("pipeline", "shop_pipeline", "sync", "--pipelines-dir", dir, "--dataset", "typo", "--yes")
      expect(typo.ok).toBe(false)
      expect(typo.err).toContain("holds no state of this pipeline")
      expect(NodeFs.readFileSync(stateFile(dir), "utf8")).toBe(before)
      expect(NodeFs.existsSync(NodePath.join(dir, "shop_pipeline", "typo.sqlite"))).toBe(false)
    })
  )

  it.scopedLive("an unknown pipeline name: exit non-zero, nothing created", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* runShop(dir, Destination.sqlite())
      const unknown = yield* cli("pipeline", "shop_pipline", "sync", "--pipelines-dir", dir, "--yes")
      expect(unknown.ok).toBe(false)
      expect(unknown.err).toContain('pipeline "shop_pipline" not found')
      expect(unknown.err).toContain("known pipelines: shop_pipeline")
      expect(NodeFs.existsSync(NodePath.join(dir, "shop_pipline"))).toBe(false)
    })
  )

  it.scopedLive("without --yes and without a terminal it refuses and changes nothing", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* runShop(dir, Destination.sqlite())
      const before = NodeFs.readFileSync(stateFile(dir), "utf8")
      const refused = yield* cli("pipeline", "shop_pipeline", "sync", "--pipelines-dir", dir)
      expect(refused.ok).toBe(false)
      expect(refused.err).toContain("--yes")
      // sync has no --dry-run: the refusal does not recommend one
      expect(refused.err).not.toContain("--dry-run")
      expect(NodeFs.readFileSync(stateFile(dir), "utf8")).toBe(before)
    })
  )

  it.scopedLive("after rm state.json, a plain sync finds the dataset file in the working dir", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* runShop(dir, Destination.sqlite(), { dataset: "chess_data" })
      const before = Either.getOrThrow(PipelineState.fromFileText(NodeFs.readFileSync(stateFile(dir), "utf8")))
      NodeFs.rmSync(stateFile(dir))
      const synced = yield* cli("pipeline", "shop_pipeline", "sync", "--pipelines-dir", dir, "--yes")
      expect(synced.err).toBe("")
      expect(synced.ok).toBe(true)
      expect(synced.out).toContain("dataset chess_data")
      const after = Either.getOrThrow(PipelineState.fromFileText(NodeFs.readFileSync(stateFile(dir), "utf8")))
      expect(after._version_hash).toBe(before._version_hash)
      expect(after.sources).toEqual(before.sources)
    })
  )

  it.scopedLive("a truncated state.json: the command the error prints restores the state", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const data = yield* tempDir()
      const destination = Destination.sqlite({ directory: NodePath.join(data, "my data") })
      yield* runShop(dir, destination)
      const text = NodeFs.readFileSync(stateFile(dir), "utf8")
      NodeFs.writeFileSync(stateFile(dir), text.slice(0, 20))
      const failed = (yield* Effect.flip(runShop(dir, destination, { run: 2 }))) as { _tag: string; message: string }
      expect(failed._tag).toBe("CorruptStateFile")
      const printed = /Run `([^`]+)`/.exec(failed.message)?.[1]
      expect(printed).toBeDefined()
      const argv = words(printed ?? "")
      expect(argv.slice(0, 4)).toEqual(["pipestate", "pipeline", "shop_pipeline", "sync"])
      const synced = yield* cli(...argv.slice(1))
      expect(synced.err, synced.err).toBe("")
      expect(synced.ok).toBe(true)
      const next = yield* runShop(dir, destination, { run: 2 })
      expect(next.origin).toBe("local")
      expect(next.tables.orders).toBe(10)
    })
  )

  it.scopedLive(
    "info for another dataset than the local state's says so and shows the state with its own location",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const data = yield* tempDir()
        yield* runShop(dir, Destination.sqlite({ directory: data }), { dataset: "b2" })
        const info = yield* cli("pipeline", "shop_pipeline", "info", "--pipelines-dir", dir, "--dataset", "a")
        expect(info.ok).toBe(true)
        expect(info.err).toContain("warning: the local state of shop_pipeline belongs to sqlite dataset b2")
        expect(info.out).toContain(`location:       ${NodePath.join(data, "b2.sqlite")}`)
        expect(info.out).toContain("dataset:        b2")
      })
  )

  it.scopedLive("a SQLite directory chosen in code is what info, history and sync see", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const data = yield* tempDir()
      const destination = Destination.sqlite({ directory: data })
      yield* runShop(dir, destination)
      yield* runShop(dir, destination, { run: 2 })
      const file = NodePath.join(data, "shop_data.sqlite")
      const info = yield* cli("pipeline", "shop_pipeline", "info", "--pipelines-dir", dir)
      expect(info.ok).toBe(true)
      expect(info.out).toContain(file)
      const history = yield* cli("pipeline", "shop_pipeline", "history", "--pipelines-dir", dir, "--json")
      expect(history.ok).toBe(true)
      expect((JSON.parse(history.out) as ReadonlyArray<unknown>).length).toBe(2)
      const synced = yield* cli("pipeline", "shop_pipeline", "sync", "--pipelines-dir", dir, "--yes")
      expect(synced.ok).toBe(true)
      expect(NodeFs.existsSync(stateFile(dir))).toBe(true)
      expect(NodeFs.existsSync(NodePath.join(dir, "shop_pipeline", "shop_data.sqlite"))).toBe(false)
    })
  )

  it.scopedLive.skipIf(!postgresAvailable)(
    "PostgreSQL: a truncated state.json: the printed command (with the server's URL) restores the state",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const dataset = yield* freshDataset()
        const destination = Destination.postgres({ url: Redacted.make(TEST_POSTGRES_URL) })
        yield* runShop(dir, destination, { dataset })
        NodeFs.writeFileSync(stateFile(dir), "garbage")
        const failed = (yield* Effect.flip(runShop(dir, destination, { dataset, run: 2 }))) as {
          _tag: string
          message: string
        }
        expect(failed._tag).toBe("CorruptStateFile")
        const printed = /Run `([^`]+)`/.exec(failed.message)?.[1] ?? ""
        expect(printed).toContain("--url postgres://")
        // the CLI's environment has no PIPESTATE_POSTGRES_URL: the command works as printed
        const synced = yield* cli(...words(printed).slice(1))
        expect(synced.err, synced.err).toBe("")
        expect(synced.ok).toBe(true)
        const next = yield* runShop(dir, destination, { dataset, run: 2 })
        expect(next.origin).toBe("local")
      })
  )

  it.scopedLive.skipIf(!postgresAvailable)("PostgreSQL: a dataset without state fails and keeps the local state", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const dataset = yield* freshDataset()
      const empty = yield* freshDataset()
      yield* runShop(dir, Destination.postgres({ url: Redacted.make(TEST_POSTGRES_URL) }), { dataset })
      const before = NodeFs.readFileSync(stateFile(dir), "utf8")
      const result = yield* cli(
        "pipeline",
        "shop_pipeline",
        "sync",
        "--pipelines-dir",
        dir,
        "--url",
        TEST_POSTGRES_URL,
        "--dataset",
        empty,
        "--yes"
      )
      expect(result.ok).toBe(false)
      expect(result.err).toContain("holds no state of this pipeline")
      expect(NodeFs.readFileSync(stateFile(dir), "utf8")).toBe(before)
      const good = yield* cli(
        "pipeline",
        "shop_pipeline",
        "sync",
        "--pipelines-dir",
        dir,
        "--url",
        TEST_POSTGRES_URL,
        "--yes"
      )
      expect(good.err).toBe("")
      expect(good.ok).toBe(true)
    })
  )
})
