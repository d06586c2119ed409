/**
 * Two runs of `pipedrive_pipeline` against the local API, printing what each loaded, how many
 * field requests it made and the state version. `main.ts` runs it; the tests run it too.
 */
import { Console, Effect } from "effect"
import { Pipeline } from "../../src/index.js"
import { PipedriveApi } from "./api.js"
import { pipedrive } from "./pipeline.js"

/** the pipeline's configuration; the three resources run at once */
export const config = {
  name: "pipedrive_pipeline",
  dataset: "pipedrive_data",
  concurrency: 3
} satisfies Pipeline.PipelineConfig

export interface DemoRun {
  readonly summary: Pipeline.LoadSummary
  /** requests to the `*Fields` endpoints during the run */
  readonly fieldRequests: number
}

export const demo = Effect.gen(function* () {
  const api = yield* PipedriveApi
  const source = pipedrive(api.baseUrl)
  const runs: Array<DemoRun> = []
  for (const attempt of [1, 2]) {
    const before = yield* api.fieldRequests
    const summary = yield* Pipeline.run(source)
    const fieldRequests = (yield* api.fieldRequests) - before
    const rows = Object.entries(summary.tables)
      .map(([table, count]) => `${table}: ${count} rows`)
      .join(", ")
    yield* Console.log(
      `run ${attempt}: ${rows} | field requests: ${fieldRequests} | state version ${summary.stateVersionAfter} (from ${summary.origin})`
    )
    runs.push({ summary, fieldRequests })
  }
  return runs
})
