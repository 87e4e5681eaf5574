/**
 * The built-in web chat end to end, in a real browser: Chromium (the Debian package, driven by
 * playwright-core; never a downloaded browser) opens `/chat` twice, two accounts log in through
 * Converse's login form over the server's WebSocket endpoint (RFC 7395), Alice picks Bob in her
 * roster and sends a message, Bob's page shows it, Bob answers and Alice's page shows that.
 * Every request the pages make must go to this server and succeed (no CDN, no 404 chunks).
 *
 * A further test has two Converse users create and enter a groupchat (XEP-0045) and talk in it.
 *
 * Screenshots of both pages go to `test-artifacts/` at the repository root (also on failure).
 * Without Chromium the test is skipped, loudly; with PARLEY_REQUIRE_BROWSER=1 it fails instead.
 * PARLEY_CHROMIUM overrides the browser path (default /usr/bin/chromium).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { RosterStore } from '../src/storage/index.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const CHROMIUM = process.env.PARLEY_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));
/** Generous: the first load parses 1.3 MB of Converse; CI machines are slow. */
const STEP_TIMEOUT = 60_000;

/** One logged-in browser page, with everything it requested that went wrong. */
interface ChatPage {
  name: string;
  context: BrowserContext;
  page: Page;
  /** Requests to anywhere but the test server, failed requests, HTTP errors, page errors. */
  problems: string[];
  /** Console messages, for the failure report. */
  console: string[];
}

async function openChatPage(browser: Browser, base: string, name: string): Promise<ChatPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US' });
  context.setDefaultTimeout(STEP_TIMEOUT);
  const page = await context.newPage();
  const origin = new URL(base).origin;
  const cp: ChatPage = { name, context, page, problems: [], console: [] };
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol !== 'data:' && u.protocol !== 'blob:' && u.origin !== origin && u.origin !== origin.replace(/^http/, 'ws')) {
      cp.problems.push(`external request: ${r.method()} ${r.url()}`);
    }
  });
  page.on('requestfailed', (r) => cp.problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
  page.on('response', (r) => {
    if (r.status() >= 400) cp.problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  page.on('pageerror', (e) => cp.problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    cp.console.push(`${m.type()}: ${m.text()}`);
    if (m.text().includes('Content Security Policy')) cp.problems.push(`CSP violation: ${m.text()}`);
  });
  await page.goto(`${base}/chat`);
  return cp;
}

/** Logs in through Converse's login form (the domain is locked: the username alone). */
async function logIn(cp: ChatPage, username: string, password: string): Promise<void> {
  const { page } = cp;
  await page.locator('#converse-login-jid').fill(username);
  await page.locator('#converse-login-password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/** Opens the chat with a roster contact by clicking it, and returns that chat's element. */
async function openChatWith(cp: ChatPage, contactName: string, jid: string) {
  const { page } = cp;
  await page.locator('a.open-chat', { hasText: contactName }).first().click();
  const chat = page.locator(`converse-chat[jid="${jid}"]`);
  await chat.locator('textarea.chat-textarea').waitFor({ state: 'visible' });
  return chat;
}

async function send(chat: ReturnType<Page['locator']>, text: string): Promise<void> {
  const box = chat.locator('textarea.chat-textarea');
  await box.fill(text);
  await box.press('Enter');
}

async function screenshot(cp: ChatPage | undefined, suffix = ''): Promise<void> {
  if (!cp) return;
  try {
    mkdirSync(ARTIFACTS, { recursive: true });
    await cp.page.screenshot({ path: join(ARTIFACTS, `browser-${cp.name}${suffix}.png`), timeout: 10_000 });
  } catch {
    // the page or browser may be gone; the test's own error matters more
  }
}

/** Mutual subscription, written to storage before login, so each sees the other in the roster. */
async function befriend(ts: TestServer, a: { user: string; name: string }, b: { user: string; name: string }) {
  const roster = new RosterStore(ts.server.storage);
  const domain = ts.config.domain;
  const item = (user: string, name: string) => ({
    jid: `${user}@${domain}`,
    name,
    subscription: 'both' as const,
    ask: false,
    approved: false,
    groups: [],
  });
  await roster.put(domain, a.user, item(b.user, b.name));
  await roster.put(domain, b.user, item(a.user, a.name));
}

/** `false` (after skipping `t`, loudly) when there is no Chromium; fails instead under PARLEY_REQUIRE_BROWSER=1. */
function haveChromium(t: TestContext): boolean {
  if (existsSync(CHROMIUM)) return true;
  const why = `Chromium not found at ${CHROMIUM} (apt-get install chromium, or set PARLEY_CHROMIUM)`;
  if (process.env.PARLEY_REQUIRE_BROWSER === '1') assert.fail(`${why}; PARLEY_REQUIRE_BROWSER=1 requires the browser test`);
  console.warn(`\n*** SKIPPED the browser test: ${why} ***\n`);
  t.skip(why);
  return false;
}

function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking'],
    timeout: STEP_TIMEOUT,
  });
}

