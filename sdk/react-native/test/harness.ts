// The server side of the tests: what an app server does (create an end-to-end encrypted
// session over the REST API, make client tokens), against the `umbra serve` that
// scripts/test.d/80-react-native.sh started.
import {execFileSync} from 'child_process';
import {createHmac, randomUUID} from 'crypto';
import {request} from 'http';

function env(name: string): string {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run the tests with scripts/test.d/80-react-native.sh`);
  }
  return v;
}

export const server = {
  url: env('UMBRA_TEST_URL'),
  apiKey: env('UMBRA_TEST_API_KEY'),
  apiSecret: env('UMBRA_TEST_API_SECRET'),
  bin: env('UMBRA_TEST_BIN'),
  dataDir: env('UMBRA_TEST_DATA_DIR'),
};

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

function projectJwt(): string {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({alg: 'HS256', typ: 'JWT'}));
  const body = b64url(
    JSON.stringify({iss: server.apiKey, ist: 'project', iat: now, exp: now + 180, jti: `rn-${randomUUID()}`}),
  );
  const mac = createHmac('sha256', server.apiSecret).update(`${head}.${body}`).digest();
  return `${head}.${body}.${b64url(mac)}`;
}

/** A routed, end-to-end encrypted session. */
export function createE2eeSession(): Promise<string> {
  const payload = 'p2p.preference=disabled&e2ee=true';
  return new Promise((resolve, reject) => {
    const req = request(
      `${server.url}/session/create`,
      {
        method: 'POST',
        timeout: 10000,
        headers: {
          'Content-Type': 'application/x-www-form-urlencoded',
          Accept: 'application/json',
          'X-OPENTOK-AUTH': projectJwt(),
        },
      },
      res => {
        let body = '';
        res.on('data', chunk => (body += chunk));
        res.on('end', () => {
          const m = /"session_id"\s*:\s*"([^"]+)"/.exec(body);
          m ? resolve(m[1]) : reject(new Error(`no session_id in HTTP ${res.statusCode} ${body}`));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('session/create timed out')));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A client token from the `umbra token` CLI. */
export function token(sessionId: string): string {
  return execFileSync(
    server.bin,
    ['--data-dir', server.dataDir, 'token', '--project', server.apiKey, '--session-id', sessionId],
    {timeout: 30000, encoding: 'utf8'},
  ).trim();
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `ms`. */
export async function waitFor<T>(what: string, check: () => T | undefined | false, ms = 20000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) {
      return v;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    }
    await new Promise(r => setTimeout(r, 50));
  }
}

export const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));
