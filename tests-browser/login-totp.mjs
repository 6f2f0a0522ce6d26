// Flow 1: a password-only user opens a two-factor application, enrols an authenticator at
// /settings/totp, then signs in again from a fresh browser with password + TOTP and reaches
// the application.
//
// Env: PORTLESS_APP_URL (a two-factor app), PORTLESS_PORTAL_URL, PORTLESS_USER,
// PORTLESS_PASSWORD, PORTLESS_CA_PEM, PORTLESS_SCREENSHOTS.

import { env, freshPage, go, launch, nowStep, run, see, signIn, totp } from "./lib.mjs";

await run(async (steps, result) => {
  const app = env("PORTLESS_APP_URL");
  const portal = env("PORTLESS_PORTAL_URL");
  const user = env("PORTLESS_USER");
  const password = env("PORTLESS_PASSWORD");
  const { browser, close } = await launch();
  try {
    // Password only: the application needs a second factor the user does not have yet.
    let page = await freshPage(browser);
    await page.goto(app);
    await see(page, steps, "sign-in");
    await signIn(page, user, password);
    await see(page, steps, "second-factor-needed");

    // Enrolment: password again, then the key, then a code from it.
    await page.goto(`${portal}/settings/totp`);
    await see(page, steps, "confirm-it-is-you");
    await page.fill("#password", password);
    await go(page, "main form button[type=submit]");
    await see(page, steps, "enrol");
    const key = (await page.locator("main p code").first().innerText()).trim();
    const enrolStep = nowStep();
    await page.fill("#code", totp(key, enrolStep));
    await go(page, "main form button[type=submit]");
    await see(page, steps, "enrolled");
    await page.context().close();

    // A fresh browser: password, then the code (not the one spent on enrolment).
    page = await freshPage(browser);
    await page.goto(app);
    await signIn(page, user, password);
    await see(page, steps, "totp");
    await page.fill("#code", totp(key, Math.max(nowStep(), enrolStep + 1)));
    await go(page, "main form button[type=submit]");
    await see(page, steps, "app");
    result.cookies = (await page.context().cookies()).map((c) => ({
      name: c.name,
      domain: c.domain,
      secure: c.secure,
      httpOnly: c.httpOnly,
    }));
  } finally {
    await close();
  }
});
