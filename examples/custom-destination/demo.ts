/**
 * Three runs of `weather_pipeline` into the JSON-lines destination: the first loads everything,
 * the second nothing new; then the pipeline's working dir is deleted (a fresh machine) and the
 * third run restores the state from the custom destination and still loads nothing.
 */
import { FileSystem } from "@effect/platform"
import { Console, Effect } from "effect"
import { Destination, Pipeline } from "../../src/index.js"
import { defaultReadings, defaultStations, weather } from "./pipeline.js"

export const config = { name: "weather_pipeline", dataset: "weather_data" } satisfies Pipeline.PipelineConfig

export const demo = (pipeline: Pipeline.PipelineConfig = config) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const destination = yield* Destination.Destination
    const source = weather({ stations: defaultStations, readings: defaultReadings })
    // a fresh pipeline layer per step: building it (re)creates the working dir that step 3 deletes
    const withPipeline = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.provide(effect, Pipeline.layerNode(pipeline))

    const run = (label: string) =>
      Effect.gen(function* () {
        const summary = yield* withPipeline(Pipeline.run(source))
        const rows = Object.entries(summary.tables)
          .map(([table, count]) => `${table}: ${count} rows`)
          .join(", ")
        yield* Console.log(`${label}: ${rows} | state version ${summary.stateVersionAfter} (from ${summary.origin})`)
        return summary
      })

    const first = yield* run("run 1")
    const second = yield* run("run 2")
    const workingDir = yield* withPipeline(Effect.map(Pipeline.Pipeline, (p) => p.workingDir.dir))
    yield* fs.remove(workingDir, { recursive: true })
    yield* Console.log(`deleted the working dir ${workingDir}`)
    const restored = yield* run("run 3")
    yield* Console.log(`data and state: ${destination.location({ dataset: first.dataset, pipelineDir: workingDir })}`)
    return [first, second, restored] as const
  })
