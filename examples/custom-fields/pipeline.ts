/**
 * The seed's pipedrive pattern: a mapping of custom-field keys to display names is fetched ONCE
 * into the SOURCE state and shared by the resources that rename their records' fields with it.
 *
 * As the seed advises, one resource is the state writer (`custom_fields`) and the others are
 * readers (`deals`, `persons`). All three run concurrently; the readers fetch their records at
 * once and wait for the writer only before renaming. On later runs the writer finds the mapping in
 * the state and the field endpoints are not called at all.
 */
import { HttpClient, HttpClientResponse } from "@effect/platform"
import { Deferred, Effect, Schema, Stream } from "effect"
import { Resource, Source, SourceState } from "../../src/index.js"

/** `{ deals: { "<hash key>": "Lead source", ... }, persons: { ... } }`, shared by the whole source */
const Mapping = Schema.Record({
  key: Schema.String,
  value: Schema.Record({ key: Schema.String, value: Schema.String })
})
export const CustomFields = SourceState.key("custom_fields", Mapping, (): typeof Mapping.Type => ({}))

/** each entity and the endpoint that describes its fields */
const ENTITIES = { deals: "dealFields", persons: "personFields" } as const
type Entity = keyof typeof ENTITIES

const Field = Schema.Struct({ key: Schema.String, name: Schema.String, edit_flag: Schema.Boolean })
const Row = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/** `GET <url>` → the `data` array of a Pipedrive envelope, validated */
const getData = <A, I>(url: string, item: Schema.Schema<A, I>) =>
  HttpClient.get(url).pipe(
    Effect.flatMap(HttpClientResponse.filterStatusOk),
    Effect.flatMap(HttpClientResponse.schemaBodyJson(Schema.Struct({ data: Schema.Array(item) }))),
    Effect.map((body) => body.data)
  )

/**
 * The state WRITER: puts the mapping in the source state when it is not there yet, then opens the
 * latch for the readers. It also loads the mapping as a table, when it fetched it. To pick up
 * fields added later, reset the key:
 * `pipestate pipeline pipedrive_pipeline drop --state-paths custom_fields`.
 */
const customFields = (baseUrl: string, ready: Deferred.Deferred<void>) =>
  Resource.make(
    { name: "custom_fields", writeDisposition: "merge", primaryKey: ["entity", "key"] },
    Stream.unwrap(
      Effect.gen(function* () {
        const known = yield* CustomFields.get
        if (Object.keys(ENTITIES).every((entity) => entity in known)) {
          yield* Deferred.succeed(ready, undefined)
          return Stream.empty
        }
        const mapping = Object.fromEntries(
          yield* Effect.forEach(Object.entries(ENTITIES), ([entity, endpoint]) =>
            Effect.map(getData(`${baseUrl}/v1/${endpoint}`, Field), (fields) => {
              // only user-defined fields have hash keys; the standard ones keep their names
              const custom = fields.filter((f) => f.edit_flag).map((f) => [f.key, f.name] as const)
              return [entity, Object.fromEntries(custom)] as const
            })
          )
        )
        yield* CustomFields.set(mapping)
        // only on success: if the writer fails, the run fails and the waiting readers are interrupted
        yield* Deferred.succeed(ready, undefined)
        return Stream.fromIterable(
          Object.entries(mapping).flatMap(([entity, names]) =>
            Object.entries(names).map(([key, name]) => ({ entity, key, name }))
          )
        )
      })
    )
  )

/** A state READER: its records come back with display names instead of hash keys. */
const entity = (baseUrl: string, name: Entity, ready: Deferred.Deferred<void>) =>
  Resource.make(
    // the endpoint returns every record every time, so the table is replaced on each run
    { name, writeDisposition: "replace", primaryKey: ["id"] },
    Stream.unwrap(
      Effect.gen(function* () {
        const records = yield* getData(`${baseUrl}/v1/${name}`, Row)
        yield* Deferred.await(ready)
        const names = (yield* CustomFields.get)[name] ?? {}
        return Stream.fromIterable(
          records.map((record) => Object.fromEntries(Object.entries(record).map(([k, v]) => [names[k] ?? k, v])))
        )
      })
    )
  )

/**
 * The source. Its setup runs once per run, before the resources, and makes the latch the writer
 * opens. The writer is listed first, so the source also works with `concurrency: 1`.
 */
export const pipedrive = (baseUrl: string) =>
  Source.withSetup({
    name: "pipedrive",
    setup: Deferred.make<void>(),
    resources: (ready) => [
      customFields(baseUrl, ready),
      entity(baseUrl, "deals", ready),
      entity(baseUrl, "persons", ready)
    ]
  })
