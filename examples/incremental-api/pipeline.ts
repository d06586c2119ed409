/**
 * Incremental loading from a paged REST API: each run asks only for the items changed since the
 * previous run's newest `updated_at` and merges them on `id`, so new items are added and updated
 * ones replaced. The cursor lives in the resource state (`incremental.updated_at`).
 */
import { HttpClient, HttpClientResponse } from "@effect/platform"
import { Chunk, Effect, Option, Schema, Stream } from "effect"
import { Destination, Incremental, Pipeline, Resource, Source } from "../../src/index.js"
import { Item, ItemsPage } from "./api.js"

/**
 * The cursor: the newest `updated_at` loaded so far. Items with exactly that `updated_at` come
 * back on the next run (the API's filter is inclusive) and are recognized by their `id`, so none
 * is loaded twice and none is missed when several share a second.
 */
export const updatedAt = Incremental.cursor({
  path: "updated_at",
  initialValue: new Date("2024-01-01T00:00:00Z"),
  primaryKey: "id"
})

const fetchPage = (url: string) =>
  HttpClient.get(url).pipe(
    Effect.flatMap(HttpClientResponse.filterStatusOk),
    Effect.flatMap(HttpClientResponse.schemaBodyJson(ItemsPage))
  )

/** every item changed since `since`, following `next_page` links until there are none */
export const itemsSince = (baseUrl: string, since: Date) =>
  Stream.paginateChunkEffect(`${baseUrl}/items?updated_since=${encodeURIComponent(since.toISOString())}`, (url) =>
    Effect.map(fetchPage(url), (page) => [Chunk.fromIterable(page.items), Option.fromNullable(page.next_page)] as const)
  )

export const items = (baseUrl: string) =>
  Resource.make(
    { name: "items", writeDisposition: "merge", primaryKey: ["id"] },
    // `run.startValue` is the stored cursor (or the initial value); the rows are filtered and the
    // cursor advanced by `Incremental.stream`
    Incremental.stream(updatedAt, (run) => itemsSince(baseUrl, run.startValue))
  )

/** the source to run, e.g. `Pipeline.run(incrementalSource(api.baseUrl))` */
export const incrementalSource = (baseUrl: string) => Source.make({ name: "items_api", resources: [items(baseUrl)] })

/** an integer column as the destinations return it: a number (SQLite) or text (PostgreSQL bigint) */
const Integer = Schema.Union(Schema.Int, Schema.compose(Schema.NumberFromString, Schema.Int))

/** a row of the `items` table in the API's shape; the `_dlt_*` columns are dropped */
const LoadedItem = Schema.Struct({ ...Item.fields, id: Integer, amount: Integer, version: Integer })

/**
 * The items the running pipeline's destination holds, in the API's shape and order (by id), to
 * compare with `IncrementalApi.items` or `expectedItems`.
 */
export const loadedItems = Effect.gen(function* () {
  const pipeline = yield* Pipeline.Pipeline
  const destination = yield* Destination.Destination
  const dataset = yield* destination.dataset({ dataset: pipeline.config.dataset, pipelineDir: pipeline.workingDir.dir })
  if (!(yield* dataset.tableExists("items"))) return []
  const rows = yield* Schema.decodeUnknown(Schema.Array(LoadedItem))(yield* dataset.rows("items"))
  return [...rows].sort((a, b) => a.id - b.id)
})
