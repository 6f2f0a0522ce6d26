// Flow 4: how the portal's pages look and behave on a phone and a desktop. A user outside
// the admin group opens the admin app: the sign-in page is checked at 390x844 (phone),
// 320x640 (narrow phone, dark mode) and 1280x800 (desktop), then the "Access denied" page at
// both sizes, then "Sign in with another account" leads back to the sign-in page.
//
// On every page: no console error (Chromium reports CSP violations there, so an inline
// script or style fails the flow), no inline script/style in the DOM, no horizontal
// scrolling, every control at least 44px tall, every visible field labelled.
//
// Env: PORTLESS_APP_URL, PORTLESS_USER, PORTLESS_PASSWORD, PORTLESS_CA_PEM,
// PORTLESS_SCREENSHOTS.

import { env, go, launch, run, see, signIn } from "./lib.mjs";

const PHONE = { width: 390, height: 844 };
const NARROW = { width: 320, height: 640 };
const DESKTOP = { width: 1280, height: 800 };

/** What a page does wrong, checked in the browser. */
async function audit(page) {
  return page.evaluate(() => {
    const problems = [];
    // (Chromium's autofill adds an empty style attribute to form fields: not ours.)
    for (const el of document.querySelectorAll('script:not([src]), style, [style]:not([style=""])')) {
      problems.push(`inline script or style: ${el.outerHTML.slice(0, 200)}`);
    }
    for (const el of document.querySelectorAll("*")) {
      for (const attr of el.getAttributeNames()) {
        if (attr.startsWith("on")) problems.push(`event handler ${attr} on ${el.tagName}`);
      }
    }
    const root = document.documentElement;
    if (root.scrollWidth > root.clientWidth) {
      problems.push(`scrolls sideways: ${root.scrollWidth} > ${root.clientWidth}`);
    }
    const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
    for (const el of document.querySelectorAll("button, a.button, input:not([type=hidden]), .check")) {
      if (!visible(el)) continue;
      const { height } = el.getBoundingClientRect();
      if (el.matches("input[type=checkbox]")) continue; // its row (.check) is the target
      if (height < 44) problems.push(`${el.tagName} "${el.textContent || el.id}" is ${height}px tall`);
    }
    for (const input of document.querySelectorAll("input:not([type=hidden])")) {
      if (!visible(input)) continue;
      if (!input.id || !document.querySelector(`label[for="${input.id}"]`)) {
        problems.push(`input ${input.name} has no label`);
      }
    }
    if (!document.querySelector("header.site .brand")) problems.push("no header");
    return problems;
  });
}

/** Sets the size (and colour scheme), records the page and checks it. */
async function look(page, steps, name, size, colorScheme = "light") {
  await page.setViewportSize(size);
  await page.emulateMedia({ colorScheme });
  const step = await see(page, steps, name);
  step.viewport = size;
  step.problems = await audit(page);
  return step;
}

await run(async (steps, result) => {
  const { browser, close } = await launch();
  try {
    const context = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    const consoleErrors = [];
    page.on("console", (message) => {
      if (message.type() !== "error") return;
      // The "Access denied" page is a 403 by design; Chromium logs that status too.
      const url = message.location().url;
      if (message.text().startsWith("Failed to load resource") && url === page.url()) return;
      consoleErrors.push(`${message.text()} (${url})`);
    });
    page.on("pageerror", (error) => consoleErrors.push(String(error)));
    result.consoleErrors = consoleErrors;

    await page.goto(env("PORTLESS_APP_URL"));
    await look(page, steps, "sign-in-phone", PHONE);
    await look(page, steps, "sign-in-narrow-dark", NARROW, "dark");
    await look(page, steps, "sign-in-desktop", DESKTOP);
    await page.setViewportSize(PHONE);
    await page.emulateMedia({ colorScheme: "light" });
    await signIn(page, env("PORTLESS_USER"), env("PORTLESS_PASSWORD"));
    await look(page, steps, "denied-phone", PHONE);
    await look(page, steps, "denied-desktop-dark", DESKTOP, "dark");
    await page.setViewportSize(PHONE);
    await page.emulateMedia({ colorScheme: "light" });
    await go(page, "main form button[type=submit]");
    await look(page, steps, "sign-in-again", PHONE);
    // The stylesheet really applied (a blocked one would leave the browser's defaults).
    result.buttonBackground = await page
      .locator("main form button[type=submit]")
      .evaluate((el) => getComputedStyle(el).backgroundColor);
  } finally {
    await close();
  }
});
