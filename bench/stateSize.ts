/**
 * state size: how the cost of state grows with its size. The seed's list-of-archives pattern keeps a
 * list in resource state and says it works "if the list is not much bigger than 100k elements"; this
 * shows where we stand at 10k, 100k and 1M entries (--quick: 10k and 100k).
 *
 * Per size, three figures:
 * - `state size <n> run`: a run on SQLite whose resource appends one entry to the list and loads no
 *   rows (restore the state from state.json, copy-on-read `get`, `set`, version hash, blob, commit,
 *   state.json written). Baseline: the least any tool must do to keep such a state in one
 *   transaction with its data: read state.json, `JSON.parse`, push, `JSON.stringify`, SHA3-256,
 *   zlib 9 + base64, write the file, insert the blob in a one-row transaction of the same SQLite file.
 * - `state size <n> encode` / `decode`: the state codec alone (versionHash + StateBlob.encode /
 *   StateBlob.decode) against JSON.stringify + SHA3-256 + zlib 9 / inflate + JSON.parse.
 */
import { createHash } from "node:crypto"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { deflateSync, inflateSync } from "node:zlib"
import { Effect, Either, Layer, ManagedRuntime, Option, Stream } from "effect"
import { Destination, Pipeline, Resource, ResourceState, Source } from "../src/index.js"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import * as StateBlob from "../src/internal/state/StateBlob.js"
import type { Benchmark, Figure } from "./lib/env.js"
import { makeTempDir, openSqlite, removeDir } from "./lib/env.js"
import { alternate, median, timed } from "./lib/stats.js"

const archiveUrl = (i: number): string =>
  `https://api.chess.com/pub/player/player${i % 1000}/games/${2000 + (i % 25)}/${String((i % 12) + 1).padStart(2, "0")}#${i}`

const SIZES = [10_000, 100_000, 1_000_000] as const

