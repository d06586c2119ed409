/**
 * Shell words for the commands pipestate prints in messages: every printed command must work when
 * pasted into a POSIX shell as it is.
 *
 * @since 0.1.0
 */

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/

/**
 * A word as a POSIX shell reads it back: quoted when it holds anything but plain characters.
 *
 * @example
 * ```ts
 * shellQuote("chess") // "chess"
 * shellQuote("odd pipe; echo x") // "'odd pipe; echo x'"
 * ```
 *
 * @since 0.1.0
 */
export const shellQuote = (word: string): string => (SAFE_WORD.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`)
