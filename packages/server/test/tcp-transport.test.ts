/**
 * TcpTransport on real sockets: what it writes in the turn a TLS handshake ends. That turn's
 * output is held until Node has handed the handshake's own records (TLS 1.3 session tickets)
 * to the socket (TcpTransport.holdAfterHandshake, a memory measure); here the server writes
 * and closes the stream in that very turn, and the client must still get everything, in order.
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StreamError } from '@parley/xmpp';
import { TcpTransport } from '../src/transports/tcp.ts';
import { loadCertificate } from '../src/core/certs.ts';

let pair: { cert: string; key: string };
let context: tls.SecureContext;

before(async () => {
  pair = await loadCertificate({ domain: 'localhost', dataDir: mkdtempSync(join(tmpdir(), 'parley-tcp-')), certificate: null, key: null });
  context = tls.createSecureContext({ cert: pair.cert, key: pair.key });
});

/** Reads a socket to its end, as text. */
function readAll(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

/** What the server writes: a header, a stanza of 3 KB (more than one NodeBIO buffer), the error and the close. */
function answer(t: TcpTransport): void {
  t.openStream({ from: 'localhost', id: 'held' });
  t.write(`<message><body>${'x'.repeat(3000)}</body></message>`);
  t.closeStream(new StreamError('policy-violation', 'closed in the handshake turn'));
}

function expectAnswer(text: string): void {
  const header = text.indexOf('<stream:stream ');
  const body = text.indexOf('x'.repeat(3000));
  const error = text.indexOf('<policy-violation');
  assert.ok(header >= 0 && header < body && body < error, text.slice(0, 200));
  assert.ok(text.endsWith('</stream:stream>'), text.slice(-200));
}

describe('TcpTransport: output of the turn a TLS handshake ends', () => {
  test('direct TLS: written and closed in the secureConnection turn, all of it arrives in order', async () => {
    const server = tls.createServer({ cert: pair.cert, key: pair.key }, (socket) => answer(new TcpTransport(socket, null)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const client = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false });
      expectAnswer(await readAll(client));
    } finally {
      server.close();
    }
  });

  test('STARTTLS: written and closed in the turn the upgrade resolves, all of it arrives in order', async () => {
    const server = net.createServer((socket) => {
      const t = new TcpTransport(socket, context);
      socket.once('data', () => {
        t.write('<proceed/>');
        void t.startTls().then(() => answer(t));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const raw = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1' });
      await new Promise<void>((r) => raw.once('connect', () => r()));
      raw.write('upgrade');
      await new Promise<void>((r) => raw.once('data', () => r()));
      const client = tls.connect({ socket: raw, rejectUnauthorized: false });
      expectAnswer(await readAll(client));
    } finally {
      server.close();
    }
  });
});
