// Drives the official npm `opentok` 2.x server SDK against a running umbra server.
// Usage: node compat.js URL API_KEY API_SECRET NO_ADDON_KEY NO_ADDON_SECRET
//        node compat.js act URL API_KEY API_SECRET SESSION_ID CONNECTION_ID
// Prints one JSON object with the session, the tokens the SDK generated, and what the SDK
// reported for calls umbra must refuse. tests/sdk_compat.rs checks it.
'use strict';
const OpenTok = require('opentok');

const [url, key, secret, badKey, badSecret] = process.argv.slice(2);

// Acts on a connected client through the REST API: a signal to it, then a forced disconnect.
async function act([url, key, secret, sessionId, connectionId]) {
  const ot = new OpenTok(key, secret, { apiUrl: url });
  await new Promise((resolve, reject) => {
    ot.signal(sessionId, connectionId, { type: 'sdk', data: 'to you' }, (err) => (err ? reject(err) : resolve()));
  });
  await new Promise((resolve, reject) => {
    ot.forceDisconnect(sessionId, connectionId, (err) => (err ? reject(err) : resolve()));
  });
  process.stdout.write(JSON.stringify({ ok: true }) + '\n');
}

function createSession(ot, opts) {
  return new Promise((resolve, reject) => {
    ot.createSession(opts, (err, session) => (err ? reject(err) : resolve(session)));
  });
}

function startArchive(ot, sessionId) {
  return new Promise((resolve, reject) => {
    ot.startArchive(sessionId, { name: 'nope' }, (err, archive) => (err ? reject(err) : resolve(archive)));
  });
}

function signal(ot, sessionId, payload) {
  return new Promise((resolve, reject) => {
    ot.signal(sessionId, null, payload, (err) => (err ? reject(err) : resolve()));
  });
}

async function main() {
  const out = { sdk_version: require('opentok/package.json').version };
  const ot = new OpenTok(key, secret, { apiUrl: url });
  // The official sample passes e2ee as the string 'true'.
  const session = await createSession(ot, { mediaMode: 'routed', e2ee: 'true' });
  out.session_id = session.sessionId;
  out.jwt_publisher = ot.generateToken(session.sessionId, {
    role: 'publisher', data: 'node jwt', initialLayoutClassList: ['focus'],
  });
  out.t1_moderator = ot.generateToken(session.sessionId, { role: 'moderator', data: 'node t1 with spaces' }, true);
  out.jwt_subscriber = ot.generateToken(session.sessionId, { role: 'subscriber' });
  const relayed = await createSession(ot, {});
  out.relayed_session_id = relayed.sessionId;

  try {
    await startArchive(ot, session.sessionId);
    out.archive_error = null;
  } catch (e) {
    out.archive_error = String(e && e.message ? e.message : e);
  }
  try {
    await createSession(new OpenTok(badKey, badSecret, { apiUrl: url }), { mediaMode: 'routed', e2ee: true });
    out.no_addon_error = null;
  } catch (e) {
    out.no_addon_error = String(e && e.message ? e.message : e);
  }
  try {
    await createSession(new OpenTok(key, '0'.repeat(40), { apiUrl: url }), {});
    out.bad_secret_error = null;
  } catch (e) {
    out.bad_secret_error = String(e && e.message ? e.message : e);
  }
  await signal(ot, session.sessionId, { type: 'sdk', data: 'hello from node' });
  process.stdout.write(JSON.stringify(out) + '\n');
}

(process.argv[2] === 'act' ? act(process.argv.slice(3)) : main()).catch((e) => {
  process.stderr.write(`compat.js failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
