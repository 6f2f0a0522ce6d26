// Flow 2: sign in to a one-factor application, sign out at the portal, and find the
// application asks for a sign-in again.
//
// Env: PORTLESS_APP_URL, PORTLESS_PORTAL_URL, PORTLESS_USER, PORTLESS_PASSWORD,
// PORTLESS_CA_PEM, PORTLESS_SCREENSHOTS.

import { env, freshPage, go, launch, run, see, signIn } from "./lib.mjs";

await run(async (steps) => {
  const app = env("PORTLESS_APP_URL");
  const portal = env("PORTLESS_PORTAL_URL");
  const { browser, close } = await launch();
  try {
    const page = await freshPage(browser);
    await page.goto(app);
    await signIn(page, env("PORTLESS_USER"), env("PORTLESS_PASSWORD"));
    await see(page, steps, "app");
    await page.goto(`${portal}/logout`);
    await see(page, steps, "sign-out");
    await go(page, "main form button[type=submit]");
    await see(page, steps, "signed-out");
    await page.goto(app);
    await see(page, steps, "sign-in-again");
  } finally {
    await close();
  }
});
