import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SCRAM_MECHANISMS,
  SaslError,
  ScramClient,
  ScramServer,
  buildPlain,
  clearScramClientCache,
  deriveScramCredentials,
  deriveScramCredentialsSync,
  fakeScramCredentials,
  parsePlain,
  verifyScramPassword,
  type SaslCondition,
  type ScramCredentials,
  type ScramHash,
  type ScramServerOptions,
} from '../src/index.ts';

const HASHES: ScramHash[] = ['SHA-1', 'SHA-256', 'SHA-512'];
const ITERATIONS = 4096;

/** Assert that `fn` rejects/throws a SaslError with `condition`. */
async function rejectsWith(fn: () => unknown, condition: SaslCondition): Promise<SaslError> {
  let caught: unknown;
  try {
    await fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof SaslError, `expected SaslError(${condition}), got ${String(caught)}`);
  assert.equal(caught.condition, condition, caught.message);
  return caught;
}

const credentialCache = new Map<string, ScramCredentials>();
function credentialsFor(password: string, hash: ScramHash): ScramCredentials {
  const key = `${hash}:${password}`;
  let credentials = credentialCache.get(key);
  if (credentials === undefined) {
    credentials = deriveScramCredentialsSync(password, hash, ITERATIONS);
    credentialCache.set(key, credentials);
  }
  return credentials;
}

function server(overrides: Partial<ScramServerOptions> & { hash: ScramHash }): ScramServer {
  return new ScramServer({
    plus: false,
    channelBinding: null,
    serverAdvertisedPlus: false,
    lookup: async (username) => (username === 'juliet' ? credentialsFor('r0m30myr0m30', overrides.hash) : null),
    ...overrides,
  });
}

async function exchange(client: ScramClient, scram: ScramServer): Promise<void> {
  const serverFirst = await scram.start(client.first());
  const clientFinal = await client.final(serverFirst);
  const serverFinal = await scram.finish(clientFinal);
  client.verifyServerFinal(serverFinal);
}

const tlsExporter = (fill: number) => ({ type: 'tls-exporter' as const, data: Buffer.alloc(32, fill) });

