/**
 * A cursor over PostgreSQL `timestamptz` values with microseconds: rows read from a source table,
 * loaded into PostgreSQL, run again and again. The cursor keeps the microseconds, so no boundary
 * row is loaded twice and none is lost, and the stored state is dlt's text.
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Stream } from "effect"
import * as Incremental from "../src/pipeline/Incremental.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Source from "../src/pipeline/Source.js"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import { Timestamp } from "../src/state/StateValue.js"
import { tempDir } from "./helpers.js"
import { freshDataset, postgresAvailable, query, testDestination } from "./postgres.js"

describe.skipIf(!postgresAvailable)("Incremental over PostgreSQL timestamptz with microseconds", () => {
  it.scoped("loads each row once across runs, boundary rows within one millisecond included", () =>
    Effect.gen(function* () {
      const source = yield* freshDataset("src")
      const dataset = yield* freshDataset("dst")
      const dir = yield* tempDir()
      yield* Effect.promise(() =>
        query(
          `CREATE SCHEMA "${source}"; CREATE TABLE "${source}".events (id int PRIMARY KEY, updated_at timestamptz NOT NULL)`
        )
      )
      const insert = (id: number, at: string) =>
        Effect.promise(() => query(`INSERT INTO "${source}".events VALUES ($1, $2::timestamptz)`, [id, at]))
      // three rows in the same millisecond (.123), two of them on the maximum's microsecond
      yield* insert(1, "2024-05-01 12:00:00.100001+00")
      yield* insert(2, "2024-05-01 12:00:00.123456+00")
      yield* insert(3, "2024-05-01 12:00:00.123789+00")
      yield* insert(4, "2024-05-01 12:00:00.123789+00")

      const updatedAt = Incremental.cursor({
        path: "updated_at",
        initialValue: Either.getOrThrow(Timestamp.parse("2024-01-01T00:00:00+00:00")),
        primaryKey: "id"
      })
      const events = Resource.make(
        { name: "events", writeDisposition: "append", primaryKey: ["id"] },
        Incremental.stream(updatedAt, (run) =>
          Stream.fromIterableEffect(
            Effect.promise(() =>
              query<{ id: number; at: string }>(
                `SELECT id, to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00' AS at
                 FROM "${source}".events WHERE updated_at >= $1::timestamptz ORDER BY id`,
                [String(run.startValue)]
              )
            )
          ).pipe(Stream.map((r) => ({ id: r.id, updated_at: Either.getOrThrow(Timestamp.parse(r.at)) })))
        )
      )
      const run = Pipeline.run(Source.make({ name: "pg", resources: [events] })).pipe(
        Effect.provide(Pipeline.layerNode({ name: "pg_micros", dataset, pipelinesDir: dir })),
        Effect.provide(testDestination())
      )
      const loaded = () =>
        query<{ id: number; at: string }>(
          `SELECT id, (updated_at AT TIME ZONE 'UTC')::text AS at FROM "${dataset}".events ORDER BY id, _dlt_load_id`
        )
      const stored = () => {
        const text = NodeFs.readFileSync(NodePath.join(dir, "pg_micros", "state.json"), "utf8")
        const state = Either.getOrThrow(PipelineState.fromFileText(text))
        const slot = PipelineState.getResourceSlot(state, "pg", "events") as {
          readonly incremental: { readonly updated_at: { readonly last_value: Timestamp } }
        }
        return { text, entry: slot.incremental.updated_at }
      }

      expect((yield* run).tables).toEqual({ events: 4 })
      const first = stored()
      expect(String(first.entry.last_value)).toBe("2024-05-01T12:00:00.123789+00:00")
      expect(first.text).toContain('"last_value": "\uF0272024-05-01T12:00:00.123789+00:00"')
      // the destination keeps the microseconds too
      expect((yield* Effect.promise(loaded)).map((r) => r.at)).toEqual([
        "2024-05-01 12:00:00.100001",
        "2024-05-01 12:00:00.123456",
        "2024-05-01 12:00:00.123789",
        "2024-05-01 12:00:00.123789"
      ])

      // nothing new: the boundary rows 3 and 4 come back from the query and are dropped
      expect((yield* run).tables).toEqual({ events: 0 })

      // a row one microsecond past the maximum, and one on it (both within the same millisecond)
      yield* insert(5, "2024-05-01 12:00:00.12379+00")
      yield* insert(6, "2024-05-01 12:00:00.123789+00")
      expect((yield* run).tables).toEqual({ events: 2 })
      expect((yield* run).tables).toEqual({ events: 0 })
      expect((yield* Effect.promise(loaded)).map((r) => Number(r.id))).toEqual([1, 2, 3, 4, 5, 6])
      expect(String(stored().entry.last_value)).toBe("2024-05-01T12:00:00.123790+00:00")
    })
  )
})
