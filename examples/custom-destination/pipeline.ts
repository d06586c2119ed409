/**
 * What the custom-destination example loads: weather stations (merged on their id) and their
 * readings (appended). Both are incremental, so a run after a complete one loads nothing, and the
 * cursors live in the state that the JSON-lines destination stores and restores.
 */
import { Stream } from "effect"
import { Incremental, Resource, Source } from "../../src/index.js"

export interface Station {
  readonly id: string
  readonly name: string
  readonly updated_at: string
}

export interface Reading {
  readonly id: number
  readonly station: string
  readonly celsius: number
  readonly taken_at: string
}

export const defaultStations: ReadonlyArray<Station> = [
  { id: "oslo", name: "Oslo Blindern", updated_at: "2024-03-01T00:00:00Z" },
  { id: "bergen", name: "Bergen Florida", updated_at: "2024-03-01T00:00:00Z" },
  { id: "tromso", name: "Tromsø Langnes", updated_at: "2024-03-02T00:00:00Z" }
]

/** four readings a station, ids in time order */
export const defaultReadings: ReadonlyArray<Reading> = defaultStations.flatMap((station, s) =>
  [0, 1, 2, 3].map((hour) => ({
    id: s * 4 + hour + 1,
    station: station.id,
    celsius: Math.round((2.5 - s * 3.1 + hour * 0.7) * 10) / 10,
    taken_at: `2024-03-05T0${hour}:00:00Z`
  }))
)

const stationChanges = Incremental.cursor({
  path: "updated_at",
  initialValue: new Date("2024-01-01T00:00:00Z"),
  primaryKey: "id"
})
const readingIds = Incremental.cursor({ path: "id", initialValue: 0, primaryKey: "id" })

export const stations = (data: ReadonlyArray<Station>) =>
  Resource.make(
    { name: "stations", writeDisposition: "merge", primaryKey: ["id"] },
    Incremental.stream(stationChanges, () => Stream.fromIterable(data))
  )

export const readings = (data: ReadonlyArray<Reading>) =>
  Resource.make(
    { name: "readings", writeDisposition: "append" },
    Incremental.stream(readingIds, () => Stream.fromIterable(data))
  )

export const weather = (data: {
  readonly stations: ReadonlyArray<Station>
  readonly readings: ReadonlyArray<Reading>
}) => Source.make({ name: "weather", resources: [stations(data.stations), readings(data.readings)] })