test('RFC 5802 §5 SCRAM-SHA-1 test vector, client and server sides', async () => {
  const salt = Buffer.from('QSXCR+Q6sek8bf92', 'base64');
  const credentials = await deriveScramCredentials('pencil', 'SHA-1', 4096, salt);
  const client = new ScramClient({ hash: 'SHA-1', username: 'user', password: 'pencil', clientNonce: 'fyko+d2lbbFgONRv9qkxdawL' });
  const scram = new ScramServer({
    hash: 'SHA-1',
    plus: false,
    channelBinding: null,
    serverAdvertisedPlus: false,
    serverNonce: '3rfcNHYJY1ZVvWVs7j',
    lookup: async (username) => (username === 'user' ? credentials : null),
  });
  assert.equal(client.first().toString(), 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL');
  const serverFirst = await scram.start(client.first());
  assert.equal(serverFirst.toString(), 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096');
  const clientFinal = await client.final(serverFirst);
  assert.equal(
    clientFinal.toString(),
    'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
  );
  const serverFinal = await scram.finish(clientFinal);
  assert.equal(serverFinal.toString(), 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=');
  client.verifyServerFinal(serverFinal);
  assert.equal(scram.username, 'user');
  assert.equal(scram.authzid, undefined);
  assert.equal(scram.authenticated, true);
});

test('RFC 7677 §3 SCRAM-SHA-256 test vector, client and server sides', async () => {
  const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
  const credentials = deriveScramCredentialsSync('pencil', 'SHA-256', 4096, salt);
  const client = new ScramClient({ hash: 'SHA-256', username: 'user', password: 'pencil', clientNonce: 'rOprNGfwEbeRWgbNEkqO' });
  const scram = new ScramServer({
    hash: 'SHA-256',
    plus: false,
    channelBinding: null,
    serverAdvertisedPlus: false,
    serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
    lookup: async () => credentials,
  });
  assert.equal(client.first().toString(), 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
  const serverFirst = await scram.start(client.first());
  assert.equal(
    serverFirst.toString(),
    'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  );
  const clientFinal = await client.final(serverFirst);
  assert.equal(
    clientFinal.toString(),
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  );
  const serverFinal = await scram.finish(clientFinal);
  assert.equal(serverFinal.toString(), 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  client.verifyServerFinal(serverFinal);
});

test('deriveScramCredentials and its sync twin agree, with a 16-byte random salt by default', async () => {
  for (const hash of HASHES) {
    const a = await deriveScramCredentials('secret', hash, 1024);
    assert.equal(Buffer.from(a.salt, 'base64').length, 16);
    assert.equal(a.iterations, 1024);
    const b = deriveScramCredentialsSync('secret', hash, 1024, Buffer.from(a.salt, 'base64'));
    assert.deepEqual(a, b);
    assert.equal(await verifyScramPassword('secret', a), true);
    assert.equal(await verifyScramPassword('Secret', a), false);
  }
  await assert.rejects(deriveScramCredentials('x', 'SHA-1', 0), RangeError);
  await rejectsWith(() => deriveScramCredentials('bell\u0007', 'SHA-1', 1), 'malformed-request');
});

test('SCRAM_MECHANISMS lists the six mechanisms', () => {
  assert.deepEqual(Object.keys(SCRAM_MECHANISMS).sort(), [
    'SCRAM-SHA-1',
    'SCRAM-SHA-1-PLUS',
    'SCRAM-SHA-256',
    'SCRAM-SHA-256-PLUS',
    'SCRAM-SHA-512',
    'SCRAM-SHA-512-PLUS',
  ]);
  assert.deepEqual(SCRAM_MECHANISMS['SCRAM-SHA-512-PLUS'], { hash: 'SHA-512', plus: true });
});

for (const hash of HASHES) {
  test(`full round trip SCRAM-${hash}`, async () => {
    const client = new ScramClient({ hash, username: 'juliet', password: 'r0m30myr0m30' });
    const scram = server({ hash });
    await exchange(client, scram);
    assert.equal(scram.username, 'juliet');
    assert.equal(scram.authenticated, true);
  });

  test(`full round trip SCRAM-${hash}-PLUS with matching tls-exporter data`, async () => {
    const client = new ScramClient({ hash, username: 'juliet', password: 'r0m30myr0m30', plus: true, channelBinding: tlsExporter(7) });
    assert.match(client.first().toString(), /^p=tls-exporter,,n=juliet,r=/);
    const scram = server({ hash, plus: true, channelBinding: tlsExporter(7), serverAdvertisedPlus: true });
    await exchange(client, scram);
    assert.equal(scram.authenticated, true);
  });
}

test('-PLUS with mismatching channel-binding data → not-authorized', async () => {
  const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30myr0m30', plus: true, channelBinding: tlsExporter(1) });
  const scram = server({ hash: 'SHA-256', plus: true, channelBinding: tlsExporter(2), serverAdvertisedPlus: true });
  const clientFinal = await client.final(await scram.start(client.first()));
  await rejectsWith(() => scram.finish(clientFinal), 'not-authorized');
  assert.equal(scram.authenticated, false);
});

test('client-final whose c= differs from the gs2 header of client-first → not-authorized', async () => {
  const client = new ScramClient({ hash: 'SHA-1', username: 'juliet', password: 'r0m30myr0m30', authzid: 'juliet@example.com' });
  const scram = server({ hash: 'SHA-1' });
  await scram.start(client.first());
  // c=biws is base64("n,,"), but the header sent had an authzid.
  const forged = Buffer.from(`c=biws,r=x,p=${Buffer.alloc(20).toString('base64')}`);
  await rejectsWith(() => scram.finish(forged), 'not-authorized');
});

test("'y' flag: accepted when no -PLUS offered, not-authorized when -PLUS was offered (downgrade)", async () => {
  const ok = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30myr0m30', channelBinding: tlsExporter(3) });
  assert.match(ok.first().toString(), /^y,,/);
  await exchange(ok, server({ hash: 'SHA-256', serverAdvertisedPlus: false }));

  const downgraded = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30myr0m30', channelBinding: tlsExporter(3) });
  const scram = server({ hash: 'SHA-256', channelBinding: tlsExporter(3), serverAdvertisedPlus: true });
  await rejectsWith(() => scram.start(downgraded.first()), 'not-authorized');
});

test("flag/mechanism mismatches: 'p=' on non-PLUS, 'n'/'y' on PLUS, unknown cb type", async () => {
  const plusServer = () => server({ hash: 'SHA-1', plus: true, channelBinding: tlsExporter(0), serverAdvertisedPlus: true });
  await rejectsWith(() => server({ hash: 'SHA-1', channelBinding: tlsExporter(0) }).start(Buffer.from('p=tls-exporter,,n=juliet,r=abc')), 'malformed-request');
  await rejectsWith(() => plusServer().start(Buffer.from('n,,n=juliet,r=abc')), 'malformed-request');
  await rejectsWith(() => plusServer().start(Buffer.from('y,,n=juliet,r=abc')), 'malformed-request');
  await rejectsWith(() => plusServer().start(Buffer.from('p=tls-unique,,n=juliet,r=abc')), 'malformed-request');
  await rejectsWith(() => plusServer().start(Buffer.from('p=tls_exporter!,,n=juliet,r=abc')), 'malformed-request');
  await rejectsWith(
    () => server({ hash: 'SHA-1', plus: true, channelBinding: null }).start(Buffer.from('p=tls-exporter,,n=juliet,r=abc')),
    'invalid-mechanism',
  );
});

test('wrong password → not-authorized', async () => {
  const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'wrong' });
  const scram = server({ hash: 'SHA-256' });
  const serverFirst = await scram.start(client.first());
  const error = await rejectsWith(async () => scram.finish(await client.final(serverFirst)), 'not-authorized');
  assert.equal(error.message, 'authentication failed');
  assert.equal(scram.authenticated, false);
});

test('unknown user → not-authorized at finish, indistinguishable server-first, deterministic salt', async () => {
  const probe = async (username: string) => {
    const client = new ScramClient({ hash: 'SHA-256', username, password: 'whatever', clientNonce: 'abc' });
    const scram = server({ hash: 'SHA-256', serverNonce: 'xyz' });
    const serverFirst = (await scram.start(client.first())).toString();
    const error = await rejectsWith(async () => scram.finish(await client.final(Buffer.from(serverFirst))), 'not-authorized');
    return { serverFirst, message: error.message };
  };
  const unknown1 = await probe('romeo');
  const unknown2 = await probe('romeo');
  const known = await probe('juliet');
  assert.equal(unknown1.serverFirst, unknown2.serverFirst, 'same fake salt on every attempt');
  assert.equal(unknown1.message, known.message);
  const [, salt, iterations] = unknown1.serverFirst.split(',');
  assert.equal(Buffer.from(salt!.slice(2), 'base64').length, 16);
  assert.equal(iterations, 'i=4096');
  assert.notEqual(unknown1.serverFirst, (await probe('mercutio')).serverFirst);

  // Unknown user even when the client happens to know the fake salt: the proof check still fails.
  const fake = fakeScramCredentials('romeo', 'SHA-256');
  assert.equal(await verifyScramPassword('whatever', fake), false);
});

test('credentials stored for another hash are treated as an unknown user', async () => {
  const client = new ScramClient({ hash: 'SHA-512', username: 'juliet', password: 'r0m30myr0m30' });
  const scram = server({ hash: 'SHA-512', lookup: async () => credentialsFor('r0m30myr0m30', 'SHA-1') });
  const serverFirst = await scram.start(client.first());
  await rejectsWith(async () => scram.finish(await client.final(serverFirst)), 'not-authorized');
});

test('lookup failure → temporary-auth-failure', async () => {
  const scram = server({
    hash: 'SHA-1',
    lookup: async () => {
      throw new Error('database down');
    },
  });
  await rejectsWith(() => scram.start(Buffer.from('n,,n=juliet,r=abc')), 'temporary-auth-failure');
});

test('malformed client-first variants → malformed-request', async () => {
  const bad = [
    '',
    'n',
    'n,',
    'x,,n=juliet,r=abc',
    'n,,',
    'n,,r=abc,n=juliet',
    'n,,n=juliet',
    'n,,n=juliet,r=',
    'n,,n=,r=abc',
    'n,,m=ext,n=juliet,r=abc',
    'n,,n=juliet,r=abc,m=ext',
    'n,,n=juliet,r=abc,',
    'n,,n=juliet,,r=abc',
    'n,,n=jul=iet,r=abc',
    'n,,n=juliet=2,r=abc',
    'n,,n=juliet,r=ab c',
    'n,,n=juliet,r=abc\u00e9',
    'n,a=,n=juliet,r=abc',
    'n,b=juliet,n=juliet,r=abc',
    'n,,n=jul\u0007iet,r=abc',
    'n,,n=juliet,rr=abc',
  ];
  for (const message of bad) {
    await rejectsWith(() => server({ hash: 'SHA-1' }).start(Buffer.from(message)), 'malformed-request');
  }
  await rejectsWith(() => server({ hash: 'SHA-1' }).start(Buffer.from([0x6e, 0x2c, 0x2c, 0x6e, 0x3d, 0xff, 0x2c, 0x72, 0x3d, 0x61])), 'malformed-request');
});

test('unknown extensions after the nonce are ignored; saslname escapes are decoded', async () => {
  const scram = server({ hash: 'SHA-1', lookup: async () => null });
  await scram.start(Buffer.from('n,a=juliet@x=2Cy=3Dz,n=a=2Cb=3dc,r=abc,x=ext'));
  assert.equal(scram.username, 'a,b=c');
  assert.equal(scram.authzid, 'juliet@x,y=z');
});

test('malformed client-final variants → malformed-request; wrong nonce → not-authorized', async () => {
  const proof = Buffer.alloc(32).toString('base64');
  const started = async () => {
    const scram = server({ hash: 'SHA-256', serverNonce: 'S' });
    await scram.start(Buffer.from('n,,n=juliet,r=C'));
    return scram;
  };
  for (const message of [
    'c=biws,r=CS',
    `r=CS,c=biws,p=${proof}`,
    `c=biws,p=${proof},r=CS`,
    `c=bi*s,r=CS,p=${proof}`,
    `c=biws,r=CS,p=${Buffer.alloc(20).toString('base64')}`,
    `c=biws,r=CS,m=x,p=${proof}`,
  ]) {
    await rejectsWith(async () => (await started()).finish(Buffer.from(message)), 'malformed-request');
  }
  await rejectsWith(async () => (await started()).finish(Buffer.from(`c=biws,r=CSX,p=${proof}`)), 'not-authorized');
  await rejectsWith(async () => (await started()).finish(Buffer.from(`c=biws,r=C,p=${proof}`)), 'not-authorized');
  // finish without start, and start twice
  await rejectsWith(() => server({ hash: 'SHA-1' }).finish(Buffer.from(`c=biws,r=CS,p=${proof}`)), 'malformed-request');
  const twice = await started();
  await rejectsWith(() => twice.start(Buffer.from('n,,n=juliet,r=C')), 'malformed-request');
});

test('SASLprep: a non-ASCII space in the password maps to U+0020 (RFC 4013 §2.1)', async () => {
  const credentials = await deriveScramCredentials('pass word', 'SHA-256', ITERATIONS);
  for (const password of ['pass\u00a0word', 'pass\u2003word', 'pass\u3000word', 'pass word']) {
    const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password });
    await exchange(client, server({ hash: 'SHA-256', lookup: async () => credentials }));
  }
  // Soft hyphen maps to nothing: "pass\u00adword" is "password", not "pass word".
  const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pass\u00adword' });
  const scram = server({ hash: 'SHA-256', lookup: async () => credentials });
  const serverFirst = await scram.start(client.first());
  await rejectsWith(async () => scram.finish(await client.final(serverFirst)), 'not-authorized');
});

test('SASLprep: ASCII controls are still prohibited, printable ASCII passes unchanged (RFC 4013 §2.3, C.2.1)', async () => {
  const credentials = await deriveScramCredentials('pass word', 'SHA-256', ITERATIONS);
  const seen: string[] = [];
  const lookup = async (username: string) => (seen.push(username), credentials);
  // Printable ASCII, space and '~' included, reaches the lookup as it was sent.
  const ok = new ScramClient({ hash: 'SHA-256', username: 'ju liet~', password: 'pass word' });
  await exchange(ok, server({ hash: 'SHA-256', lookup }));
  assert.deepEqual(seen, ['ju liet~']);
  for (const name of ['jul\u0001iet', 'juliet\u007f', '\u0000']) {
    await rejectsWith(() => server({ hash: 'SHA-256', lookup }).start(Buffer.from(`n,,n=${name},r=C`)), 'malformed-request');
  }
  assert.deepEqual(seen, ['ju liet~']);
});

test('client rejects a forged server signature, a server error and a nonce that does not extend its own', async () => {
  const client = new ScramClient({ hash: 'SHA-1', username: 'juliet', password: 'r0m30myr0m30', clientNonce: 'abc' });
  await rejectsWith(() => client.final(Buffer.from('r=xyz123,s=QSXCR+Q6sek8bf92,i=4096')), 'not-authorized');
  await rejectsWith(() => client.final(Buffer.from('r=abc,s=QSXCR+Q6sek8bf92,i=4096')), 'not-authorized');
  await rejectsWith(() => client.final(Buffer.from('m=x,r=abcd,s=QSXCR+Q6sek8bf92,i=4096')), 'malformed-request');
  await rejectsWith(() => client.final(Buffer.from('r=abcd,s=QSXCR+Q6sek8bf92,i=0')), 'malformed-request');
  await rejectsWith(() => client.final(Buffer.from('r=abcd,s=QSXCR+Q6sek8bf92,i=99999999')), 'malformed-request');
  await client.final(Buffer.from('r=abcd,s=QSXCR+Q6sek8bf92,i=4096'));
  await rejectsWith(() => client.verifyServerFinal(Buffer.from('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=')), 'not-authorized');
  const error = await rejectsWith(() => client.verifyServerFinal(Buffer.from('e=invalid-proof')), 'not-authorized');
  assert.match(error.message, /invalid-proof/);
  await rejectsWith(
    () => new ScramClient({ hash: 'SHA-1', username: 'u', password: 'p', plus: true }),
    'invalid-mechanism',
  );
});

test('client SaltedPassword cache gives the same result and is used when enabled', async () => {
  clearScramClientCache();
  // A high iteration count makes PBKDF2 dominate, so the cache's effect is measurable.
  const credentials = deriveScramCredentialsSync('r0m30myr0m30', 'SHA-256', 200_000);
  const run = async (cacheSaltedPassword: boolean) => {
    const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'r0m30myr0m30', clientNonce: 'n', cacheSaltedPassword });
    const scram = server({ hash: 'SHA-256', serverNonce: 's', lookup: async () => credentials });
    const clientFinal = await client.final(await scram.start(client.first()));
    client.verifyServerFinal(await scram.finish(clientFinal));
    return clientFinal.toString();
  };
  const plain = await run(false);
  const started = performance.now();
  const cold = await run(true);
  const coldMs = performance.now() - started;
  const warmStart = performance.now();
  const warm = await run(true);
  const warmMs = performance.now() - warmStart;
  assert.equal(cold, plain);
  assert.equal(warm, plain);
  assert.ok(warmMs < coldMs / 2, `cached login (${warmMs} ms) should take under half the uncached time (${coldMs} ms)`);
  clearScramClientCache();
});

