// Flow: sign in with a PIN sent by email. The person types their address, reads the mail
// (here: the file the test's SMTP server saved), types the code, and lands on the app.
//
// Env: PORTLESS_APP_URL, PORTLESS_EMAIL, PORTLESS_MAIL_DIR (where the SMTP server saves
// mail), PORTLESS_CA_PEM, PORTLESS_SCREENSHOTS.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { env, freshPage, go, launch, run, see } from "./lib.mjs";

/** Waits (up to 10 s) for a mail in `dir` and returns the six-digit PIN in its body. */
async function pinFromMail(dir) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const mails = readdirSync(dir).filter((f) => f.endsWith(".eml")).sort();
    if (mails.length > 0) {
      const text = readFileSync(join(dir, mails[mails.length - 1]), "utf8");
      const body = text.split("\r\n\r\n").slice(1).join("\r\n\r\n");
      const pin = body.match(/\b\d{6}\b/);
      if (pin) return pin[0];
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no PIN mail arrived in ${dir}`);
}

await run(async (steps, result) => {
  const { browser, close } = await launch();
  try {
    const page = await freshPage(browser);
    await page.goto(env("PORTLESS_APP_URL"));
    await see(page, steps, "sign-in");
    await page.fill('form[action="/login/email"] input[name=email]', env("PORTLESS_EMAIL"));
    await go(page, 'form[action="/login/email"] button[type=submit]');
    await see(page, steps, "code-sent");
    const pin = await pinFromMail(env("PORTLESS_MAIL_DIR"));
    await page.fill('form[action="/login/email/verify"] input[name=code]', pin);
    await go(page, 'form[action="/login/email/verify"] button[type=submit]');
    await page.waitForURL(new URL(env("PORTLESS_APP_URL")).origin + "/**");
    await see(page, steps, "app");
  } finally {
    await close();
  }
});
