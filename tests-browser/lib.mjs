// Shared pieces of the browser flows: launching Debian's chromium through playwright-core,
// trusting the test edge's CA, RFC 6238 codes, and recording what the user saw.
//
// Every flow prints one JSON object on stdout: {"steps": [...], ...}; the Rust test that
// started the edge asserts on it. Diagnostics go to stderr.

import { createHmac } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

/** An environment variable the Rust test must set. */
export function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run this flow from crates/portless-test-support/tests/browser.rs`);
  }
  return value;
}

/**
 * Starts chromium with a fresh profile and a fresh NSS database (under a temporary HOME)
 * that trusts the edge's CA (PORTLESS_CA_PEM), so certificates are verified for real:
 * names, dates and chain, as for a person who ran `certutil` once.
 */
export async function launch() {
  const home = mkdtempSync(join(tmpdir(), "portless-browser-"));
  const nssdb = join(home, ".pki", "nssdb");
  mkdirSync(nssdb, { recursive: true });
  execFileSync("certutil", ["-d", `sql:${nssdb}`, "-N", "--empty-password"]);
  execFileSync("certutil", ["-d", `sql:${nssdb}`, "-A", "-t", "C,,", "-n", "Portless test CA", "-i", env("PORTLESS_CA_PEM")]);
  if (process.env.PORTLESS_EXTRA_CA_PEM) {
    // Another peer's CA (the test identity provider's), trusted the same way.
    execFileSync("certutil", ["-d", `sql:${nssdb}`, "-A", "-t", "C,,", "-n", "Portless test IdP CA", "-i", process.env.PORTLESS_EXTRA_CA_PEM]);
  }
  const browser = await chromium.launch({
    executablePath: process.env.PORTLESS_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    env: { ...process.env, HOME: home },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--host-resolver-rules=MAP *.example.test 127.0.0.1",
    ],
  });
  const close = async () => {
    await browser.close();
    rmSync(home, { recursive: true, force: true });
  };
  return { browser, close };
}

/** A new browser context (no cookies) with one page and short timeouts. */
export async function freshPage(browser) {
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  return page;
}

/** Records what the user sees now (title, heading, text, URL) and saves a screenshot. */
export async function see(page, steps, name) {
  await page.locator("h1").first().waitFor();
  const dir = env("PORTLESS_SCREENSHOTS");
  mkdirSync(dir, { recursive: true });
  const screenshot = join(dir, `${String(steps.length + 1).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: screenshot, fullPage: true });
  const step = {
    name,
    url: page.url(),
    title: await page.title(),
    heading: (await page.locator("h1").first().innerText()).trim(),
    text: (await page.locator("body").innerText()).trim(),
    screenshot,
  };
  steps.push(step);
  process.stderr.write(`screenshot: ${screenshot}\n`);
  return step;
}

/** Clicks `selector` (a submit button or link) and waits until the next page has loaded. */
export async function go(page, selector) {
  await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click(selector)]);
}

/** Fills the portal's sign-in form and submits it. */
export async function signIn(page, user, password) {
  await page.fill("#username", user);
  await page.fill("#password", password);
  await go(page, "main form button[type=submit]");
}

/** The RFC 6238 code (SHA-1, 30 s, 6 digits) of a base32 key for time step `step`. */
export function totp(base32, step) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of base32.replace(/=+$/, "").toUpperCase()) {
    const value = alphabet.indexOf(c);
    if (value < 0) throw new Error(`not base32: ${c}`);
    bits += value.toString(2).padStart(5, "0");
  }
  const key = Buffer.alloc(Math.floor(bits.length / 8));
  for (let i = 0; i < key.length; i++) key[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[19] & 0x0f;
  const binary = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(binary).padStart(6, "0");
}

/** The current RFC 6238 time step. */
export function nowStep() {
  return Math.floor(Date.now() / 1000 / 30);
}

/** Runs `flow(steps, result)` and prints the result as JSON, or the error and exit 1. */
export async function run(flow) {
  const steps = [];
  const result = { steps };
  try {
    await flow(steps, result);
  } catch (error) {
    result.error = String(error && error.stack ? error.stack : error);
    process.stdout.write(JSON.stringify(result) + "\n");
    process.exit(1);
  }
  process.stdout.write(JSON.stringify(result) + "\n");
}
