import { FetchHttpClient, HttpClient, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Schedule } from "effect"
import {
  expectedItems,
  IncrementalApi,
  initialCatalog,
  ItemsPage,
  makeIncrementalApi,
  mutateCatalog
} from "../../examples/incremental-api/api.js"
import { config, demo } from "../../examples/incremental-api/demo.js"
import { incrementalSource, loadedItems } from "../../examples/incremental-api/pipeline.js"
import { Destination, Pipeline } from "../../src/index.js"
import { tempDir } from "../helpers.js"
import { freshDataset, postgresAvailable, testDestination } from "../postgres.js"
import { runExample } from "./runExample.js"

/**
 * Many runs while the API changes between and DURING them; then one last run with the API at
 * rest must leave the destination holding exactly the API's items. (The soak does this 200 times.)
 */
const soak = (rounds: number) =>
  Effect.gen(function* () {
    const api = yield* IncrementalApi
    const source = incrementalSource(api.baseUrl)
    const mutating = yield* Effect.fork(Effect.repeat(api.mutate, Schedule.spaced("5 millis")))
    for (let i = 0; i < rounds; i++) yield* Pipeline.run(source)
    yield* Fiber.interrupt(mutating)
    yield* Pipeline.run(source)
    const loaded = yield* loadedItems
    const expected = yield* api.items
    expect(loaded).toEqual(expected)
    expect(expected).toEqual(expectedItems({ seed: 11, mutations: yield* api.mutations }))
    return yield* api.mutations
  })

describe("examples/incremental-api: the API", () => {
  it("is deterministic from its seed", () => {
    const itemsOf = (seed: number) => expectedItems({ seed, mutations: 5 })
    expect(itemsOf(3)).toEqual(itemsOf(3))
    expect(itemsOf(3)).not.toEqual(itemsOf(4))
    const [catalog, mutation] = mutateCatalog(initialCatalog(3))
    expect(mutation.created.length).toBeGreaterThanOrEqual(1)
    expect(mutation.updated.length).toBeGreaterThanOrEqual(1)
    for (const id of [...mutation.created, ...mutation.updated]) {
      expect(catalog.items.find((item) => item.id === id)?.updated_at).toBe(mutation.updatedAt)
    }
  })

  it.scopedLive("a walk through the pages ends while items change, and misses nothing it should not", () =>
    Effect.gen(function* () {
      const api = yield* makeIncrementalApi({ seed: 5, pageSize: 4 })
      const get = (url: string) =>
        HttpClient.get(url).pipe(
          Effect.flatMap(HttpClientResponse.filterStatusOk),
          Effect.flatMap(HttpClientResponse.schemaBodyJson(ItemsPage))
        )
      const pin = Date.parse(
        (yield* api.items)
          .map((item) => item.updated_at)
          .sort()
          .at(-1)!
      )
      const seen = new Set<number>()
      let next: string | null = `${api.baseUrl}/items?updated_since=2024-01-01T00:00:00Z`
      let pages = 0
      while (next !== null) {
        const page: ItemsPage = yield* get(next)
        for (const item of page.items) seen.add(item.id)
        // changes move items (read or not yet) past the pin and add new ones there
        yield* api.mutate
        next = page.next_page
        pages++
      }
      // at most the 25 items of the start, 4 a page: items moved past the pin drop out of the walk
      expect(pages).toBeLessThanOrEqual(7)
      // an item the walk did not serve changed after it began: the next walk, from the cursor, gets it
      const missed = (yield* api.items).filter((item) => !seen.has(item.id))
      expect(missed.length).toBeGreaterThan(0)
      for (const item of missed) expect(Date.parse(item.updated_at)).toBeGreaterThan(pin)

      const bad = yield* HttpClient.get(`${api.baseUrl}/items?updated_since=yesterday`)
      expect(bad.status).toBe(400)
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )
})

describe("examples/incremental-api: the pipeline", () => {
  it.scopedLive("new and updated items arrive merged on id; a run with no change loads nothing", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const result = yield* demo.pipe(
        Effect.provide(
          Layer.mergeAll(
            IncrementalApi.layer({ seed: 7 }),
            FetchHttpClient.layer,
            Pipeline.layerNode({ ...config, pipelinesDir: dir }),
            Destination.sqlite()
          )
        )
      )
      const [first, second, third] = result.runs
      expect(first.tables).toEqual({ items: 25 })
      expect(second.tables).toEqual({ items: result.mutation.created.length + result.mutation.updated.length })
      expect(third.tables).toEqual({ items: 0 })
      expect(third.stateChanged).toBe(false)
      expect(result.loaded).toEqual(result.expected)
      expect(result.loaded).toHaveLength(25 + result.mutation.created.length)
      for (const id of result.mutation.updated) {
        expect(result.loaded.find((item) => item.id === id)?.version).toBe(2)
      }
    })
  )

  it.scopedLive("SQLite: many runs while the API changes leave exactly the API's items", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const mutations = yield* soak(15).pipe(
        Effect.provide(
          Layer.mergeAll(
            IncrementalApi.layer({ seed: 11, pageSize: 5 }),
            FetchHttpClient.layer,
            Pipeline.layerNode({ ...config, pipelinesDir: dir }),
            Destination.sqlite()
          )
        )
      )
      expect(mutations).toBeGreaterThan(0)
    })
  )

  it.scopedLive("npm run example:incremental-api", () =>
    Effect.gen(function* () {
      const out = yield* runExample("incremental-api", { env: { PIPESTATE_PIPELINES_DIR: yield* tempDir() } })
      expect(out).toContain("run 1: items: 25 rows")
      expect(out).toMatch(/run 2: items: [1-6] rows/)
      expect(out).toContain("run 3: items: 0 rows")
      expect(out).toContain("identical: true")
    })
  )
})

describe.skipIf(!postgresAvailable)("examples/incremental-api on PostgreSQL", () => {
  it.scopedLive("many runs while the API changes leave exactly the API's items", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const dataset = yield* freshDataset("items")
      yield* soak(10).pipe(
        Effect.provide(
          Layer.mergeAll(
            IncrementalApi.layer({ seed: 11, pageSize: 5 }),
            FetchHttpClient.layer,
            Pipeline.layerNode({ ...config, dataset, pipelinesDir: dir }),
            testDestination()
          )
        )
      )
    })
  )
})
