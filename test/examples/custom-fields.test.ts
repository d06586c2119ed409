import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { PipedriveApi } from "../../examples/custom-fields/api.js"
import { config, demo } from "../../examples/custom-fields/demo.js"
import { pipedrive } from "../../examples/custom-fields/pipeline.js"
import { Destination, Pipeline } from "../../src/index.js"
import { tempDir } from "../helpers.js"
import { runExample } from "./runExample.js"

/** every row of a table of the running pipeline's dataset */
const tableRows = (table: string) =>
  Effect.gen(function* () {
    const pipeline = yield* Pipeline.Pipeline
    const destination = yield* Destination.Destination
    const dataset = yield* destination.dataset({
      dataset: pipeline.config.dataset,
      pipelineDir: pipeline.workingDir.dir
    })
    return yield* dataset.rows(table)
  })

const HASH_KEY = /^_?[0-9a-f]{40}$/

describe("examples/custom-fields", () => {
  it("lets its three resources run at once (concurrency >= 2)", () => {
    expect(config.concurrency).toBeGreaterThanOrEqual(2)
  })

  it.scopedLive("fetches the field mapping once into the source state; the readers rename with it", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* Effect.gen(function* () {
        const [first, second] = yield* demo
        expect(first?.fieldRequests).toBe(2)
        expect(first?.summary.tables).toEqual({ custom_fields: 4, deals: 3, persons: 3 })
        // the second run reads the mapping from the state: no field request, still renamed
        expect(second?.fieldRequests).toBe(0)
        expect(second?.summary.tables).toEqual({ custom_fields: 0, deals: 3, persons: 3 })
        expect(second?.summary.stateChanged).toBe(false)

        const deals = yield* tableRows("deals")
        expect(deals).toHaveLength(3) // replaced, not appended
        expect(deals.find((d) => Number(d.id) === 1)).toMatchObject({
          title: "Acme renewal",
          expected_close_quarter: "2024-Q3",
          lead_source: "Referral"
        })
        const persons = yield* tableRows("persons")
        expect(persons.map((p) => p.preferred_language).sort()).toEqual(["English", "English", "French"])
        for (const row of [...deals, ...persons]) {
          expect(Object.keys(row).filter((column) => HASH_KEY.test(column))).toEqual([])
        }
        expect(yield* tableRows("custom_fields")).toHaveLength(4)

        const state = yield* Pipeline.currentState
        const mapping = state.sources.pipedrive?.custom_fields as Record<string, Record<string, string>>
        expect(Object.values(mapping.deals ?? {}).sort()).toEqual(["Expected close quarter", "Lead source"])
        expect(Object.values(mapping.persons ?? {}).sort()).toEqual(["Lead source", "Preferred language"])
      }).pipe(
        Effect.provide(
          Layer.mergeAll(
            PipedriveApi.layer,
            FetchHttpClient.layer,
            Pipeline.layerNode({ ...config, pipelinesDir: dir }),
            Destination.sqlite()
          )
        )
      )
    })
  )

  it.scopedLive("on a clean machine the mapping is restored from the destination, not refetched", () =>
    Effect.gen(function* () {
      // the SQLite file outside the pipelines dirs, so it outlives the working dir
      const data = yield* tempDir()
      const [firstMachine, secondMachine] = [yield* tempDir(), yield* tempDir()]
      yield* Effect.gen(function* () {
        const api = yield* PipedriveApi
        const runIn = (pipelinesDir: string) =>
          Pipeline.run(pipedrive(api.baseUrl)).pipe(Effect.provide(Pipeline.layerNode({ ...config, pipelinesDir })))
        yield* runIn(firstMachine)
        expect(yield* api.fieldRequests).toBe(2)

        const restored = yield* runIn(secondMachine)
        expect(restored.origin).toBe("destination")
        expect(yield* api.fieldRequests).toBe(2)
        expect(restored.tables).toEqual({ custom_fields: 0, deals: 3, persons: 3 })
        const deals = yield* tableRows("deals").pipe(
          Effect.provide(Pipeline.layerNode({ ...config, pipelinesDir: secondMachine }))
        )
        expect(deals.map((d) => d.lead_source).sort()).toEqual(["Cold call", "Referral", "Website"])
      }).pipe(
        Effect.provide(
          Layer.mergeAll(PipedriveApi.layer, FetchHttpClient.layer, Destination.sqlite({ directory: data }))
        )
      )
    })
  )

  it.scopedLive("npm run example:custom-fields", () =>
    Effect.gen(function* () {
      const out = yield* runExample("custom-fields", { env: { PIPESTATE_PIPELINES_DIR: yield* tempDir() } })
      expect(out).toContain("run 1: custom_fields: 4 rows, deals: 3 rows, persons: 3 rows | field requests: 2")
      expect(out).toContain("run 2: custom_fields: 0 rows, deals: 3 rows, persons: 3 rows | field requests: 0")
    })
  )
})