test('PLAIN: parse good messages', () => {
  assert.deepEqual(parsePlain(Buffer.from('\0juliet\0r0m30')), { authzid: '', authcid: 'juliet', password: 'r0m30' });
  assert.deepEqual(parsePlain(Buffer.from('juliet@example.com\0juliet\0p\u00e4ss')), {
    authzid: 'juliet@example.com',
    authcid: 'juliet',
    password: 'p\u00e4ss',
  });
  assert.deepEqual(parsePlain(buildPlain('juliet', 'secret', 'romeo@example.net')), {
    authzid: 'romeo@example.net',
    authcid: 'juliet',
    password: 'secret',
  });
  assert.deepEqual(buildPlain('a', 'b'), Buffer.from('\0a\0b'));
  const max = 'x'.repeat(255);
  assert.deepEqual(parsePlain(buildPlain(max, max, max)), { authzid: max, authcid: max, password: max });
});

test('PLAIN: bad messages → malformed-request', async () => {
  const long = 'x'.repeat(256);
  const bad: Buffer[] = [
    Buffer.from(''),
    Buffer.from('juliet'),
    Buffer.from('\0juliet'),
    Buffer.from('\0juliet\0pass\0'),
    Buffer.from('\0\0pass'),
    Buffer.from('\0juliet\0'),
    Buffer.from(`\0${long}\0pass`),
    Buffer.from(`\0juliet\0${long}`),
    Buffer.from(`${long}\0juliet\0pass`),
    Buffer.from([0, 0x6a, 0, 0xc3, 0x28]),
  ];
  for (const message of bad) await rejectsWith(() => parsePlain(message), 'malformed-request');
  await rejectsWith(() => buildPlain('', 'p'), 'malformed-request');
  await rejectsWith(() => buildPlain('a', ''), 'malformed-request');
  await rejectsWith(() => buildPlain('a\0b', 'p'), 'malformed-request');
  await rejectsWith(() => buildPlain('a', long), 'malformed-request');
});
