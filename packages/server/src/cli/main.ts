import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { StanzaError } from '@parley/xmpp';
import { ConfigError, configTemplate, loadConfigFile, type ParleyConfig } from '../config/index.ts';
import { Server, scramHashesOf, storageConfigOf } from '../core/server.ts';
import { AccountService } from '../core/accounts.ts';
import { openDatabase } from '../storage/index.ts';
import { describeCertificate, loadCertificate } from '../core/certs.ts';
import { PARLEY_VERSION } from '../core/version.ts';
import { readPassword } from './password.ts';
import { ADMIN_COMMANDS } from '../core/admin-commands.ts';

/** Loads the configuration or exits with the validation message (exit code 2). */
function configOrExit(path: string | undefined): { config: ParleyConfig; path: string | null } {
  try {
    return loadConfigFile(path ?? null);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

async function withAccounts<T>(configPath: string | undefined, fn: (a: AccountService, c: ParleyConfig) => Promise<T>): Promise<T> {
  const { config } = configOrExit(configPath);
  const db = await openDatabase(storageConfigOf(config));
  try {
    return await fn(new AccountService(db, config.domain, config.auth.scram_iterations, scramHashesOf(config)), config);
  } finally {
    await db.close();
  }
}

function fail(err: unknown): never {
  const msg = err instanceof StanzaError ? (err.text ?? err.condition) : err instanceof Error ? err.message : String(err);
  process.stderr.write(`parley: ${msg}\n`);
  process.exit(1);
}

const program = new Command();
program
  .name('parley')
  .description('Parley XMPP server')
  .version(PARLEY_VERSION, '-V, --version')
  .addOption(new Option('-c, --config <path>', 'configuration file (default: ./parley.yaml if present)'));

program
  .command('start', { isDefault: false })
  .description('start the server')
  .action(async () => {
    const { config, path } = configOrExit(program.opts().config as string | undefined);
    const server = new Server(config);
    try {
      await server.start();
    } catch (err) {
      fail(err);
    }
    const a = server.addresses();
    const out = process.stdout;
    out.write(`Parley ${PARLEY_VERSION} serving ${config.domain}${path ? ` (config ${path})` : ' (embedded default configuration)'}\n`);
    out.write(`  client connections (STARTTLS${config.c2s.require_encryption ? ' required' : ''}): ${a.c2s.join(', ')}\n`);
    if (a.directTls.length) out.write(`  client connections (direct TLS, XEP-0368):  ${a.directTls.join(', ')}\n`);
    if (a.http.length) {
      const h = config.http;
      const paths = [h.websocket.enabled && `WebSocket ${h.websocket.path}`, h.bosh.enabled && `BOSH ${h.bosh.path}`].filter(Boolean).join(', ');
      out.write(`  HTTP (${paths}${paths ? ', ' : ''}XEP-0156 host-meta): ${a.http.join(', ')}\n`);
      const plain = a.http.find((u) => u.startsWith('http://'));
      if (h.chat.enabled && plain) out.write(`  web chat: ${plain.replace('://[::1]', '://localhost').replace('://127.0.0.1', '://localhost')}${h.chat.path}\n`);
    }
    out.write(`  data directory: ${resolve(config.data_dir)}\n`);
    out.write(`  certificate: ${server.certificate.certPath}${server.certificate.generated ? ' (self-signed, generated)' : ''}\n`);
    out.write(`Create an account:  npx parley user add alice   (then log in as alice@${config.domain})\n`);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      out.write(`${signal}: closing every stream and stopping\n`);
      server.stop().then(
        () => process.exit(0),
        (err) => fail(err),
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });

program
  .command('init')
  .description('write a commented starting configuration (parley.yaml)')
  .option('-d, --domain <domain>', 'the XMPP domain to serve', 'localhost')
  .option('-f, --force', 'overwrite an existing file')
  .action((opts: { domain: string; force?: boolean }) => {
    const file = resolve((program.opts().config as string | undefined) ?? 'parley.yaml');
    if (existsSync(file) && !opts.force) fail(`${file} exists (use --force to overwrite)`);
    writeFileSync(file, configTemplate({ domain: opts.domain }));
    process.stdout.write(`wrote ${file}\n`);
  });

program
  .command('check')
  .description('validate the configuration, certificate, storage and ports')
  .action(async () => {
    const { config, path } = configOrExit(program.opts().config as string | undefined);
    let problems = 0;
    const ok = (m: string) => process.stdout.write(`ok    ${m}\n`);
    const bad = (m: string) => {
      problems++;
      process.stdout.write(`FAIL  ${m}\n`);
    };
    ok(`configuration ${path ?? '(embedded default)'}`);
    try {
      const cert = await loadCertificate({
        domain: config.domain,
        dataDir: resolve(config.data_dir),
        certificate: config.tls.certificate,
        key: config.tls.key,
      });
      const d = describeCertificate(cert.cert);
      const covers = d.names.some((n) => n === config.domain || (n.startsWith('*.') && config.domain.endsWith(n.slice(1))));
      if (!covers) bad(`certificate ${cert.certPath} does not name ${config.domain} (names: ${d.names.join(', ') || 'none'})`);
      else if (d.validTo.getTime() < Date.now()) bad(`certificate ${cert.certPath} expired on ${d.validTo.toISOString()}`);
      else ok(`certificate ${cert.certPath} for ${d.names.join(', ')}, valid until ${d.validTo.toISOString().slice(0, 10)}`);
    } catch (err) {
      bad(`certificate: ${(err as Error).message}`);
    }
    try {
      const db = await openDatabase(storageConfigOf(config));
      await db.close();
      ok(`storage (${config.storage.driver})`);
    } catch (err) {
      bad(`storage (${config.storage.driver}): ${(err as Error).message}`);
    }
    const ports = [config.c2s.port, config.c2s.direct_tls_port].filter((p): p is number => p !== null && p !== 0);
    for (const host of config.c2s.interfaces) {
      for (const port of ports) {
        const free = await new Promise<string | null>((res) => {
          const s = net.createServer();
          s.once('error', (e: NodeJS.ErrnoException) => res(e.code ?? e.message));
          s.listen({ host, port }, () => s.close(() => res(null)));
        });
        if (free) bad(`port ${port} on ${host}: ${free === 'EADDRINUSE' ? 'already in use' : free}`);
        else ok(`port ${port} on ${host} is free`);
      }
    }
    process.exit(problems ? 1 : 0);
  });

// Administrative commands are generated from the command registry (ARCHITECTURE §3).
const groups = new Map<string, Command>();
for (const cmd of ADMIN_COMMANDS.list()) {
  const [group, name] = cmd.name.split('.') as [string, string];
  let parent = groups.get(group);
  if (!parent) {
    parent = program.command(group).description(`${group} commands`);
    groups.set(group, parent);
  }
  const usage = cmd.args.map((a) => (a.optional ? `[${a.name}]` : `<${a.name}>`)).join(' ');
  parent
    .command(`${name}${usage ? ` ${usage}` : ''}`)
    .description(cmd.description)
    .action(async (...positional: unknown[]) => {
      try {
        await withAccounts(program.opts().config as string | undefined, async (accounts, config) => {
          const args: Record<string, string | undefined> = {};
          cmd.args.forEach((a, i) => (args[a.name] = positional[i] as string | undefined));
          for (const a of cmd.args) {
            if (a.secret && args[a.name] === undefined) {
              args[a.name] = await readPassword(`${a.description} for ${args.username ?? ''}: `, true);
            }
          }
          for (const line of await cmd.run({ accounts, config }, args)) process.stdout.write(`${line}\n`);
        });
      } catch (err) {
        fail(err);
      }
    });
}

await program.parseAsync(process.argv);
