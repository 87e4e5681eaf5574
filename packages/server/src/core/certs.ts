import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';

/** A certificate and its private key, PEM-encoded. */
export interface CertificatePair {
  cert: string;
  key: string;
  /** Where they came from, for messages. */
  certPath: string;
  keyPath: string;
  /** `true` when Parley generated the pair. */
  generated: boolean;
}

/**
 * The server's certificate: the configured PEM files, or else a self-signed
 * pair for `domain` in `dataDir` (`<domain>.crt`, `<domain>.key`), generated on
 * first use and reused after. The generated certificate names the domain and
 * its wildcard subdomains in subjectAltName (RFC 6125 §6.4), valid 10 years.
 */
export async function loadCertificate(opts: {
  domain: string;
  dataDir: string;
  certificate: string | null;
  key: string | null;
}): Promise<CertificatePair> {
  if (opts.certificate && opts.key) {
    return {
      cert: readFileSync(opts.certificate, 'utf8'),
      key: readFileSync(opts.key, 'utf8'),
      certPath: opts.certificate,
      keyPath: opts.key,
      generated: false,
    };
  }
  const certPath = join(opts.dataDir, `${opts.domain}.crt`);
  const keyPath = join(opts.dataDir, `${opts.domain}.key`);
  if (existsSync(certPath) && existsSync(keyPath)) {
    return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8'), certPath, keyPath, generated: true };
  }
  const now = new Date();
  const pems = await generate([{ name: 'commonName', value: opts.domain }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: now,
    notAfterDate: new Date(now.getTime() + 3650 * 86400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: opts.domain },
          { type: 2, value: `*.${opts.domain}` },
        ],
      },
    ],
  });
  mkdirSync(dirname(certPath), { recursive: true });
  writeFileSync(keyPath, pems.private, { mode: 0o600 });
  writeFileSync(certPath, pems.cert);
  return { cert: pems.cert, key: pems.private, certPath, keyPath, generated: true };
}

/** Facts about a certificate for `parley check`: subject names and validity. */
export function describeCertificate(pem: string): { names: string[]; validTo: Date; validFrom: Date } {
  const x = new X509Certificate(pem);
  const names = (x.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4));
  return { names, validTo: new Date(x.validTo), validFrom: new Date(x.validFrom) };
}