const label = (n: number): string => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`)

/** the seed's pattern: the resource remembers every archive it read, and reads one more per run */
const archivesSource = (initial: number | undefined) =>
  Source.make({
    name: "chess",
    resources: [
      Resource.make(
        { name: "archives" },
        Stream.execute(
          initial === undefined
            ? ResourceState.update("read", (current) => {
                const list = Option.getOrElse(current, () => [] as Array<unknown>) as Array<unknown>
                list.push(archiveUrl(list.length))
                return list
              })
            : ResourceState.set(
                "read",
                Array.from({ length: initial }, (_, i) => archiveUrl(i))
              )
        )
      )
    ]
  })

const stateWith = (n: number): PipelineState.PipelineState => ({
  ...PipelineState.empty({ pipelineName: "bench_size", datasetName: "bench_size_data" }),
  sources: { chess: { resources: { archives: { read: Array.from({ length: n }, (_, i) => archiveUrl(i)) } } } }
})

export const stateSize: Benchmark = {
  id: "state-size",
  figures: SIZES.flatMap((n) => [
    `state size ${label(n)} run`,
    `state size ${label(n)} encode`,
    `state size ${label(n)} decode`
  ]),
  run: async (options) => {
    const figures: Array<Figure> = []
    const sizes = options.quick ? SIZES.slice(0, 2) : SIZES
    for (const n of sizes) {
      const name = `state size ${label(n)}`
      const reps = n >= 1_000_000 ? Math.max(3, options.reps) : Math.max(5, options.reps * 2 + 1)
      options.log(`state size: a list of ${n.toLocaleString("en-US")} entries in resource state, ${reps} repetitions`)

      if (options.wants(`${name} encode`) || options.wants(`${name} decode`)) {
        const state = stateWith(n)
        const { _local: _, ...synced } = state
        const blob = Either.getOrThrow(StateBlob.encode(state))
        const deflated = deflateSync(Buffer.from(JSON.stringify(synced), "utf8"), { level: 9 })
        const codecBaseline = async () => ({
          encode: (
            await timed(() => {
              const text = JSON.stringify(synced)
              createHash("sha3-256").update(text, "utf8").digest("base64")
              return deflateSync(Buffer.from(text, "utf8"), { level: 9 }).toString("base64")
            })
          ).ms,
          decode: (await timed(() => JSON.parse(inflateSync(deflated).toString("utf8")))).ms
        })
        const codecPipestate = async () => ({
          encode: (
            await timed(() => {
              const fresh = { ...state }
              Either.getOrThrow(PipelineState.versionHash(fresh))
              return Either.getOrThrow(StateBlob.encode(fresh))
            })
          ).ms,
          decode: (await timed(() => Either.getOrThrow(StateBlob.decode(blob)))).ms
        })
        // one untimed round each: the first calls at a size pay for compilation
        await codecBaseline()
        await codecPipestate()
        const { pipestate: p, baseline: b } = await alternate(
          { ...options, reps },
          codecBaseline,
          codecPipestate,
          (r) => `encode ${r.encode.toFixed(1)} ms, decode ${r.decode.toFixed(1)} ms`
        )
        for (const part of ["encode", "decode"] as const) {
          const value = median(p.map((r) => r[part]))
          const base = median(b.map((r) => r[part]))
          figures.push({
            name: `${name} ${part}`,
            value,
            unit: "ms",
            baseline: base,
            ratio: base / value,
            note:
              part === "encode"
                ? "baseline: JSON.stringify + SHA3-256 + zlib 9 + base64 of the same state"
                : "baseline: inflate + JSON.parse of the same state"
          })
        }
      }

      if (options.wants(`${name} run`)) {
        const dir = makeTempDir(`state-size-${label(n)}`)
        const dataset = "bench_size_data"
        const runtime = ManagedRuntime.make(
          Layer.merge(
            Destination.sqlite({ directory: dir }),
            Pipeline.layerNode({ name: "bench_size", dataset, pipelinesDir: dir })
          )
        )
        try {
          // untimed: the list of n entries, then one append run (tables made, state file in place)
          await runtime.runPromise(Pipeline.run(archivesSource(n)))
          await runtime.runPromise(Pipeline.run(archivesSource(undefined)))
          const stateFile = NodePath.join(dir, "bench_size", "state.json")
          const baselineFile = NodePath.join(dir, "baseline-state.json")
          NodeFs.copyFileSync(stateFile, baselineFile)
          const db = new openSqlite(NodePath.join(dir, "baseline.sqlite"))
          db.exec("CREATE TABLE baseline_state (state TEXT, version_hash TEXT)")
          const insert = db.prepare("INSERT INTO baseline_state VALUES (?, ?)")
          const store = db.transaction((blob: string, hash: string) => {
            insert.run(blob, hash)
          })
          let entries = 0
          try {
            const { pipestate: p, baseline: b } = await alternate(
              { ...options, reps },
              async () =>
                (
                  await timed(() => {
                    const doc = JSON.parse(NodeFs.readFileSync(baselineFile, "utf8")) as {
                      sources: { chess: { resources: { archives: { read: Array<string> } } } }
                    }
                    const list = doc.sources.chess.resources.archives.read
                    list.push(archiveUrl(list.length))
                    const text = JSON.stringify(doc)
                    const hash = createHash("sha3-256").update(text, "utf8").digest("base64")
                    const blob = deflateSync(Buffer.from(text, "utf8"), { level: 9 }).toString("base64")
                    NodeFs.writeFileSync(baselineFile, text)
                    store(blob, hash)
                  })
                ).ms,
              async () =>
                (
                  await timed(async () => {
                    const summary = await runtime.runPromise(Pipeline.run(archivesSource(undefined)))
                    if (!summary.stateChanged) throw new Error("state size: the run did not commit a new state")
                  })
                ).ms
            )
            entries = await runtime.runPromise(
              Effect.map(Pipeline.currentState, (state) => {
                const slot = (state.sources.chess as { resources: { archives: { read: ReadonlyArray<unknown> } } })
                  .resources.archives
                return slot.read.length
              })
            )
            const value = median(p)
            const base = median(b)
            figures.push({
              name: `${name} run`,
              value,
              unit: "ms",
              baseline: base,
              ratio: base / value,
              note: "baseline: read state.json, JSON.parse, push, JSON.stringify, SHA3-256, zlib 9 + base64, write the file, a one-row transaction with the blob (SQLite)",
              ...(entries === n + 1 + p.length
                ? {}
                : { error: `the list holds ${entries} entries, not ${n + 1 + p.length}` })
            })
          } finally {
            db.close()
          }
        } finally {
          await runtime.dispose()
          removeDir(dir)
        }
      }
    }
    return figures
  }
}
