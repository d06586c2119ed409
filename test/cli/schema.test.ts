/**
 * `pipestate pipeline <name> schema [--json]` prints the stored schema: tables, columns, dlt data
 * types, nullability, keys and the resource of each table; `--json` gives dlt's documents.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import * as Destination from "../../src/destination/index.js"
import * as Pipeline from "../../src/pipeline/Pipeline.js"
import * as Resource from "../../src/pipeline/Resource.js"
import * as Source from "../../src/pipeline/Source.js"
import { tempDir } from "../helpers.js"
import { cli } from "./inprocess.js"

const shop = Source.make({
  name: "shop",
  resources: [
    Resource.make(
      { name: "users", writeDisposition: "merge", primaryKey: ["id"] },
      Stream.make({ id: 1, userName: "ada", active: true, joined: new Date(0) })
    ),
    Resource.make({ name: "events", tableName: "UserEvents" }, Stream.make({ kind: "login", at: 1.5 }))
  ]
})

describe("pipestate pipeline <name> schema", () => {
  it.scopedLive("prints every table with its resource, columns, types and keys; --json is dlt's document", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* Pipeline.run(shop).pipe(
        Effect.provide(
          Layer.mergeAll(
            Pipeline.layer({ name: "shop_pipeline", dataset: "shop_data", pipelinesDir: dir }),
            Destination.sqlite()
          ).pipe(Layer.provideMerge(NodeContext.layer))
        )
      )
      const text = yield* cli("pipeline", "shop_pipeline", "schema", "--pipelines-dir", dir)
      expect(text.err).toBe("")
      expect(text.out).toContain("schema shop: version ")
      expect(text.out).toContain("table users  resource users, write disposition merge")
      expect(text.out).toMatch(/ id\s+bigint\s+not null\s+primary key/)
      expect(text.out).toMatch(/ user_name\s+text\s+null\s+from field "userName"/)
      expect(text.out).toMatch(/ active\s+bool\s+null/)
      expect(text.out).toMatch(/ joined\s+timestamp\s+null/)
      expect(text.out).toContain("table user_events  resource events, write disposition append")
      expect(text.out).toMatch(/ _dlt_id\s+text\s+not null\s+unique/)

      const json = yield* cli("pipeline", "shop_pipeline", "schema", "--pipelines-dir", dir, "--json")
      const documents = JSON.parse(json.out) as Array<{
        name: string
        engine_version: number
        tables: Record<string, { resource?: string; columns: Record<string, { data_type?: string }> }>
      }>
      expect(documents.map((d) => d.name)).toEqual(["shop"])
      expect(documents[0]?.engine_version).toBe(11)
      expect(Object.keys(documents[0]?.tables ?? {}).sort()).toEqual([
        "_dlt_loads",
        "_dlt_pipeline_state",
        "_dlt_version",
        "user_events",
        "users"
      ])
      expect(documents[0]?.tables.users?.columns.id?.data_type).toBe("bigint")

      const unknown = yield* cli("pipeline", "nobody", "schema", "--pipelines-dir", dir)
      expect(unknown.ok).toBe(false)
      expect(unknown.err).toContain('pipeline "nobody" not found')
    })
  )
})
