/**
 * Two runs of `user_comments_pipeline` for one user, printing what each loaded and the state
 * version. `main.ts` runs it; the tests run it too.
 */
import { Console, Effect } from "effect"
import { Pipeline } from "../../src/index.js"
import { comments } from "./pipeline.js"

export const config = { name: "user_comments_pipeline", dataset: "comments_data" } satisfies Pipeline.PipelineConfig

export const demo = (userId = "alice") =>
  Effect.gen(function* () {
    const runs: Array<Pipeline.LoadSummary> = []
    for (const attempt of [1, 2]) {
      const summary = yield* Pipeline.run(comments(userId))
      yield* Console.log(
        `run ${attempt}: user_comments: ${summary.tables.user_comments ?? 0} rows for ${userId} | state version ${summary.stateVersionAfter} (first run: ${summary.firstRun})`
      )
      runs.push(summary)
    }
    return runs
  })