/** On failure: screenshots (`-failed`) and each page's problems and console, on stderr. */
async function report(ok: boolean, pages: (ChatPage | undefined)[]): Promise<void> {
  if (ok) {
    for (const cp of pages) if (cp) rmSync(join(ARTIFACTS, `browser-${cp.name}-failed.png`), { force: true });
    return;
  }
  await Promise.all(pages.map((cp) => screenshot(cp, '-failed')));
  for (const cp of pages) {
    if (!cp) continue;
    console.error(`--- ${cp.name}: problems ---\n${cp.problems.join('\n')}\n--- ${cp.name}: console ---\n${cp.console.join('\n')}`);
  }
}

/**
 * Alice and Bob, each in a browser context of one Chromium, logged in at `/chat` on a fresh
 * server; `body` then drives their pages. Afterwards: screenshots, and every request of both
 * pages must have gone to this server and succeeded. On failure: `report` (screenshots, console).
 */
async function withAliceAndBob(
  t: TestContext,
  pageNames: [string, string],
  opts: { befriend: boolean },
  body: (ts: TestServer, alice: ChatPage, bob: ChatPage) => Promise<void>,
): Promise<void> {
  if (!haveChromium(t)) return;
  const started = Date.now();
  const ts = await startTestServer();
  let browser: Browser | undefined;
  let alice: ChatPage | undefined;
  let bob: ChatPage | undefined;
  let ok = false;
  try {
    await ts.createUser('alice', 'alice-secret-1');
    await ts.createUser('bob', 'bob-secret-2');
    if (opts.befriend) await befriend(ts, { user: 'alice', name: 'Alice' }, { user: 'bob', name: 'Bob' });
    browser = await launch();
    const base = `http://127.0.0.1:${ts.httpPort}`;
    [alice, bob] = await Promise.all([openChatPage(browser, base, pageNames[0]), openChatPage(browser, base, pageNames[1])]);
    await Promise.all([logIn(alice, 'alice', 'alice-secret-1'), logIn(bob, 'bob', 'bob-secret-2')]);
    await body(ts, alice, bob);
    await Promise.all([screenshot(alice), screenshot(bob)]);
    assert.deepEqual(alice.problems, [], 'alice: every request goes to this server and succeeds');
    assert.deepEqual(bob.problems, [], 'bob: every request goes to this server and succeeds');
    ok = true;
    t.diagnostic(`took ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${ARTIFACTS}`);
  } finally {
    await report(ok, [alice, bob]);
    await browser?.close().catch(() => {});
    await ts.stop();
  }
}

