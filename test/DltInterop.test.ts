/**
 * "Unchanged means identical" at the pipeline level: a state that real dlt wrote into a dataset
 * (its blob, version and hash, from ../shared/dlt-vectors/state-documents.json), restored by a
 * pipestate run that changes nothing in it, is committed back as it is: same hash, same version, no
 * new state row, although the run loads rows.
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Stream } from "effect"
import * as ResourceState from "../src/context/ResourceState.js"
import * as SourceState from "../src/context/SourceState.js"
import * as Destination from "../src/destination/index.js"
import * as Commit from "../src/internal/pipeline/Commit.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Source from "../src/pipeline/Source.js"
import { tempDir } from "./helpers.js"

interface Step {
  readonly version: number
  readonly version_hash: string
  readonly doc_text: string
  readonly blob: string
}
const documents = JSON.parse(
  NodeFs.readFileSync(NodePath.join(import.meta.dirname, "fixtures", "dlt-vectors", "state-documents.json"), "utf8")
) as { documents: Array<{ name: string; steps: Array<Step> }> }
const shopDoc = documents.documents.find((d) => d.name === "shop_resource_and_source_state")!
const dltStep = shopDoc.steps[shopDoc.steps.length - 1]!

/** the dlt pipeline's source, read by pipestate: it reads the state and changes none of it */
const shop = Source.make({
  name: "shop",
  resources: [
    Resource.make(
      { name: "orders" },
      Stream.unwrap(
        Effect.map(ResourceState.get("page"), (page) => Stream.make({ page: String(Option.getOrNull(page)) }))
      )
    ),
    Resource.make(
      { name: "customers" },
      Stream.unwrap(Effect.map(SourceState.get("last_sync"), () => Stream.make({ id: 4 })))
    )
  ]
})

describe("a state dlt wrote, committed back unchanged by pipestate", () => {
  it.scoped("keeps dlt's hash and version and writes no new state row", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const data = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.sqlite({ directory: data }))
      const target = { dataset: "shop_data", pipelineDir: NodePath.join(dir, "vec_doc_shop") }
      // the rows dlt's load wrote: a completed load and its state row with dlt's blob
      yield* Effect.flatMap(Destination.Destination, (d) =>
        Commit.apply(d, target, {
          pipelineName: "vec_doc_shop",
          load: {
            loadId: "1795969817.9293659",
            schemaName: "shop",
            status: 0,
            insertedAt: new Date(),
            schemaVersionHash: null
          },
          stage: Option.none(),
          tables: [],
          dropTables: [],
          keepStateVersions: 100,
          loadIdAfter: (after) => Effect.succeed(after),
          schemas: [],
          state: {
            expected: { _tag: "Unchecked" },
            onExpected: () =>
              Effect.succeed({
                row: Option.some({
                  version: dltStep.version,
                  engineVersion: 4,
                  pipelineName: "vec_doc_shop",
                  state: dltStep.blob,
                  createdAt: new Date(),
                  versionHash: dltStep.version_hash,
                  dltId: "dltrowid000001"
                }),
                value: undefined
              }),
            onMoved: () => Effect.die("unexpected")
          }
        })
      ).pipe(Effect.provide(destination))

      const summary = yield* Pipeline.run(shop).pipe(
        Effect.provide(Pipeline.layer({ name: "vec_doc_shop", dataset: "shop_data", pipelinesDir: dir })),
        Effect.provide(destination),
        Effect.provide(NodeContext.layer)
      )
      expect(summary.origin).toBe("destination")
      expect(summary.tables).toEqual({ orders: 1, customers: 1 })
      expect(summary.loadId).not.toBeNull()
      expect(summary.stateChanged).toBe(false)
      expect(summary.stateVersionAfter).toBe(dltStep.version)
      expect(summary.stateHashAfter).toBe(dltStep.version_hash)
      const rows = yield* Effect.flatMap(Destination.Destination, (d) => d.stateRows(target, "vec_doc_shop", 10)).pipe(
        Effect.provide(destination)
      )
      expect(rows.map((r) => [r.version, r.versionHash])).toEqual([[dltStep.version, dltStep.version_hash]])
    })
  )
})
