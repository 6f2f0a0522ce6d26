// Flow 3: a user outside the group a rule names signs in and gets the "Access denied" page,
// which shows a request id; its "Sign in with another account" button signs out and leads
// back to the sign-in page.
//
// Env: PORTLESS_APP_URL (an app the user may not open), PORTLESS_USER, PORTLESS_PASSWORD,
// PORTLESS_CA_PEM, PORTLESS_SCREENSHOTS.

import { env, freshPage, go, launch, run, see, signIn } from "./lib.mjs";

await run(async (steps, result) => {
  const { browser, close } = await launch();
  try {
    const page = await freshPage(browser);
    const response = await page.goto(env("PORTLESS_APP_URL"));
    result.firstStatus = response ? response.status() : null;
    await signIn(page, env("PORTLESS_USER"), env("PORTLESS_PASSWORD"));
    await see(page, steps, "denied");
    result.requestId = (await page.locator("main p.note code").first().innerText()).trim();
    await go(page, "main form button[type=submit]");
    await see(page, steps, "switch-account");
  } finally {
    await close();
  }
});