test('web chat: Converse in Chromium logs two accounts in at /chat and they exchange messages over WebSocket', { timeout: 240_000 }, (t) =>
  withAliceAndBob(t, ['alice', 'bob'], { befriend: true }, async (ts, alice, bob) => {
    const domain = ts.config.domain;
      // Logged in: each roster shows the other (roster fetched over the WebSocket stream).
      await alice.page.locator('a.open-chat', { hasText: 'Bob' }).first().waitFor({ state: 'visible' });
      await bob.page.locator('a.open-chat', { hasText: 'Alice' }).first().waitFor({ state: 'visible' });

      const hello = `Hello Bob, from Alice's browser ${Date.now()}`;
      const aliceChat = await openChatWith(alice, 'Bob', `bob@${domain}`);
      await send(aliceChat, hello);
      await aliceChat.locator('.chat-msg__text', { hasText: hello }).waitFor({ state: 'visible' });

      // Bob: the message arrives (unread on Alice's roster entry); open the chat with her.
      const bobChat = await openChatWith(bob, 'Alice', `alice@${domain}`);
      await bobChat.locator('.chat-msg__text', { hasText: hello }).waitFor({ state: 'visible' });
      assert.match(await bobChat.locator('.chat-msg__text', { hasText: hello }).innerText(), /Hello Bob, from Alice's browser/);

      const reply = `Hi Alice, Bob here ${Date.now()}`;
      await send(bobChat, reply);
      await aliceChat.locator('.chat-msg__text', { hasText: reply }).waitFor({ state: 'visible' });
      assert.match(await aliceChat.innerText(), new RegExp(reply));
  }),
);

test('web chat: "Create an account" registers in-band (XEP-0077) over WebSocket and logs the new account in', { timeout: 240_000 }, async (t) => {
  if (!haveChromium(t)) return;
  const ts = await startTestServer({ modules: { register: { policy: 'open' } } });
  let browser: Browser | undefined;
  let carol: ChatPage | undefined;
  let ok = false;
  try {
    browser = await launch();
    carol = await openChatPage(browser, `http://127.0.0.1:${ts.httpPort}`, 'carol-register');
    const { page } = carol;
    await page.getByText('Create an account').click();
    // The form is fetched from the server (registration_domain is this domain).
    const form = page.locator('converse-registration-form form#converse-register');
    await form.locator('input[name="username"]').fill('carol');
    await form.locator('input[name="password"]').fill('carol-secret-3');
    await form.locator('input[type="submit"]').click();
    // Registered, then logged in: the control box shows the new account.
    await page.locator('converse-user-profile, .xmpp-status', { hasText: `carol@${ts.config.domain}` }).first().waitFor({ state: 'visible' });
    assert.equal(await ts.server.accounts.exists('carol'), true);
    await screenshot(carol);
    assert.deepEqual(carol.problems, [], 'every request goes to this server and succeeds');
    ok = true;
  } finally {
    await report(ok, [carol]);
    await browser?.close().catch(() => {});
    await ts.stop();
  }
});

test('web chat: with registration closed, the login screen offers no "Create an account"', { timeout: 240_000 }, async (t) => {
  if (!haveChromium(t)) return;
  const ts = await startTestServer({ modules: { register: { policy: 'closed' } } });
  let browser: Browser | undefined;
  let visitor: ChatPage | undefined;
  let ok = false;
  try {
    browser = await launch();
    visitor = await openChatPage(browser, `http://127.0.0.1:${ts.httpPort}`, 'closed-registration');
    await visitor.page.locator('#converse-login-jid').waitFor({ state: 'visible' });
    assert.equal(await visitor.page.getByText('Create an account').count(), 0);
    assert.deepEqual(visitor.problems, [], 'every request goes to this server and succeeds');
    ok = true;
  } finally {
    await report(ok, [visitor]);
    await browser?.close().catch(() => {});
    await ts.stop();
  }
});

/** Enters a groupchat through Converse's "add groupchat" dialog (the room name alone: muc_domain is set). */
async function enterRoom(cp: ChatPage, room: string, nick: string) {
  const { page } = cp;
  // The "add groupchat" entry sits in the groupchats section's dropdown menu.
  await page.locator('converse-rooms-list converse-dropdown button').first().click();
  await page.locator('converse-rooms-list .show-add-muc-modal').first().click();
  const modal = page.locator('converse-add-muc-modal');
  await modal.locator('input[name="chatroom"]').fill(room);
  await modal.locator('input[name="nickname"]').fill(nick);
  await modal.locator('form input[type="submit"]').click();
  const muc = page.locator(`converse-muc[jid="${room}@conference.localhost"]`);
  await muc.locator('textarea.chat-textarea').waitFor({ state: 'visible' });
  return muc;
}

test('web chat: two Converse users create and enter a groupchat (XEP-0045) and talk in it', { timeout: 240_000 }, (t) =>
  withAliceAndBob(t, ['alice-muc', 'bob-muc'], { befriend: false }, async (_ts, alice, bob) => {
      // Alice creates the room (Converse accepts the default configuration: an instant room).
      const aliceRoom = await enterRoom(alice, 'lounge', 'Alice');
      const bobRoom = await enterRoom(bob, 'lounge', 'Bob');
      await aliceRoom.locator('converse-muc-sidebar, .occupant-list', { hasText: 'Bob' }).first().waitFor({ state: 'visible' });
      const hello = `Hello room, Alice here ${Date.now()}`;
      await send(aliceRoom, hello);
      await bobRoom.locator('.chat-msg__text', { hasText: hello }).waitFor({ state: 'visible' });
      const reply = `Hi Alice, Bob in the room ${Date.now()}`;
      await send(bobRoom, reply);
      await aliceRoom.locator('.chat-msg__text', { hasText: reply }).waitFor({ state: 'visible' });
  }),
);
