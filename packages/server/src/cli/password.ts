import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';

/**
 * Reads a password: on a terminal, prompted without echo (twice when `confirm`);
 * otherwise the first line of standard input (for scripts: `echo pw | parley user add alice`).
 * Rejects on an empty password or a mismatch.
 */
export async function readPassword(prompt: string, confirm: boolean): Promise<string> {
  if (!process.stdin.isTTY) {
    const line = await readLine(null, false);
    if (!line) throw new Error('no password given on standard input');
    return line;
  }
  const first = await readLine(prompt, true);
  if (!first) throw new Error('the password is empty');
  if (confirm) {
    const again = await readLine('Again: ', true);
    if (again !== first) throw new Error('the passwords differ');
  }
  return first;
}

function readLine(prompt: string | null, hidden: boolean): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!muted) process.stdout.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: hidden && process.stdin.isTTY === true });
  return new Promise((resolve) => {
    let answered = false;
    rl.on('close', () => {
      if (!answered) resolve('');
    });
    if (prompt !== null) process.stdout.write(prompt);
    muted = hidden;
    rl.once('line', (line) => {
      answered = true;
      muted = false;
      if (hidden) process.stdout.write('\n');
      rl.close();
      resolve(line);
    });
  });
}
