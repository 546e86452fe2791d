// flow.js — the account page in a real browser (issue 9).
//
// Drives Debian's chromium (never a downloaded browser) through
// playwright-core: sign in, turn on 2-Step Verification with the code
// computed from the secret shown on the page, sign out and in again with a
// code (the code already used is refused), create an app password (the
// Python test sends mail with it over SMTP, then answers "sent" on stdin),
// revoke it, and check that a form posted without its CSRF token is
// refused.  One JSON line per step on stdout; screenshots in
// OUTPOST_SHOTS.  Run by tests/integration/t_70_account_page.py.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const { chromium } = require('playwright-core');

const base = process.env.OUTPOST_URL;
const user = process.env.OUTPOST_USER;
const password = process.env.OUTPOST_PASSWORD;
const shots = process.env.OUTPOST_SHOTS;
const profile = process.env.OUTPOST_PROFILE;
const certFile = path.join(path.dirname(process.env.OUTPOST_CA), 'server.crt');

function say(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function b32decode(s) {
  const alpha = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, val = 0;
  const out = [];
  for (const ch of s.replace(/[\s=]/g, '').toUpperCase()) {
    const i = alpha.indexOf(ch);
    if (i < 0) throw new Error('bad base32');
    val = (val << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((val >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function totp(secret, t) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(t / 30)));
  const mac = crypto.createHmac('sha1', b32decode(secret)).update(counter).digest();
  const off = mac[mac.length - 1] & 15;
  const v = mac.readUInt32BE(off) & 0x7fffffff;
  return String(v % 1000000).padStart(6, '0');
}

// The server certificate's SPKI pin: chromium trusts exactly this key
// (the test's local CA is not in any system store).
function spkiPin() {
  const cert = new crypto.X509Certificate(fs.readFileSync(certFile));
  const der = cert.publicKey.export({ type: 'spki', format: 'der' });
  return crypto.createHash('sha256').update(der).digest('base64');
}

function expect(cond, what) {
  if (!cond) throw new Error('expected: ' + what);
}

async function main() {
  const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
      '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
      '--ignore-certificate-errors-spki-list=' + spkiPin()],
    timeout: 60000,
  });
  let n = 0;
  const page = ctx.pages()[0] || await ctx.newPage();
  page.setDefaultTimeout(20000);
  const shot = async (name) => {
    n++;
    await page.screenshot({ path: path.join(shots, String(n).padStart(2, '0') + '-' + name + '.png'), fullPage: true });
  };
  try {
    // sign in with the password
    let resp = await page.goto(base + '/');
    expect(resp.ok(), 'sign-in page loads');
    const h = resp.headers();
    expect(h['x-frame-options'] === 'DENY', 'X-Frame-Options');
    await shot('signin');
    await page.fill('#email', user);
    await page.fill('#password', password);
    await Promise.all([page.waitForNavigation(), page.click('#signin')]);
    expect(await page.isVisible('#who'), 'signed in');
    const cookies = await ctx.cookies();
    const c = cookies.find((x) => x.name === 'outpost_session');
    expect(c && c.secure && c.httpOnly && c.sameSite === 'Strict', 'cookie flags');
    await shot('signed-in');
    say({ step: 'signed-in' });

    // 2-Step Verification on: QR code, secret, confirm with a code
    await page.goto(base + '/security');
    await Promise.all([page.waitForNavigation(), page.click('#tfa-on')]);
    expect(await page.isVisible('svg#qr'), 'QR code shown');
    const secret = (await page.textContent('#secret')).replace(/\s/g, '');
    await shot('enrol');
    const t0 = Date.now() / 1000;
    const code0 = totp(secret, t0);
    await page.fill('#confirm-code', code0);
    await Promise.all([page.waitForNavigation(), page.click('#confirm')]);
    expect((await page.textContent('#tfa')) === 'on', '2FA on');
    await shot('2fa-on');
    say({ step: '2fa-on' });

    // sign out; sign in again: password, then a code
    await Promise.all([page.waitForNavigation(), page.click('#signout')]);
    await page.fill('#email', user);
    await page.fill('#password', password);
    await Promise.all([page.waitForNavigation(), page.click('#signin')]);
    expect(await page.isVisible('#code'), 'code asked');
    await page.fill('#code', code0);		// already used: refused
    await Promise.all([page.waitForNavigation(), page.click('#next')]);
    expect(await page.isVisible('#error'), 'replayed code refused');
    expect(!(await page.isVisible('#who')), 'not signed in with a replayed code');
    await shot('replay-refused');
    say({ step: 'replay-refused' });
    await page.fill('#code', totp(secret, t0 + 30));
    await Promise.all([page.waitForNavigation(), page.click('#next')]);
    expect(await page.isVisible('#who'), 'signed in with a code');
    await shot('signed-in-2fa');

    // a form without its CSRF token is refused
    await page.goto(base + '/apppasswords');
    await page.$eval('form[action="/apppasswords/create"] input[name=csrf]', (e) => e.remove());
    await page.fill('#label', 'no token');
    let [nav] = await Promise.all([page.waitForNavigation(), page.click('#create')]);
    expect(nav.status() === 403, 'CSRF-less form refused (got ' + nav.status() + ')');
    await shot('csrf-refused');
    say({ step: 'csrf-refused' });

    // an app password for the phone
    await page.goto(base + '/apppasswords');
    expect(!(await page.content()).includes('no token'), 'nothing created without a token');
    await page.fill('#label', 'Phone');
    await Promise.all([page.waitForNavigation(), page.click('#create')]);
    const ap = (await page.textContent('#apppass')).trim();
    expect(/^[a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4}$/.test(ap), 'app password shown');
    await shot('apppass');
    say({ step: 'apppass', apppass: ap });
    const answer = await lines.next();
    expect(answer.value === 'sent', 'mail sent with the app password');

    // listed with its last use, then revoked
    // "last used" is written in batches ([accounts] counter_flush):
    // reload until it shows (bounded)
    let row = '';
    for (let i = 0; i < 40; i++) {
      await page.goto(base + '/apppasswords');
      row = await page.textContent('#apppasswords');
      if (row.includes('127.0.0.1')) break;
      await page.waitForTimeout(250);
    }
    expect(row.includes('Phone') && row.includes('127.0.0.1'), 'last used from 127.0.0.1');
    await shot('apppass-used');
    await Promise.all([page.waitForNavigation(), page.click('#apppasswords .revoke')]);
    expect((await page.textContent('#message')).includes('revoked'), 'revoked');
    await shot('revoked');
    say({ step: 'done', apppass: ap });
  } finally {
    await ctx.close();
  }
}

main().then(() => process.exit(0)).catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
