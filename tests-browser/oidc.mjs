// Flow: sign in through an upstream OpenID provider. The app's rule names only the provider,
// so the portal offers only its button; the provider shows its own sign-in page (the test
// provider asks for an account name); back at the portal, the app opens with the identity.
//
// Env: PORTLESS_APP_URL, PORTLESS_PROVIDER (configured name), PORTLESS_ACCOUNT,
// PORTLESS_CA_PEM, PORTLESS_EXTRA_CA_PEM (the provider's CA), PORTLESS_SCREENSHOTS.

import { env, freshPage, go, launch, run, see } from "./lib.mjs";

await run(async (steps, result) => {
  const { browser, close } = await launch();
  try {
    const page = await freshPage(browser);
    await page.goto(env("PORTLESS_APP_URL"));
    const login = await see(page, steps, "provider-choice");
    result.passwordField = (await page.locator("input[name=password]").count()) > 0;
    result.providerButton = (await page.locator(`form[action="/oidc/${env("PORTLESS_PROVIDER")}/start"] button`).innerText()).trim();
    result.loginUrl = login.url;
    await go(page, `form[action="/oidc/${env("PORTLESS_PROVIDER")}/start"] button`);
    await see(page, steps, "provider-sign-in");
    await page.fill("input[name=login]", env("PORTLESS_ACCOUNT"));
    await go(page, "form button[type=submit]");
    await page.waitForURL(new URL(env("PORTLESS_APP_URL")).origin + "/**");
    await see(page, steps, "app");
  } finally {
    await close();
  }
});
