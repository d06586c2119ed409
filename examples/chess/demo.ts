/**
 * The demo as a program: runs `chess_pipeline` twice against the local chess API and reports each
 * run. `main.ts` runs it from the command line; the test suite runs it too.
 */
import { Console, Effect } from "effect"
import { Pipeline } from "../../src/index.js"
import { chess } from "./pipeline.js"
import { ChessApi } from "./server.js"

/** the pipeline the seed names */
export const pipelineConfig = { name: "chess_pipeline", dataset: "chess_data" } as const

export const runTwice = Effect.gen(function* () {
  const api = yield* ChessApi
  const source = chess(api.baseUrl, api.players)
  const summaries: Array<Pipeline.LoadSummary> = []
  for (const attempt of [1, 2]) {
    const summary = yield* Pipeline.run(source)
    summaries.push(summary)
    const rows = Object.entries(summary.tables)
      .map(([table, count]) => `${table}: ${count} rows`)
      .join(", ")
    yield* Console.log(
      `run ${attempt}: ${rows} | state version ${summary.stateVersionAfter} (from ${summary.origin}, first run: ${summary.firstRun})`
    )
  }
  const pipeline = yield* Pipeline.Pipeline
  yield* Console.log(`pipeline ${pipeline.config.name}: working dir ${pipeline.workingDir.dir}`)
  return summaries
})
