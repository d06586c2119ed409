/**
 * Three runs of `items_pipeline` against the local API: the first loads every item; then the API
 * gains new items and updates some, and the second run loads exactly those, merged on `id`; the
 * third loads nothing. `main.ts` runs it; the tests run it too.
 */
import { Console, Effect } from "effect"
import { Pipeline } from "../../src/index.js"
import { IncrementalApi } from "./api.js"
import { incrementalSource, loadedItems } from "./pipeline.js"

export const config = { name: "items_pipeline", dataset: "items_data" } satisfies Pipeline.PipelineConfig

export const demo = Effect.gen(function* () {
  const api = yield* IncrementalApi
  const source = incrementalSource(api.baseUrl)
  const run = (label: string) =>
    Effect.gen(function* () {
      const summary = yield* Pipeline.run(source)
      yield* Console.log(
        `${label}: items: ${summary.tables.items ?? 0} rows | state version ${summary.stateVersionAfter} (from ${summary.origin})`
      )
      return summary
    })

  const first = yield* run("run 1")
  const mutation = yield* api.mutate
  yield* Console.log(
    `the API changed at ${mutation.updatedAt}: new items ${mutation.created.join(", ")}; updated items ${mutation.updated.join(", ")}`
  )
  const second = yield* run("run 2")
  const third = yield* run("run 3")

  const loaded = yield* loadedItems
  const expected = yield* api.items
  const same = JSON.stringify(loaded) === JSON.stringify(expected)
  yield* Console.log(`the destination holds ${loaded.length} items; the API ${expected.length}; identical: ${same}`)
  return { runs: [first, second, third] as const, mutation, loaded, expected }
})
