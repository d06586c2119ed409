/**
 * The source of the distributed example, the bench and the tests: `resources` resources named
 * `r1`, `r2`, ... of one source `shop`, each an incremental stream of `rows` numbered records
 * (`id` 1..rows) into its own table. Each keeps its cursor `last_id` in its resource state and
 * emits only ids past it, so a second run of a loaded resource loads nothing.
 *
 * `beforeExtract(resource)` runs when a resource has read its state, before its records (tests use
 * it as a barrier); `chunkDelay` sleeps between chunks of `chunkSize` records (a slow API).
 */
import { Chunk, Duration, Effect, Option, Schema, Stream } from "effect"
import { Resource, ResourceState, Source, SourceState } from "../../src/index.js"

export const LastId = ResourceState.key("last_id", Schema.Number, () => 0)

export interface ShopOptions {
  readonly resources: number
  readonly rows: number
  readonly chunkSize?: number
  readonly chunkDelay?: Duration.DurationInput
  readonly beforeExtract?: (resource: string) => Effect.Effect<void>
  /** a top-level source-state key every resource writes (its name): two groups doing so conflict */
  readonly sourceKey?: string
}

export const resourceNames = (count: number): ReadonlyArray<string> =>
  Array.from({ length: count }, (_, i) => `r${i + 1}`)

const records = (resource: string, from: number, to: number) =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => ({
    id: from + i,
    resource,
    amount: ((from + i) * 37) % 1000,
    note: `order ${from + i} of ${resource}`
  }))

export const shop = (options: ShopOptions) => {
  const chunkSize = Math.max(1, options.chunkSize ?? 5_000)
  const delay = Option.map(Option.fromNullable(options.chunkDelay), Duration.decode)
  return Source.make({
    name: "shop",
    resources: resourceNames(options.resources).map((name) =>
      Resource.make(
        { name, writeDisposition: "append" },
        Stream.unwrap(
          Effect.gen(function* () {
            const last = yield* LastId.get
            if (options.beforeExtract !== undefined) yield* options.beforeExtract(name)
            const starts: Array<number> = []
            for (let from = last + 1; from <= options.rows; from += chunkSize) starts.push(from)
            yield* LastId.set(Math.max(last, options.rows))
            if (options.sourceKey !== undefined) yield* SourceState.set(options.sourceKey, name)
            return Stream.fromIterable(starts).pipe(
              Stream.mapEffect((from) =>
                Effect.as(
                  Option.match(delay, { onNone: () => Effect.void, onSome: (d) => Effect.sleep(d) }),
                  Chunk.unsafeFromArray(records(name, from, Math.min(options.rows, from + chunkSize - 1)))
                )
              ),
              Stream.flattenChunks
            )
          })
        )
      )
    )
  })
}
