/**
 * Shapes shared by the chess demo's server, client and data generator. They follow the public
 * chess.com API closely enough that the client would also read the real thing.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * One side of a game. chess.com writes the username in its display case ("MagnusCarlsen") while
 * URLs use lower case, so nothing here assumes either. Unnamed fields are kept, as on `Game`.
 *
 * @since 0.1.0
 */
export const GamePlayer = Schema.Struct(
  {
    username: Schema.String,
    rating: Schema.Number,
    result: Schema.String,
    "@id": Schema.optional(Schema.String),
    uuid: Schema.optional(Schema.String)
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)

/** @since 0.1.0 */
export type GamePlayer = Schema.Schema.Type<typeof GamePlayer>

/**
 * Engine accuracy per side. chess.com only reports it for games someone reviewed, so it is
 * missing on most games and either side may be absent.
 *
 * @since 0.1.0
 */
export const Accuracies = Schema.Struct({
  white: Schema.optional(Schema.Number),
  black: Schema.optional(Schema.Number)
})

/** @since 0.1.0 */
export interface Accuracies extends Schema.Schema.Type<typeof Accuracies> {}

/**
 * A finished game as listed in a monthly archive. Only the fields every game carries are required;
 * the rest are optional, and fields this schema does not name are kept (the index signature), so
 * a loader sees whatever chess.com adds without a schema change.
 *
 * @since 0.1.0
 */
export const Game = Schema.Struct(
  {
    url: Schema.String,
    pgn: Schema.optional(Schema.String),
    time_control: Schema.String,
    end_time: Schema.Number,
    rated: Schema.Boolean,
    uuid: Schema.String,
    fen: Schema.String,
    time_class: Schema.String,
    rules: Schema.String,
    white: GamePlayer,
    black: GamePlayer,
    accuracies: Schema.optional(Accuracies),
    initial_setup: Schema.optional(Schema.String),
    eco: Schema.optional(Schema.String),
    tcn: Schema.optional(Schema.String),
    start_time: Schema.optional(Schema.Number)
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)

/** @since 0.1.0 */
export type Game = Schema.Schema.Type<typeof Game>

/**
 * Body of `GET /pub/player/:username/games/archives`: archive URLs, oldest month first.
 *
 * @since 0.1.0
 */
export const ArchivesResponse = Schema.Struct({ archives: Schema.Array(Schema.String) })

/**
 * Body of `GET /pub/player/:username/games/:year/:month`.
 *
 * @since 0.1.0
 */
export const GamesResponse = Schema.Struct({ games: Schema.Array(Game) })

/**
 * Body of every 404, in chess.com's own shape.
 *
 * @since 0.1.0
 */
export const NotFoundResponse = Schema.Struct({ code: Schema.Number, message: Schema.String })

/**
 * One month of one player's games.
 *
 * @since 0.1.0
 */
export const MonthlyArchive = Schema.Struct({
  year: Schema.Int.pipe(Schema.between(1970, 9999)),
  month: Schema.Int.pipe(Schema.between(1, 12)),
  games: Schema.Array(Game)
})

/** @since 0.1.0 */
export interface MonthlyArchive extends Schema.Schema.Type<typeof MonthlyArchive> {}

/**
 * A player and their archives, oldest month first. `username` is the lower-case URL form.
 *
 * @since 0.1.0
 */
export const PlayerArchives = Schema.Struct({
  username: Schema.String,
  archives: Schema.Array(MonthlyArchive)
})

/** @since 0.1.0 */
export interface PlayerArchives extends Schema.Schema.Type<typeof PlayerArchives> {}

/**
 * The shipped data file, `examples/chess/data/archives.json`, written by
 * `examples/chess/data/generate.ts`.
 *
 * @since 0.1.0
 */
export const ChessData = Schema.Struct({
  generator: Schema.String,
  seed: Schema.Number,
  players: Schema.Array(PlayerArchives)
})

/** @since 0.1.0 */
export interface ChessData extends Schema.Schema.Type<typeof ChessData> {}
