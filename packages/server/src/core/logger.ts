import { pino, type Logger as PinoLogger } from 'pino';

/** The structured logger (pino) used across the server. */
export type Logger = PinoLogger;

/** Creates the server logger: JSON lines on stderr at the given level. */
export function createLogger(level: string): Logger {
  return pino({ level, base: undefined }, pino.destination({ dest: 2, sync: false }));
}
