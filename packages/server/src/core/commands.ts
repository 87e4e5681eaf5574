import type { ParleyConfig } from '../config/index.ts';
import type { AccountService } from './accounts.ts';

/** One argument of an administrative command. */
export interface CommandArg {
  name: string;
  description: string;
  /** May be left out; a `secret` argument left out is asked for (without echo on a terminal). */
  optional?: boolean;
  /** A password or other secret: never echoed or logged. */
  secret?: boolean;
}

/** What a command runs against: the services of one host. */
export interface CommandEnv {
  config: ParleyConfig;
  accounts: AccountService;
}

/**
 * An administrative command, defined once (after ejabberd's `ejabberd_commands`,
 * ARCHITECTURE §3). The `parley` CLI is generated from the registry; the HTTP
 * admin API and XEP-0133 ad-hoc commands are further views of the same list.
 * `run` throws a StanzaError with the XMPP condition on failure
 * (`conflict`, `item-not-found`, `jid-malformed`, `not-acceptable`).
 */
export interface AdminCommand {
  /** Dotted name: `user.add` is `parley user add` on the command line. */
  name: string;
  description: string;
  args: CommandArg[];
  /** Who may run it through a network view (the CLI has local access). */
  permission: 'admin';
  /** Runs the command; returns lines of human-readable output. */
  run(env: CommandEnv, args: Record<string, string | undefined>): Promise<string[]>;
}

/** The registry of administrative commands. */
export class CommandRegistry {
  private commands = new Map<string, AdminCommand>();

  /** Adds a command; a name may be defined once. */
  define(cmd: AdminCommand): AdminCommand {
    if (this.commands.has(cmd.name)) throw new Error(`command '${cmd.name}' is defined twice`);
    this.commands.set(cmd.name, cmd);
    return cmd;
  }

  get(name: string): AdminCommand | undefined {
    return this.commands.get(name);
  }

  /** Every command, in definition order. */
  list(): AdminCommand[] {
    return [...this.commands.values()];
  }
}
